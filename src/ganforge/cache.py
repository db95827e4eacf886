"""What ganforge keeps in its user cache, and removing it (``ganforge cache``): prepared copies of
image folders (``prepared/``), reference features (``reference_features/``), domain classifiers
(``classifiers/``) and downloaded datasets (``data/``). Everything there can be rebuilt; nothing
a run needs to resume lives there."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .data.images import folder_stamp, scan_folder
from .data.roots import user_cache_dir

KINDS = {"prepared": "prepared copy", "reference_features": "reference features",
         "classifiers": "domain classifier", "data": "downloaded dataset"}


@dataclass
class Entry:
    kind: str  # a key of KINDS
    path: Path
    size: int  # bytes
    last_used: float  # the newest access or modification time of its files (seconds)
    source: str  # what it was made from, where known
    stale: bool = False  # a prepared copy of a folder that has changed (or is gone) since


def _size_and_time(path: Path) -> tuple[int, float]:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return sum(s.st_size for s in stats), max([max(s.st_atime, s.st_mtime) for s in stats] or [0])


def _prepared_source(path: Path) -> tuple[str, bool]:
    """(source folder, stale) of a prepared copy: stale when its folder changed or is gone."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        source = str(meta["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return "(damaged)", True
    try:
        files, _, _ = scan_folder(source)
        if meta.get("limit"):
            files = files[: meta["limit"]]
        return source, folder_stamp(Path(source), files) != meta.get("stamp")
    except Exception:  # noqa: BLE001 -- a folder gone or unreadable: the copy is stale
        return source, True


def entries() -> list[Entry]:
    """Everything in the cache, oldest use first."""
    root = user_cache_dir()
    out = []
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            size, used = _size_and_time(path)
            source, stale = ((_prepared_source(path) if not path.name.startswith(".")
                              else ("(unfinished)", True)) if kind == "prepared"
                             else (path.stem.split("-")[0], False))
            out.append(Entry(kind, path, size, used, source, stale))
    return sorted(out, key=lambda e: e.last_used)


def remove(older_than_days: float | None = None, stale: bool = False, everything: bool = False,
           kinds: tuple[str, ...] = tuple(KINDS)) -> list[Entry]:
    """Remove the entries asked for: unused for ``older_than_days``, stale prepared copies,
    or ``everything`` (of ``kinds``); returns what was removed."""
    now = time.time()
    gone = []
    for e in entries():
        if e.kind not in kinds:
            continue
        old = older_than_days is not None and now - e.last_used > older_than_days * 86400
        if everything or old or (stale and e.stale):
            if e.path.is_dir():
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                e.path.unlink(missing_ok=True)
            gone.append(e)
    return gone
