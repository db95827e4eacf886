"""The d2l basic GAN: a linear generator and a small tanh MLP discriminator for 2-D points."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .registry import Architecture, register


class ToyGenerator(nn.Module):
    """G = Linear(z_dim, data_dim): z ~ N(0, I) mapped affinely, so G(z) is exactly Gaussian."""

    def __init__(self, z_dim: int = 2, data_dim: int = 2) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Linear(z_dim, data_dim)

    latent_space = "z"

    def sefa_weight(self) -> torch.Tensor:
        """The (only) layer's weight (data_dim, z_dim)."""
        return self.net.weight

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """D = data_dim -> 5 (tanh) -> 3 (tanh) -> 1 logit; output (N, 1). ``hidden`` changes the
    two hidden widths (the seed's are 5 and 3)."""

    def __init__(self, data_dim: int = 2, hidden: tuple[int, int] = (5, 3)) -> None:
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            nn.Linear(data_dim, h1), nn.Tanh(), nn.Linear(h1, h2), nn.Tanh(), nn.Linear(h2, 1)
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    hidden = (cfg.d_hidden, cfg.d_hidden) if cfg.d_hidden else (5, 3)
    return ToyGenerator(cfg.z_dim, shape[0]), ToyDiscriminator(shape[0], hidden)


register(Architecture("toy", "d2l's linear G and small MLP D for 2-D points", _build,
                      data="points", keys=("d_hidden",)))
