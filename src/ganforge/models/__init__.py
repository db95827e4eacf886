"""Models: one architecture per module, each registering itself (:mod:`.registry`);
``build_models(model_cfg, sample_shape) -> (G, D)`` builds any of them."""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from ..config import ModelConfig
from .blocks import D_block, G_block, apply_spectral_norm, init_weights, output_activation
from .registry import ARCHITECTURES, Architecture, ArchTerm, architecture, register
# Importing an architecture's module registers it: these first (the order of the choices, and
# their classes exported here), then every other module of this folder, so that a new
# architecture is one new file.
from .toy import ToyDiscriminator, ToyGenerator  # noqa: E402,I001
from .mlp import MLPDiscriminator, MLPGenerator  # noqa: E402
from .dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from .stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator  # noqa: E402
from .fastgan import FastGANDiscriminator, FastGANGenerator  # noqa: E402

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["build_models", "init_weights", "apply_spectral_norm", "G_block", "D_block", "DCGANGenerator",
           "DCGANDiscriminator", "MLPGenerator", "MLPDiscriminator", "ToyGenerator",
           "ToyDiscriminator", "StyleGAN2Generator", "StyleGAN2Discriminator", "FastGANGenerator",
           "FastGANDiscriminator", "ARCHITECTURES", "Architecture", "ArchTerm", "architecture",
           "register", "output_activation", "class_count"]


def class_count(cfg: ModelConfig) -> int:
    """Classes a generator is conditioned on: ``model.num_classes`` for a conditional model, 0
    otherwise. The one place this rule is written."""
    return cfg.num_classes if cfg.conditional else 0


def build_models(cfg: ModelConfig, sample_shape: tuple[int, ...], num_classes: int | None = None
                 ) -> tuple[nn.Module, nn.Module]:
    """Build and initialise G and D for data whose rows have ``sample_shape`` (C, H, W) or (D,),
    conditioned on ``num_classes`` classes (0: unconditional; default: :func:`class_count`)."""
    classes = class_count(cfg) if num_classes is None else num_classes
    arch = architecture(cfg.arch)
    G, D = arch.build(cfg, tuple(sample_shape), classes)
    if not arch.self_initialised:
        init_weights(G, cfg.init, cfg.init_std)
        init_weights(D, cfg.init, cfg.init_std)
    if cfg.spectral_norm_g and arch.spectral_norm:
        apply_spectral_norm(G)
    if cfg.spectral_norm_d and arch.spectral_norm:
        apply_spectral_norm(D)
    return G, D
