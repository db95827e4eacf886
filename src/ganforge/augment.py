"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random transformations are applied to every input of D -- real images in D's step, fake
images in D's and G's steps -- so D never sees an augmented real next to a clean fake, and the
generator still receives gradients through them (every operation is differentiable). Each sample of
a batch draws its own parameters, on the batch's device, from torch's global generator (whose
state checkpoints save, so a resumed run draws the same augmentations).

Turn it on for small datasets (a few thousand images, like the Pokemon sprites), where D otherwise
memorises the training set within a few epochs and G's quality degrades: ``train.augment=
translation,cutout,color``. On 60,000-image datasets it is rarely needed.

Images are NCHW floats in [-1, 1]; outputs keep shape, device and dtype.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(len(x), *shape, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel mean)
    and contrast (x U(0.5, 1.5) around the image mean), per sample."""
    x = x + (_rand(x, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, up to ``ratio`` of its size in each
    direction, filling the uncovered border with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :] + sh - dy  # (N, H) rows of the padded image
    cols = torch.arange(w, device=x.device)[None, :] + sw - dx
    padded = F.pad(x, (sw, sw, sh, sh))
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side ``ratio`` x the image size at a random place in each image (it may
    reach over the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None] - (cy - ch // 2)  # row inside the hole
    gx = torch.arange(w, device=x.device)[None, None, :] - (cx - cw // 2)
    inside = (gy >= 0) & (gy < ch) & (gx >= 0) & (gx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout,
}


def parse_policy(policy: str) -> list[str]:
    """``"translation,cutout,color"`` -> the ops in DiffAugment's order (color, translation,
    cutout); a clear ValueError for an unknown name."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    for name in names:
        if name not in OPS:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(OPS)}")
    return [op for op in OPS if op in names]


def diff_augment(x: torch.Tensor, policy: str | list[str]) -> torch.Tensor:
    """Apply ``policy`` (names or a comma-separated string) to the batch ``x``."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    for name in names:
        x = OPS[name](x)
    return x
