"""Checkpoints: complete, written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
BEST_CHECKPOINT_NAME = "checkpoint_best.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to a temporary file in the same folder, fsync it, then rename it over
    ``path``: a crash mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise CheckpointError(f"cannot write a checkpoint into {path.parent}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except OSError as e:
        os.unlink(tmp) if os.path.exists(tmp) else None
        raise CheckpointError(
            f"could not write checkpoint {path}: {e.strerror or e} (disk full?). The previous "
            f"checkpoint{' is intact' if path.exists() else ' does not exist'}; free space and "
            "resume with `ganforge train --resume`."
        ) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def run_path(run_dir: str | os.PathLike, *parts: str) -> Path:
    """A path inside ``run_dir``; anything that would resolve outside it (``..``, absolute parts,
    symlinks pointing away) is refused, so names that come from configs cannot escape the run."""
    root = Path(run_dir).resolve()
    p = root.joinpath(*parts).resolve()
    if p != root and root not in p.parents:
        raise CheckpointError(f"refusing to write {p}: it is outside the run directory {root}")
    return p
