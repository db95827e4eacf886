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


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   ema: bool = True) -> tuple[nn.Module, Config, tuple[int, ...]]:
    """Rebuild G from a run directory, a checkpoint or a ``.safetensors`` export; returns
    (G in eval mode, config, sample shape). Runs that keep an EMA of G give ``G_ema`` unless
    ``ema=False``."""
    if str(path).endswith(".safetensors"):
        from .export import load_exported

        return load_exported(path, device)
    state = load_checkpoint(path, map_location=device)
    try:
        cfg = Config.from_dict(state["config"])
        shape = tuple(int(s) for s in state["sample_shape"])
        G, _ = build_models(cfg.model, shape)
        G.load_state_dict(state["G_ema"] if ema and "G_ema" in state else state["G"])
    except (ConfigError, KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"the checkpoint at {path} does not match its own config "
            f"({describe_state_dict_error(e)}); it may come from another ganforge version"
        ) from None
    return G.to(device).eval(), cfg, shape


def generate(G: nn.Module, z_dim: int, n: int, seed: int = 0, batch_size: int = 256,
             device: str | torch.device = "cpu", num_classes: int = 0) -> torch.Tensor:
    """``n`` samples (float, [-1, 1] for images) from noise drawn on the CPU with ``seed``:
    the same seed gives the same samples on every device and for every batch size.
    Conditional generators get balanced labels (:func:`class_labels`)."""
    return render(G, truncated_noise(n, z_dim, seed), device, batch_size,
                  y=class_labels(n, num_classes))


def class_labels(n: int, num_classes: int, class_index: int | None = None
                 ) -> torch.Tensor | None:
    """Labels for ``n`` samples of a conditional generator: all ``class_index`` when given, else
    ``0, 1, ..., K-1, 0, 1, ...`` (every class equally often, as in the test splits of MNIST-like
    data). ``None`` for unconditional generators (``num_classes == 0``)."""
    if not num_classes:
        return None
    if class_index is not None:
        return torch.full((n,), class_index, dtype=torch.long)
    return torch.arange(n) % num_classes


def num_classes_of(cfg: Config) -> int:
    return cfg.model.num_classes if cfg.model.conditional else 0


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
           device: str = "cpu", overwrite: bool = False, truncation: float | None = None,
           interpolate: bool = False, seeds: list[int] | None = None, steps: int = 10,
           mode: str = "slerp", walk: bool = False, frames: int = 48,
           class_index: int | None = None, ema: bool = True) -> Path:
    """Library entry point behind ``ganforge sample``: plain samples (optionally truncated), an
    interpolation strip per pair of ``seeds`` (``interpolate``), or a looping latent walk (``walk``)."""
    if n <= 0:
        raise GanforgeError(f"--n must be a positive number of samples, got {n}")
    G, cfg, shape = load_generator(path, device, ema=ema)
    classes = num_classes_of(cfg)
    if class_index is not None and not classes:
        raise GanforgeError(f"--class needs a class-conditional model; {path} was trained "
                            f"unconditionally (train with model.conditional=true)")
    if class_index is not None and not 0 <= class_index < classes:
        raise GanforgeError(f"--class {class_index} is out of range: the model knows classes "
                            f"0..{classes - 1}")
    out_path = Path(out)
    if (interpolate or walk) and len(shape) != 3:
        raise GanforgeError("--interpolate and --walk are for image generators")
    if out_path.exists() and not overwrite and (interpolate or walk):
        raise GanforgeError(f"{out_path} already exists; choose another --out or pass --overwrite")
    if walk:
        z = walk_noise(cfg.model.z_dim, seed, frames, truncation=truncation)
        y = strip_labels(len(z), len(z), classes, class_index)  # one class along the walk
        return write_animation(render(G, z, device, y=y), out_path)
    if interpolate:
        seeds = seeds or [seed, seed + 1, seed + 2, seed + 3]
        z = interpolation_noise(cfg.model.z_dim, seeds, steps, mode, truncation)
        images = render(G, z, device, y=strip_labels(len(z), steps, classes, class_index))
        if out_path.suffix.lower() == ".png":
            out_path.parent.mkdir(parents=True, exist_ok=True)
            return save_grid(to_uint8(images), out_path, len(seeds) - 1, steps)
        return write_samples(images, out_path, overwrite)
    z = truncated_noise(n, cfg.model.z_dim, seed, truncation)
    y = class_labels(n, classes, class_index)
    return write_samples(render(G, z, device, y=y), out, overwrite)


