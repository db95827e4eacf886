"""A StyleGAN2-style generator and residual discriminator in pure PyTorch (Karras et al. 2020).

No custom CUDA or C++ ops: modulated convolutions are written as input scaling, one shared
``conv2d`` and output demodulation (StyleGAN2's "non-fused" path, exact, and the fast one on a
CPU); the FIR resampling filters are bilinear interpolation (the [1, 3, 3, 1] filter) up and 2×2
averaging down. Everything else is the paper's: a mapping network z -> w with a 100× lower
learning rate, a learned constant input, per-layer noise inputs with learned strengths, skip
connections from a toRGB at every resolution, style mixing during training, a tracked average of
w for the truncation trick in w-space, a residual D with a minibatch-stddev layer, and equalized
learning rates throughout. Class-conditional: a class embedding joins z in the mapping network,
and D gets a projection term (Miyato & Koyama 2018).

Widths are set for small budgets: ``channels(res) = 2 min(64 width / res, 4 width)`` with
``width = model.g_width`` (``model.d_width`` for D), so width 8 gives 64 channels up to 16x16, 32
at 32x32 and 16 at 64x64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .registry import Architecture, register, square_image

SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2  # gain keeps the activations' scale


def channels(res: int, width: int) -> int:
    """Feature maps at resolution ``res`` for base ``width``."""
    return max(min(width * 64 // res, width * 4) * 2, 8)


class EqualLinear(nn.Module):
    """A linear layer with an equalized learning rate: weights stored ~ N(0, 1) / lr_mul and
    scaled at run time by lr_mul / sqrt(fan_in), so Adam's step size is the same for every
    layer."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return _lrelu(x) if self.activate else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN2's modulated convolution: each sample's kernel is ``weight`` (Cout, Cin, k, k)
    with input channel i scaled by ``styles[n, i]``, then (``demodulate``) each output channel's
    kernel divided by its L2 norm. Computed without per-sample kernels: scale the input, run one
    shared convolution, scale the output -- the same numbers."""
    x = x * styles[:, :, None, None].to(x.dtype)
    x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:
        # sum over i, k of (w[o, i, k] s[n, i])^2 = sum_i s[n, i]^2 sum_k w[o, i, k]^2: a matmul
        norms = styles.float().square() @ weight.float().square().sum(dim=(2, 3)).T  # (N, Cout)
        x = x * torch.rsqrt(norms + eps)[:, :, None, None].to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally after 2x upsampling), noise, bias, leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int,
                 up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.weight_gain = 1.0 / math.sqrt(in_ch * 9)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        # Fixed noise for sampling in eval mode: a sample then depends on its latent only.
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w))
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        x = x + noise * self.noise_strength.to(x.dtype)
        return _lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_ch: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_ch, 1, 1))
        self.weight_gain = 1.0 / math.sqrt(in_ch)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias.to(x.dtype)[None, :, None, None]


class MappingNetwork(nn.Module):
    """z (and a class embedding) -> w through ``layers`` equalized linear layers at a 100x lower
    learning rate; keeps a moving average of w for the truncation trick."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 4, num_classes: int = 0,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = EqualLinear(num_classes, z_dim) if num_classes else None
        dims = [z_dim * (2 if num_classes else 1)] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=0.01, activate=True)
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None,
                truncation_psi: float = 1.0) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # normalise z
        if self.embed is not None:
            if y is None:
                raise ValueError(f"this model is class-conditional ({self.num_classes} classes): "
                                 "pass labels y")
            e = self.embed(F.one_hot(y, self.num_classes).to(z.dtype))
            x = torch.cat([x, e * torch.rsqrt(e.square().mean(dim=1, keepdim=True) + 1e-8)], 1)
        w = self.net(x)
        if self.training:
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w


