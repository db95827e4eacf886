"""Errors that the CLI turns into a one-paragraph message and a non-zero exit (no traceback)."""


class GanforgeError(Exception):
    """Base class: the message must say what was wrong and what to do about it."""


class DataError(GanforgeError):
    """A dataset is missing, empty, corrupt or cannot be downloaded."""


class CheckpointError(GanforgeError):
    """A checkpoint or run directory cannot be used."""
