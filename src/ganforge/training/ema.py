"""G_ema: an exponential moving average of the generator's weights (Karras et al. 2018).

Sampling from the averaged weights removes most of the step-to-step jitter of adversarial
training; StyleGAN, BigGAN and most modern GANs report their FIDs with it. The decay is set by a
half-life in images (``train.ema_kimg``, thousands of images), so it does not depend on the batch
size, and a ramp-up (``train.ema_rampup``) keeps the half-life below a share of the images seen so
far, so the average does not drag the random initial weights along early in training.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch_size: int, half_life_images: float, images_seen: int,
             rampup: float = 0.0) -> float:
    """Decay per step: the old average keeps ``0.5 ** (batch / half_life)`` of its weight."""
    half_life = half_life_images
    if rampup > 0:
        half_life = min(half_life, images_seen * rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (batch_size / half_life)


class EMA:
    """Holds ``G_ema`` (a frozen copy of G in eval mode) and updates it after each G step.

    Parameters are averaged; buffers (BatchNorm running statistics, spectral-norm vectors) are
    copied from G, as StyleGAN2-ADA does.
    """

    def __init__(self, G: nn.Module, half_life_kimg: float, rampup: float = 0.0) -> None:
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.half_life_images = half_life_kimg * 1000
        self.rampup = rampup

    @torch.no_grad()
    def update(self, G: nn.Module, batch_size: int, images_seen: int) -> None:
        beta = ema_beta(batch_size, self.half_life_images, images_seen, self.rampup)
        ema_p = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in G.parameters()], 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
