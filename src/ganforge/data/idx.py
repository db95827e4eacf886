"""MNIST-like datasets stored as IDX files (``*.gz`` or uncompressed).

A dataset's four files are looked up in the data roots (:mod:`ganforge.data.roots`; the first
directory holding the needed pair wins), Debian's ``/usr/share/datasets/fashion-mnist/`` (package
``dataset-fashion-mnist``) last.

When none has them and ``download`` is on, the files are downloaded from the canonical URLs into the
user cache and verified by the SHA-256 of their *decompressed* bytes (the IDX payload is unique; gzip
bytes differ between mirrors and repackagings such as Debian's).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import math
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .roots import DATA_ENV, candidate_dirs, download_dir, places_text, user_cache_dir

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class IdxSpec:
    name: str
    urls: tuple[str, ...]  # base URLs, tried in order
    files: dict[str, tuple[str, str]]  # split -> (images file, labels file)
    sha256: dict[str, str]  # file -> sha256 of the decompressed IDX bytes
    class_names: tuple[str, ...]
    debian_dir: str | None = None
    debian_package: str | None = None


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

IDX_DATASETS: dict[str, IdxSpec] = {
    "mnist": IdxSpec(
        name="mnist",
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
            "http://yann.lecun.com/exdb/mnist/",
        ),
        files=_MNIST_FILES,
        sha256={
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        class_names=tuple(str(i) for i in range(10)),
    ),
    "fashion-mnist": IdxSpec(
        name="fashion-mnist",
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files=_MNIST_FILES,
        sha256={
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"),
        debian_dir="/usr/share/datasets/fashion-mnist",
        debian_package="dataset-fashion-mnist",
    ),
}

__all__ = ["DATA_ENV", "IDX_DATASETS", "IdxSpec", "download", "load_idx_dataset", "parse_idx",
           "read_idx", "user_cache_dir", "write_idx"]


# ------------------------------------------------------------------------------ IDX format


def _open_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"cannot read IDX file {path}: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(
                f"{path} is a damaged gzip file ({e}); delete it and download it again"
            ) from None
    return raw


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array, checking the magic number and the declared sizes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{source} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
            "expected the MNIST format, e.g. train-images-idx3-ubyte.gz"
        )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source} is truncated: its header is incomplete")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape) * dtype.itemsize  # exact: no int64 overflow
    if len(raw) != expected:
        raise DataError(
            f"{source} is truncated or padded: header declares shape {tuple(shape)} "
            f"({expected} bytes) but the file holds {len(raw)} bytes; download it again"
        )
    # A copy in native byte order: writable, and independent of the file's bytes.
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="), copy=True
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    return parse_idx(_open_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as IDX (gzip-compressed when the name ends in ``.gz``)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    arr = np.asarray(array)
    code = codes.get(arr.dtype)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    big = arr.astype(np.dtype(_IDX_DTYPES[code]), copy=False)
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + big.tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(raw)


# ------------------------------------------------------------------------------ lookup


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate(spec: IdxSpec, split: str, explicit: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    names = spec.files[split]
    for d in candidate_dirs(spec.name, explicit, spec.debian_dir):
        found = [_find_file(d, n) for n in names]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    if explicit:
        # An explicit directory that lacks the files is a mistake worth stopping for.
        raise DataError(
            f"{explicit} does not hold the {spec.name} {split} files "
            f"({', '.join(names)}). Put them there, or drop the explicit data directory to use "
            f"the default lookup."
        )
    return None


def file_problem(spec: IdxSpec, path: Path, fname: str) -> str | None:
    """Why the IDX file at ``path`` is not the published ``fname`` (None when it is)."""
    try:
        digest = hashlib.sha256(_open_bytes(path)).hexdigest()
    except DataError as e:
        return str(e)
    if digest != spec.sha256[fname]:
        return f"{path} is not the published {fname} (sha256 {digest[:16]}...)"
    return None


def verify_present(spec: IdxSpec, directory: Path) -> list[str]:
    """What is missing or wrong among the four files of ``spec`` in ``directory``."""
    problems = []
    for fname in spec.sha256:
        found = _find_file(directory, fname)
        problem = f"{fname} is missing" if found is None else file_problem(spec, found, fname)
        if problem:
            problems.append(problem)
    return problems


def download(spec: IdxSpec, dest: Path, files: list[str] | None = None, timeout: float = 30.0) -> None:
    """Download ``files`` (default: all four) into ``dest`` and verify their checksums. A folder
    created here is removed again when nothing could be downloaded into it."""
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    for fname in files or list(spec.sha256):
        found = _find_file(dest, fname)
        if found and not file_problem(spec, found, fname):
            continue  # present and the published file
        errors = []
        for base in spec.urls:
            url = base + fname
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    payload = resp.read()
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', e)}")
                continue
            try:
                digest = hashlib.sha256(gzip.decompress(payload)).hexdigest()
            except (OSError, EOFError):
                digest = "not gzip"
            if digest != spec.sha256[fname]:
                errors.append(f"{url}: checksum mismatch ({digest[:16]}...)")
                continue
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{fname}.")
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            shutil.move(tmp, dest / fname)
            break
        else:
            if created and not any(dest.iterdir()):
                dest.rmdir()  # an empty folder would look like a dataset in the wrong place
            raise DataError(_missing_message(spec, failures=errors))


def _missing_message(spec: IdxSpec, failures: list[str] | None = None) -> str:
    files = ", ".join(spec.sha256)
    msg = (
        f"{spec.name} is not on this machine and could not be downloaded. ganforge needs the "
        f"files {files} in one of: {places_text(spec.name, spec.debian_dir)}"
    )
    if spec.debian_dir:
        msg += f" (Debian: `sudo apt-get install -y {spec.debian_package}`)"
    msg += f". They are published at {spec.urls[0]}."
    if failures:
        msg += " Download attempts: " + "; ".join(failures[:3]) + "."
    return msg


def load_idx_dataset(
    name: str, split: str = "train", explicit_dir: str | None = None, allow_download: bool = True
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return ``(images uint8 (N, 28, 28), labels int64 (N,), class names)``."""
    spec = IDX_DATASETS[name]
    found = locate(spec, split, explicit_dir)
    if found is None:
        if not allow_download:
            raise DataError(_missing_message(spec) + " (downloading is off: data.download=false)")
        cache = download_dir(spec.name)
        download(spec, cache, files=list(spec.files[split]))
        found = locate(spec, split)
        assert found is not None
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{found[0]} and {found[1]} do not form an image/label pair "
            f"(shapes {images.shape} and {labels.shape})"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(spec.class_names)):
        raise DataError(
            f"{found[1]} holds labels from {labels.min()} to {labels.max()}, but {name} has "
            f"{len(spec.class_names)} classes (0..{len(spec.class_names) - 1}); the file is not "
            f"{name}'s label file: download it again")
    return images.astype(np.uint8, copy=False), labels.astype(np.int64), spec.class_names
