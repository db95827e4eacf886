"""Named image-folder datasets: found in the data roots, or downloaded and extracted once.

``pokemon`` is the d2l DCGAN chapter's sprite set: d2l's ``DATA_HUB['pokemon']`` gives
``pokemon.zip`` with its SHA-1; the archive holds an ImageFolder (``pokemon/<class>/<image>.png``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .roots import candidate_dirs, download_dir, places_text


@dataclass(frozen=True)
class FolderSpec:
    name: str
    url: str
    sha1: str  # of the archive, as its publisher gives it
    source: str
    count: int = 0  # images the published archive holds (0 = not checked)


FOLDER_DATASETS: dict[str, FolderSpec] = {
    "pokemon": FolderSpec(
        name="pokemon",
        url="http://d2l-data.s3-accelerate.amazonaws.com/pokemon.zip",
        sha1="c065c0e2593b8b161a2d7873e42418bf6a21106c",
        source="Dive into Deep Learning, section 20.2 (d2l.DATA_HUB['pokemon'])",
        count=5080,
    ),
}


def _has_images(d: Path) -> bool:
    return d.is_dir() and any(d.iterdir())


def locate_folder(name: str, explicit: str | os.PathLike | None = None,
                  allow_download: bool = True, timeout: float = 60.0) -> Path:
    """The folder of dataset ``name``: the first data root that holds it, else a download into
    the user cache (verified, then extracted atomically), else a :class:`DataError` naming the
    file, its checksum and the places looked in."""
    spec = FOLDER_DATASETS[name]
    if explicit:  # the folder itself, or a data root holding <name>/; image checks come later
        if not Path(explicit).exists():
            raise DataError(f"image folder {explicit} does not exist; point --data-dir "
                            f"(data.path) at the {name} images, or drop it to use the default "
                            "lookup")
        inner = Path(explicit) / name
        return inner if _has_images(inner) else Path(explicit)
    for d in candidate_dirs(name):
        if _has_images(d):
            return d
    missing = (f"the {name} images are not on this machine. ganforge looks in "
               f"{places_text(name)}; the archive is {spec.url} (SHA-1 {spec.sha1}, from "
               f"{spec.source})")
    if not allow_download:
        raise DataError(missing + "; downloading is off (data.download=false).")
    try:
        payload = _fetch(spec.url, timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(f"{missing}, and downloading it failed ({getattr(e, 'reason', e)}). "
                        "Download it where you are online, unzip it and pass --data-dir, or set "
                        "GANFORGE_DATA to the folder above it.") from None
    digest = hashlib.sha1(payload).hexdigest()
    if digest != spec.sha1:
        raise DataError(f"the download of {spec.url} has SHA-1 {digest}, not {spec.sha1}: it is "
                        "damaged or not the published archive; nothing was kept. Retry, or "
                        "download it yourself and pass --data-dir.")
    return _extract(payload, download_dir(name), name)


def folder_problem(name: str, folder: Path) -> str | None:
    """Why ``folder`` is not the whole published dataset ``name`` (None when it looks whole)."""
    spec = FOLDER_DATASETS[name]
    count = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if spec.count and count < spec.count:
        return (f"{folder} holds {count} files, and the published {name} archive holds "
                f"{spec.count} images: it is partial (an interrupted copy?); delete it and run "
                f"`ganforge download {name}` again, or point --data-dir at a whole copy")
    return None


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def _extract(payload: bytes, dest: Path, name: str) -> Path:
    """Unzip into a temporary folder beside ``dest`` (refusing members that would land outside
    it), then rename into place, so an interrupted extraction never looks complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}."))
    try:
        zpath = tmp / "archive.zip"
        zpath.write_bytes(payload)
        with zipfile.ZipFile(zpath) as zf:
            root = tmp / "x"
            for member in zf.namelist():
                target = (root / member).resolve()
                if root.resolve() not in target.parents and target != root.resolve():
                    raise DataError(f"the archive for {name} holds a path outside its folder "
                                    f"({member}); refusing to extract it")
            zf.extractall(root)
        top = [p for p in root.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        inner = top[0] if len(top) == 1 and top[0].is_dir() and top[0].name == name else root
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(inner, dest)
        return dest
    except zipfile.BadZipFile:
        raise DataError(f"the archive for {name} is not a zip file; nothing was kept") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
