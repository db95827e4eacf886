"""Errors that the CLI turns into a one-paragraph message and a non-zero exit (no traceback)."""


class GanforgeError(Exception):
    """Base class: the message must say what was wrong and what to do about it."""


class DataError(GanforgeError):
    """A dataset is missing, empty, corrupt or cannot be downloaded."""


class CheckpointError(GanforgeError):
    """A checkpoint or run directory cannot be used."""


def describe_state_dict_error(e: Exception) -> str:
    """The informative line of a ``load_state_dict`` error (PyTorch puts it on line 2+)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("size mismatch", "Missing key", "Unexpected key")):
            return ln.rstrip(".")
    return lines[0] if lines else type(e).__name__


def require_range(flag: str, value: float, low: float, high: float, hint: str = "") -> None:
    """Refuse ``value`` outside [low, high] (NaN included) with a message naming ``flag``."""
    if not low <= value <= high:
        raise GanforgeError(f"{flag} must be from {low:g} to {high:g}, got {value!r}"
                            + (f" ({hint})" if hint else ""))
