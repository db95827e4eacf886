"""Schedules: pure functions of how much of the run is done (0 to 1) -- the learning rates'
(constant, linear or cosine), and the cosine that anneals Adam's beta2, the gradient penalties'
gamma and G_ema's half-life (R3GAN anneals all four)."""

from __future__ import annotations

import math


def lr_factor(progress: float, schedule: str, decay_start: float = 0.0, end: float = 0.0
              ) -> float:
    """Multiplier of the configured learning rates at ``progress`` (0 to 1) of the run:
    ``constant`` is 1; ``linear`` and ``cosine`` are 1 until ``decay_start``, then fall to
    ``end`` at 1, along a line or half a cosine."""
    if schedule == "constant":
        return 1.0
    if schedule not in ("linear", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    linear = min((1.0 - progress) / (1.0 - decay_start), 1.0)
    base = linear if schedule == "linear" else (1 + math.cos(math.pi * (1.0 - linear))) / 2
    return base if end == 0 else end + (1.0 - end) * base


def cosine(progress: float, start: float, end: float) -> float:
    """``start`` at progress 0 to ``end`` at 1 along half a cosine."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))) / 2


def run_progress(step: int, total_steps: int, elapsed: float, max_minutes: float) -> float:
    """Share of the run done, 0 to 1: by steps out of all epochs', or by time out of
    ``max_minutes`` when that ends the run sooner."""
    done = step / total_steps
    if max_minutes:
        done = max(done, elapsed / (60 * max_minutes))
    return min(done, 1.0)