class StyleGAN2Generator(nn.Module):
    """z (N, z_dim) [+ labels y (N,)] -> image (N, C, R, R) in [-1, 1] (unbounded outputs are
    clamped at sampling time by the renderer). ``truncation_psi`` < 1 pulls w towards its average
    (truncation in w-space); ``mixing_prob`` is style mixing's share of training batches."""

    def __init__(self, z_dim: int = 128, img_channels: int = 3, img_resolution: int = 64,
                 width: int = 32, num_classes: int = 0, w_dim: int = 256,
                 mapping_layers: int = 4, mixing_prob: float = 0.9) -> None:
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"StyleGAN2 resolution must be a power of two >= 8, got {img_resolution}")
        self.z_dim, self.num_classes, self.mixing_prob = z_dim, num_classes, mixing_prob
        self.truncation_psi = 1.0
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, num_classes)
        self.resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        ch4 = channels(4, width)
        self.const = nn.Parameter(torch.randn(ch4, 4, 4))
        self.layers = nn.ModuleList()
        self.torgb = nn.ModuleList()
        in_ch = ch4
        for res in self.resolutions:
            out_ch = channels(res, width)
            block = nn.ModuleList([SynthesisLayer(in_ch, out_ch, w_dim, res, up=True)]
                                  if res > 4 else [])
            block.append(SynthesisLayer(out_ch if res > 4 else in_ch, out_ch, w_dim, res))
            self.layers.append(block)
            self.torgb.append(ToRGB(out_ch, img_channels, w_dim))
            in_ch = out_ch
        self.num_ws = sum(len(b) for b in self.layers) + 1

    def _ws(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """One w per layer (N, num_ws, w_dim); during training a share of the batch switches to
        a second latent's w after a random layer (style mixing)."""
        w = self.mapping(z, y, truncation_psi=1.0 if self.training else self.truncation_psi)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            if float(torch.rand(())) < self.mixing_prob:
                w2 = self.mapping(torch.randn_like(z), y)
                ws[:, cutoff:] = w2[:, None]
        return ws

    latent_space = "w"  # truncation, editing and projection act on w

    @property
    def w_dim(self) -> int:
        return self.mapping.w_avg.shape[0]

    def sefa_weight(self) -> torch.Tensor:
        """Every layer's style affine stacked (out, w_dim): the maps from w to the modulation
        scales, what closed-form factorisation (Shen & Zhou 2021) decomposes for a style-based G."""
        affines = [layer.affine for block in self.layers for layer in block]
        affines += [t.affine for t in self.torgb]
        return torch.cat([a.weight * a.weight_gain for a in affines])

    def style_groups(self) -> dict[str, range]:
        """Which of the ``num_ws`` layer inputs are coarse, middle and fine, for style mixing:
        the resolutions split about 2:2:1 from 4x4 up (at 64x64: 4-8, 16-32, 64, as in StyleGAN);
        a toRGB takes the next layer's w, the last one belongs to the fine group."""
        n = len(self.resolutions)
        coarse = max(1, round(0.4 * n))
        middle = math.ceil((n - coarse) / 2)
        starts, i = [], 0
        for block in self.layers:
            starts.append(i)
            i += len(block)
        starts.append(self.num_ws)
        cut = [0, coarse, coarse + middle, n]
        names = ("coarse", "middle", "fine")
        return {name: range(starts[cut[k]], starts[cut[k + 1]] if cut[k + 1] < n else self.num_ws)
                for k, name in enumerate(names) if cut[k + 1] > cut[k]}

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """One w per layer input (N, num_ws, w_dim) -> image (N, C, R, R); clamped to [-1, 1]
        in eval mode."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
        img = None
        i = 0
        for block, torgb in zip(self.layers, self.torgb):
            for layer in block:
                x = layer(x, ws[:, i])
                i += 1
            if img is not None:
                img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = torgb(x, ws[:, i])
            img = rgb if img is None else img + rgb
        return img if self.training else img.clamp(-1, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        return self.synthesis(self._ws(z, y))


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True,
                 activate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias,
                     padding=self.weight.shape[-1] // 2)
        return _lrelu(x) if self.activate else x


class DBlock(nn.Module):
    """Residual D block: two 3x3 convolutions and a 2x downsampling, plus a 1x1 skip; the sum is
    scaled by 1/sqrt(2) to keep the variance."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (x + y) / SQRT2


class StyleGAN2Discriminator(nn.Module):
    """image (N, C, R, R) [+ labels y] -> logits (N, 1): fromRGB, residual blocks down to 4x4,
    minibatch standard deviation (groups of up to 4), a 3x3 convolution and two linear layers;
    with classes, a projection term <embed(y), features>."""

    def __init__(self, img_channels: int = 3, img_resolution: int = 64, width: int = 32,
                 num_classes: int = 0, mbstd_group: int = 4) -> None:
        super().__init__()
        self.num_classes, self.mbstd_group = num_classes, mbstd_group
        res = img_resolution
        self.from_rgb = EqualConv2d(img_channels, channels(res, width), 1)
        blocks = []
        while res > 4:
            blocks.append(DBlock(channels(res, width), channels(res // 2, width)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        ch = channels(4, width)
        self.conv = EqualConv2d(ch + 1, ch, 3)
        self.fc = EqualLinear(ch * 16, ch, activate=True)
        self.out = EqualLinear(ch, 1)
        self.embed = nn.Embedding(num_classes, ch) if num_classes else None

    def input_blocks(self) -> list[nn.Module]:
        """Its blocks from the input side (what ``train.freeze_d`` counts): fromRGB with the
        first residual block (one resolution, as in StyleGAN2-ADA's Freeze-D), then each further
        residual block; the 4x4 epilogue is not one."""
        first = [self.from_rgb, *list(self.blocks)[:1]]
        return [nn.ModuleList(first), *list(self.blocks)[1:]]

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(min(self.mbstd_group, n), n)
        y = x.reshape(g, -1, c, h, w).float()
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (N / g,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))
        h = self.fc(self.conv(self._mbstd(h)).flatten(1))
        out = self.out(h)
        if self.embed is not None:
            if y is None:
                raise ValueError(f"this model is class-conditional ({self.num_classes} classes): "
                                 "pass labels y")
            out = out + (self.embed(y) * h).sum(dim=1, keepdim=True)
        return out


def _build(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = square_image("StyleGAN2", shape, classes, cfg.conditional)
    return (StyleGAN2Generator(cfg.z_dim, c, h, cfg.g_width, classes, cfg.w_dim,
                               cfg.mapping_layers, cfg.style_mixing),
            StyleGAN2Discriminator(c, h, cfg.d_width, classes))


# Equalized layers are not nn.Conv2d/nn.Linear: spectral normalisation would wrap nothing.
register(Architecture(
    "stylegan2", "StyleGAN2 (mapping network, modulated convolutions, noise inputs, skip G, "
    "residual D)", _build, data="images", resolutions=(8, 0), conditional=True,
    self_initialised=True, spectral_norm=False, latent_space="w",
    keys=("g_width", "d_width", "w_dim", "mapping_layers", "style_mixing")))
