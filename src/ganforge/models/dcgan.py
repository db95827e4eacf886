"""The d2l DCGAN, generalised from 64x64 to any power-of-two resolution >= 8, optionally
class-conditional.

At 64x64 with n_G = n_D = 64 and latent 100 the layers are exactly d2l's; at 32x32 (MNIST-like data
padded from 28x28) the same family drops one block from each network. With ``num_classes > 0`` the
generator's BatchNorms become class-conditional and the discriminator gains a projection term
(Miyato & Koyama 2018): ``logit = psi(phi(x)) + <embed(y), phi(x)>`` with ``phi`` its last
feature map summed over space.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .blocks import D_block, G_block, output_activation
from .registry import Architecture, register, square_image


def _check_resolution(resolution: int) -> int:
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {resolution}")
    return resolution.bit_length() - 1  # log2


def _check_labels(y: torch.Tensor | None, num_classes: int) -> None:
    if num_classes and y is None:
        raise ValueError(f"this model is class-conditional ({num_classes} classes): pass labels y")


class DCGANGenerator(nn.Module):
    """z (N, z_dim) or (N, z_dim, 1, 1) [+ labels y (N,) int64] -> image (N, C, R, R) in [-1, 1]
    (``output``: tanh as in d2l, or hardtanh -- see :func:`output_activation`)."""

    def __init__(self, z_dim: int = 100, img_channels: int = 3, img_resolution: int = 64,
                 width: int = 64, num_classes: int = 0, output: str = "tanh") -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        n_up = _check_resolution(img_resolution) - 3  # 4x4 -> R/2 in stride-2 blocks
        ch = width * 2 ** n_up  # 64x64: 64 * 8 channels at 4x4, as in d2l
        layers: list[nn.Module] = [G_block(ch, in_channels=z_dim, strides=1, padding=0,
                                           num_classes=num_classes)]
        for _ in range(n_up):
            layers.append(G_block(ch // 2, in_channels=ch, num_classes=num_classes))
            ch //= 2
        layers += [
            nn.ConvTranspose2d(ch, img_channels, kernel_size=4, stride=2, padding=1, bias=False),
            output_activation(output),
        ]
        self.net = nn.Sequential(*layers)

    latent_space = "z"  # truncation and editing act on z

    def sefa_weight(self) -> torch.Tensor:
        """The first layer as a matrix from z (out, z_dim): one row per output channel and
        pixel of the 4x4 transposed convolution, what closed-form factorisation decomposes."""
        w = self.net[0].conv2d_trans.weight  # (z_dim, C, 4, 4)
        return w.reshape(w.shape[0], -1).T

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z.view(z.shape[0], -1, 1, 1)
        if not self.num_classes:
            return self.net(h)
        _check_labels(y, self.num_classes)
        for layer in self.net:
            h = layer(h, y) if isinstance(layer, G_block) else layer(h)
        return h


class DCGANDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels y (N,) int64] -> logits (N, 1)."""

    def __init__(self, img_channels: int = 3, img_resolution: int = 64, width: int = 64,
                 alpha: float = 0.2, act: str = "leaky_relu", norm: str = "batch",
                 num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        n_down = _check_resolution(img_resolution) - 2  # R -> 4x4
        layers: list[nn.Module] = [D_block(width, in_channels=img_channels, alpha=alpha, act=act,
                                           norm=norm)]
        ch = width
        for _ in range(n_down - 1):
            layers.append(D_block(ch * 2, in_channels=ch, alpha=alpha, act=act, norm=norm))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, kernel_size=4, bias=False))
        self.net = nn.Sequential(*layers)
        self.embed = nn.Embedding(num_classes, ch) if num_classes else None

    def input_blocks(self) -> list[nn.Module]:
        """Its blocks from the input side (what ``train.freeze_d`` counts): each strided
        convolution with its normalisation and activation; the 4x4 head is not one."""
        return list(self.net)[:-1]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.net(x).flatten(1)
        _check_labels(y, self.num_classes)
        features = self.net[:-1](x)
        logits = self.net[-1](features).flatten(1)
        projection = (self.embed(y) * features.sum((2, 3))).sum(1)
        return logits + projection.view(-1, 1)


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = square_image("DCGAN", shape, classes, cfg.conditional)
    return (DCGANGenerator(cfg.z_dim, c, h, cfg.g_width, num_classes=classes, output=cfg.g_output),
            DCGANDiscriminator(c, h, cfg.d_width, cfg.leaky_slope, cfg.d_activation,
                               norm=cfg.d_norm, num_classes=classes))


register(Architecture(
    "dcgan", "the DCGAN family (d2l's at 64x64), conditional BatchNorm and a projection D "
    "when conditional", _build, data="images", resolutions=(8, 0), conditional=True,
    keys=("g_width", "d_width", "leaky_slope", "d_activation", "d_norm", "g_output"),
    d_mixes_batch=lambda cfg: cfg.d_norm == "batch"))
