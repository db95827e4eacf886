"""Image folders, decoded and resized once into a uint8 tensor held in memory.

Layout: either ImageFolder (``root/<class>/**/image``; classes are the sorted sub-folder names) or a
flat folder of images (one class). Formats: PNG, JPEG, GIF (first frame), WebP, BMP.

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

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def scan_folder(root: str | os.PathLike) -> tuple[list[Path], list[int], list[str]]:
    """Return (files, class indices, class names) for an ImageFolder or flat folder."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; check data.path (or --data-dir)")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; data.path must name a folder of images")
    subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: d.name)
    files: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
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
    if not files:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}), neither directly nor in "
            "class sub-folders; point data.path at a folder of images"
        )
    return files, labels, classes


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


def decode_image(path: str | os.PathLike, resolution: int, channels: int,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one file into uint8 (channels, resolution, resolution).

    The pixel count is checked from the header *before* decoding: a file that would decode to more
    than ``max_pixels`` pixels (a decompression bomb) is refused.
    """
    Image.MAX_IMAGE_PIXELS = None  # our own check below replaces PIL's warning/error pair
    with Image.open(path) as img:
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


def load_image_folder(
    root: str | os.PathLike, resolution: int, channels: int = 3, progress: bool = False,
    limit: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every image once: ``(uint8 (N, C, R, R), int64 labels (N,), class names)``.

    ``limit`` > 0 decodes only the first ``limit`` files (in sorted order).
    """
    files, labels, classes = scan_folder(root)
    if limit:
        files, labels = files[:limit], labels[:limit]
    out = np.empty((len(files), channels, resolution, resolution), dtype=np.uint8)
    keep = np.zeros(len(files), dtype=bool)
    bad: list[str] = []
    for i, f in enumerate(tqdm(files, desc=f"decoding {Path(root).name}", unit="img",
                               disable=None if progress else True, leave=False)):
        try:
            out[i] = decode_image(f, resolution, channels, max_pixels)
            keep[i] = True
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            bad.append(f"{f.name} ({type(e).__name__})")
    if bad:
        warnings.warn(
            f"skipped {len(bad)} of {len(files)} files in {root} that could not be decoded: "
            + ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""),
            stacklevel=2,
        )
    if not keep.any():
        raise DataError(
            f"none of the {len(files)} image files in {root} could be decoded; "
            "are they really images?"
        )
    return out[keep], np.asarray(labels, dtype=np.int64)[keep], classes
