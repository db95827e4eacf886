"""Prepared copies of image folders: decoded once per machine, then memory-mapped.

The first run on a folder (or ``ganforge prepare``) decodes every image at the requested
resolution and channels into one uint8 file in the user cache (``prepared/<name>-<key>/``):
``images.u8`` (N, C, R, R), ``labels.npy``, and ``meta.json`` (count, classes, file list,
decoding settings, the folder's stamp). The key hashes the folder's file names, sizes and
modification times and every decoding setting, so any change to either makes a new copy. The copy
is built in a temporary folder and renamed into place: an interrupted preparation never looks
complete. Later runs open it memory-mapped: start-up costs milliseconds, and batches are gathered
from the page cache, so a folder larger than memory trains.
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

PREPARED_VERSION = 1
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


def open_prepared(path: Path) -> PreparedFolder:
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    n, c, r = meta["count"], meta["channels"], meta["resolution"]
    # mode "c": copy-on-write pages, so torch may wrap the array; the file is never written
    images = np.memmap(path / "images.u8", dtype=np.uint8, mode="c", shape=(n, c, r, r))
    return PreparedFolder(path, meta, images, np.load(path / "labels.npy"))


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
    if (dest / "meta.json").is_file():
        return open_prepared(dest), True
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        row = channels * resolution * resolution
        out = np.memmap(tmp / "images.u8", dtype=np.uint8, mode="w+",
                        shape=(len(files), channels, resolution, resolution))
        kept = decode_into(files, out, resolution, channels, max_pixels, progress, str(root))
        out.flush()
        del out
        os.truncate(tmp / "images.u8", len(kept) * row)  # files that failed leave no rows
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int64)[kept])
        meta = {"version": PREPARED_VERSION, "source": str(root.resolve()), "count": len(kept),
                "channels": channels, "resolution": resolution, "classes": classes,
                "limit": limit, "max_pixels": max_pixels, "decoder": DECODER, "stamp": stamp,
                "skipped": len(files) - len(kept),
                "files": [str(f.member) if hasattr(f, "member") else str(f.relative_to(root))
                          for f in (files[i] for i in kept)]}
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
    return open_prepared(dest), False
