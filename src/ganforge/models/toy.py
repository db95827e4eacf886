"""The d2l basic GAN: a linear generator and a small tanh MLP discriminator for 2-D points."""

from __future__ import annotations

import torch
from torch import nn


class ToyGenerator(nn.Module):
    """G = Linear(z_dim, data_dim): z ~ N(0, I) mapped affinely, so G(z) is exactly Gaussian."""

    def __init__(self, z_dim: int = 2, data_dim: int = 2) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Linear(z_dim, data_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """D = data_dim -> 5 (tanh) -> 3 (tanh) -> 1 logit; output (N, 1)."""

    def __init__(self, data_dim: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(data_dim, 5), nn.Tanh(), nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
