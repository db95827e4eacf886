"""Where named datasets live: the data roots, looked at in this order.

1. an explicit directory (``data.path`` / ``--data-dir``), used as is or with ``<name>/`` appended;
2. ``$GANFORGE_DATA/<name>/`` (a data root holding several datasets);
3. the user cache ``$XDG_CACHE_HOME/ganforge/data/<name>/`` (``~/.cache/...``), where downloads go;
4. a system folder a distribution package installs (Debian's ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "GANFORGE_DATA"


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganforge"


def download_dir(name: str) -> Path:
    """Where a download of dataset ``name`` is put: the user cache."""
    return user_cache_dir() / "data" / name


def candidate_dirs(name: str, explicit: str | os.PathLike | None = None,
                   system_dir: str | None = None) -> list[Path]:
    """The folders that may hold dataset ``name``, in lookup order."""
    if explicit:  # an explicit directory is the only place looked at
        return [Path(explicit), Path(explicit) / name]
    dirs: list[Path] = []
    if os.environ.get(DATA_ENV):
        dirs.append(Path(os.environ[DATA_ENV]) / name)
    dirs.append(download_dir(name))
    if system_dir:
        dirs.append(Path(system_dir))
    return dirs


def places_text(name: str, system_dir: str | None = None) -> str:
    """The lookup order as one line for error messages."""
    places = ["--data-dir DIR", f"${DATA_ENV}/{name}/", f"{download_dir(name)}/"]
    if system_dir:
        places.append(f"{system_dir}/")
    return ", ".join(places)
