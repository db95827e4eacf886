"""Model registry: ``build_models(model_cfg, sample_shape) -> (G, D)``."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .blocks import D_block, G_block, apply_spectral_norm, init_weights, output_activation
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .fastgan import FastGANDiscriminator, FastGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from .toy import ToyDiscriminator, ToyGenerator

__all__ = ["build_models", "init_weights", "apply_spectral_norm", "G_block", "D_block", "DCGANGenerator",
           "DCGANDiscriminator", "MLPGenerator", "MLPDiscriminator", "ToyGenerator",
           "ToyDiscriminator", "StyleGAN2Generator", "StyleGAN2Discriminator", "FastGANGenerator",
           "FastGANDiscriminator", "ARCHITECTURES",
           "output_activation", "class_count"]


def class_count(cfg: ModelConfig) -> int:
    """Classes a generator is conditioned on: ``model.num_classes`` for a conditional model, 0
    otherwise. The one place this rule is written."""
    return cfg.num_classes if cfg.conditional else 0


def _toy(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    hidden = (cfg.d_hidden, cfg.d_hidden) if cfg.d_hidden else (5, 3)
    return ToyGenerator(cfg.z_dim, shape[0]), ToyDiscriminator(shape[0], hidden)


def _mlp(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    return (MLPGenerator(cfg.z_dim, shape, cfg.leaky_slope, cfg.g_output),  # type: ignore[arg-type]
            MLPDiscriminator(shape, cfg.leaky_slope, cfg.d_activation))  # type: ignore[arg-type]


def _square_image(arch: str, cfg: ModelConfig, shape: tuple[int, ...], classes: int
                  ) -> tuple[int, int]:
    """(channels, side) of the square images an image architecture is built for."""
    c, h, w = shape
    if h != w:
        raise ValueError(f"{arch} needs square images, got {h}x{w}")
    if cfg.conditional and classes < 2:
        raise ValueError(f"a class-conditional model needs at least 2 classes, got {classes}")
    return c, h


def _dcgan(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = _square_image("DCGAN", cfg, shape, classes)
    return (DCGANGenerator(cfg.z_dim, c, h, cfg.g_width, num_classes=classes, output=cfg.g_output),
            DCGANDiscriminator(c, h, cfg.d_width, cfg.leaky_slope, cfg.d_activation,
                               norm=cfg.d_norm, num_classes=classes))


def _stylegan2(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = _square_image("StyleGAN2", cfg, shape, classes)
    return (StyleGAN2Generator(cfg.z_dim, c, h, cfg.g_width, classes, cfg.w_dim,
                               cfg.mapping_layers, cfg.style_mixing),
            StyleGAN2Discriminator(c, h, cfg.d_width, classes))


def _fastgan(cfg: ModelConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, nn.Module]:
    c, h = _square_image("FastGAN", cfg, shape, classes)
    return (FastGANGenerator(cfg.z_dim, c, h, cfg.g_width, classes),
            FastGANDiscriminator(c, h, cfg.d_width, classes))


ARCHITECTURES = {"toy": _toy, "mlp": _mlp, "dcgan": _dcgan, "stylegan2": _stylegan2,
                 "fastgan": _fastgan}
# Architectures whose layers initialise themselves (equalized learning rates): model.init and
# model.init_std do not apply to them.
SELF_INITIALISED = {"stylegan2"}


def build_models(cfg: ModelConfig, sample_shape: tuple[int, ...], num_classes: int | None = None
                 ) -> tuple[nn.Module, nn.Module]:
    """Build and initialise G and D for data whose rows have ``sample_shape`` (C, H, W) or (D,),
    conditioned on ``num_classes`` classes (0: unconditional; default: :func:`class_count`)."""
    classes = class_count(cfg) if num_classes is None else num_classes
    G, D = ARCHITECTURES[cfg.arch](cfg, tuple(sample_shape), classes)
    if cfg.arch not in SELF_INITIALISED:
        init_weights(G, cfg.init, cfg.init_std)
        init_weights(D, cfg.init, cfg.init_std)
    if cfg.spectral_norm_g:
        apply_spectral_norm(G)
    if cfg.spectral_norm_d:
        apply_spectral_norm(D)
    return G, D
