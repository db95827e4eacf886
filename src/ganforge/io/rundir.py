"""The run directory and its own files: config.json (what was asked), resolved.json (what the
run resolved: data shape, classes, precision, device), summary.json (how it ended)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import GanforgeError
from .atomic import write_json, write_text

CONFIG_NAME = "config.json"
RESOLVED_NAME = "resolved.json"
SUMMARY_NAME = "summary.json"


def prepare_run_dir(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create the run directory; refuse to reuse a non-empty one unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} is a file; choose a folder for the run")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise GanforgeError(
                f"run directory {out} already exists and is not empty; choose another --out, or "
                "pass --overwrite to replace it"
            )
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GanforgeError(f"cannot create the run directory {out}: {e.strerror or e}; choose "
                            "another --out") from None
    return out


def write_run_files(run_dir: Path, config_json: str, resolved: dict[str, Any]) -> None:
    write_text(run_dir / CONFIG_NAME, config_json + "\n")
    write_json(run_dir / RESOLVED_NAME, resolved)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_json(run_dir / SUMMARY_NAME, summary)
