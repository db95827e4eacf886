"""Building blocks shared by the models, and weight initialisation schemes."""

from __future__ import annotations

import torch
from torch import nn


def activation(name: str, slope: float = 0.2, inplace: bool = False) -> nn.Module:
    """``leaky_relu`` (with ``slope``) or ``relu`` -- the d2l exercise swaps one for the other."""
    if name == "leaky_relu":
        return nn.LeakyReLU(slope, inplace=inplace)
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    raise ValueError(f"unknown activation {name!r}; use leaky_relu or relu")


class G_block(nn.Module):
    """d2l's generator block: ConvTranspose2d (no bias) -> BatchNorm2d -> ReLU.

    With the defaults (k4, s2, p1) it doubles height and width; with ``strides=1, padding=0`` it
    turns a 1x1 input into 4x4.
    """

    def __init__(self, out_channels: int, in_channels: int = 3, kernel_size: int = 4,
                 strides: int = 2, padding: int = 1) -> None:
        super().__init__()
        self.conv2d_trans = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, strides,
                                               padding, bias=False)
        self.batch_norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.activation(self.batch_norm(self.conv2d_trans(X)))


class D_block(nn.Module):
    """d2l's discriminator block: Conv2d (no bias) -> BatchNorm2d -> LeakyReLU(alpha).

    With the defaults (k4, s2, p1) it halves height and width.
    """

    def __init__(self, out_channels: int, in_channels: int = 3, kernel_size: int = 4,
                 strides: int = 2, padding: int = 1, alpha: float = 0.2,
                 act: str = "leaky_relu") -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding,
                                bias=False)
        self.batch_norm = nn.BatchNorm2d(out_channels)
        self.activation = activation(act, alpha, inplace=True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.activation(self.batch_norm(self.conv2d(X)))


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str, std: float = 0.02) -> None:
    """Initialise ``module`` in place.

    * ``d2l``: every parameter (weights, biases, BatchNorm scale and shift) ~ N(0, std), exactly
      what the d2l PyTorch code does with ``for w in net.parameters(): nn.init.normal_(w, 0, 0.02)``;
    * ``dcgan``: conv/linear weights ~ N(0, std), BatchNorm scale ~ N(1, std), all shifts 0
      (Radford et al. 2015, pytorch/examples);
    * ``glorot``: Glorot-uniform weights and zero biases (Keras' defaults, the TF tutorial's);
    * ``torch``: leave PyTorch's defaults.
    """
    if scheme == "torch":
        return
    if scheme == "d2l":
        for p in module.parameters():
            nn.init.normal_(p, 0.0, std)
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, std)
            elif scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and scheme == "dcgan":
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
