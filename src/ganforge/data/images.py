"""Image folders (or a zip of one): scanned, and each image decoded and resized to uint8 CHW.

Layout: either ImageFolder (``root/<class>/**/image``; classes are the sorted sub-folder names) or a
flat folder of images (one class). A ``.zip`` works as the folder (a single top-level folder inside
it is taken as the root). Formats: PNG, JPEG, GIF (first frame), WebP, BMP.

Pixel rules, applied in this order:

* transparency (RGBA, LA, PA, P or L/RGB with a ``transparency`` key) is composited on **white**;
* 16-bit and 32-bit integer modes (I;16*, I) are **scaled** by 255/65535, not clipped; float (F)
  images are taken as [0, 1] when their maximum is <= 1, else as [0, 255];
* CMYK, YCbCr, HSV, 1-bit and palette images are converted to RGB or L;
* non-square images are **center-cropped to their largest square**, then resized to the target
  resolution with Lanczos filtering (antialiased), as StyleGAN's dataset tool does.

Files that cannot be decoded are skipped and counted in one warning.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


MAX_MEMBER_BYTES = 256 << 20  # an image inside a zip larger than this is refused, not read


@dataclass(frozen=True)
class ZipMember:
    """An image inside a zip archive, used where a folder's file path would be."""

    archive: Path
    member: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    def __str__(self) -> str:
        return f"{self.archive}:{self.member}"

    def open(self) -> io.BytesIO:
        """The member's bytes, read with a cap: its declared size first, then no more than
        :data:`MAX_MEMBER_BYTES` whatever the header says (a zip bomb stops there)."""
        archive = _open_zip(self.archive)
        size = archive.getinfo(self.member).file_size
        if size > MAX_MEMBER_BYTES:
            raise ValueError(f"{self} declares {size:,} bytes, above the {MAX_MEMBER_BYTES:,} "
                             "an image member may have")
        with archive.open(self.member) as f:
            data = f.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise ValueError(f"{self} holds more than {MAX_MEMBER_BYTES:,} bytes")
        return io.BytesIO(data)


