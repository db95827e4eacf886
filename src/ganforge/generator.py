"""A trained generator: loaded from a checkpoint or an export, fed noise and labels, rendered.

Everything that draws samples goes through here: ``sample``, ``evaluate``, ``report``,
evaluation during training and the benchmarks. Noise is drawn on the CPU from a seed, so the
same seed gives the same samples on every device and for every batch size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .config import Config, ConfigError
from .errors import CheckpointError, GanforgeError, describe_state_dict_error
from .io import load_checkpoint
from .models import build_models, class_count
from .report.plots import to_uint8

EXPORT_FORMAT = "ganforge-generator-v1"


class LoadedGenerator(NamedTuple):
    G: nn.Module  # in eval mode, on the requested device
    cfg: Config
    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for points
    num_classes: int  # classes it is conditioned on; 0 = unconditional


def resolved_classes(state: dict, cfg: Config) -> int:
    """The classes a saved generator was built with: the run's resolved record, or (files
    written before it existed) the config's ``model.num_classes``."""
    resolved = state.get("resolved") or {}
    return int(resolved["num_classes"]) if "num_classes" in resolved else class_count(cfg.model)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   ema: bool = True) -> LoadedGenerator:
    """Rebuild G from a run directory, a checkpoint or a ``.safetensors`` export. Runs that keep
    an EMA of G give ``G_ema`` unless ``ema=False``."""
    if str(path).endswith(".safetensors"):
        return load_exported(path, device)
    return generator_from_state(load_checkpoint(path, map_location=device), path, device, ema)


def generator_from_state(state: dict, path: str | os.PathLike, device: str | torch.device = "cpu",
                         ema: bool = True) -> LoadedGenerator:
    """G from a loaded checkpoint ``state`` (read from ``path``, named in errors)."""
    try:
        cfg = Config.from_dict(state["config"])
        shape = tuple(int(s) for s in state["sample_shape"])
        classes = resolved_classes(state, cfg)
        G, _ = build_models(cfg.model, shape, classes)
        G.load_state_dict(state["G_ema"] if ema and "G_ema" in state else state["G"])
    except (ConfigError, KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"the checkpoint at {path} does not match its own config "
            f"({describe_state_dict_error(e)}); it may come from another ganforge version"
        ) from None
    return LoadedGenerator(G.to(device).eval(), cfg, shape, classes)


def discriminator_from_state(state: dict, path: str | os.PathLike,
                             device: str | torch.device = "cpu") -> nn.Module:
    """D from a loaded checkpoint ``state``, in eval mode."""
    try:
        cfg = Config.from_dict(state["config"])
        shape = tuple(int(s) for s in state["sample_shape"])
        _, D = build_models(cfg.model, shape, resolved_classes(state, cfg))
        D.load_state_dict(state["D"])
    except (ConfigError, KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"the discriminator in {path} does not match its config "
                              f"({describe_state_dict_error(e)})") from None
    return D.to(device).eval()


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu"
                       ) -> nn.Module | None:
    """D of a run directory or checkpoint, in eval mode; ``None`` for an export (G only)."""
    if str(path).endswith(".safetensors"):
        return None
    return discriminator_from_state(load_checkpoint(path, map_location=device), path, device)


class Export(NamedTuple):
    cfg: Config
    sample_shape: tuple[int, ...]
    num_classes: int
    tensors: dict[str, torch.Tensor]  # G's state dict (G_ema's weights when the run kept one)


def read_export(path: str | os.PathLike) -> Export:
    """An export's config and tensors (``G.safetensors`` + ``G.json``); no pickle at any point."""
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
        return Export(cfg, shape, resolved_classes(meta, cfg), load_file(str(path), device="cpu"))
    except (ValueError, KeyError, ConfigError, SafetensorError, OSError, TypeError,
            AttributeError) as e:
        raise CheckpointError(f"{path} is not a usable ganforge export "
                              f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def load_exported(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild G from an export (``G.safetensors`` + ``G.json``); no pickle at any point."""
    cfg, shape, classes, tensors = read_export(path)
    try:
        G, _ = build_models(cfg.model, shape, classes)
        G.load_state_dict(tensors)
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path} is not a usable ganforge export "
                              f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return LoadedGenerator(G.to(device).eval(), cfg, shape, classes)


# ----------------------------------------------------------------------------- noise and labels


def truncated_noise(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """z ~ N(0, I) drawn on the CPU from ``seed``, or with ``truncation`` t > 0 the truncation
    trick (Brock et al. 2019): every entry with |z| > t is redrawn until it falls inside."""
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


def strip_labels(n: int, steps: int, num_classes: int, class_index: int | None = None
                 ) -> torch.Tensor | None:
    """Labels for ``n`` images laid out in strips of ``steps`` (interpolations, walks) from a
    conditional G: all ``class_index`` when given, else strip ``r`` holds class ``r mod K`` so
    only z changes along a strip. ``None`` for unconditional generators."""
    if not num_classes or class_index is not None:
        return class_labels(n, num_classes, class_index)
    return (torch.arange(n) // steps) % num_classes


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


# ----------------------------------------------------------------------------- rendering


@torch.no_grad()
def render(G: nn.Module, z: torch.Tensor, device: str | torch.device = "cpu",
           batch_size: int = 256, y: torch.Tensor | None = None) -> torch.Tensor:
    """G's outputs for the rows of ``z`` (and labels ``y`` for a conditional G), in eval mode
    (BatchNorm uses its running statistics, so a sample depends on its own noise only), in
    batches on ``device``; float on the CPU ([-1, 1] NCHW for images). G's mode is restored."""
    was_training = G.training
    G.eval()
    try:
        out = []
        for i in range(0, len(z), batch_size):
            zb = z[i:i + batch_size].to(device)
            yb = None if y is None else y[i:i + batch_size].to(device)
            out.append((G(zb) if yb is None else G(zb, yb)).float().cpu())
        return torch.cat(out)
    finally:
        G.train(was_training)


def generate(G: nn.Module, z_dim: int, n: int, seed: int = 0, batch_size: int = 256,
             device: str | torch.device = "cpu", num_classes: int = 0) -> torch.Tensor:
    """``n`` samples (float, [-1, 1] for images) from seeded noise; conditional generators get
    balanced labels (:func:`class_labels`)."""
    return render(G, truncated_noise(n, z_dim, seed), device, batch_size,
                  y=class_labels(n, num_classes))


def generate_uint8(G: nn.Module, z_dim: int, n: int, seed: int, device: str | torch.device,
                   batch_size: int = 250, num_classes: int = 0) -> torch.Tensor:
    """``n`` samples as uint8 NCHW images, what the metrics take. The noise is drawn batch by
    batch from one seeded generator (the evaluation protocol's stream, which every published
    number of ``ganforge evaluate`` used), labels as :func:`class_labels`."""
    gen = torch.Generator().manual_seed(seed)
    labels = class_labels(n, num_classes)
    out = []
    for i in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - i), z_dim, generator=gen)
        y = None if labels is None else labels[i:i + len(z)]
        out.append(to_uint8(render(G, z, device, batch_size, y)))
    return torch.cat(out)
