"""Sampling from a trained run: load G from a checkpoint, draw seeded samples, write them out."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .config import Config, ConfigError
from .errors import CheckpointError, GanforgeError, describe_state_dict_error
from .models import build_models
from .report import save_grid, scatter_2d, to_uint8
from .training.checkpoint import load_checkpoint


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, Config, tuple[int, ...]]:
    """Rebuild G from a run directory, a checkpoint or a ``.safetensors`` export; returns
    (G in eval mode, config, sample shape)."""
    if str(path).endswith(".safetensors"):
        from .export import load_exported

        return load_exported(path, device)
    state = load_checkpoint(path, map_location=device)
    try:
        cfg = Config.from_dict(state["config"])
        shape = tuple(int(s) for s in state["sample_shape"])
        G, _ = build_models(cfg.model, shape)
        G.load_state_dict(state["G"])
    except (ConfigError, KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"the checkpoint at {path} does not match its own config "
            f"({describe_state_dict_error(e)}); it may come from another ganforge version"
        ) from None
    return G.to(device).eval(), cfg, shape


@torch.no_grad()
def generate(G: nn.Module, z_dim: int, n: int, seed: int = 0, batch_size: int = 256,
             device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` samples (float, [-1, 1] for images) from noise drawn on the CPU with ``seed``:
    the same seed gives the same samples on every device and for every batch size."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    G.eval()
    return torch.cat([G(z[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, n, batch_size)])


def write_samples(samples: torch.Tensor, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write by the path's form: ``*.png`` a grid (a scatter for 2-D points), ``*.npy`` an array
    (uint8 (N, H, W, C) for images, float32 (N, D) for points), anything else a folder of PNGs."""
    out = Path(out)
    is_image = samples.dim() == 4
    suffix = out.suffix.lower()
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise GanforgeError(f"{out} already exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        arr = (to_uint8(samples).permute(0, 2, 3, 1).numpy() if is_image
               else samples.numpy().astype(np.float32))
        np.save(out, arr)
    elif suffix == ".png":
        if is_image:
            cols = math.ceil(math.sqrt(len(samples)))
            save_grid(to_uint8(samples), out, math.ceil(len(samples) / cols), cols)
        else:
            from .data import gaussian2d

            scatter_2d(gaussian2d(len(samples)).numpy(), samples.numpy(), out)
    elif suffix:
        raise GanforgeError(f"--out {out}: use a .png (grid), a .npy (array) or a folder name")
    else:
        if not is_image:
            raise GanforgeError("2-D point samples cannot be written as a folder of images; "
                                "use --out points.npy or --out scatter.png")
        out.mkdir(parents=True, exist_ok=True)
        arr = to_uint8(samples).permute(0, 2, 3, 1).numpy()
        width = max(6, len(str(len(arr) - 1)))
        for i, a in enumerate(arr):
            Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(out / f"{i:0{width}d}.png")
    return out


def sample(path: str | os.PathLike, n: int, out: str | os.PathLike, seed: int = 0,
           device: str = "cpu", overwrite: bool = False) -> Path:
    """Library entry point behind ``ganforge sample``."""
    if n <= 0:
        raise GanforgeError(f"--n must be a positive number of samples, got {n}")
    G, cfg, _ = load_generator(path, device)
    return write_samples(generate(G, cfg.model.z_dim, n, seed, device=device), out, overwrite)
