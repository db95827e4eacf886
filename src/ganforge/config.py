"""One typed config tree, the presets table, and ``key=value`` overrides.

Every run writes its fully resolved config next to its results (``config.json``) and inside
its checkpoints, so a run can always be rebuilt from what it left behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import GanforgeError


class ConfigError(GanforgeError, ValueError):
    """A config value or override that cannot be used; the message says what to change."""


@dataclass
class DataConfig:
    name: str = "gaussian2d"  # gaussian2d | mnist | fashion-mnist | folder
    path: str = ""  # folder datasets: the image folder; IDX datasets: an explicit data directory
    split: str = "train"  # IDX datasets: train | test
    resolution: int = 0  # 0 = the dataset's own (28 for IDX, 64 for folders)
    channels: int = 0  # 0 = the dataset's own (1 for IDX, 3 for folders)
    num_points: int = 1000  # gaussian2d: how many points the seed draws
    download: bool = True  # IDX datasets: download when missing and online
    limit: int = 0  # use only the first N examples (quick checks); 0 = all
    max_pixels: int = 89_478_485  # refuse images larger than this (decompression bombs)


@dataclass
class ModelConfig:
    arch: str = "toy"  # toy | mlp | dcgan
    z_dim: int = 2
    g_width: int = 64  # DCGAN n_G; MLP ignores it
    d_width: int = 64  # DCGAN n_D
    d_activation: str = "leaky_relu"  # leaky_relu | relu (the d2l exercise)
    g_output: str = "tanh"  # G's last activation (mlp, dcgan): tanh | hardtanh (reaches exact black)
    leaky_slope: float = 0.2
    init: str = "d2l"  # d2l: every parameter ~ N(0, init_std) as in the d2l PyTorch code;
    # dcgan: conv/linear weights ~ N(0, init_std), BatchNorm gamma ~ N(1, init_std), biases 0;
    # glorot: Keras' default (Glorot-uniform weights, zero biases); torch: PyTorch's defaults
    init_std: float = 0.02
    d_norm: str = "batch"  # DCGAN discriminator: batch (d2l) | none (for spectral norm, GP, R1)
    spectral_norm_d: bool = False  # spectral normalisation of every D layer (Miyato et al. 2018)
    spectral_norm_g: bool = False  # ... and of G's layers (SAGAN, BigGAN)
    conditional: bool = False  # class-conditional: conditional BatchNorm in G, projection D
    num_classes: int = 0  # filled from the dataset's labels when conditional
    d_hidden: int = 0  # toy D: hidden width of both layers; 0 = the seed's 5 and 3


@dataclass
class LossConfig:
    name: str = "nonsaturating"  # nonsaturating | hinge | wgan-gp | lsgan
    real_label: float = 1.0  # < 1 is one-sided label smoothing (the tutorial uses 0.9)
    gp_weight: float = 10.0  # wgan-gp: lambda of the gradient penalty
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * E||grad D(x)||^2 on real data; 0 = off
    r1_every: int = 16  # lazy R1: every k D steps, scaled by k (StyleGAN2)
    reduction: str = "mean"  # mean | sum over the batch (d2l's BCEWithLogitsLoss(reduction='sum'))
    d_terms: str = "average"  # D loss = average (d2l) | sum (TF tutorial) of the real and fake terms


@dataclass
class OptimizerConfig:
    name: str = "adam"  # adam | rmsprop | sgd
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    alpha: float = 0.99  # RMSprop smoothing (Keras calls it rho and defaults to 0.9)


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default
    drop_last: bool = False  # the seeds keep the last, smaller batch
    sync_bn: bool = False  # torchrun on CUDA: BatchNorm statistics over the global batch
    # fp32 | bf16 (autocast) | fp16 (autocast + loss scaling) | auto: bf16 where the hardware
    # computes it natively (CUDA with bf16; CPUs with AVX-512 BF16 or AMX), else fp32
    precision: str = "fp32"
    channels_last: bool = False  # NHWC memory format for image models
    compile: bool = False  # torch.compile the forward passes
    ema_kimg: float = 0.0  # G_ema half-life in thousands of images; 0 = no G_ema
    ema_rampup: float = 0.05  # half-life <= this share of the images seen so far (0 = off)
    augment: str = ""  # DiffAugment policy for D's inputs, e.g. translation,cutout,color
    lr_schedule: str = "constant"  # constant | linear: both learning rates decay to 0 at the end
    # of the run -- the last epoch's last step, or train.max_minutes when that comes first
    lr_decay_start: float = 0.0  # linear: share of the run at full rate before the decay begins
    max_minutes: float = 0.0  # wall-clock budget: stop (checkpoint, samples, summary) after it
    checkpoint_every: int = 1  # epochs between checkpoints (crash safety); 0 = only at the end
    checkpoint_steps: int = 0  # also every N steps inside an epoch; 0 = off
    checkpoint_minutes: float = 10.0  # also when this much time passed since the last one; 0 = off


@dataclass
class ReportConfig:
    sample_every: int = 1  # epochs between sample grids (the tutorial saves every 50)
    grid_rows: int = 3  # d2l shows 3 x 7 samples
    grid_cols: int = 7
    scatter_points: int = 100  # 2-D data: points of each kind in the per-epoch scatter
    tensorboard: str = "auto"  # auto (log when installed) | on (require it) | off


@dataclass
class EvalConfig:
    every: int = 0  # epochs between evaluations during training; 0 = off
    features: str = "classifier"  # classifier (MNIST-like, fast) | inception
    n: int = 2000  # generated samples per evaluation
    # The metric is FID for images and the exact 2-Wasserstein distance for gaussian2d; the
    # checkpoint with the lowest value is kept as checkpoint_best.pt beside checkpoint.pt.


@dataclass
class HealthConfig:
    warmup_epochs: int = 1  # no alarms during the first epochs (every GAN starts unbalanced)
    max_retries: int = 3  # rollbacks after a non-finite loss or weight before stopping
    lr_decay: float = 0.5  # learning rates are multiplied by this at each rollback
    d_acc_limit: float = 0.99  # alarm: D's accuracy over `window` steps stays above this
    window: int = 200  # steps in the D-accuracy window
    collapse_ratio: float = 0.2  # alarm: sample diversity below this share of the data's
    g_loss_limit: float = 10.0  # alarm: an epoch's mean G loss above this (G diverging)


@dataclass
class Config:
    name: str = "custom"
    description: str = ""
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
        for key, value in _flatten(d):
            set_value(cfg, key, value)
        return cfg


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def all_keys(cfg: Config | None = None) -> list[str]:
    """Every dotted key a user may override, e.g. ``train.epochs``."""
    return [k for k, _ in _flatten((cfg or Config()).to_dict())]


def _coerce(text: Any, typ: type, key: str) -> Any:
    if not isinstance(text, str):
        if typ is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        if isinstance(text, typ):
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
    *parents, leaf = key.split(".")
    obj: Any = cfg
    for p in parents:
        obj = getattr(obj, p)
    typ = typing.get_type_hints(type(obj))[leaf]
    setattr(obj, leaf, _coerce(value, typ, key))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}' is not of the form key=value (e.g. train.epochs=1)"
            )
        key, value = item.split("=", 1)
        set_value(cfg, key.strip(), value.strip())
    return cfg


_CHOICES = {
    "data.name": ("gaussian2d", "mnist", "fashion-mnist", "folder"),
    "data.split": ("train", "test"),
    "model.arch": ("toy", "mlp", "dcgan"),
    "model.d_activation": ("leaky_relu", "relu"),
    "model.g_output": ("tanh", "hardtanh"),
    "model.init": ("d2l", "dcgan", "glorot", "torch"),
    "loss.name": ("nonsaturating", "hinge", "wgan-gp", "lsgan"),
    "model.d_norm": ("batch", "none"),
    "loss.reduction": ("mean", "sum"),
    "loss.d_terms": ("average", "sum"),
    "train.lr_schedule": ("constant", "linear"),
    "eval.features": ("classifier", "inception"),
    "report.tensorboard": ("auto", "on", "off"),
    "train.precision": ("fp32", "bf16", "fp16", "auto"),
    "optim_G.name": ("adam", "rmsprop", "sgd"),
    "optim_D.name": ("adam", "rmsprop", "sgd"),
}


def validate(cfg: Config) -> Config:
    """Check ranges and combinations; raise :class:`ConfigError` saying what to change."""
    flat = dict(_flatten(cfg.to_dict()))
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {flat[key]!r}")
    positive = ["train.epochs", "train.batch_size", "model.z_dim", "report.sample_every",
                "report.grid_rows", "report.grid_cols", "data.num_points",
                "optim_G.lr", "optim_D.lr", "model.g_width", "model.d_width"]
    for key in positive:
        if not flat[key] > 0:
            raise ConfigError(f"{key} must be > 0, got {flat[key]!r}")
    for key in ("train.threads", "train.checkpoint_every", "eval.every", "health.max_retries",
                "health.warmup_epochs",
                "train.checkpoint_steps", "train.checkpoint_minutes", "train.seed",
                "data.resolution", "data.limit", "data.max_pixels", "data.channels",
                "train.ema_kimg", "train.ema_rampup", "loss.gp_weight", "loss.r1_gamma",
                "model.num_classes", "model.d_hidden", "train.max_minutes"):
        if flat[key] < 0:
            raise ConfigError(f"{key} must be >= 0, got {flat[key]!r}")
    if not 0.0 < cfg.loss.real_label <= 1.0:
        raise ConfigError(f"loss.real_label must be in (0, 1], got {cfg.loss.real_label}")
    if cfg.loss.real_label != 1.0 and cfg.loss.name in ("hinge", "wgan-gp"):
        raise ConfigError(f"loss.real_label={cfg.loss.real_label} (label smoothing) applies to the "
                          f"nonsaturating and lsgan losses, not to {cfg.loss.name}; set "
                          "loss.real_label=1")
    if not 0.0 <= cfg.train.lr_decay_start < 1.0:
        raise ConfigError(f"train.lr_decay_start is the share of the run before the learning "
                          f"rates start to decay: it must be in [0, 1), got {cfg.train.lr_decay_start}")
    if cfg.loss.r1_every < 1:
        raise ConfigError(f"loss.r1_every must be >= 1, got {cfg.loss.r1_every}")
    uses_input_grads = cfg.loss.name == "wgan-gp" or cfg.loss.r1_gamma > 0
    if uses_input_grads and cfg.model.arch == "dcgan" and cfg.model.d_norm == "batch":
        raise ConfigError("gradient penalties (loss.name=wgan-gp, loss.r1_gamma > 0) are per-sample "
                          "and BatchNorm mixes the samples of a batch: set model.d_norm=none")
    if cfg.model.g_output != "tanh" and cfg.model.arch == "toy":
        raise ConfigError("model.g_output chooses the last activation of the mlp and dcgan "
                          "generators; the toy generator is linear: leave model.g_output=tanh")
    if cfg.model.conditional and cfg.model.arch != "dcgan":
        raise ConfigError(f"model.conditional=true needs model.arch=dcgan (conditional BatchNorm "
                          f"and a projection discriminator); got model.arch={cfg.model.arch}")
    if cfg.model.conditional and cfg.data.name == "gaussian2d":
        raise ConfigError("model.conditional=true needs labelled data (mnist, fashion-mnist or an "
                          "image folder with class sub-folders)")
    if cfg.train.augment:
        from .augment import parse_policy

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
    if cfg.model.arch == "dcgan" and res and (res < 8 or res & (res - 1)):
        raise ConfigError(
            f"data.resolution must be a power of two >= 8 for the DCGAN, got {res} "
            "(use 32 for MNIST-like data, 64 for the Pokemon sprites)"
        )
    if (cfg.model.arch == "toy") != (cfg.data.name == "gaussian2d"):
        raise ConfigError(
            f"model.arch={cfg.model.arch} does not fit data.name={cfg.data.name}: the toy model "
            "is for 2-D points (gaussian2d) and image models are for image datasets"
        )
    if not 0 < cfg.health.lr_decay <= 1:
        raise ConfigError(f"health.lr_decay must be in (0, 1], got {cfg.health.lr_decay}")
    if cfg.health.window < 1:
        raise ConfigError(f"health.window must be >= 1, got {cfg.health.window}")
    if cfg.eval.every and cfg.eval.n < 2:
        raise ConfigError(f"eval.n must be >= 2, got {cfg.eval.n}")
    if (cfg.eval.every and cfg.eval.features == "classifier"
            and cfg.data.name not in ("gaussian2d", "mnist", "fashion-mnist")):
        raise ConfigError("eval.features=classifier exists for MNIST and Fashion-MNIST only; "
                          "use eval.features=inception for image folders")
    if cfg.data.path:  # `data.path=~/x` is not expanded by the shell
        cfg.data.path = os.path.expanduser(cfg.data.path)
    if cfg.data.name == "folder" and not cfg.data.path:
        raise ConfigError("data.path must name an image folder when data.name=folder "
                          "(e.g. data.path=../shared/data/pokemon)")
    return cfg


# ----------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line for `ganforge presets`
    source: str  # which seed document it reproduces
    build: Callable[[], Config]


def _gaussian2d() -> Config:
    # d2l "Generative Adversarial Networks" (basic GAN): lr_D 0.05, lr_G 0.005, latent 2, batch 8,
    # 20 epochs, Adam with default betas, BCE losses, N(0, 0.02) init.
    return Config(
        data=DataConfig(name="gaussian2d", num_points=1000),
        model=ModelConfig(arch="toy", z_dim=2, init="d2l"),
        loss=LossConfig(reduction="sum"),
        optim_G=OptimizerConfig(name="adam", lr=0.005),
        optim_D=OptimizerConfig(name="adam", lr=0.05),
        train=TrainConfig(epochs=20, batch_size=8),
        report=ReportConfig(sample_every=1),
    )


def _mnist_mlp() -> Config:
    # Turkish TensorFlow vanilla-GAN tutorial: MLP pair with LeakyReLU(0.01), Adam(2e-4) for G,
    # RMSprop(2e-4) for D, batch 256, one-sided label smoothing 0.9, 300 epochs, images every
    # 50 epochs. Keras defaults are kept: Glorot-uniform init, eps 1e-7, RMSprop rho 0.9.
    return Config(
        data=DataConfig(name="mnist", resolution=28, channels=1),
        model=ModelConfig(arch="mlp", z_dim=100, leaky_slope=0.01, init="glorot"),
        loss=LossConfig(real_label=0.9, d_terms="sum"),
        optim_G=OptimizerConfig(name="adam", lr=2e-4, eps=1e-7),
        optim_D=OptimizerConfig(name="rmsprop", lr=2e-4, alpha=0.9, eps=1e-7),
        train=TrainConfig(epochs=300, batch_size=256),
        report=ReportConfig(sample_every=50, grid_rows=4, grid_cols=8),
    )


def _dcgan(data: DataConfig, epochs: int) -> Config:
    # d2l "Deep Convolutional GANs": n_G = n_D = 64, latent 100, Adam lr 0.005 with beta1 0.5,
    # batch 256, BCE losses, every parameter initialised from N(0, 0.02).
    return Config(
        data=data,
        model=ModelConfig(arch="dcgan", z_dim=100, g_width=64, d_width=64, leaky_slope=0.2,
                          init="d2l"),
        loss=LossConfig(reduction="sum"),
        optim_G=OptimizerConfig(name="adam", lr=0.005, beta1=0.5),
        optim_D=OptimizerConfig(name="adam", lr=0.005, beta1=0.5),
        train=TrainConfig(epochs=epochs, batch_size=256),
        report=ReportConfig(sample_every=1, grid_rows=3, grid_cols=7),
    )


def _gaussian2d_best() -> Config:
    # The seed's toy, fitted tightly in less wall time than the seed's recipe: a fresh sample of
    # 100,000 points (1,000 points pin the mean down to only ~0.07), least-squares loss, a wider
    # D (16-16 tanh), higher learning rates with Adam betas (0.5, 0.99) decayed linearly to 0,
    # batch 256 for 8 epochs (3,128 steps of 256 cost less than the seed's 2,500 of 8 plus its
    # per-epoch scatters), and G_ema. Measured by benchmarks/gaussian_seeds.py.
    cfg = _gaussian2d()
    cfg.data.num_points = 100_000
    cfg.model.d_hidden = 16
    cfg.loss = LossConfig(name="lsgan")
    cfg.optim_G = OptimizerConfig(name="adam", lr=0.02, beta1=0.5, beta2=0.99)
    cfg.optim_D = OptimizerConfig(name="adam", lr=0.04, beta1=0.5, beta2=0.99)
    cfg.train = TrainConfig(epochs=8, batch_size=256, ema_kimg=20, lr_schedule="linear")
    return cfg


def _best_32(name: str) -> Config:
    # A modern recipe on the DCGAN-32 family for MNIST-like data: class-conditional (conditional
    # BatchNorm in G, projection D; labels are free and conditioning is the cheapest FID gain),
    # hinge loss, spectral norm on a BatchNorm-free D, G_ema (half-life 10k images), batch 64, and
    # a 60-minute wall-clock budget (the issue's) with up to 100 epochs when the hardware is
    # faster. No augmentation: 60,000 images are plenty. Adam lr 6e-4 with betas (0, 0.99) for
    # both nets: chosen by a 28-run sweep at 10 epochs (benchmarks/sweep.py on a GPU lease;
    # README, "Choosing the recipe"): domain FID ~1.9 on Fashion-MNIST and ~1.2 on MNIST over
    # epochs 8-10, against ~4.3 and ~1.6 for the literature's 2e-4 with betas (0.5, 0.999).
    # hardtanh output: with tanh, 8.3% of G_ema's MNIST pixels were faint grey specks (levels
    # 1-40; the test set 2.5%); with hardtanh 1.5%, and 80.5% exactly black against the test
    # set's 80.7% (20 min side by side, one core each; benchmarks/background_pixels.py).
    return Config(
        data=DataConfig(name=name, resolution=32, channels=1),
        model=ModelConfig(arch="dcgan", z_dim=128, g_width=64, d_width=64, leaky_slope=0.1,
                          init="dcgan", d_norm="none", spectral_norm_d=True, conditional=True,
                          g_output="hardtanh"),
        loss=LossConfig(name="hinge"),
        optim_G=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        optim_D=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(epochs=100, batch_size=64, ema_kimg=10, max_minutes=60),
        report=ReportConfig(sample_every=1, grid_rows=4, grid_cols=10),
        eval=EvalConfig(every=1, features="classifier", n=5000),
    )


def _fashion_best() -> Config:
    # The *-best recipe plus bf16 autocast where the CPU/GPU computes bf16 natively
    # (train.precision=auto; fp32 elsewhere), in NHWC layout: on a 2-core Zen 4 with AVX-512 BF16
    # a step is 1.3-1.7x faster than fp32 (benchmarks/precision.py), and the hour saw 1.78M images
    # instead of 1.29M: Inception FID 9.42 against fp32's 11.18. G_ema half-life 20k images: in a
    # 20-minute pair the ramp-up held a 50k setting at ~19k, which gave 19.4 against 19.6 for 10k
    # (within noise; README, "Quality"). mnist-best keeps the fp32 recipe its README row was
    # measured with.
    cfg = _best_32("fashion-mnist")
    cfg.train.precision = "auto"
    cfg.train.channels_last = True
    cfg.train.ema_kimg = 20
    return cfg


def _pokemon_best() -> Config:
    # Small-data recipe for the sprites: DiffAugment (translation, cutout, colour) so D cannot
    # memorise 5,080 images, hinge loss, spectral-norm D without BatchNorm, G_ema, batch 64, and
    # half the d2l widths (32) so ~4x more images fit in the same time. Adam 6e-4 with betas
    # (0, 0.99), the *-best recipe's: at 20 minutes against pokemon-dcgan's 415.8 it gives FID
    # 167.8 (0.40x) where 2e-4 with betas (0.5, 0.999) gave 253 (0.59x); a wider D (64) saw 4x
    # fewer images and lost (271.7 with 6e-4, 310.1 with 2e-4). README, "Quality".
    return Config(
        data=DataConfig(name="folder", path="../shared/data/pokemon", resolution=64, channels=3),
        model=ModelConfig(arch="dcgan", z_dim=128, g_width=32, d_width=32, leaky_slope=0.1,
                          init="dcgan", d_norm="none", spectral_norm_d=True),
        loss=LossConfig(name="hinge"),
        optim_G=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        optim_D=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(epochs=400, batch_size=64, ema_kimg=10, max_minutes=40,
                          augment="translation,cutout,color"),
        report=ReportConfig(sample_every=10, grid_rows=3, grid_cols=7),
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("gaussian2d", "basic GAN learning a 2-D Gaussian (1,000 points, 20 epochs)",
               "d2l basic GAN (d2l-basic-gan-2d-gaussian.tr.md)", _gaussian2d),
        Preset("mnist-mlp", "vanilla MLP GAN on MNIST, label smoothing 0.9 (300 epochs)",
               "TensorFlow vanilla-GAN tutorial (tf-vanilla-gan-mnist.tr.md)", _mnist_mlp),
        Preset("pokemon-dcgan", "DCGAN on the 64x64 Pokemon sprites (20 epochs)",
               "d2l DCGAN (d2l-dcgan-pokemon*.md)",
               lambda: _dcgan(DataConfig(name="folder", path="../shared/data/pokemon",
                                         resolution=64, channels=3), epochs=20)),
        Preset("fashion-dcgan", "d2l DCGAN recipe on Fashion-MNIST at 32x32 (the exercise)",
               "d2l DCGAN, exercise 2 (d2l-dcgan-pokemon*.md)",
               lambda: _dcgan(DataConfig(name="fashion-mnist", resolution=32, channels=1),
                              epochs=20)),
        Preset("mnist-dcgan", "d2l DCGAN recipe on MNIST at 32x32",
               "d2l DCGAN applied to MNIST",
               lambda: _dcgan(DataConfig(name="mnist", resolution=32, channels=1), epochs=20)),
        Preset("gaussian2d-best", "the 2-D toy fitted to < 0.03 mean / < 3% covariance error",
               "issue 5: beyond the d2l basic GAN", _gaussian2d_best),
        Preset("mnist-best", "conditional SN-DCGAN, hinge, G_ema on MNIST (60-minute budget)",
               "issue 5: beat the published MNIST FIDs", lambda: _best_32("mnist")),
        Preset("fashion-best", "conditional SN-DCGAN, hinge, G_ema on Fashion-MNIST (60 min)",
               "issue 5: beat the published Fashion-MNIST FIDs", _fashion_best),
        Preset("pokemon-best", "SN-DCGAN, hinge, DiffAugment, G_ema on the sprites (40 min)",
               "issue 5: make a small image folder train well", _pokemon_best),
    ]
}


def from_preset(name: str, overrides: list[str] | None = None) -> Config:
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1, cutoff=0.4)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown preset '{name}'.{hint} Available: {', '.join(PRESETS)} "
            "(`ganforge presets` describes each)."
        )
    preset = PRESETS[name]
    cfg = preset.build()
    cfg.name = preset.name
    cfg.description = f"{preset.summary}; from {preset.source}"
    apply_overrides(cfg, overrides or [])
    return validate(cfg)
