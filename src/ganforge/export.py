"""Export a trained generator without pickle: ``safetensors`` weights plus a JSON config."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import save

from . import __version__
from .errors import GanforgeError
from .generator import EXPORT_FORMAT, load_generator
from .io import atomic_write, write_json
from .io.lock import lock_for_output


def _is_export_meta(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return False


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
    if meta_path.exists() and not _is_export_meta(meta_path):
        # --overwrite replaces an earlier export, never another file that happens to share the
        # side file's name (a run's config.json)
        raise GanforgeError(f"{meta_path} exists and is not an export's config (the export's "
                            f"JSON goes beside {out.name} under that name); choose another --out")
    G, cfg, shape, classes = load_generator(run)
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    with lock_for_output(out):
        atomic_write(out, save(tensors, metadata={"format": EXPORT_FORMAT}))
        write_json(meta_path, {"format": EXPORT_FORMAT, "ganforge_version": __version__,
                               "sample_shape": list(shape), "z_dim": cfg.model.z_dim,
                               "config": cfg.to_dict(), "resolved": {"num_classes": classes},
                               "generator": "G_ema" if cfg.train.ema_kimg > 0 else "G"})
    return out, meta_path
