"""Learning-rate schedule: a pure function of how much of the run is done."""

from __future__ import annotations


def lr_factor(progress: float, schedule: str, decay_start: float = 0.0) -> float:
    """Multiplier of the configured learning rates at ``progress`` (0 to 1) of the run:
    ``constant`` is 1; ``linear`` is 1 until ``decay_start``, then falls linearly to 0 at 1."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return min((1.0 - progress) / (1.0 - decay_start), 1.0)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def run_progress(step: int, total_steps: int, elapsed: float, max_minutes: float) -> float:
    """Share of the run done, 0 to 1: by steps out of all epochs', or by time out of
    ``max_minutes`` when that ends the run sooner."""
    done = step / total_steps
    if max_minutes:
        done = max(done, elapsed / (60 * max_minutes))
    return min(done, 1.0)
