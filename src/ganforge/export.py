"""Export a trained generator without pickle: ``safetensors`` weights plus a JSON config."""

from __future__ import annotations

import os
from pathlib import Path

from safetensors.torch import save

from . import __version__
from .errors import GanforgeError
from .generator import EXPORT_FORMAT, load_generator
from .io import atomic_write, write_json
from .io.lock import lock_for_output


def export_generator(run: str | os.PathLike, out: str | os.PathLike,
                     overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (``*.safetensors``) and its config ``out`` with ``.json``; returns both.
    Load them back with :func:`ganforge.generator.load_exported` (or ``ganforge sample``)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        out = out.with_suffix(out.suffix + ".safetensors") if out.suffix else out.with_suffix(".safetensors")
    meta_path = out.with_suffix(".json")
    for p in (out, meta_path):
        if p.exists() and not overwrite:
            raise GanforgeError(f"{p} already exists; choose another --out or pass --overwrite")
    G, cfg, shape, classes = load_generator(run)
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    with lock_for_output(out):
        atomic_write(out, save(tensors, metadata={"format": EXPORT_FORMAT}))
        write_json(meta_path, {"format": EXPORT_FORMAT, "ganforge_version": __version__,
                               "sample_shape": list(shape), "z_dim": cfg.model.z_dim,
                               "config": cfg.to_dict(), "resolved": {"num_classes": classes},
                               "generator": "G_ema" if cfg.train.ema_kimg > 0 else "G"})
    return out, meta_path
