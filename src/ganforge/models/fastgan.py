"""A FastGAN-style pair (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis"), sized for CPU budgets, at any power-of-two resolution
from 16 to 256, optionally class-conditional.

Generator: z -> 4x4 by a transposed convolution, then one up-block per doubling (nearest 2x,
3x3 convolution, BatchNorm, GLU; every other block a second convolution and noise inputs with
learned strengths), and *skip-layer excitation*: the features at a low resolution (4x4 to 16x16)
gate every channel of a block 8-16x larger through a small squeeze-and-excitation path, so the
global layout reaches the fine layers in one hop. Noise is random in training and fixed in eval
mode (a sample depends on its latent only). Conditional: BatchNorms become class-conditional.

Discriminator: a stride-2 stem, then residual down-blocks (a 4x4 stride-2 and a 3x3 convolution
beside an average-pool + 1x1 shortcut) to 4x4, a 4x4 head to one logit, and a projection term
for classes. *Self-supervised reconstruction*: called with ``aux=True`` on real images,
D also decodes its 8x8 features into the image at a quarter of the area and returns the mean
squared error, so D must keep a description of the whole image rather than a few memorised
details -- FastGAN's regulariser against D overfitting a small folder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .blocks import ConditionalBatchNorm2d
from .registry import Architecture, ArchTerm, register, square_image

# Channels per resolution, as multiples of the width (FastGAN's nfc table).
_G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}
_D_MULT = {4: 8, 8: 4, 16: 2, 32: 1, 64: 1, 128: 0.5, 256: 0.5}


def _check_resolution(resolution: int) -> int:
    if resolution < 16 or resolution > 256 or resolution & (resolution - 1):
        raise ValueError(f"FastGAN resolution must be a power of two in [16, 256], got {resolution}")
    return resolution


def g_channels(res: int, width: int) -> int:
    return max(8, int(_G_MULT[res] * width))


def d_channels(res: int, width: int) -> int:
    return max(8, int(_D_MULT[res] * width))


class GLU(nn.Module):
    """Gated linear unit over channels: the first half times the sigmoid of the second."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class NoiseInjection(nn.Module):
    """``x + strength * noise`` with one learned strength (starting at 0); random per sample in
    training, a fixed map in eval mode."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return x + noise * self.strength.to(x.dtype)


class _Norm(nn.Module):
    """BatchNorm, class-conditional when ``num_classes > 0``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = (ConditionalBatchNorm2d(channels, num_classes) if num_classes
                   else nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.bn, ConditionalBatchNorm2d):
            if y is None:
                raise ValueError("this generator is class-conditional: pass the labels y")
            return self.bn(x, y)
        return self.bn(x)


class UpBlock(nn.Module):
    """Nearest 2x upsampling, then ``convs`` x (3x3 conv to 2*out, [noise], norm, GLU)."""

    def __init__(self, in_ch: int, out_ch: int, resolution: int, num_classes: int,
                 convs: int = 1) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.noises = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(convs):
            self.convs.append(nn.Conv2d(in_ch if i == 0 else out_ch, out_ch * 2, 3, padding=1,
                                        bias=False))
            self.noises.append(NoiseInjection(resolution) if convs > 1 else nn.Identity())
            self.norms.append(_Norm(out_ch * 2, num_classes))
        self.glu = GLU()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        for conv, noise, norm in zip(self.convs, self.noises, self.norms):
            x = self.glu(norm(noise(conv(x)), y))
        return x


class SkipExcitation(nn.Module):
    """Skip-layer excitation: ``big * sigmoid(f(small))`` with f = adaptive pool to 4x4, 4x4
    conv, SiLU, 1x1 conv -- one gate per channel of ``big``, computed from ``small``."""

    def __init__(self, small_ch: int, big_ch: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(small_ch, big_ch, 4, bias=False), nn.SiLU(),
            nn.Conv2d(big_ch, big_ch, 1, bias=False), nn.Sigmoid())

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.net(small)


