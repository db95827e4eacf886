"""One writer per run directory: ``RUN/.lock``, held with an exclusive ``flock`` by the writing
process, and holding its PID, its start time and its host (for the messages).

The kernel holds the lock, not the file's content: it is taken atomically (two processes can
never both get it), and it is released when its process ends however it ends, so a killed run's
lock is free at once (``train --resume`` works) and a PID reused by another process is never
mistaken for the holder. A second command that would write the same run is refused with a
message naming the holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import GanforgeError
from .atomic import WriteError

LOCK_NAME = ".lock"
TAKE_SECONDS = 0.5  # a writer retries this long: a reader's check holds the lock for microseconds
_HELD: dict[str, int] = {}  # lock files this process holds -> their descriptors


def _key(path: Path) -> str:
    return str(path.absolute())


def _open(path: Path, create: bool = True) -> int:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    return os.open(path, flags, 0o644)


def _describe(path: Path) -> str:
    """'PID 123 on host, started 12:00:01' from the lock file, as far as it can be read."""
    try:
        words = path.read_text(errors="replace").split()[:3]
    except OSError:
        words = []
    pid = words[0] if words and words[0].isdigit() and len(words[0]) <= 10 else ""
    who = f"PID {pid}" if pid else "a process"
    if len(words) > 1:
        who += f" on {words[1][:64]}"
    if len(words) > 2 and words[2].replace(".", "", 1).isdigit() and len(words[2]) < 20:
        who += f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(words[2])))}"
    return who


def _advice(path: Path) -> str:
    words = path.read_text(errors="replace").split()[:2] if path.is_file() else []
    pid = int(words[0]) if words and words[0].isdigit() and len(words[0]) <= 10 else 0
    here = len(words) > 1 and words[1] == socket.gethostname()
    if pid > 1 and here:
        return f"wait for it to finish or stop it (kill {pid}), then try again"
    return "wait for it to finish or stop it, then try again"


def holder(run_dir: str | os.PathLike) -> str | None:
    """Who holds ``run_dir``'s lock ("PID 123 on host, started ..."), or None when it is free
    or held by this process."""
    path = Path(run_dir) / LOCK_NAME
    if _key(path) in _HELD or not path.is_file():
        return None
    try:
        fd = _open(path, create=False)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(path)
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return None


def refuse_if_locked(run_dir: str | os.PathLike) -> None:
    who = holder(run_dir)
    if who is not None:
        raise GanforgeError(f"{run_dir} is in use by another ganforge process ({who}); "
                            f"{_advice(Path(run_dir) / LOCK_NAME)}")


class RunLock:
    """Held while a command writes a run directory; ``release`` gives it back."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None
        if _key(self.path) in _HELD:
            raise GanforgeError(f"{run_dir} is already locked by this process")
        deadline = time.monotonic() + TAKE_SECONDS
        while True:
            try:
                fd = _open(self.path)
            except OSError as e:
                raise WriteError(f"cannot lock {run_dir} for writing: {e.strerror or e}; check "
                                 "that the folder exists and is writable",
                                 str(e.strerror or e)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    refuse_if_locked(run_dir)
                    raise GanforgeError(f"{run_dir} was taken by another ganforge process just "
                                        "now; try again") from None
                time.sleep(0.02)
                continue
            # The file may have been released and removed between our open and our lock: then
            # we hold a lock on a file nobody else can see; take the one at the path instead.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stamp = f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, stamp, 0)
        self.fd = fd
        _HELD[_key(self.path)] = fd

    def release(self) -> None:
        if self.fd is None:
            return
        _HELD.pop(_key(self.path), None)
        try:
            self.path.unlink()  # while still locked: a waiting taker then retries on a new file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[RunLock | None]:
    """Hold ``run_dir``'s lock for the duration of a ``with`` block (a no-op when this process
    holds it already)."""
    if _key(Path(run_dir) / LOCK_NAME) in _HELD:
        yield None
        return
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
