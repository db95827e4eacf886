"""Atomic writes: a temporary file in the same folder, fsync, then a rename over the target.

A crash at any moment leaves either the old file or the new one, never a half-written file. The
target is refused when it is a symlink, so a link planted in a run directory cannot redirect a
write elsewhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from ..errors import GanforgeError


class WriteError(GanforgeError):
    """A file could not be written (disk full, read-only folder, a planted symlink); ``reason``
    is the operating system's word for it."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` survive a power cut (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def is_write_failure(e: BaseException) -> bool:
    """torch.save and some writers report a failed write (a full disk) as RuntimeError."""
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(
        s in text for s in ("failed writing", "unexpected pos", "no space left", "file write"))


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any] | bytes) -> Path:
    """Write ``path`` atomically: ``write`` is the bytes or a function that writes to a binary
    file object. Raises :class:`WriteError` with a message for a person when it cannot."""
    path = Path(path)
    if path.is_symlink():
        raise WriteError(f"refusing to write {path}: it is a symbolic link (a file there may "
                         "only be replaced, never written through); remove the link and retry")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}; check that the folder is "
                         "writable and the disk has space", str(e.strerror or e)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, (bytes, bytearray)):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) or is_write_failure(e):
            reason = str(e.strerror or e) if isinstance(e, OSError) else _first_line(e)
            raise WriteError(f"could not write {path}: {reason} (disk full or read-only?); the "
                             "previous file, if any, is intact", reason) from None
        raise
    fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def run_path(run_dir: str | os.PathLike, *parts: str) -> Path:
    """A path inside ``run_dir``; anything that would resolve outside it (``..``, absolute parts,
    symlinks pointing away) is refused, so names that come from configs cannot escape the run."""
    root = Path(run_dir).resolve()
    p = root.joinpath(*parts).resolve()
    if p != root and root not in p.parents:
        raise WriteError(f"refusing to write {p}: it is outside the run directory {root}")
    return p
