"""One writer per run directory: ``RUN/.lock`` holds the writing process's PID.

A second command that would write the same run is refused with a message naming the holder's
PID; the lock of a process that no longer runs is taken over (a killed run leaves its lock
behind, and ``train --resume`` must still work).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import GanforgeError
from .atomic import WriteError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder(run_dir: str | os.PathLike) -> int | None:
    """The PID of a live process holding ``run_dir``'s lock, or None."""
    try:
        pid = int((Path(run_dir) / LOCK_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid != os.getpid() and _alive(pid) else None


def refuse_if_locked(run_dir: str | os.PathLike) -> None:
    pid = holder(run_dir)
    if pid is not None:
        raise GanforgeError(f"{run_dir} is in use by another ganforge process (PID {pid}); wait "
                            f"for it to finish or stop it (kill {pid}), then try again")


class RunLock:
    """Held while a command writes a run directory; ``release`` removes it if it is still ours."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        refuse_if_locked(run_dir)
        tmp = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}.tmp")
        try:
            tmp.write_text(f"{os.getpid()}\n")
            os.replace(tmp, self.path)  # a dead holder's lock is replaced
        except OSError as e:
            raise WriteError(f"cannot lock {run_dir} for writing: {e.strerror or e}; check that "
                             "the folder exists and is writable", str(e.strerror or e)) from None
        if holder(run_dir) is not None:  # another process took it at the same moment
            raise GanforgeError(f"{run_dir} was taken by another ganforge process just now")

    def release(self) -> None:
        try:
            if int(self.path.read_text().split()[0]) == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, IndexError):
            pass


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[RunLock]:
    """Hold ``run_dir``'s lock for the duration of a ``with`` block."""
    lock = RunLock(run_dir)
    try:
        yield lock
    finally:
        lock.release()


def enclosing_run(path: str | os.PathLike) -> Path | None:
    """The run directory that ``path`` (a file or folder to be written) lies in: the nearest
    folder at or above it with a run's ``config.json`` and ``checkpoint.pt``; None outside runs."""
    p = Path(path).absolute()
    for folder in [p, *p.parents]:
        if (folder / "config.json").is_file() and (folder / "checkpoint.pt").is_file():
            return folder
    return None


@contextmanager
def lock_for_output(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of the run ``path`` is written into, if any (a no-op outside runs)."""
    run = enclosing_run(path)
    if run is None:
        yield
        return
    with run_lock(run):
        yield
