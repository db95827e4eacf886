"""``ganforge sample``: seeded samples, interpolation strips and latent walks, written to files.

The latent-space tools themselves (truncation, slerp, interpolation and walk noise) live in
:mod:`ganforge.generator`; they are importable from here too."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import real_points
from .errors import GanforgeError, require_range
from .io import atomic_write
from .io.lock import lock_for_output
from .models import architecture
from .runtime import available_memory
from .generator import (class_labels, interpolation_noise, load_generator, render, slerp,
                        strip_labels, truncated_noise, walk_noise)
from .report.plots import save_grid, scatter_2d, to_uint8

MAX_SAMPLES = 1_000_000  # one call; larger sets are written by several calls with other seeds
MAX_GRID = 4096  # images in one grid PNG (64 x 64 of them)
MAX_SEED = 2 ** 63 - 1

__all__ = ["interpolation_noise", "sample", "slerp", "truncated_noise", "walk_noise",
           "write_animation", "write_samples"]


def write_samples(samples: torch.Tensor, out: str | os.PathLike, overwrite: bool = False,
                  real: torch.Tensor | None = None) -> Path:
    """Write by the path's form: ``*.png`` a grid (a scatter for 2-D points, over the ``real``
    points when given), ``*.npy`` an array (uint8 (N, H, W, C) for images, float32 (N, D) for
    points), anything else a folder of PNGs."""
    out = Path(out)
    is_image = samples.dim() == 4
    suffix = out.suffix.lower()
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise GanforgeError(f"{out} already exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        arr = (to_uint8(samples).permute(0, 2, 3, 1).numpy() if is_image
               else samples.numpy().astype(np.float32))
        atomic_write(out, lambda f: np.save(f, arr))
    elif suffix == ".png":
        if is_image:
            cols = math.ceil(math.sqrt(len(samples)))
            save_grid(to_uint8(samples), out, math.ceil(len(samples) / cols), cols)
        else:
            scatter_2d(samples[:0].numpy() if real is None else real.numpy(), samples.numpy(), out)
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
            im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
            atomic_write(out / f"{i:0{width}d}.png", lambda f, im=im: im.save(f, format="PNG"))
    return out


def sample(path: str | os.PathLike, n: int, out: str | os.PathLike, seed: int = 0,
           device: str = "cpu", overwrite: bool = False, truncation: float | None = None,
           interpolate: bool = False, seeds: list[int] | None = None, steps: int = 10,
           mode: str = "slerp", walk: bool = False, frames: int = 48,
           class_index: int | None = None, ema: bool = True) -> Path:
    """Library entry point behind ``ganforge sample``: plain samples (optionally truncated), an
    interpolation strip per pair of ``seeds`` (``interpolate``), or a looping latent walk (``walk``)."""
    require_range("--n", n, 1, MAX_SAMPLES, "a positive number of samples")
    require_range("--seed", seed, 0, MAX_SEED)
    require_range("--steps", steps, 2, 1000, "images per interpolation strip")
    require_range("--frames", frames, 2, 10_000, "frames of the latent walk")
    if truncation is not None and not math.isfinite(truncation):
        raise GanforgeError(f"--truncation must be a finite number, got {truncation}")
    G, cfg, shape, classes = load_generator(path, device, ema=ema)
    if class_index is not None and not classes:
        raise GanforgeError(f"--class needs a class-conditional model; {path} was trained "
                            f"unconditionally (train with model.conditional=true)")
    if class_index is not None and not 0 <= class_index < classes:
        raise GanforgeError(f"--class {class_index} is out of range: the model knows classes "
                            f"0..{classes - 1}")
    if truncation is not None and architecture(cfg.model.arch).latent_space == "w":
        # a style-based G truncates in w-space: w = w_avg + psi (w - w_avg); z stays untouched
        if not 0 <= truncation <= 1:
            raise GanforgeError(f"--truncation is psi in [0, 1] for a style-based generator "
                                f"(1 = none), got {truncation}")
        G.truncation_psi, truncation = truncation, None
    out_path = Path(out)
    with lock_for_output(out_path):  # the run it writes into, if any, has one writer at a time
        return _write(G, cfg, shape, classes, out_path, n, seed, device, overwrite, truncation,
                      interpolate, seeds, steps, mode, walk, frames, class_index)


def _write(G, cfg, shape, classes, out_path: Path, n: int, seed: int, device: str,
           overwrite: bool, truncation: float | None, interpolate: bool, seeds: list[int] | None,
           steps: int, mode: str, walk: bool, frames: int, class_index: int | None) -> Path:
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
    need = n * cfg.model.z_dim * 4  # the noise is drawn whole (one seeded stream); images stream
    avail = available_memory()
    if avail is not None and need > avail // 2:
        raise GanforgeError(f"--n {n} needs {need / 2**30:.1f} GiB for its noise alone and "
                            f"{avail / 2**30:.1f} GiB of memory are available: lower --n, or "
                            "sample in parts with different --seed values")
    suffix = out_path.suffix.lower()
    if len(shape) == 3 and suffix == ".png" and n > MAX_GRID:
        raise GanforgeError(f"a grid of {n} images would be a PNG of about "
                            f"{math.ceil(math.sqrt(n)) * shape[-1]} pixels a side; a grid holds at "
                            f"most {MAX_GRID}: write a .npy or a folder of PNGs instead")
    z = truncated_noise(n, cfg.model.z_dim, seed, truncation)
    y = class_labels(n, classes, class_index)
    if len(shape) == 3 and suffix in (".npy", ""):
        return _stream_images(G, z, y, device, out_path, tuple(shape), overwrite)
    samples = render(G, z, device, y=y)
    real = real_points(cfg.data, len(samples)) if samples.dim() == 2 else None
    return write_samples(samples, out_path, overwrite, real)


def _stream_images(G, z: torch.Tensor, y: torch.Tensor | None, device: str, out: Path,
                   shape: tuple[int, ...], overwrite: bool, chunk: int = 256) -> Path:
    """Samples rendered ``chunk`` at a time straight into a ``.npy`` (uint8 N,H,W,C) or a folder
    of PNGs: memory is bounded by the chunk, not by the number of samples."""
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise GanforgeError(f"{out} already exists; choose another --out or pass --overwrite")

    def chunks():
        for i in range(0, len(z), chunk):
            yb = None if y is None else y[i:i + chunk]
            yield i, to_uint8(render(G, z[i:i + chunk], device, y=yb)).permute(0, 2, 3, 1).numpy()

    if out.suffix.lower() == ".npy":
        c, h, w = shape

        def write(f):
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                     "shape": (len(z), h, w, c)})
            for _, arr in chunks():
                f.write(np.ascontiguousarray(arr).tobytes())
        return atomic_write(out, write)
    out.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(len(z) - 1)))
    for start, arr in chunks():
        for k, a in enumerate(arr):
            im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
            atomic_write(out / f"{start + k:0{width}d}.png", lambda f, im=im: im.save(f, format="PNG"))
    return out


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
    fmt = "GIF" if out.suffix.lower() == ".gif" else "WEBP"
    return atomic_write(out, lambda f: pil[0].save(f, format=fmt, save_all=True,
                                                   append_images=pil[1:],
                                                   duration=int(1000 / fps), loop=0))
