"""One typed config tree, ``key=value`` overrides and validation.

Every key carries its meaning (and its choices, where it has a fixed set) in the schema itself:
``ganforge presets --keys`` and docs/configuration.md are generated from it. Every run writes its
config next to its results (``config.json``) and inside its checkpoints, so a run can always be
rebuilt from what it left behind. Values resolved at run time (shape, classes, precision,
device) are not written back into the config: they live in the run's ``resolved.json``.
The rules a config must satisfy are in :mod:`ganforge.validation`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import GanforgeError


class ConfigError(GanforgeError, ValueError):
    """A config value or override that cannot be used; the message says what to change."""


class FrozenConfigError(ConfigError, AttributeError):
    """An attempt to change a validated config."""


class _Section:
    """A part of the config tree that refuses changes once :func:`freeze` marked it: a
    validated config stays what validation checked."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise FrozenConfigError(
                f"this config was validated and cannot change ({type(self).__name__}.{name}); "
                "make a changed copy with ganforge.config.apply_overrides(cfg, ['key=value']) "
                "and validate that")
        object.__setattr__(self, name, value)


def _sections(cfg: "Config") -> list[_Section]:
    return [cfg, *(getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                   if isinstance(getattr(cfg, f.name), _Section))]


def freeze(cfg: "Config") -> "Config":
    """Mark ``cfg`` and its sections read-only, in place (validation does this to its copy)."""
    for part in _sections(cfg):
        part.__dict__["_frozen"] = True
    return cfg


def thawed_copy(cfg: "Config") -> "Config":
    """A changeable deep copy of ``cfg`` (validated or not), marked as not validated."""
    out = copy.deepcopy(cfg)
    for part in _sections(out):
        part.__dict__.pop("_frozen", None)
    out.__dict__.pop("_validated", None)
    return out


