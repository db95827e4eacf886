"""The d2l DCGAN, generalised from 64x64 to any power-of-two resolution >= 8.

At 64x64 with n_G = n_D = 64 and latent 100 the layers are exactly d2l's; at 32x32 (MNIST-like data
padded from 28x28) the same family drops one block from each network.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import D_block, G_block


def _check_resolution(resolution: int) -> int:
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {resolution}")
    return resolution.bit_length() - 1  # log2


class DCGANGenerator(nn.Module):
    """z (N, z_dim) or (N, z_dim, 1, 1) -> image (N, C, R, R) in (-1, 1)."""

    def __init__(self, z_dim: int = 100, img_channels: int = 3, img_resolution: int = 64,
                 width: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        n_up = _check_resolution(img_resolution) - 3  # 4x4 -> R/2 in stride-2 blocks
        ch = width * 2 ** n_up  # 64x64: 64 * 8 channels at 4x4, as in d2l
        layers: list[nn.Module] = [G_block(ch, in_channels=z_dim, strides=1, padding=0)]
        for _ in range(n_up):
            layers.append(G_block(ch // 2, in_channels=ch))
            ch //= 2
        layers += [
            nn.ConvTranspose2d(ch, img_channels, kernel_size=4, stride=2, padding=1, bias=False),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, C, R, R) -> logits (N, 1, 1, 1)."""

    def __init__(self, img_channels: int = 3, img_resolution: int = 64, width: int = 64,
                 alpha: float = 0.2, act: str = "leaky_relu") -> None:
        super().__init__()
        n_down = _check_resolution(img_resolution) - 2  # R -> 4x4
        layers: list[nn.Module] = [D_block(width, in_channels=img_channels, alpha=alpha, act=act)]
        ch = width
        for _ in range(n_down - 1):
            layers.append(D_block(ch * 2, in_channels=ch, alpha=alpha, act=act))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, kernel_size=4, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
