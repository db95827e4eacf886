"""The rules a config must satisfy: ranges, choices and combinations, each broken rule a
:class:`~ganforge.config.ConfigError` that says what to change. ``validate`` returns a validated
copy; nothing changes it afterwards."""

from __future__ import annotations

import copy
import math
import os
import re

from .augment import parse_policy
from .config import Config, ConfigError, _flatten, key_specs


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
    "loss.r1_every": (0, _BIG, "open"), "eval.n": (0, 10 ** 7, "closed"),
    "health.window": (0, 10 ** 7, "open"), "health.lr_decay": (0, 1, "open"),
    "optim_G.beta1": (0, 1, "high"), "optim_G.beta2": (0, 1, "high"),
    "optim_D.beta1": (0, 1, "high"), "optim_D.beta2": (0, 1, "high"),
    "loss.real_label": (0, 1, "open"), "train.lr_decay_start": (0, 1, "high"),
    "model.d_recon": (0, 1e6, "closed"), "model.style_mixing": (0, 1, "closed"),
    "train.ada_target": (0, 1, "both"), "train.ada_kimg": (0, 1e9, "open"),
}
HINTS = {"model.leaky_slope": "the slope of LeakyReLU's negative side, e.g. 0.2",
         "model.init_std": "the spread of the initial weights, e.g. 0.02",
         "train.threads": "0 keeps torch's default",
         "train.lr_decay_start": "the share of the run before the learning rates start to decay",
         "model.d_recon": "0 turns the reconstruction off",
         "model.style_mixing": "a probability", "train.ada_target": "ADA's target for r_t"}


def is_validated(cfg: Config) -> bool:
    """Whether ``cfg`` came out of :func:`validate` (and so needs no second check)."""
    return getattr(cfg, "_validated", False)


def validate(cfg: Config) -> Config:
    """Check ranges and combinations; return a validated copy (``~`` in ``data.path`` expanded),
    or raise :class:`ConfigError` saying what to change. Nothing changes the copy afterwards."""
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
    if cfg.loss.real_label != 1.0 and cfg.loss.name in ("hinge", "wgan-gp"):
        raise ConfigError(f"loss.real_label={cfg.loss.real_label} (label smoothing) applies to the "
                          f"nonsaturating and lsgan losses, not to {cfg.loss.name}; set "
                          "loss.real_label=1")
    uses_input_grads = cfg.loss.name == "wgan-gp" or cfg.loss.r1_gamma > 0
    if uses_input_grads and cfg.model.arch == "dcgan" and cfg.model.d_norm == "batch":
        raise ConfigError("gradient penalties (loss.name=wgan-gp, loss.r1_gamma > 0) are per-sample "
                          "and BatchNorm mixes the samples of a batch: set model.d_norm=none")
    if cfg.model.g_output != "tanh" and cfg.model.arch == "toy":
        raise ConfigError("model.g_output chooses the last activation of the mlp and dcgan "
                          "generators; the toy generator is linear: leave model.g_output=tanh")
    if cfg.model.conditional and cfg.model.arch not in ("dcgan", "stylegan2", "fastgan"):
        raise ConfigError(f"model.conditional=true needs model.arch=dcgan, stylegan2 or fastgan; got "
                          f"model.arch={cfg.model.arch}")
    if cfg.model.conditional and cfg.data.name == "gaussian2d":
        raise ConfigError("model.conditional=true needs labelled data (mnist, fashion-mnist or an "
                          "image folder with class sub-folders)")
    if cfg.train.augment:
        try:
            parse_policy(cfg.train.augment)
        except ValueError as e:
            raise ConfigError(f"train.augment: {e}") from None
        if cfg.data.name == "gaussian2d":
            raise ConfigError("train.augment (DiffAugment) is for images; leave it empty for "
                              "gaussian2d")
    if cfg.data.channels not in (0, 1, 3):
        raise ConfigError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {cfg.data.channels}")
    res = cfg.data.resolution
    if cfg.model.arch in ("dcgan", "stylegan2") and res and (res < 8 or res & (res - 1)):
        raise ConfigError(
            f"data.resolution must be a power of two >= 8 for model.arch={cfg.model.arch}, got "
            f"{res} (use 32 for MNIST-like data, 64 for the Pokemon sprites)"
        )
    if cfg.model.arch == "fastgan" and res and (res < 16 or res > 256 or res & (res - 1)):
        raise ConfigError(f"data.resolution must be a power of two from 16 to 256 for "
                          f"model.arch=fastgan, got {res}")
    if cfg.train.ada and cfg.train.augment:
        raise ConfigError("train.ada (adaptive augmentation) and train.augment (DiffAugment) are "
                          "two ways to augment D's inputs: choose one")
    if (cfg.train.ada or cfg.train.xflip) and cfg.data.name == "gaussian2d":
        raise ConfigError("train.ada and train.xflip augment images; leave them off for gaussian2d")
    if cfg.train.ada and cfg.loss.name == "wgan-gp":
        raise ConfigError("train.ada reads D's overfitting from the sign of its real logits, "
                          "which a WGAN critic does not have: use another loss.name")
    if (cfg.model.arch == "toy") != (cfg.data.name == "gaussian2d"):
        raise ConfigError(
            f"model.arch={cfg.model.arch} does not fit data.name={cfg.data.name}: the toy model "
            "is for 2-D points (gaussian2d) and image models are for image datasets"
        )
    if cfg.eval.every and cfg.eval.n < 2:
        raise ConfigError(f"eval.n must be >= 2, got {cfg.eval.n}")
    if (cfg.eval.every and cfg.eval.features == "classifier"
            and cfg.data.name not in ("gaussian2d", "mnist", "fashion-mnist")):
        raise ConfigError("eval.features=classifier exists for MNIST and Fashion-MNIST only; "
                          "use eval.features=inception for image folders")
    if cfg.data.name == "folder" and not cfg.data.path:
        raise ConfigError("data.path must name an image folder when "
                          "data.name=folder, e.g. data.path=~/pictures/cats")
    out = copy.deepcopy(cfg)
    if out.data.path:  # `data.path=~/x` is not expanded by the shell
        out.data.path = os.path.expanduser(out.data.path)
    object.__setattr__(out, "_validated", True)
    return out
