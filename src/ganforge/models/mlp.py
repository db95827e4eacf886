"""The TensorFlow tutorial's vanilla GAN: fully connected G and D on flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from .blocks import activation, output_activation
from .registry import Architecture, register


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> image (N, C, H, W) in [-1, 1].

    Layers as in the tutorial: Dense(100) (linear, no activation), Dense(128) + LeakyReLU,
    Dense(128) + LeakyReLU, Dense(256) + LeakyReLU, Dense(C*H*W) + tanh.
    """

    def __init__(self, z_dim: int = 100, img_shape: tuple[int, int, int] = (1, 28, 28),
                 slope: float = 0.01, output: str = "tanh") -> None:
        super().__init__()
        self.z_dim = z_dim
        self.img_shape = tuple(img_shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, 100),
            nn.Linear(100, 128), nn.LeakyReLU(slope),
            nn.Linear(128, 128), nn.LeakyReLU(slope),
            nn.Linear(128, 256), nn.LeakyReLU(slope),
            nn.Linear(256, math.prod(self.img_shape)), output_activation(output),
        )

    latent_space = "z"  # truncation and editing act on z

    def sefa_weight(self) -> torch.Tensor:
        """The first layer's weight (100, z_dim), what closed-form factorisation decomposes."""
        return self.net[0].weight

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.flatten(1)).view(-1, *self.img_shape)


class MLPDiscriminator(nn.Module):
    """image (N, C, H, W) -> logits (N, 1): Flatten, 3 x (Dense(128) + LeakyReLU), Dense(1)."""

    def __init__(self, img_shape: tuple[int, int, int] = (1, 28, 28), slope: float = 0.01,
                 act: str = "leaky_relu") -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(img_shape), 128), activation(act, slope),
            nn.Linear(128, 128), activation(act, slope),
            nn.Linear(128, 128), activation(act, slope),
            nn.Linear(128, 1),
        )

    def input_blocks(self) -> list[nn.Module]:
        """Its blocks from the input side (what ``train.freeze_d`` counts): each hidden dense
        layer with its activation; the output layer is not one."""
        return [self.net[i:i + 2] for i in (1, 3, 5)]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    return (MLPGenerator(cfg.z_dim, shape, cfg.leaky_slope, cfg.g_output),  # type: ignore[arg-type]
            MLPDiscriminator(shape, cfg.leaky_slope, cfg.d_activation))  # type: ignore[arg-type]


register(Architecture("mlp", "the TensorFlow tutorial's fully connected G and D", _build,
                      data="images", keys=("leaky_slope", "g_output", "d_activation")))
