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

import math
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


# ----------------------------------------------------------------------------- adaptive (ADA)


def xflip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (the data set's x-flips)."""
    mask = (torch.rand(len(x), 1, 1, 1, device=x.device) < p).to(x.dtype)
    return x.flip(3) * mask + x * (1 - mask)


def _bernoulli(n: int, p: torch.Tensor, device) -> torch.Tensor:
    return (torch.rand(n, device=device) < p).float()


def ada_augment(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """ADA's geometric and colour transformations (Karras et al. 2020, "Training Generative
    Adversarial Networks with Limited Data"), each applied to each image independently with
    probability ``p`` (a 0-d tensor on ``x``'s device): rotation by a multiple of 90 degrees,
    integer translation (up to 1/8 of the size), isotropic scaling (log2-normal, σ 0.2), rotation,
    anisotropic scaling, fractional translation (σ 1/8), then brightness, contrast and saturation.
    The geometric part is one affine resampling with reflected borders; everything is
    differentiable, so G receives gradients through it."""
    n, c, h, w = x.shape
    dev = x.device
    f32 = dict(device=dev, dtype=torch.float32)
    eye = torch.eye(3, **f32).repeat(n, 1, 1)

    def rot(theta):
        m = eye.clone()
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = (theta.cos(), -theta.sin(),
                                                          theta.sin(), theta.cos())
        return m

    def scale(sx, sy):
        m = eye.clone()
        m[:, 0, 0], m[:, 1, 1] = sx, sy
        return m

    def shift(tx, ty):
        m = eye.clone()
        m[:, 0, 2], m[:, 1, 2] = tx, ty
        return m

    on = lambda: _bernoulli(n, p, dev)  # noqa: E731 - one fresh mask per transformation
    k = torch.randint(0, 4, (n,), device=dev).float() * on()
    mat = rot(k * (math.pi / 2))
    t = (torch.rand(n, 2, **f32) * 2 - 1) * 0.125
    t = torch.round(t * torch.tensor([w, h], **f32)) / torch.tensor([w, h], **f32) * 2 * on()[:, None]
    mat = mat @ shift(t[:, 0], t[:, 1])
    s = torch.exp2(torch.randn(n, **f32) * 0.2 * on())
    mat = mat @ scale(s, s)
    mat = mat @ rot((torch.rand(n, **f32) * 2 - 1) * math.pi * on())
    a = torch.exp2(torch.randn(n, **f32) * 0.2 * on())
    mat = mat @ scale(a, 1 / a)
    t = torch.randn(n, 2, **f32) * 0.125 * 2 * on()[:, None]
    mat = mat @ shift(t[:, 0], t[:, 1])
    grid = F.affine_grid(mat[:, :2].to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    b = (torch.randn(n, 1, 1, 1, **f32) * 0.2 * on()[:, None, None, None]).to(x.dtype)
    x = x + b
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    cst = torch.exp2(torch.randn(n, 1, 1, 1, **f32) * 0.5 * on()[:, None, None, None]).to(x.dtype)
    x = (x - mean) * cst + mean
    if c == 3:
        luma = x.mean(dim=1, keepdim=True)
        sat = torch.exp2(torch.randn(n, 1, 1, 1, **f32) * on()[:, None, None, None]).to(x.dtype)
        x = (x - luma) * sat + luma
    return x


class AdaptiveAugment:
    """The augmentation probability p of ADA, adjusted from D's overfitting.

    After every D step the sign of D's real logits (relative to the loss's decision threshold) is
    accumulated on the device; every ``interval`` steps r_t = E[sign(D(real))] is read, and p
    moves by ``images / (kimg * 1000)`` up when r_t is above ``target`` (D is too sure of the real
    images: it is memorising them) and down when below, within [0, 1]. A folder of 1,000 images
    ends with a high p, one of 100,000 with a low one: nobody tunes augmentation to a data set.
    """

    def __init__(self, device: torch.device, target: float = 0.6, kimg: float = 100.0,
                 threshold: float = 0.0, interval: int = 4) -> None:
        self.target, self.kimg, self.threshold, self.interval = target, kimg, threshold, interval
        self.p = torch.zeros((), device=device)
        self.signs = torch.zeros(2, device=device, dtype=torch.float64)  # sum of signs, count
        self.p_value = 0.0  # p on the host, refreshed at each adjustment
        self.last_rt = float("nan")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ada_augment(x, self.p) if self.p_value > 0 else x

    def observe(self, real_logits: torch.Tensor) -> None:
        s = torch.sign(real_logits.detach().float() - self.threshold)
        self.signs += torch.stack([s.sum().double(), torch.tensor(float(s.numel()),
                                                                  device=s.device).double()])

    def adjust(self, images: int, reduce=lambda t: t) -> None:
        """Move p after ``images`` images (the interval's, over all ranks); ``reduce`` sums the
        accumulated signs over the ranks."""
        total, count = reduce(self.signs).tolist()
        self.signs.zero_()
        if not count:
            return
        self.last_rt = total / count
        step = images / (self.kimg * 1000)
        self.p.add_(step if self.last_rt > self.target else -step).clamp_(0.0, 1.0)
        self.p_value = float(self.p)

    def state_dict(self) -> dict:
        return {"p": self.p.clone(), "signs": self.signs.clone(), "last_rt": self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        self.p.copy_(state["p"])
        self.signs.copy_(state["signs"])
        self.last_rt = state["last_rt"]
        self.p_value = float(self.p)