class FastGANGenerator(nn.Module):
    """z (N, z_dim) [+ labels y (N,)] -> image (N, C, R, R) in [-1, 1] (tanh)."""

    def __init__(self, z_dim: int = 128, img_channels: int = 3, img_resolution: int = 64,
                 width: int = 16, num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        R = _check_resolution(img_resolution)
        c4 = g_channels(4, width)
        self.init = nn.ConvTranspose2d(z_dim, c4 * 2, 4, bias=False)
        self.init_norm = _Norm(c4 * 2, num_classes)
        self.glu = GLU()
        self.resolutions = [2 ** k for k in range(3, R.bit_length())]  # 8 .. R
        self.ups = nn.ModuleDict()
        for i, res in enumerate(self.resolutions):
            self.ups[str(res)] = UpBlock(g_channels(res // 2, width), g_channels(res, width), res,
                                         num_classes, convs=2 if i % 2 == 0 else 1)
        # Every block from 32x32 up is gated by the features 8-16x smaller (at least 4x4).
        self.sources = {res: max(4, res // 16) for res in self.resolutions if res >= 32}
        self.excite = nn.ModuleDict({
            str(res): SkipExcitation(g_channels(src, width), g_channels(res, width))
            for res, src in self.sources.items()})
        self.to_rgb = nn.Conv2d(g_channels(R, width), img_channels, 3, padding=1)

    latent_space = "z"  # truncation and editing act on z

    def sefa_weight(self) -> torch.Tensor:
        """The first layer as a matrix from z (out, z_dim): the 4x4 transposed convolution's
        outputs, one row per channel and pixel, what closed-form factorisation decomposes."""
        w = self.init.weight  # (z_dim, C, 4, 4)
        return w.reshape(w.shape[0], -1).T

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.glu(self.init_norm(self.init(z.view(z.shape[0], -1, 1, 1)), y))
        feats = {4: x}
        for res in self.resolutions:
            x = self.ups[str(res)](x, y)
            if res in self.sources:
                x = self.excite[str(res)](feats[self.sources[res]], x)
            feats[res] = x
        return torch.tanh(self.to_rgb(x))


class DownBlock(nn.Module):
    """Residual down-block: (4x4 stride-2 conv, LReLU, 3x3 conv, LReLU) averaged with
    (2x2 average pool, 1x1 conv, LReLU)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_ch, out_ch, 1),
                                    nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8x8 features -> an image at a quarter of D's input area (nearest 2x, 3x3 conv, GLU)."""

    def __init__(self, in_ch: int, img_channels: int, out_resolution: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch, res = in_ch, 8
        while res < out_resolution:
            out = max(8, d_channels(res * 2, width) // 2)
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"),
                       nn.Conv2d(ch, out * 2, 3, padding=1), GLU()]
            ch, res = out, res * 2
        layers += [nn.Conv2d(ch, img_channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FastGANDiscriminator(nn.Module):
    """image (N, C, R, R) [+ labels y] -> logits (N, 1); with ``aux=True`` also
    ``{"recon": the reconstruction error of the (augmented) input, a 0-d tensor}``."""

    def __init__(self, img_channels: int = 3, img_resolution: int = 64, width: int = 32,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        R = _check_resolution(img_resolution)
        self.stem = nn.Sequential(nn.Conv2d(img_channels, d_channels(R // 2, width), 4, 2, 1),
                                  nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList()
        res = R // 2
        while res > 4:
            self.downs.append(DownBlock(d_channels(res, width), d_channels(res // 2, width)))
            res //= 2
        c4 = d_channels(4, width)
        self.head = nn.Conv2d(c4, 1, 4)
        self.embed = nn.Embedding(num_classes, c4) if num_classes else None
        self.recon_resolution = max(8, R // 2)
        self.decoder = Decoder(d_channels(8, width), img_channels, self.recon_resolution, width)

    def input_blocks(self) -> list[nn.Module]:
        """Its blocks from the input side (what ``train.freeze_d`` counts): the stem, then each
        downsampling block; the head and the reconstruction decoder are not ones."""
        return [self.stem, *self.downs]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, aux: bool = False):
        h = self.stem(x)
        feat8 = None
        for down in self.downs:
            if h.shape[-1] == 8:
                feat8 = h
            h = down(h)
        logits = self.head(h).flatten(1)
        if self.embed is not None:
            if y is None:
                raise ValueError(f"this model is class-conditional ({self.num_classes} classes): "
                                 "pass labels y")
            logits = logits + (self.embed(y) * h.sum((2, 3))).sum(1).view(-1, 1)
        if not aux:
            return logits
        feat8 = h if feat8 is None else feat8
        target = F.adaptive_avg_pool2d(x.detach(), self.recon_resolution)
        recon = self.decoder(feat8)
        return logits, {"recon": F.mse_loss(recon.float(), target.float())}


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = square_image("FastGAN", shape, classes, cfg.conditional)
    return (FastGANGenerator(cfg.z_dim, c, h, cfg.g_width, classes),
            FastGANDiscriminator(c, h, cfg.d_width, classes))


register(Architecture(
    "fastgan", "FastGAN (skip-layer excitation, self-supervised D)", _build, data="images",
    resolutions=(16, 256), conditional=True, keys=("g_width", "d_width", "d_recon"),
    d_terms=(ArchTerm("recon", "model.d_recon"),)))
