"""``ganforge project`` and ``ganforge edit``: real images into a generator, latents edited out.

``project`` writes, for each image ``NAME``: ``NAME_projected.png`` (what G makes of it),
``NAME_latent.npy`` (the latent, in G's edit space: see :mod:`ganforge.editing`),
``NAME_compare.png`` (target | projection), ``NAME_progress.gif`` (the optimisation) and
``projection.json`` (PSNR, SSIM, feature distance, class, time, settings) for all of them.
``edit`` applies SeFa directions to a seed's or a projection's latent.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .data.images import DecompressionBomb, decode_image
from .editing import Editor, EditState, load_latent
from .errors import GanforgeError, require_range
from .generator import load_discriminator, load_generator
from .inversion import LOSSES, Projection, project
from .io import atomic_write
from .report.plots import grid_image, to_uint8
from .sample import write_animation

MAX_UPLOAD_PIXELS = 40_000_000  # an image to project: 40 megapixels decoded at most


def read_target(source: str | os.PathLike | bytes, shape: tuple[int, ...],
                max_pixels: int = MAX_UPLOAD_PIXELS, name: str = "") -> torch.Tensor:
    """One image file (or its bytes) as G's input would look: (1, C, R, R) float in [-1, 1],
    center-cropped to a square and resized (Lanczos) as the image folders are."""
    c, h, _ = shape
    label = name or str(source if not isinstance(source, bytes) else "the upload")
    src = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        arr = decode_image(src, h, c, max_pixels=max_pixels)
    except DecompressionBomb:
        raise GanforgeError(f"{label} is too large to project: above {max_pixels:,} pixels. "
                            "Shrink it first (the generator works at "
                            f"{h}x{h} anyway).") from None
    except UnidentifiedImageError:
        raise GanforgeError(f"{label} is not an image ganforge can read: send a PNG, JPEG, "
                            "WebP, GIF, BMP or TIFF file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise GanforgeError(f"{label} could not be decoded as an image ("
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}); send a "
                            "whole PNG, JPEG, WebP, GIF, BMP or TIFF file") from None
    return torch.from_numpy(arr.copy()).float()[None].div(127.5).sub(1)


def _stem(path: Path, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:80] or "image"
    name, i = stem, 2
    while name in used:
        name, i = f"{stem}-{i}", i + 1
    used.add(name)
    return name


def save_png(images: torch.Tensor, path: Path, cols: int | None = None, scale: int = 0) -> Path:
    u8 = to_uint8(images)
    cols = cols or len(u8)
    img = grid_image(u8, (len(u8) + cols - 1) // cols, cols, scale)
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


def save_latent(latent: torch.Tensor, path: Path) -> Path:
    arr = latent.detach().float().cpu().numpy().astype(np.float32)
    return atomic_write(path, lambda f: np.save(f, arr))


def project_images(run: str | os.PathLike, images: list[str], out: str | os.PathLike,
                   steps: int = 300, loss: str = "pixels", init: str | None = None,
                   wplus: bool = False, noise: bool = False, class_index: int | None = None,
                   device: str = "cpu", seed: int = 0, overwrite: bool = False,
                   ema: bool = True, progress: bool = True,
                   report: Callable[[str], None] = print) -> dict:
    """Library entry point behind ``ganforge project``: each image projected on its own."""
    require_range("--steps", steps, 1, 100_000)
    require_range("--seed", seed, 0, 2 ** 31 - 1)
    if loss not in LOSSES:
        raise GanforgeError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if not images:
        raise GanforgeError("name at least one image to project")
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise GanforgeError(f"{p} is not a file; name the images to project")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} is a file; give a folder for the projections")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise GanforgeError(f"{out} is not empty; choose another --out or pass --overwrite")
    loaded = load_generator(run, device, ema=ema)
    if len(loaded.sample_shape) != 3:
        raise GanforgeError(f"{run} generates points, not images: there is nothing to project")
    editor = Editor(loaded.G, loaded.num_classes, device=device)
    if class_index is not None and not loaded.num_classes:
        raise GanforgeError(f"--class needs a class-conditional model; {run} is unconditional")
    D = load_discriminator(run, device) if loss == "d" else None
    start = load_latent(init, editor) if init else None
    targets = [read_target(p, loaded.sample_shape) for p in paths]  # all refused before any work
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    rows = []
    for path, target in zip(paths, targets):
        name = _stem(path, used)
        bar = tqdm(total=steps, desc=f"projecting {path.name}", unit="step", leave=False,
                   disable=not progress)
        res = project(editor, target, steps=steps, loss=loss, D=D, wplus=wplus, noise=noise,
                      init=start, class_index=class_index, seed=seed,
                      frame_every=max(1, steps // 40),
                      progress=lambda s, n, bar=bar: bar.update(1))
        bar.close()
        row = write_projection(out, name, path.name, target, res, loaded.num_classes)
        rows.append(row)
        report(f"{path.name}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, "
               f"feature distance ({loss}) {row['feature_distance']:.4f}"
               + (f", class {row['class']}" if row.get("class") is not None else "")
               + f", {row['seconds']:.1f} s -> {out / (name + '_latent.npy')}")
    summary = {"run": str(run), "loss": loss, "steps": steps, "space": editor.space,
               "wplus": wplus, "noise": noise, "init": init, "device": device,
               "images": rows}
    atomic_write(out / "projection.json",
                 lambda f: f.write(json.dumps(summary, indent=2).encode()))
    return summary


def write_projection(out: Path, name: str, source: str, target: torch.Tensor,
                     res: Projection, num_classes: int) -> dict:
    save_png(res.images, out / f"{name}_projected.png", scale=1)
    save_latent(res.latents, out / f"{name}_latent.npy")
    save_png(torch.cat([target.cpu(), res.images]), out / f"{name}_compare.png")
    frames = torch.cat([torch.cat([target.cpu(), f[:1]], dim=3) for f in res.frames])
    write_animation(frames, out / f"{name}_progress.gif", fps=10)
    if res.noise:
        atomic_write(out / f"{name}_noise.npz", lambda f: np.savez(
            f, **{k.replace(".", "/"): v.numpy() for k, v in res.noise.items()}))
    return {"image": source, "name": name, "psnr": float(res.psnr[0]),
            "ssim": float(res.ssim[0]), "feature_distance": float(res.feature_distance[0]),
            "class": None if res.classes is None else int(res.classes[0]),
            "seconds": round(res.seconds, 2)}


def edit(run: str | os.PathLike, out: str | os.PathLike, direction: int = 0,
         strength: float = 3.0, latent: str | None = None, seed: int = 0,
         class_index: int | None = None, truncation: float | None = None, strip: int = 0,
         device: str = "cpu", overwrite: bool = False, ema: bool = True) -> dict:
    """Library entry point behind ``ganforge edit``: ``strength`` units of SeFa ``direction``
    added to a seed's latent (or a projection's, ``latent``). ``strip`` > 1 writes that many
    images from -strength to +strength instead of one. Writes ``out`` (PNG) and, beside it,
    the edited latent (``.npy``)."""
    require_range("--direction", direction, 0, 511)
    require_range("--strength", strength, -100, 100)
    require_range("--strip", strip, 0, 64)
    require_range("--seed", seed, 0, 2 ** 31 - 1)
    if truncation is not None:
        require_range("--truncation", truncation, 0, 1e6, "psi in [0, 1] for a style-based G, "
                      "a threshold > 0 in z")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise GanforgeError(f"--out {out}: edit writes a .png image")
    npy = out.with_suffix(".npy")
    for p in (out, npy):
        if p.exists() and not overwrite:
            raise GanforgeError(f"{p} already exists; choose another --out or pass --overwrite")
    loaded = load_generator(run, device, ema=ema)
    if len(loaded.sample_shape) != 3:
        raise GanforgeError(f"{run} generates points; edit works on image generators")
    editor = Editor(loaded.G, loaded.num_classes, k=max(8, direction + 1), device=device)
    state = EditState(seed=seed, class_index=class_index, truncation=truncation,
                      latent=load_latent(latent, editor) if latent else None)
    if class_index is None and loaded.num_classes:
        state.class_index = 0
    if direction >= len(editor.dirs.vectors):
        raise GanforgeError(f"--direction {direction} does not exist: this generator has "
                            f"directions 0..{len(editor.dirs.vectors) - 1}")
    values = (torch.linspace(-strength, strength, strip).tolist() if strip > 1 else [strength])
    images, latents = [], []
    for v in values:
        s = EditState(**{**state.__dict__, "strengths": {direction: v}})
        lat = editor.latent(s)
        latents.append(lat)
        images.append(editor.render(lat, editor.labels(s)))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(torch.cat(images), out)
    save_latent(torch.cat(latents), npy)
    return {"image": out, "latent": npy, "share": float(editor.dirs.shares[direction]),
            "values": values, "space": editor.space}


__all__ = ["edit", "project_images", "read_target"]