@functools.lru_cache(maxsize=4)
def _open_zip(path: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def _scan_zip(root: Path) -> tuple[list[ZipMember], list[int], list[str]]:
    try:
        names = [n for n in _open_zip(root).namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{root} is not a readable zip archive ({e}); data.path must name a "
                        "folder of images or a .zip of one") from None
    # Members named outside the archive's folder (absolute, or through ..) are never read.
    unsafe = [n for n in names if n.startswith("/") or ".." in PurePosixPath(n).parts]
    if unsafe:
        print(f"ganforge: warning: {root}: {len(unsafe)} member(s) with absolute or '..' names "
              f"skipped (e.g. {unsafe[0]})", file=sys.stderr)
    images = sorted(n for n in names if n not in unsafe
                    and PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS
                    and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(n).parts))
    parts = [PurePosixPath(n).parts for n in images]
    # one folder holding everything (pokemon.zip holds pokemon/...) is the root, not a class
    while parts and all(len(p) > 1 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    classes = sorted({p[0] for p in parts if len(p) > 1})
    flat = [i for i, p in enumerate(parts) if len(p) == 1]
    order = [i for c in classes for i, p in enumerate(parts) if len(p) > 1 and p[0] == c]
    labels = [classes.index(parts[i][0]) for i in order]
    if flat:
        classes.append(root.stem if not classes else "(top level)")
        labels += [len(classes) - 1] * len(flat)
        order += flat
    return [ZipMember(root, images[i]) for i in order], labels, classes


def scan_folder(root: str | os.PathLike) -> tuple[list, list[int], list[str]]:
    """Return (files, class indices, class names) for an ImageFolder, a flat folder, or a zip of
    either (then the files are :class:`ZipMember`)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; check data.path (or --data-dir)")
    if root.is_file() and root.suffix.lower() == ".zip":
        files, labels, classes = _scan_zip(root)
    elif not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; data.path must name a folder of images "
                        "(or a .zip of one)")
    else:
        files, labels, classes = _scan_dir(root)
    if not files:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}), neither directly nor in "
            "class sub-folders; point data.path at a folder of images"
        )
    return files, labels, classes


def _scan_dir(root: Path) -> tuple[list[Path], list[int], list[str]]:
    subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: d.name)
    files: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    # A folder that cannot be listed would be skipped by rglob without a word: say so.
    unreadable = [d for d in subdirs for d in [d, *d.rglob("*")]
                  if d.is_dir() and not os.access(d, os.R_OK | os.X_OK)]
    if unreadable:
        print(f"ganforge: warning: {root}: {len(unreadable)} folder(s) could not be read and were "
              f"skipped ({', '.join(str(d.relative_to(root)) for d in unreadable[:3])}); check "
              "their permissions", file=sys.stderr)
    subdirs = [d for d in subdirs if d not in unreadable]
    for d in subdirs:
        found = sorted(p for p in d.rglob("*") if _is_image(p))
        if found:
            labels += [len(classes)] * len(found)
            classes.append(d.name)
            files += found
    flat = sorted(p for p in root.iterdir() if _is_image(p))
    if flat:  # images at the top level form a class of their own (the only one, if flat)
        labels += [len(classes)] * len(flat)
        classes.append(root.name if not classes else "(top level)")
        files += flat
    return files, labels, classes


def folder_stamp(root: str | os.PathLike, files: list) -> str:
    """A hash of what a folder holds, without decoding it: every file's name, size and
    modification time (for a zip: the archive's size and time and its member names)."""
    stamp = hashlib.sha256()
    root = Path(root)
    if root.is_file():
        st = root.stat()
        stamp.update(f"{root.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        for f in files:
            stamp.update(f.member.encode("utf-8", "surrogateescape") + b"\0")
        return stamp.hexdigest()
    for f in files:
        st = f.stat()
        stamp.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return stamp.hexdigest()


def _to_8bit(img: Image.Image) -> Image.Image:
    """Any PIL image -> mode RGB or L, following the rules in the module docstring."""
    mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        if mode == "I" and arr.max(initial=0) <= 255 and arr.min(initial=0) >= 0:
            scaled = arr
        else:
            scaled = arr * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if mode == "F":
        arr = np.asarray(img).astype(np.float64)
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    return img.convert("RGB")


class DecompressionBomb(DataError):
    """An image whose pixel count exceeds ``data.max_pixels``."""


DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default warning threshold


def decode_image(path: str | os.PathLike | ZipMember, resolution: int, channels: int,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one file (or zip member) into uint8 (channels, resolution, resolution).

    The pixel count is checked from the header *before* decoding: a file that would decode to more
    than ``max_pixels`` pixels (a decompression bomb) is refused.
    """
    Image.MAX_IMAGE_PIXELS = None  # our own check below replaces PIL's warning/error pair
    with Image.open(path.open() if isinstance(path, ZipMember) else path) as img:
        w, h = img.size
        if w * h > max_pixels:
            raise DecompressionBomb(
                f"{path} would decode to {w}x{h} = {w * h:,} pixels, above data.max_pixels="
                f"{max_pixels:,}; this protects against decompression bombs. If the image is "
                "genuine, raise data.max_pixels (e.g. data.max_pixels=400000000)."
            )
        img.seek(0)  # animated GIF/WebP: first frame
        img.load()
        img = _to_8bit(img)
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def read_headers(root: str | os.PathLike, sample: int = 64) -> tuple[int, bool]:
    """The median shorter side of up to ``sample`` images spread over the folder (from their
    headers; 0 when none opens), and whether every one of them is grayscale."""
    files, _, _ = scan_folder(root)
    step = max(1, len(files) // sample)
    sides, gray = [], True
    for f in files[::step][:sample]:
        try:
            with Image.open(f.open() if isinstance(f, ZipMember) else f) as img:
                sides.append(min(img.size))
                gray = gray and img.mode in GRAY_MODES
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, zipfile.BadZipFile):
            continue  # decoding reports it (a bomb with the data.max_pixels advice)
    return (int(np.median(sides)) if sides else 0), gray


def nearest_power_of_two(side: int, lo: int = 32, hi: int = 256) -> int:
    """The power of two nearest ``side`` (in ratio: 96 -> 128, 56 -> 64, 40 -> 32), within
    [``lo``, ``hi``]."""
    p = 2 ** round(math.log2(side)) if side > 0 else lo
    return int(min(max(p, lo), hi))


def infer_shape(root: str | os.PathLike, sample: int = 64, lo: int = 32,
                hi: int = 256) -> tuple[int, int]:
    """``(resolution, channels)`` read from the data, from the headers of up to ``sample``
    images spread over the folder: the power of two nearest their median shorter side, within
    [``lo``, ``hi``]; 1 channel when every one of them is grayscale, else 3."""
    side, gray = read_headers(root, sample)
    if not side:
        return lo, 3
    return nearest_power_of_two(side, lo, hi), 1 if gray else 3


def decode_into(files: list, out: np.ndarray, resolution: int, channels: int,
                max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False,
                source: str = "") -> np.ndarray:
    """Decode ``files`` into the rows of ``out`` (an array or a memory map of shape
    (len(files), C, R, R)), in order, skipping files that cannot be decoded: the kept images fill
    ``out[:k]``. Returns the indices of the kept files; warns once about the skipped ones and
    raises when none could be decoded."""
    kept: list[int] = []
    bad: list[str] = []
    where = f" in {source}" if source else ""
    for i, f in enumerate(tqdm(files, desc=f"decoding {Path(source).name}", unit="img", disable=None if progress else True,
                               leave=False)):
        try:
            out[len(kept)] = decode_image(f, resolution, channels, max_pixels)
            kept.append(i)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                zipfile.BadZipFile) as e:
            bad.append(f"{f.name} ({type(e).__name__})")
    if bad:
        warnings.warn(
            f"skipped {len(bad)} of {len(files)} files{where} that could not be decoded: "
            + ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""),
            stacklevel=3,
        )
    if not kept:
        raise DataError(
            f"none of the {len(files)} image files{where} could be decoded; are they really images?"
        )
    return np.asarray(kept, dtype=np.int64)


def load_image_folder(
    root: str | os.PathLike, resolution: int, channels: int = 3, progress: bool = False,
    limit: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every image into memory: ``(uint8 (N, C, R, R), int64 labels (N,), class names)``.
    ``limit`` > 0 decodes only the first ``limit`` files (in sorted order). Training reads a
    prepared, memory-mapped copy instead (:mod:`ganforge.data.prepared`)."""
    files, labels, classes = scan_folder(root)
    if limit:
        files, labels = files[:limit], labels[:limit]
    out = np.empty((len(files), channels, resolution, resolution), dtype=np.uint8)
    kept = decode_into(files, out, resolution, channels, max_pixels, progress, str(root))
    return out[: len(kept)], np.asarray(labels, dtype=np.int64)[kept], classes
