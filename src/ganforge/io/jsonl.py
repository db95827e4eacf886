"""JSON Lines: one record per line, appended as a run goes, read back tolerating a cut last line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from .atomic import WriteError, write_text


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record of ``path`` (none when it does not exist); a line cut by a crash
    or any line that is not a JSON object is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class JsonlWriter:
    """Appends records to one file, flushing each; ``reset`` replaces the whole file atomically
    (used on resume to keep only the records a checkpoint covers)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file = None

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            try:  # O_NOFOLLOW: a symlink planted at the path is refused, never written through
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                             0o644)
            except OSError as e:
                raise WriteError(f"cannot append to {self.path}: {e.strerror or e} (a symbolic "
                                 "link there is refused; remove it and retry)") from None
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def reset(self, records: Iterable[dict[str, Any]]) -> None:
        self.close()
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
