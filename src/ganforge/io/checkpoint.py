"""Checkpoints: complete, written atomically, loaded with ``weights_only=True`` (no code runs)."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .atomic import WriteError, atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
BEST_CHECKPOINT_NAME = "checkpoint_best.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically: a crash mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    existed = path.exists()
    try:
        return atomic_write(path, lambda f: torch.save({"format_version": FORMAT_VERSION, **state}, f))
    except WriteError as e:
        raise CheckpointError(
            f"could not write checkpoint {path}: {e.reason} (disk full?). The previous checkpoint{' is intact' if existed else ' does not exist'}; "
            "free space and resume with `ganforge train --resume`."
        ) from None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run directory or a checkpoint file -> the checkpoint file."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
        if not p.is_file():
            raise CheckpointError(
                f"{path} is a folder without {CHECKPOINT_NAME}; is it a finished ganforge run? "
                "Pass the run directory of a completed `ganforge train` or a checkpoint file."
            )
    elif not p.is_file():
        raise CheckpointError(f"{path} does not exist; pass a run directory or a checkpoint file")
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load safely (no code execution) and check that it is a ganforge checkpoint."""
    p = resolve_checkpoint(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{p} was refused: it is not a plain-tensor checkpoint (loading it would run code or "
            f"it is not a ganforge file). Detail: {str(e).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(
            f"{p} is corrupted or truncated ({type(e).__name__}); use an earlier checkpoint"
        ) from None
    if not isinstance(state, dict) or "G" not in state or "config" not in state:
        raise CheckpointError(f"{p} is not a ganforge checkpoint (no generator or config in it)")
    return state


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
