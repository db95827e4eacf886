"""The architecture registry: each architecture's module describes itself in one
:class:`Architecture` and calls :func:`register`. Validation, model building, sampling, the
training step and the configuration reference read these descriptions; nothing else asks
"which architecture is this?".

Every discriminator returns logits of shape (N, 1); an image discriminator's ``input_blocks()``
lists its blocks from the input side (what Freeze-D freezes). An architecture whose D computes a loss term
of its own (FastGAN's reconstruction) names it in ``d_terms``; its D, called with ``aux=True``,
returns ``(logits, {term name: 0-d tensor})``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..config import ModelConfig

Builder = Callable[[ModelConfig, tuple[int, ...], int], tuple[nn.Module, nn.Module]]


@dataclass(frozen=True)
class ArchTerm:
    """A term an architecture adds to D's loss: computed by its D, weighted by a model key."""

    name: str  # the term's name in metrics.jsonl (loss_D_<name>) and the report
    weight_key: str  # the model.* key holding its weight (0 = off)


@dataclass(frozen=True)
class Architecture:
    """What one architecture is: how to build G and D and what it supports."""

    name: str  # model.arch
    summary: str  # one phrase for the configuration reference
    build: Builder  # (model config, sample shape, classes) -> (G, D), before init and SN
    data: str  # "points" or "images": the kind of dataset it learns
    keys: tuple[str, ...]  # model.* keys it reads beyond model.arch and model.z_dim
    # images: powers of two from..to (high 0 = no upper bound); (0, 0) = any size
    resolutions: tuple[int, int] = (0, 0)
    conditional: bool = False  # can be class-conditional (model.conditional=true)
    self_initialised: bool = False  # its layers initialise themselves (model.init does not apply)
    spectral_norm: bool = True  # model.spectral_norm_d/g wrap its layers
    latent_space: str = "z"  # where truncation and editing act: "z" or "w"
    d_terms: tuple[ArchTerm, ...] = ()  # loss terms its D adds
    d_mixes_batch: Callable[[ModelConfig], bool] = lambda cfg: False  # BatchNorm in D

    def applicable_keys(self) -> tuple[str, ...]:
        """Every model.* key that means something for this architecture."""
        keys = ["model.arch", "model.z_dim", *(f"model.{k}" for k in self.keys)]
        if self.conditional:
            keys += ["model.conditional", "model.num_classes"]
        if not self.self_initialised:
            keys += ["model.init", "model.init_std"]
        if self.spectral_norm:
            keys += ["model.spectral_norm_d", "model.spectral_norm_g"]
        return tuple(keys)

    def resolution_error(self, resolution: int) -> str | None:
        """Why ``resolution`` does not fit (None when it does, or when it is 0 = the data's)."""
        low, high = self.resolutions
        if self.data != "images" or not resolution or not low:
            return None
        if resolution < low or (high and resolution > high) or resolution & (resolution - 1):
            upto = f"from {low} to {high}" if high else f">= {low}"
            return (f"data.resolution must be a power of two {upto} for model.arch={self.name}, "
                    f"got {resolution}")
        return None


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` to the registry (each architecture's module calls this once)."""
    if arch.name in ARCHITECTURES:
        raise ValueError(f"architecture {arch.name!r} is registered twice")
    if arch.data not in ("points", "images") or arch.latent_space not in ("z", "w"):
        raise ValueError(f"architecture {arch.name!r}: data must be points or images and "
                         "latent_space z or w")
    ARCHITECTURES[arch.name] = arch
    return arch


def architecture(name: str) -> Architecture:
    """The registered architecture ``name`` (a KeyError names the ones there are)."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; registered: "
                       f"{', '.join(ARCHITECTURES)}") from None


def square_image(arch: str, shape: tuple[int, ...], classes: int, conditional: bool
                 ) -> tuple[int, int]:
    """(channels, side) of the square images an image architecture is built for."""
    c, h, w = shape
    if h != w:
        raise ValueError(f"{arch} needs square images, got {h}x{w}")
    if conditional and classes < 2:
        raise ValueError(f"a class-conditional model needs at least 2 classes, got {classes}")
    return c, h
