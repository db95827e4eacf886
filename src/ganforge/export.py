"""Export a trained generator without pickle: ``safetensors`` weights plus a JSON config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .config import Config, ConfigError
from .errors import CheckpointError, GanforgeError
from .models import build_models

EXPORT_FORMAT = "ganforge-generator-v1"


def export_generator(run: str | os.PathLike, out: str | os.PathLike,
                     overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (``*.safetensors``) and its config ``out`` with ``.json``; returns both."""
    from .sample import load_generator

    out = Path(out)
    if out.suffix != ".safetensors":
        out = out.with_suffix(out.suffix + ".safetensors") if out.suffix else out.with_suffix(".safetensors")
    meta_path = out.with_suffix(".json")
    for p in (out, meta_path):
        if p.exists() and not overwrite:
            raise GanforgeError(f"{p} already exists; choose another --out or pass --overwrite")
    G, cfg, shape = load_generator(run)
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"format": EXPORT_FORMAT})
    meta = {"format": EXPORT_FORMAT, "ganforge_version": __version__, "sample_shape": list(shape),
            "z_dim": cfg.model.z_dim, "config": cfg.to_dict(),
            "generator": "G_ema" if cfg.train.ema_kimg > 0 else "G"}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out, meta_path


def load_exported(path: str | os.PathLike, device: str | torch.device = "cpu"
                  ) -> tuple[nn.Module, Config, tuple[int, ...]]:
    """Rebuild G from an export (no pickle involved at any point)."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise CheckpointError(f"{path} has no config beside it ({meta_path.name}); "
                              "export both files together")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != EXPORT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        cfg = Config.from_dict(meta["config"])
        shape = tuple(int(s) for s in meta["sample_shape"])
        G, _ = build_models(cfg.model, shape)
        G.load_state_dict(load_file(str(path), device="cpu"))
    except (ValueError, KeyError, ConfigError, RuntimeError, SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a usable ganforge export "
                              f"({str(e).splitlines()[0]})") from None
    return G.to(device).eval(), cfg, shape
