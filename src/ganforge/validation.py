"""The rules a config must satisfy: ranges, choices and combinations, each broken rule a
:class:`~ganforge.config.ConfigError` that says what to change. ``validate`` returns a validated,
frozen copy: nothing can change it afterwards. What an architecture supports comes from the
architecture registry, what a dataset is from :func:`ganforge.data.describe`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re

from .augment import parse_policy
from .config import (Config, ConfigError, KeySpec, ModelConfig, OptimizerConfig, _flatten,
                     freeze, schema_specs, thawed_copy)
from .data import describe
from .errors import DataError
from .models import ARCHITECTURES, architecture


# Numeric keys: (lowest, highest, which end is excluded: "closed", "open" = the lowest, "high"
# = the highest, "both"). Most upper bounds are far above any useful value; they stop a typo
# from asking for terabytes of memory.
_BIG = 10 ** 9
RANGES: dict[str, tuple[float, float, str]] = {
    "train.epochs": (0, _BIG, "open"), "train.batch_size": (0, 1 << 20, "open"),
    "model.z_dim": (0, 1 << 14, "open"), "model.w_dim": (0, 1 << 13, "open"),
    "model.mapping_layers": (0, 64, "open"), "model.g_width": (0, 1 << 12, "open"),
    "model.d_width": (0, 1 << 12, "open"), "model.d_hidden": (0, 1 << 14, "closed"),
    "model.leaky_slope": (0, 0.999, "closed"), "model.init_std": (0, 10, "open"),
    "model.num_classes": (0, 1 << 16, "closed"),
    "report.sample_every": (0, _BIG, "closed"),
    "report.sample_minutes": (0, 1e7, "closed"), "report.grid_rows": (0, 64, "open"),
    "report.grid_cols": (0, 64, "open"), "report.scatter_points": (0, 1 << 20, "open"),
    "data.num_points": (0, 10 ** 8, "open"), "data.resolution": (0, 4096, "closed"),
    "data.limit": (0, _BIG, "closed"), "data.max_pixels": (0, 1 << 40, "closed"),
    "data.channels": (0, 3, "closed"),
    "optim_G.lr": (0, 100, "open"), "optim_D.lr": (0, 100, "open"),
    "optim_G.eps": (0, 1, "open"), "optim_D.eps": (0, 1, "open"),
    "optim_G.alpha": (0, 1, "closed"), "optim_D.alpha": (0, 1, "closed"),
    "train.threads": (0, 4096, "closed"), "train.checkpoint_every": (0, _BIG, "closed"),
    "train.checkpoint_steps": (0, _BIG, "closed"), "train.checkpoint_minutes": (0, 1e7, "closed"),
    "train.seed": (0, 2 ** 63 - 1, "closed"), "train.max_minutes": (0, 1e7, "closed"),
    "train.ema_kimg": (0, 1e9, "closed"), "train.ema_rampup": (0, 1e3, "closed"),
    "eval.every": (0, _BIG, "closed"), "health.max_retries": (0, 1000, "closed"),
    "health.warmup_epochs": (0, _BIG, "closed"), "health.warmup_kimg": (0, 1e9, "closed"),
    "loss.gp_weight": (0, 1e6, "closed"), "loss.r1_gamma": (0, 1e6, "closed"),
    "loss.r2_gamma": (0, 1e6, "closed"),
    "loss.r1_every": (0, _BIG, "open"), "eval.n": (0, 10 ** 7, "closed"),
    "health.window": (0, 10 ** 7, "open"), "health.lr_decay": (0, 1, "open"),
    "optim_G.beta1": (0, 1, "high"), "optim_G.beta2": (0, 1, "high"),
    "optim_D.beta1": (0, 1, "high"), "optim_D.beta2": (0, 1, "high"),
    "loss.real_label": (0, 1, "open"), "train.lr_decay_start": (0, 1, "high"),
    "train.lr_end": (0, 1, "closed"), "train.beta2_end": (0, 1, "high"),
    "train.ema_kimg_end": (0, 1e9, "closed"), "loss.gamma_end": (0, 1e6, "closed"),
    "model.d_recon": (0, 1e6, "closed"), "optim_G.momentum": (0, 1, "high"),
    "optim_D.momentum": (0, 1, "high"), "model.style_mixing": (0, 1, "closed"),
    "train.ada_target": (0, 1, "both"), "train.ada_kimg": (0, 1e9, "open"),
    "train.freeze_d": (0, 64, "closed"), "model.blocks": (0, 64, "open"),
    "model.expansion": (0, 16, "open"), "model.group_channels": (0, 4096, "open"),
}
HINTS = {"model.leaky_slope": "the slope of LeakyReLU's negative side, e.g. 0.2",
         "model.init_std": "the spread of the initial weights, e.g. 0.02",
         "train.threads": "0 keeps torch's default",
         "train.lr_decay_start": "the share of the run before the learning rates start to decay",
         "model.d_recon": "0 turns the reconstruction off",
         "model.style_mixing": "a probability", "train.ada_target": "ADA's target for r_t"}


# Which optimizer reads which optim_* key.
OPTIMIZER_KEYS = {"adam": ("lr", "beta1", "beta2", "eps"), "rmsprop": ("lr", "alpha", "eps", "momentum"),
                  "sgd": ("lr", "momentum")}


def _applies_to(key: str) -> str:
    """Which architectures or optimizers read ``key`` ("" when every configuration does)."""
    section, _, leaf = key.partition(".")
    if section == "model" and leaf not in ("arch", "z_dim"):
        names = [a.name for a in ARCHITECTURES.values() if key in a.applicable_keys()]
        return "" if len(names) == len(ARCHITECTURES) else ", ".join(names)
    if section in ("optim_G", "optim_D") and leaf != "name":
        return ", ".join(n for n, keys in OPTIMIZER_KEYS.items() if leaf in keys)
    return ""


def key_specs() -> list[KeySpec]:
    """Every key a user may override, with type, default, choices (the architectures from their
    registry) and meaning, plus which architectures or optimizers read it."""
    out = []
    for spec in schema_specs():
        choices, help = spec.choices, spec.help
        if spec.key == "model.arch":
            choices = tuple(ARCHITECTURES)
            help = "architecture: " + "; ".join(f"{a.name} = {a.summary}"
                                                 for a in ARCHITECTURES.values())
        where = _applies_to(spec.key)
        if where and spec.key != "model.arch":
            help += f" [{where}]"
        out.append(dataclasses.replace(spec, choices=choices, help=help))
    return out


def keys_markdown() -> str:
    """The configuration reference as a Markdown table per section (docs/configuration.md)."""
    out = ["# Configuration", "",
           "Every key can be overridden on the command line as `key=value` after the preset "
           "(`ganforge train mnist-mlp train.epochs=5`). This page is generated from the schema and the architecture registry "
           "(`ganforge presets --keys --markdown`); `ganforge presets --keys` prints the same.", ""]
    section = None
    for s in key_specs():
        sec = s.key.split(".")[0] if "." in s.key else "run"
        if sec != section:
            section = sec
            out += ["", f"## `{sec}`", "", "| key | type | default | choices | meaning |",
                    "|---|---|---|---|---|"]
        default = json.dumps(s.default)
        choices = ", ".join(s.choices) if s.choices else ""
        out.append(f"| `{s.key}` | {s.type} | `{default}` | {choices} | {s.help} |")
    return "\n".join(out) + "\n"


def inapplicable_keys(cfg: Config) -> list[tuple[str, str]]:
    """The model.* and optim_*.* keys set away from their defaults that the chosen architecture
    or optimizer does not read, each with the sentence naming the keys that do apply."""
    out = []
    arch = ARCHITECTURES.get(cfg.model.arch)
    if arch is not None:
        applies = arch.applicable_keys()
        default = ModelConfig()
        for f in dataclasses.fields(ModelConfig):
            key = f"model.{f.name}"
            if key not in applies and getattr(cfg.model, f.name) != getattr(default, f.name):
                out.append((key, f"model.arch={arch.name} reads {', '.join(applies)}"))
    odefault = OptimizerConfig()
    for section in ("optim_G", "optim_D"):
        oc = getattr(cfg, section)
        reads = OPTIMIZER_KEYS.get(oc.name, ())
        for f in dataclasses.fields(OptimizerConfig):
            if f.name != "name" and f.name not in reads and \
                    getattr(oc, f.name) != getattr(odefault, f.name):
                out.append((f"{section}.{f.name}", f"{section}.name={oc.name} reads "
                            + ", ".join(f"{section}.{k}" for k in reads)))
    return out


def without_inapplicable(cfg: Config, keep: set[str]) -> Config:
    """A copy of ``cfg`` whose inapplicable keys (:func:`inapplicable_keys`) are back at their
    defaults, except those in ``keep`` (which validation then refuses). A preset's keys for its
    own architecture or optimizer mean nothing once an override chose another one."""
    out = thawed_copy(cfg)
    for key, _ in inapplicable_keys(cfg):
        if key in keep:
            continue
        section, leaf = key.split(".")
        default = ModelConfig() if section == "model" else OptimizerConfig()
        setattr(getattr(out, section), leaf, getattr(default, leaf))
    return out


def is_validated(cfg: Config) -> bool:
    """Whether ``cfg`` came out of :func:`validate` (and so needs no second check)."""
    return bool(cfg.__dict__.get("_validated", False))


def validate(cfg: Config) -> Config:
    """Check ranges and combinations; return a validated, frozen copy (``~`` in ``data.path``
    expanded), or raise :class:`ConfigError` saying what to change."""
    flat = dict(_flatten(cfg.to_dict()))
    for spec in key_specs():
        value = flat[spec.key]
        if spec.choices and value not in spec.choices:
            raise ConfigError(f"{spec.key} must be one of {', '.join(spec.choices)}; got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{spec.key} must be a finite number, got {value!r}")
    for key, (low, high, open_end) in RANGES.items():
        value = flat[key]
        low_open, high_open = open_end in ("open", "both"), open_end in ("high", "both")
        if (not low <= value <= high or (low_open and value == low)
                or (high_open and value == high)):
            bound = (f"{'>' if low_open else '>='} {low:g} and {'<' if high_open else '<='} "
                     f"{high:g}")
            raise ConfigError(f"{key} must be {bound}, got {value!r}"
                              + (f" ({HINTS[key]})" if key in HINTS else ""))
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,2})?", cfg.train.device):
        raise ConfigError(f"train.device must be auto, cpu, cuda, cuda:N or mps, got "
                          f"{cfg.train.device!r}")
    _check_model(cfg)
    _check_training(cfg)
    out = thawed_copy(cfg)
    if out.data.path:  # `data.path=~/x` is not expanded by the shell; a relative path is made
        # absolute, so that a resume or an evaluation from another folder reads the same data
        out.data.path = os.path.abspath(os.path.expanduser(out.data.path))
    out.__dict__["_validated"] = True
    return freeze(out)


def _check_model(cfg: Config) -> None:
    """The architecture against the data and the loss (the registry says what it supports)."""
    arch = architecture(cfg.model.arch)
    try:
        data = describe(cfg.data)
    except DataError as e:
        raise ConfigError(str(e)) from None
    if arch.data != data.kind:
        fits = [a.name for a in ARCHITECTURES.values() if a.data == data.kind]
        raise ConfigError(
            f"model.arch={arch.name} does not fit data.name={cfg.data.name}: {arch.name} learns "
            f"{arch.data} and {cfg.data.name} holds {data.kind}; choose model.arch="
            + " or ".join(fits))
    if cfg.model.conditional and not arch.conditional:
        able = [a.name for a in ARCHITECTURES.values() if a.conditional]
        raise ConfigError(f"model.conditional=true needs model.arch={' or '.join(able)} (the "
                          f"architectures that can be conditional); got model.arch={arch.name}")
    if cfg.model.conditional and not data.labelled:
        raise ConfigError("model.conditional=true needs labelled data (mnist, fashion-mnist or an "
                          "image folder with class sub-folders)")
    for key, applies in inapplicable_keys(cfg):
        value = json.dumps(dict(_flatten(cfg.to_dict()))[key])
        users = _applies_to(key)
        raise ConfigError(f"{key}={value} does nothing here: {applies}. Leave {key} at its "
                          f"default" + (f", or choose one that reads it ({users})" if users else ""))
    error = arch.resolution_error(cfg.data.resolution)
    if error:
        raise ConfigError(error + " (use 32 for MNIST-like data, 64 for the Pokemon sprites)")
    uses_input_grads = (cfg.loss.name == "wgan-gp" or cfg.loss.r1_gamma > 0
                        or cfg.loss.r2_gamma > 0)
    if uses_input_grads and arch.d_mixes_batch(cfg.model):
        fix = ": set model.d_norm=none" if "model.d_norm" in arch.applicable_keys() else ""
        raise ConfigError("gradient penalties (loss.name=wgan-gp, loss.r1_gamma or r2_gamma > 0) "
                          f"are per-sample and model.arch={arch.name}'s D uses BatchNorm, which "
                          f"mixes the samples of a batch{fix}")
    if cfg.data.channels not in (0, 1, 3):
        raise ConfigError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {cfg.data.channels}")
    if data.modes and cfg.data.channels not in (0, 3):
        raise ConfigError(f"{cfg.data.name} stacks one digit in each of 3 channels: leave "
                          f"data.channels at 0 (or 3), got {cfg.data.channels}")
    if data.needs_path and not cfg.data.path:
        raise ConfigError(f"data.path must name an image folder when "
                          f"data.name={cfg.data.name}, e.g. data.path=~/pictures/cats")


def _check_training(cfg: Config) -> None:
    """Loss, augmentation and evaluation settings against each other and the data."""
    data = describe(cfg.data)
    if cfg.loss.real_label != 1.0 and cfg.loss.name in ("hinge", "wgan-gp", "rpgan"):
        raise ConfigError(f"loss.real_label={cfg.loss.real_label} (label smoothing) applies to the "
                          f"nonsaturating and lsgan losses, not to {cfg.loss.name}; set "
                          "loss.real_label=1")
    if cfg.train.augment:
        try:
            parse_policy(cfg.train.augment)
        except ValueError as e:
            raise ConfigError(f"train.augment: {e}") from None
        if data.kind != "images":
            raise ConfigError(f"train.augment (DiffAugment) is for images; leave it empty for "
                              f"{cfg.data.name}")
    if cfg.train.ada and cfg.train.augment:
        raise ConfigError("train.ada (adaptive augmentation) and train.augment (DiffAugment) are "
                          "two ways to augment D's inputs: choose one")
    if (cfg.train.ada or cfg.train.xflip) and data.kind != "images":
        raise ConfigError(f"train.ada and train.xflip augment images; leave them off for "
                          f"{cfg.data.name}")
    if cfg.train.ada and cfg.loss.name in ("wgan-gp", "rpgan"):
        raise ConfigError(f"train.ada reads D's overfitting from the sign of its real logits, "
                          f"which {cfg.loss.name}'s D does not have (its logits have no fixed "
                          "origin): use another loss.name, or train.augment (DiffAugment)")
    if cfg.train.freeze_d and data.kind != "images":
        raise ConfigError(f"train.freeze_d freezes the first blocks of an image discriminator; "
                          f"leave it at 0 for {cfg.data.name}")
    if cfg.train.init_optim and not cfg.train.init_from:
        raise ConfigError("train.init_optim=true takes the optimizer state of train.init_from: "
                          "name the run to start from (train.init_from=RUN), or drop init_optim")
    if cfg.eval.every and cfg.eval.n < 2:
        raise ConfigError(f"eval.n must be >= 2, got {cfg.eval.n}")
    if (cfg.eval.every and cfg.eval.features == "classifier" and data.kind == "images"
            and not data.classifier):
        raise ConfigError(f"eval.features=classifier exists for MNIST and Fashion-MNIST only; "
                          f"use eval.features=inception for {cfg.data.name}")
