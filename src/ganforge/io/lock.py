"""One writer per run directory: ``RUN/.lock`` holds the writing process's PID.

A second command that would write the same run is refused with a message naming the holder's
PID; the lock of a process that no longer runs is taken over (a killed run leaves its lock
behind, and ``train --resume`` must still work).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import GanforgeError

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
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, self.path)  # a dead holder's lock is replaced
        if holder(run_dir) is not None:  # another process took it at the same moment
            raise GanforgeError(f"{run_dir} was taken by another ganforge process just now")

    def release(self) -> None:
        try:
            if int(self.path.read_text().split()[0]) == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, IndexError):
            pass
