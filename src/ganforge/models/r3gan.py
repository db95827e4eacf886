"""An R3GAN-style pair (Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN!
A Modern GAN Baseline", NeurIPS 2024) in pure PyTorch: no custom ops, CPU and CUDA.

G: a generative basis (a learned 4x4 basis per channel, modulated by a linear map of z and, for a
conditional G, a class embedding), then per resolution a transition (1x1 convolution when the
width changes, low-pass upsampling with the [1, 3, 3, 1] filter) and residual blocks, then a 1x1
convolution to the image (linear output). D mirrors it: a 1x1 convolution from the image, per
resolution residual blocks and a low-pass downsampling transition, and at 4x4 a discriminative
basis (a depthwise 4x4 convolution and a linear layer); with classes, a projection onto a class
embedding. A residual block is 1x1 widen -> grouped 3x3 -> 1x1 back, each activation a leaky ReLU
(0.2) after a learned bias, no normalisation anywhere; weights are drawn with the fan-in (MSR)
scale, the widening convolutions' gain scaled by L^(-1/4) for L blocks in the network (fix-up
style) and the last convolution of each block zero, so a fresh block is the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .registry import Architecture, register, square_image

LRELU_GAIN = math.sqrt(2 / (1 + 0.2 ** 2))  # keeps the variance through a leaky ReLU of 0.2


def _msr(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """Weights ~ N(0, gain^2 / fan_in), no bias (the biases live in :class:`BiasedAct`)."""
    w = layer.weight
    fan_in = w.shape[1] * w[0][0].numel()
    nn.init.normal_(w, 0.0, gain / math.sqrt(fan_in))
    return layer


def _conv(cin: int, cout: int, kernel: int, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    return _msr(nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2, groups=groups,
                          bias=False), gain)


def width(res: int, base: int) -> int:
    """Channels at resolution ``res``: ``base`` up to 32x32, halving per doubling above (>= 16)."""
    return base if res <= 32 else max(16, base * 32 // res)


class BiasedAct(nn.Module):
    """Leaky ReLU (0.2) after a learned per-channel bias (initially 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        return F.leaky_relu(x + self.bias.to(x.dtype).view(shape), 0.2)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1 widen(x))))); the last convolution starts at
    zero, so a fresh block is the identity."""

    def __init__(self, channels: int, expansion: int, group_channels: int,
                 total_blocks: int) -> None:
        super().__init__()
        wide = channels * expansion
        groups = wide // math.gcd(wide, group_channels)
        gain = LRELU_GAIN * total_blocks ** (-1 / 4)  # L^(-1 / (2 * 3 - 2)) for 3 layers
        self.widen = _conv(channels, wide, 1, gain=gain)
        self.act1 = BiasedAct(wide)
        self.grouped = _conv(wide, wide, 3, groups=groups, gain=gain)
        self.act2 = BiasedAct(wide)
        self.narrow = _conv(wide, channels, 1, gain=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.narrow(self.act2(self.grouped(self.act1(self.widen(x)))))


def _lowpass() -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])  # [1, 2, 1] convolved with [1, 1]
    k = k[:, None] * k[None, :]
    return k / k.sum()


def _shift(x: torch.Tensor, step: int) -> torch.Tensor:
    """x[..., i - step] along the last axis, zero where that falls outside."""
    if step > 0:
        return F.pad(x, (step, 0))[..., : x.shape[-1]]
    return F.pad(x, (0, -step))[..., -step:]


def _down_w(x: torch.Tensor) -> torch.Tensor:
    # out[m] = (x[2m-1] + 3 x[2m] + 3 x[2m+1] + x[2m+2]) / 8, zeros outside: the stride-2 4-tap
    # [1, 3, 3, 1] / 8 filter with one zero of padding each side, as slices and adds.
    even, odd = x[..., 0::2], x[..., 1::2]
    return (3 * (even + odd) + _shift(odd, 1) + _shift(even, -1)) * 0.125


def _up_w(x: torch.Tensor) -> torch.Tensor:
    # out[2m] = (x[m-1] + 3 x[m]) / 4 and out[2m+1] = (3 x[m] + x[m+1]) / 4: the transposed
    # [1, 3, 3, 1] filter (gain 2 per axis), interleaved.
    x3 = 3 * x
    pair = torch.stack(((x3 + _shift(x, 1)) * 0.25, (x3 + _shift(x, -1)) * 0.25), dim=-1)
    return pair.flatten(-2)


class Resample(nn.Module):
    """Low-pass 2x up- or downsampling of every channel with the 4x4 [1, 3, 3, 1] filter, and a
    1x1 convolution where the width changes (before upsampling, after downsampling).

    The filter is separable, so each axis is filtered in turn with slices and adds: the same
    numbers as a depthwise 4x4 (transposed) convolution with one zero of padding (`reference`),
    for less time on a CPU (benchmarks/r3gan_resample.py times both)."""

    def __init__(self, cin: int, cout: int, up: bool) -> None:
        super().__init__()
        self.up = up
        self.register_buffer("kernel", _lowpass().view(1, 1, 4, 4), persistent=False)
        self.proj = _conv(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up and self.proj is not None:
            x = self.proj(x)
        f = _up_w if self.up else _down_w
        x = f(f(x).transpose(-1, -2)).transpose(-1, -2)
        if not self.up and self.proj is not None:
            x = self.proj(x)
        return x

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The filter as a depthwise convolution (for tests and benchmarks)."""
        if self.up and self.proj is not None:
            x = self.proj(x)
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        if self.up:
            x = F.conv_transpose2d(x, 4 * k, stride=2, padding=1, groups=c)
        else:
            x = F.conv2d(x, k, stride=2, padding=1, groups=c)
            if self.proj is not None:
                x = self.proj(x)
        return x