def _key(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class DataConfig(_Section):
    name: str = _key("gaussian2d", "dataset: the seed's 2-D Gaussian, an IDX dataset, Stacked "
                     "MNIST (three MNIST digits in the colour channels, 1,000 modes), the d2l "
                     "Pokemon sprites (found in the data roots or downloaded) or any image folder",
                     ("gaussian2d", "mnist", "fashion-mnist", "stacked-mnist", "pokemon",
                      "folder"))
    path: str = _key("", "folder datasets: the image folder; named datasets: an explicit "
                     "data directory instead of the data roots")
    split: str = _key("train", "IDX datasets: which split to train on", ("train", "test"))
    resolution: int = _key(0, "image side in pixels; 0 = the dataset's own: 28 for IDX, for "
                           "folders the power of two nearest the images' median shorter side, "
                           "in [32, 256] and at most 128 on a CPU when a run starts")
    channels: int = _key(0, "1 (grayscale) or 3 (RGB); 0 = the dataset's own (1 for IDX; for "
                         "folders 1 when the images are all grayscale, else 3)")
    num_points: int = _key(1000, "gaussian2d: how many points are drawn (the seed draws 1,000)")
    download: bool = _key(True, "named datasets: download (checksums verified) when missing and "
                          "online")
    limit: int = _key(0, "use only the first N examples (quick checks); 0 = all")
    max_pixels: int = _key(89_478_485, "refuse images with more pixels than this (decompression "
                           "bombs)")


@dataclass
class ModelConfig(_Section):
    arch: str = _key("toy", "architecture (the registered ones: see the choices); pure PyTorch")
    z_dim: int = _key(2, "latent dimension")
    g_width: int = _key(64, "DCGAN: G's base width n_G; StyleGAN2: channels(res) = "
                        "2 min(64 width / res, 4 width); FastGAN: 16 width at 4x4 halving to "
                        "2 width at 32x32 and 64x64; R3GAN: width up to 32x32, halving per "
                        "doubling above (at least 16) (the MLP ignores it)")
    d_width: int = _key(64, "DCGAN: D's base width n_D; StyleGAN2: as g_width, for D; FastGAN: "
                        "width at 32x32 and 64x64, doubling per halving to 8 width at 4x4")
    d_recon: float = _key(1.0, "FastGAN: weight of D's self-supervised reconstruction loss on "
                          "real images (0 = off)")
    w_dim: int = _key(256, "StyleGAN2: dimension of the intermediate latent w")
    mapping_layers: int = _key(4, "StyleGAN2: layers of the mapping network z -> w")
    style_mixing: float = _key(0.9, "StyleGAN2: share of training batches that mix two latents' "
                               "styles at a random layer (0 = off)")
    d_activation: str = _key("leaky_relu", "D's activation (relu is the d2l exercise)",
                             ("leaky_relu", "relu"))
    g_output: str = _key("tanh", "G's last activation (mlp, dcgan); hardtanh reaches exact black "
                         "and white", ("tanh", "hardtanh"))
    leaky_slope: float = _key(0.2, "negative slope of LeakyReLU")
    init: str = _key("d2l", "weight init: d2l = every parameter ~ N(0, init_std); dcgan = weights "
                     "~ N(0, init_std), BatchNorm gamma ~ N(1, init_std), biases 0; glorot = Keras' "
                     "default; torch = PyTorch's defaults", ("d2l", "dcgan", "glorot", "torch"))
    init_std: float = _key(0.02, "standard deviation of the d2l and dcgan inits")
    d_norm: str = _key("batch", "DCGAN discriminator normalisation: batch (d2l) or none (for "
                       "spectral norm, GP, R1)", ("batch", "none"))
    spectral_norm_d: bool = _key(False, "spectral normalisation of every D layer (Miyato et al. "
                                 "2018)")
    spectral_norm_g: bool = _key(False, "spectral normalisation of G's layers (SAGAN, BigGAN)")
    conditional: bool = _key(False, "class-conditional (labels from the data): DCGAN with "
                             "conditional BatchNorm, StyleGAN2 with a class embedding in the "
                             "mapping network, FastGAN with conditional BatchNorm; all with a "
                             "projection D")
    num_classes: int = _key(0, "conditional models: number of classes; 0 = taken from the data "
                            "(a non-zero value must match it)")
    d_hidden: int = _key(0, "toy D: hidden width of both layers; 0 = the seed's 5 and 3")
    blocks: int = _key(2, "R3GAN: residual blocks at each resolution, in G and in D")
    expansion: int = _key(2, "R3GAN: a residual block widens its channels this many times "
                          "(1x1 convolution) around its grouped 3x3 convolution")
    group_channels: int = _key(16, "R3GAN: channels per group of the grouped 3x3 convolution")


@dataclass
class LossConfig(_Section):
    name: str = _key("nonsaturating", "GAN loss (rpgan: relativistic pairing, R3GAN's)",
                     ("nonsaturating", "hinge", "wgan-gp", "lsgan", "rpgan"))
    real_label: float = _key(1.0, "target for real data; < 1 is one-sided label smoothing (the "
                             "TensorFlow tutorial uses 0.9)")
    gp_weight: float = _key(10.0, "wgan-gp: lambda of the gradient penalty")
    r1_gamma: float = _key(0.0, "R1 penalty gamma/2 * E||grad D(x)||^2 on real data; 0 = off")
    r2_gamma: float = _key(0.0, "R2 penalty gamma/2 * E||grad D(x)||^2 on generated data (R3GAN "
                           "uses R1 and R2 with one gamma); 0 = off")
    gamma_end: float = _key(1.0, "R1's and R2's gamma at the end of the run as a share of their "
                            "value, along a cosine (R3GAN anneals it 10x: 0.1); 1 = constant")
    r1_every: int = _key(16, "lazy R1 and R2: every k D steps, scaled by k (StyleGAN2); 1 = every "
                         "step")
    reduction: str = _key("mean", "loss over the batch: mean, or sum as d2l's "
                          "BCEWithLogitsLoss(reduction='sum')", ("mean", "sum"))
    d_terms: str = _key("average", "D loss = average (d2l) or sum (TensorFlow tutorial) of the "
                        "real and fake terms", ("average", "sum"))


@dataclass
class OptimizerConfig(_Section):
    name: str = _key("adam", "optimizer", ("adam", "rmsprop", "sgd"))
    lr: float = _key(2e-4, "learning rate")
    beta1: float = _key(0.9, "Adam beta1")
    beta2: float = _key(0.999, "Adam beta2")
    eps: float = _key(1e-8, "Adam/RMSprop epsilon (Keras uses 1e-7)")
    alpha: float = _key(0.99, "RMSprop smoothing (Keras calls it rho and defaults to 0.9)")
    momentum: float = _key(0.0, "RMSprop and SGD momentum (0 = none)")


@dataclass
class TrainConfig(_Section):
    epochs: int = _key(20, "passes over the data (the run ends earlier at train.max_minutes)")
    batch_size: int = _key(8, "images per step (the global batch under torchrun)")
    seed: int = _key(0, "base seed: weights, noise, data order")
    device: str = _key("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = _key(0, "CPU threads for torch; 0 keeps torch's default")
    drop_last: bool = _key(False, "drop the last, smaller batch of an epoch (the seeds keep it)")
    sync_bn: bool = _key(False, "torchrun on CUDA: BatchNorm statistics over the global batch")
    precision: str = _key("auto", "fp32, bf16 (autocast), fp16 (autocast + loss scaling), or auto: "
                          "bf16 where the hardware computes it natively (CUDA with bf16; CPUs with "
                          "AVX-512 BF16 or AMX), else fp32; fp32 reproduces the seeds' arithmetic",
                          ("fp32", "bf16", "fp16", "auto"))
    channels_last: bool = _key(False, "NHWC memory format for image models")
    compile: bool = _key(False, "torch.compile the forward passes")
    ema_kimg: float = _key(0.0, "G_ema half-life in thousands of images; 0 = no G_ema")
    ema_rampup: float = _key(0.05, "G_ema half-life <= this share of the images seen so far "
                             "(0 = off)")
    augment: str = _key("", "DiffAugment policy for every D input, e.g. translation,cutout,color; "
                        "empty = off")
    ada: bool = _key(False, "adaptive augmentation (ADA): every D input is augmented (flips by "
                     "90 degrees, translation, scaling, rotation, colour) with a probability p "
                     "adjusted from D's overfitting on real data")
    ada_target: float = _key(0.6, "ADA: target of r_t = E[sign(D(real))]; p rises while r_t is "
                             "above it")
    ada_kimg: float = _key(100.0, "ADA: thousands of images over which p can move from 0 to 1")
    xflip: bool = _key(False, "mirror real images left-right at random (for data sets whose "
                       "content is symmetric; the generator learns the mirrored set too)")
    lr_schedule: str = _key("constant", "linear or cosine: both learning rates fall to "
                            "train.lr_end of their value at the end of the run (the last step, "
                            "or train.max_minutes when that comes first)",
                            ("constant", "linear", "cosine"))
    lr_decay_start: float = _key(0.0, "linear or cosine schedule: share of the run at full rate "
                                 "before the decay begins, in [0, 1)")
    lr_end: float = _key(0.0, "linear or cosine schedule: the learning rates at the end as a share "
                         "of their configured values (R3GAN: 0.25)")
    beta2_end: float = _key(0.0, "Adam's beta2 (both optimizers) moves from optim_*.beta2 to this "
                            "by the end of the run along a cosine (R3GAN: 0.9 to 0.99); 0 = "
                            "constant")
    ema_kimg_end: float = _key(0.0, "G_ema's half-life moves from train.ema_kimg to this (thousands "
                               "of images) by the end of the run along a cosine; 0 = constant")
    max_minutes: float = _key(0.0, "wall-clock budget: stop (checkpoint, samples, summary) after "
                              "it; 0 = none")
    checkpoint_every: int = _key(1, "epochs between checkpoints; 0 = only at the end")
    checkpoint_steps: int = _key(0, "also checkpoint every N steps inside an epoch; 0 = off")
    checkpoint_minutes: float = _key(10.0, "also checkpoint when this much time passed since the "
                                     "last one; 0 = off")
    init_from: str = _key("", "start G, D and G_ema from another run's weights (a run directory, "
                          "a checkpoint or an export) on any data; the model and the image size "
                          "come from it, the counters start at 0; empty = random weights")
    init_optim: bool = _key(False, "with train.init_from: also take its optimizer moments and "
                            "augmentation state (same optimizers, classes and train.freeze_d)")
    freeze_d: int = _key(0, "Freeze-D (Mo et al. 2020): keep D's first K blocks from the input "
                         "side fixed (no gradient, no optimizer state); 0 = train all of D")
    memory_check: bool = _key(True, "refuse, before allocating, a model whose training needs more "
                              "memory than the device has free (estimated on the meta device)")


@dataclass
class ReportConfig(_Section):
    sample_every: int = _key(1, "epochs between sample grids (the tutorial saves every 50); 0 = "
                             "not by epochs (with sample_minutes=0: the last grid only)")
    sample_minutes: float = _key(0.0, "also save a grid when this much time passed since the "
                                 "last one (for folders of any size); 0 = off")
    grid_rows: int = _key(3, "rows of the sample grid (d2l shows 3 x 7)")
    grid_cols: int = _key(7, "columns of the sample grid; a conditional run shows class k in "
                          "column k")
    scatter_points: int = _key(100, "2-D data: points of each kind in the per-epoch scatter")
    tensorboard: str = _key("auto", "TensorBoard logs: auto (when installed), on (required), off",
                            ("auto", "on", "off"))


@dataclass
class EvalConfig(_Section):
    every: int = _key(0, "epochs between evaluations during training (FID for images, the exact "
                      "W2 for gaussian2d; the best is kept as checkpoint_best.pt); 0 = off")
    features: str = _key("classifier", "feature network of evaluation during training: the "
                         "domain classifier (MNIST-like, fast) or TF-Inception",
                         ("classifier", "inception"))
    n: int = _key(2000, "generated samples per evaluation during training")


@dataclass
class HealthConfig(_Section):
    warmup_epochs: int = _key(1, "no alarms during the first epochs (every GAN starts unbalanced)")
    warmup_kimg: float = _key(0.0, "nor before this many thousand images were seen (an epoch of a "
                              "small folder is too short a warm-up)")
    max_retries: int = _key(3, "rollbacks after a non-finite loss or weight before stopping")
    lr_decay: float = _key(0.5, "learning rates are multiplied by this at each rollback, in (0, 1]")
    d_acc_limit: float = _key(0.99, "alarm: D's accuracy over health.window steps stays above this")
    window: int = _key(200, "steps in the D-accuracy window")
    collapse_ratio: float = _key(0.2, "alarm: sample diversity below this share of the data's")
    g_loss_limit: float = _key(10.0, "alarm: an epoch's mean G loss above this (G diverging)")


@dataclass
class Config(_Section):
    name: str = _key("custom", "the run's name (the preset's, unless overridden)")
    description: str = _key("", "one line describing the run (the preset's summary and citation)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim_G: OptimizerConfig = field(default_factory=OptimizerConfig)
    optim_D: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        cfg = cls()
        for key, value in _flatten(_migrated(d)):
            set_value(cfg, key, value)
        return cfg


def _migrated(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict written by an older version, in today's keys: SGD read its momentum from
    ``beta1`` before ``momentum`` existed."""
    d = copy.deepcopy(d)
    for section in ("optim_G", "optim_D"):
        oc = d.get(section)
        if isinstance(oc, dict) and oc.get("name") == "sgd" and "momentum" not in oc:
            oc["momentum"] = oc.pop("beta1", 0.9)
    return d


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


@dataclass(frozen=True)
class KeySpec:
    """One overridable key of the schema: what ``presets --keys`` and the docs list."""

    key: str
    type: str
    default: Any
    choices: tuple[str, ...]
    help: str


def schema_specs() -> list[KeySpec]:
    """Every key a user may override (``train.epochs`` ...), with type, default, choices and
    meaning as the schema states them, in schema order. :func:`ganforge.validation.key_specs`
    adds what the registries know (the architectures, which keys apply to which)."""
    specs = []
    root = Config()
    top = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        value = getattr(root, section.name)
        if not dataclasses.is_dataclass(value):
            specs.append(KeySpec(section.name, top[section.name].__name__, value, (),
                                 section.metadata.get("help", "")))
            continue
        hints = typing.get_type_hints(type(value))
        for f in dataclasses.fields(value):
            specs.append(KeySpec(f"{section.name}.{f.name}", hints[f.name].__name__,
                                 getattr(value, f.name), tuple(f.metadata.get("choices", ())),
                                 f.metadata.get("help", "")))
    return specs


def all_keys() -> list[str]:
    """Every dotted key a user may override, e.g. ``train.epochs``."""
    return [s.key for s in schema_specs()]


def _coerce(text: Any, typ: type, key: str) -> Any:
    if not isinstance(text, str):
        if typ is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        if isinstance(text, typ) and not (typ is int and isinstance(text, bool)):
            return text
        raise ConfigError(f"{key} must be {typ.__name__}, got {text!r}")
    try:
        if typ is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(f"{key} must be {typ.__name__}, got {text!r}") from None


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set ``key`` (dotted) on ``cfg``, converting strings to the field's type."""
    keys = all_keys()
    if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown config key '{key}'.{hint} Run `ganforge presets --keys` to list every key."
        )
    if cfg.__dict__.get("_frozen"):
        raise FrozenConfigError(f"this config was validated and cannot change ({key}); use "
                                "apply_overrides(cfg, [...]), which returns a changed copy")
    cfg.__dict__.pop("_validated", None)  # a changed config must be validated again
    *parents, leaf = key.split(".")
    obj: Any = cfg
    for p in parents:
        obj = getattr(obj, p)
    typ = typing.get_type_hints(type(obj))[leaf]
    setattr(obj, leaf, _coerce(value, typ, key))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied (``cfg`` itself is not changed)."""
    cfg = thawed_copy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}' is not of the form key=value (e.g. train.epochs=1)"
            )
        key, value = item.split("=", 1)
        set_value(cfg, key.strip(), value.strip())
    return cfg