# ----------------------------------------------------------------------------- latent space tools


def truncated_noise(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """z ~ N(0, I), or with ``truncation`` t > 0 the truncation trick (Brock et al. 2019): every
    entry with |z| > t is redrawn until it falls inside, trading diversity for fidelity."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    if truncation is not None:
        if truncation <= 0:
            raise GanforgeError(f"--truncation must be > 0, got {truncation}")
        for _ in range(1000):
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` (falls back to linear when parallel)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    t = t.reshape(-1, 1)
    lin = (1 - t) * a + t * b
    sph = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return torch.where(so.abs() < 1e-6, lin, sph)


def interpolation_noise(z_dim: int, seeds: list[int], steps: int, mode: str = "slerp",
                        truncation: float | None = None) -> torch.Tensor:
    """Noise for ``len(seeds) - 1`` strips of ``steps`` images each, from each seed's z to the next."""
    if len(seeds) < 2:
        raise GanforgeError("--interpolate needs at least two seeds, e.g. --seeds 0,1,2")
    if steps < 2:
        raise GanforgeError(f"--steps must be >= 2, got {steps}")
    if mode not in ("slerp", "linear"):
        raise GanforgeError(f"--mode must be slerp or linear, got {mode!r}")
    keys = torch.cat([truncated_noise(1, z_dim, s, truncation) for s in seeds])
    t = torch.linspace(0, 1, steps)
    rows = []
    for a, b in zip(keys[:-1], keys[1:]):
        A, B = a.expand(steps, -1), b.expand(steps, -1)
        rows.append(slerp(A, B, t) if mode == "slerp" else (1 - t[:, None]) * A + t[:, None] * B)
    return torch.cat(rows)


def walk_noise(z_dim: int, seed: int, frames: int, keypoints: int = 4,
               truncation: float | None = None) -> torch.Tensor:
    """A closed loop through ``keypoints`` random latents, ``frames`` frames in all (slerp)."""
    keys = truncated_noise(keypoints, z_dim, seed, truncation)
    per = max(2, frames // keypoints)
    t = torch.arange(per) / per  # the end point is the next segment's start
    out = [slerp(keys[i].expand(per, -1), keys[(i + 1) % keypoints].expand(per, -1), t)
           for i in range(keypoints)]
    return torch.cat(out)[:frames]


def strip_labels(n: int, steps: int, num_classes: int, class_index: int | None = None
                 ) -> torch.Tensor | None:
    """Labels for ``n`` images laid out in strips of ``steps`` (interpolations, walks) from a
    conditional G: all ``class_index`` when given, else strip ``r`` holds class ``r mod K`` so
    only z changes along a strip. ``None`` for unconditional generators."""
    if not num_classes:
        return None
    if class_index is not None:
        return torch.full((n,), class_index, dtype=torch.long)
    return (torch.arange(n) // steps) % num_classes


@torch.no_grad()
def render(G: nn.Module, z: torch.Tensor, device: str | torch.device = "cpu",
           batch_size: int = 256, y: torch.Tensor | None = None) -> torch.Tensor:
    """G's outputs for the rows of ``z`` (and labels ``y`` for conditional G), in batches, on
    ``device``; returned as float on the CPU."""
    G.eval()
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i:i + batch_size].to(device)
        out.append((G(zb) if y is None else G(zb, y[i:i + batch_size].to(device))).float().cpu())
    return torch.cat(out)


def write_animation(frames: torch.Tensor, out: str | os.PathLike, fps: int = 12,
                    scale: int = 0) -> Path:
    """Float frames in [-1, 1] (N, C, H, W) -> an animated GIF or WebP (by extension), looping."""
    out = Path(out)
    if out.suffix.lower() not in (".gif", ".webp"):
        raise GanforgeError(f"--walk writes a .gif or .webp, not {out.name}")
    imgs = to_uint8(frames).permute(0, 2, 3, 1).numpy()
    scale = scale or max(1, 192 // imgs.shape[1])
    pil = []
    for a in imgs:
        im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        pil.append(im.resize((im.width * scale, im.height * scale), Image.NEAREST))
    out.parent.mkdir(parents=True, exist_ok=True)
    pil[0].save(out, save_all=True, append_images=pil[1:], duration=int(1000 / fps), loop=0)
    return out
