"""Sample grids (exact pixels, written with PIL) and matplotlib figures (Agg, no display)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..io.atomic import atomic_write


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float NCHW in [-1, 1] -> uint8 NCHW in [0, 255] (round to nearest, clamp)."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()


def make_grid(images: torch.Tensor, rows: int, cols: int, pad: int = 2,
              pad_value: int = 255) -> np.ndarray:
    """uint8 NCHW -> one uint8 HWC image of ``rows x cols`` tiles (missing tiles stay blank)."""
    n, c, h, w = images.shape
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(min(n, rows * cols)):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    return grid


def grid_image(images: torch.Tensor, rows: int, cols: int, scale: int = 0) -> Image.Image:
    """uint8 NCHW images -> a PIL grid; small images are enlarged (nearest) to be seen."""
    grid = make_grid(images, rows, cols)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale == 0:
        scale = max(1, 256 // max(images.shape[-1], 1) // 2)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_grid(images: torch.Tensor, path: str | os.PathLike, rows: int, cols: int,
              scale: int = 0) -> Path:
    """Write uint8 NCHW images as a PNG grid."""
    img = grid_image(images, rows, cols, scale)
    return atomic_write(path, lambda f: img.save(f, format="PNG"))


def save_pairs(left: torch.Tensor, right: torch.Tensor, path: str | os.PathLike,
               pairs_per_row: int = 4) -> Path:
    """Write each uint8 NCHW ``left[i]`` beside ``right[i]``, ``pairs_per_row`` pairs a row
    with a white gap between pairs."""
    n, c, h, w = left.shape
    gap = torch.full((c, h, max(2, w // 4)), 255, dtype=torch.uint8)
    pairs = [torch.cat([left[i], right[i]], dim=-1) for i in range(n)]
    rows = []
    for r in range(0, n, pairs_per_row):
        tiles = [t for p in pairs[r:r + pairs_per_row] for t in (p, gap)][:-1]
        rows.append(torch.cat(tiles, dim=-1))
    width = rows[0].shape[-1]
    rows = [torch.cat([r, torch.full((c, h, width - r.shape[-1]), 255, dtype=torch.uint8)], -1)
            for r in rows]
    return save_grid(torch.stack(rows), path, rows=len(rows), cols=1)


def _pyplot():
    # Deferred: matplotlib takes ~0.5 s to import and must get the headless Agg backend first.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # after the backend is set

    return plt


def loss_curve(records: Sequence[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Per-epoch loss_D and loss_G, like the seeds' animator (D and G on one axis), as a PNG."""
    plt = _pyplot()
    fig = loss_figure(records, title)
    path = atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def loss_figure(records: Sequence[dict], title: str = ""):
    """The loss curves' matplotlib figure (the caller saves and closes it)."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["loss_D"] for r in records], marker="o", ms=3, label="discriminator")
    ax.plot(epochs, [r["loss_G"] for r in records], marker="o", ms=3, label="generator")
    # D's regularisers, each under its own name (unweighted; dashed)
    for key in sorted({k for r in records for k in r if k.startswith("loss_D_")}):
        ax.plot(epochs, [r.get(key) if r.get(key) is not None else float("nan") for r in records],
                ls="--", marker=".", ms=3, label=f"D: {key[7:]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if epochs:
        ax.set_xlim(min(epochs) - 0.5, max(max(epochs), 2) + 0.5)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def texts_outside(fig) -> list[str]:
    """What of a figure a viewer would see cut: the texts (titles, axis labels, legends) that
    reach outside it, and "tick labels" when the drawn ticks' labels do (the figure's tight box,
    which counts only what is drawn, is larger than the figure)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def outside(e) -> bool:
        return (e.x0 < box.x0 - 0.5 or e.y0 < box.y0 - 0.5 or e.x1 > box.x1 + 0.5
                or e.y1 > box.y1 + 0.5)

    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
    out = [t.get_text() for t in texts
           if t.get_visible() and t.get_text().strip() and outside(t.get_window_extent(renderer))]
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    if not out and outside(tight):
        out.append("tick labels")
    return out


def scatter_2d(real: np.ndarray, fake: np.ndarray, path: str | os.PathLike,
               title: str = "") -> Path:
    """Real vs generated 2-D points, as in the d2l basic-GAN animator."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(real[:, 0], real[:, 1], s=10, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=10, label="generated")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path
