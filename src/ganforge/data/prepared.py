"""Prepared copies of image folders: decoded once per machine, then memory-mapped.

The first run on a folder (or ``ganforge prepare``) decodes every image at the requested
resolution and channels into one uint8 file in the user cache (``prepared/<name>-<key>/``):
``images.u8`` (N, C, R, R), ``labels.npy``, and ``meta.json`` (count, classes, file list,
decoding settings, the folder's stamp). The key hashes the folder's file names, sizes and
modification times and every decoding setting, so any change to either makes a new copy. The copy
is built in a temporary folder and renamed into place: an interrupted preparation never looks
complete. Later runs open it memory-mapped: start-up costs milliseconds, and batches are gathered
from the page cache, so a folder larger than memory trains.

A copy verifies itself before use: ``meta.json`` (written last) must be the request's (settings,
stamp, count), ``images.u8`` and ``labels.npy`` must have the sizes, types and ranges it states,
and the images' per-chunk SHA-256s must match (every chunk of a copy up to 256 MiB, 16 spread
chunks of a larger one). Anything else -- a truncated, zeroed or foreign file, garbage JSON -- is
removed and the copy built again. The space a copy needs is reserved before it is written, a
killed preparation's temporary folder is removed by the next one, and a folder's older copies at
the same settings are removed once its new copy is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .images import DEFAULT_MAX_PIXELS, decode_into, folder_stamp, scan_folder
from .roots import user_cache_dir

PREPARED_VERSION = 2
CHUNK = 16 << 20  # bytes per checksummed chunk of images.u8
FULL_CHECK = 256 << 20  # copies up to this size have every chunk checked on open
# What decoding does, part of the key: a change to the rules must not reuse old copies.
DECODER = "pil: white matte, 16-bit scaled, center square crop, lanczos"


@dataclass
class PreparedFolder:
    path: Path  # the prepared copy's folder in the cache
    meta: dict[str, Any]
    images: np.ndarray  # uint8 (N, C, R, R), memory-mapped copy-on-write
    labels: np.ndarray  # int64 (N,)

    @property
    def size_bytes(self) -> int:
        return int(self.images.nbytes)


def prepared_root() -> Path:
    return user_cache_dir() / "prepared"


def _key(root: Path, stamp: str, resolution: int, channels: int, limit: int,
         max_pixels: int) -> str:
    ident = {"v": PREPARED_VERSION, "decoder": DECODER, "root": str(root.resolve()),
             "stamp": stamp, "resolution": resolution, "channels": channels, "limit": limit,
             "max_pixels": max_pixels}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _chunk_digests(path: Path, indices: list[int] | None = None) -> list[str]:
    """SHA-256 of each CHUNK-byte block of ``path`` (only those in ``indices`` when given)."""
    size = path.stat().st_size
    wanted = range(max(1, -(-size // CHUNK))) if indices is None else indices
    out = []
    with open(path, "rb") as f:
        for i in wanted:
            f.seek(i * CHUNK)
            out.append(hashlib.sha256(f.read(CHUNK)).hexdigest()[:32])
    return out


def _verified(path: Path, request: dict[str, Any]) -> PreparedFolder | None:
    """The copy at ``path`` if it is whole and is what ``request`` asks for, else None."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in request.items()):
            return None
        n, c, r, digests = meta["count"], meta["channels"], meta["resolution"], meta["chunks"]
        classes = meta["classes"]
        if not (isinstance(n, int) and n >= 0 and isinstance(classes, list)
                and isinstance(digests, list) and len(meta["files"]) == n):
            return None
        images_path = path / "images.u8"
        if images_path.stat().st_size != n * c * r * r or len(digests) != max(1, -(-n * c * r * r // CHUNK)):
            return None
        check = list(range(len(digests)))
        if n * c * r * r > FULL_CHECK:  # 16 chunks spread over a large copy
            check = sorted({round(i * (len(digests) - 1) / 15) for i in range(16)})
        if _chunk_digests(images_path, check) != [digests[i] for i in check]:
            return None
        labels = np.load(path / "labels.npy", allow_pickle=False)
        if labels.shape != (n,) or labels.dtype != np.int64 or \
                (n and (labels.min() < 0 or labels.max() >= max(1, len(classes)))):
            return None
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None
    # mode "c": copy-on-write pages, so torch may wrap the array; the file is never written
    images = np.memmap(images_path, dtype=np.uint8, mode="c", shape=(n, c, r, r)) if n else \
        np.zeros((0, c, r, r), np.uint8)
    return PreparedFolder(path, meta, images, labels)


def _name(f, root: Path) -> str:
    """A file's name in meta.json: its path inside the folder, or its zip member name."""
    return str(f.member) if hasattr(f, "member") else str(f.relative_to(root))


def human_size(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _clean_up(parent: Path, keep: Path, request: dict[str, Any]) -> None:
    """Remove killed preparations' temporary folders, and the older copies of the same folder
    at the same settings (their stamp differs: the folder changed since)."""
    if not parent.is_dir():
        return
    same = {k: v for k, v in request.items() if k != "stamp"}
    for entry in parent.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name.startswith("."):  # .<name>.<pid>.<random>: a preparation in progress
            parts = entry.name.split(".")
            pid = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() and len(parts[2]) < 10 else 0
            if not _alive(pid):
                _remove(entry)
            continue
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and all(meta.get(k) == v for k, v in same.items()) \
                and meta.get("stamp") != request["stamp"]:
            _remove(entry)


def _alive(pid: int) -> bool:
    if pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_prepared(path: Path) -> PreparedFolder:
    """A prepared copy that is whole (see the module docstring), or a DataError."""
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        request = {k: meta[k] for k in ("version", "source", "resolution", "channels", "limit",
                                        "max_pixels", "decoder", "stamp")}
    except (OSError, ValueError, KeyError, TypeError):
        request = None
    prep = None if request is None else _verified(path, request)
    if prep is None:
        raise DataError(f"the prepared copy {path} is damaged; delete that folder and run the "
                        "command again (it is rebuilt from the images)")
    return prep


def prepare_folder(root: str | os.PathLike, resolution: int, channels: int, limit: int = 0,
                   max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False
                   ) -> tuple[PreparedFolder, bool]:
    """The prepared copy of ``root`` at these settings, built when missing; returns it and
    whether it was found ready (True) or built now (False)."""
    root = Path(root)
    files, labels, classes = scan_folder(root)
    if limit:
        files, labels = files[:limit], labels[:limit]
    stamp = folder_stamp(root, files)
    name = root.stem if root.is_file() else root.name
    dest = prepared_root() / f"{name or 'folder'}-{_key(root, stamp, resolution, channels, limit, max_pixels)}"
    request = {"version": PREPARED_VERSION, "source": str(root.resolve()),
               "resolution": resolution, "channels": channels, "limit": limit,
               "max_pixels": max_pixels, "decoder": DECODER, "stamp": stamp}
    if dest.exists():
        prep = _verified(dest, request)
        if prep is not None:
            return prep, True
        _remove(dest)  # damaged or foreign: built again below
    dest.parent.mkdir(parents=True, exist_ok=True)
    _clean_up(dest.parent, dest, request)
    row = channels * resolution * resolution
    need = len(files) * row
    free = shutil.disk_usage(dest.parent).free
    if need > free:
        raise DataError(f"the prepared copy of {root} needs {human_size(need)} in {dest.parent} "
                        f"and {human_size(free)} are free: free space there, "
                        "set XDG_CACHE_HOME to a larger disk, or lower data.resolution / "
                        "data.limit")
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}."))
    try:
        with open(tmp / "images.u8", "wb") as f:  # reserve the space: a full disk fails here,
            if need:                              # not as a bus error inside the memory map
                os.posix_fallocate(f.fileno(), 0, need)
        out = np.memmap(tmp / "images.u8", dtype=np.uint8, mode="r+",
                        shape=(len(files), channels, resolution, resolution)) if need else \
            np.zeros((0, channels, resolution, resolution), np.uint8)
        kept = decode_into(files, out, resolution, channels, max_pixels, progress, str(root))
        if isinstance(out, np.memmap):
            out.flush()
        del out
        os.truncate(tmp / "images.u8", len(kept) * row)  # files that failed leave no rows
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int64)[kept])
        kept_set = set(kept)
        meta = {**request, "count": len(kept), "classes": classes,
                "chunks": _chunk_digests(tmp / "images.u8"),
                "skipped": len(files) - len(kept),
                "skipped_files": [_name(f, root) for i, f in enumerate(files)
                                  if i not in kept_set][:1000],  # the first 1,000 named
                "files": [_name(files[i], root) for i in kept]}
        (tmp / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished the same copy first: use theirs
            if not (dest / "meta.json").is_file():
                raise
    except OSError as e:
        raise DataError(f"could not write the prepared copy of {root} into {dest.parent}: "
                        f"{e.strerror or e}; free space there or set XDG_CACHE_HOME") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _clean_up(dest.parent, dest, request)
    return open_prepared(dest), False