class GenerativeBasis(nn.Module):
    """(N, in) -> (N, C, 4, 4): a learned 4x4 basis per channel scaled by a linear map of the input."""

    def __init__(self, cin: int, channels: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = _msr(nn.Linear(cin, channels, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.basis.unsqueeze(0) * self.linear(z)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """(N, C, 4, 4) -> (N, out): a depthwise 4x4 convolution and a linear layer."""

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.basis = _msr(nn.Conv2d(channels, channels, 4, groups=channels, bias=False))
        self.linear = _msr(nn.Linear(channels, out, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.basis(x).flatten(1))


def _stages(resolution: int) -> list[int]:
    return [4 * 2 ** i for i in range(int(math.log2(resolution)) - 1)]  # 4, 8, ..., R


class R3GANGenerator(nn.Module):
    """z (N, z_dim) [+ labels y] -> image (N, C, R, R), linear output (values beyond [-1, 1] are
    clipped when rendered)."""

    latent_space = "z"

    def __init__(self, z_dim: int, img_channels: int, resolution: int, base: int, blocks: int,
                 expansion: int, group_channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        res = _stages(resolution)
        total = blocks * len(res)  # the fix-up scale counts the network's blocks
        embed = width(4, base) if num_classes else 0
        self.embed = nn.Embedding(num_classes, embed) if num_classes else None
        if self.embed is not None:  # a linear map of a one-hot code, MSR-initialised
            nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(num_classes))
        self.basis = GenerativeBasis(z_dim + embed, width(4, base))
        self.stages = nn.ModuleList()
        for i, r in enumerate(res):
            layers: list[nn.Module] = [] if i == 0 else [Resample(width(r // 2, base),
                                                                 width(r, base), up=True)]
            layers += [ResidualBlock(width(r, base), expansion, group_channels, total)
                       for _ in range(blocks)]
            self.stages.append(nn.Sequential(*layers))
        self.to_image = _conv(width(resolution, base), img_channels, 1)

    def sefa_weight(self) -> torch.Tensor:
        """The basis' linear map from z (C, z_dim): what closed-form factorisation decomposes."""
        return self.basis.linear.weight[:, :self.z_dim]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        if self.embed is not None:
            if y is None:
                raise ValueError(f"this model is class-conditional ({self.num_classes} classes): "
                                 "pass labels y")
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        h = self.basis(z)
        for stage in self.stages:
            h = stage(h)
        return self.to_image(h)


class R3GANDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels y] -> logits (N, 1)."""

    def __init__(self, img_channels: int, resolution: int, base: int, blocks: int,
                 expansion: int, group_channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        res = _stages(resolution)[::-1]  # R, ..., 8, 4
        total = blocks * len(res)
        self.from_image = _conv(img_channels, width(resolution, base), 1)
        self.stages = nn.ModuleList()
        for r in res[:-1]:
            self.stages.append(nn.Sequential(
                *[ResidualBlock(width(r, base), expansion, group_channels, total)
                  for _ in range(blocks)],
                Resample(width(r, base), width(r // 2, base), up=False)))
        c4 = width(4, base)
        self.last = nn.Sequential(*[ResidualBlock(c4, expansion, group_channels, total)
                                    for _ in range(blocks)])
        self.basis = DiscriminativeBasis(c4, c4 if num_classes else 1)
        self.embed = nn.Embedding(num_classes, c4) if num_classes else None
        if self.embed is not None:  # R3GAN's projection: the embedding scaled by 1/sqrt(dim)
            nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(c4 * num_classes))

    def input_blocks(self) -> list[nn.Module]:
        """Its blocks from the input side (what ``train.freeze_d`` counts): the 1x1 convolution
        from the image with the first resolution's blocks, then each further resolution's; the
        4x4 epilogue is not one."""
        stages = list(self.stages)
        if not stages:
            return []
        return [nn.ModuleList([self.from_image, stages[0]]), *stages[1:]]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.from_image(x)
        for stage in self.stages:
            h = stage(h)
        out = self.basis(self.last(h))
        if self.embed is None:
            return out
        if y is None:
            raise ValueError(f"this model is class-conditional ({self.num_classes} classes): "
                             "pass labels y")
        return (out * self.embed(y).to(out.dtype)).sum(dim=1, keepdim=True)


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = square_image("R3GAN", shape, classes, cfg.conditional)
    args = (cfg.blocks, cfg.expansion, cfg.group_channels, classes)
    return (R3GANGenerator(cfg.z_dim, c, h, cfg.g_width, *args),
            R3GANDiscriminator(c, h, cfg.d_width, *args))


register(Architecture(
    "r3gan", "R3GAN (generative basis, grouped residual blocks, no normalisation; pair it with "
    "loss.name=rpgan and R1 + R2)", _build, data="images", resolutions=(16, 256),
    conditional=True, self_initialised=True, spectral_norm=False,
    keys=("g_width", "d_width", "blocks", "expansion", "group_channels")))
