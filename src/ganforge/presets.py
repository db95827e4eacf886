"""Named presets, each citing the paper or tutorial it follows.

A preset is a function that builds a :class:`~ganforge.config.Config`; ``from_preset`` applies
``key=value`` overrides to it and returns the validated result.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from .config import (Config, ConfigError, DataConfig, EvalConfig, HealthConfig, LossConfig,
                     ModelConfig, OptimizerConfig, ReportConfig, TrainConfig, apply_overrides)
from .validation import validate, without_inapplicable

D2L = "Zhang, Lipton, Li & Smola, Dive into Deep Learning (d2l.ai)"
TF_TUTORIAL = ("M. Murat Arat, \"Üretken Çekişmeli Ağlar (GANs) - 2. Bölüm\" (TensorFlow vanilla "
               "GAN on MNIST, after Goodfellow et al. 2014)")


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line for `ganforge presets`
    citation: str  # the paper(s) or tutorial the recipe follows
    build: Callable[[], Config]
    # (key, placeholder, what it is): keys a user must set, e.g. ("data.path", "DIR", "...")
    needs: tuple[tuple[str, str, str], ...] = ()


def _gaussian2d() -> Config:
    # d2l "Generative Adversarial Networks" (basic GAN): lr_D 0.05, lr_G 0.005, latent 2, batch 8,
    # 20 epochs, Adam with default betas, BCE losses summed over the batch, N(0, 0.02) init.
    return Config(
        data=DataConfig(name="gaussian2d", num_points=1000),
        model=ModelConfig(arch="toy", z_dim=2, init="d2l"),
        loss=LossConfig(reduction="sum"),
        optim_G=OptimizerConfig(name="adam", lr=0.005),
        optim_D=OptimizerConfig(name="adam", lr=0.05),
        # fp32: the toy is dispatch-bound (bf16 casts only add operators) and its 2-D fit is
        # judged to the second decimal.
        train=TrainConfig(epochs=20, batch_size=8, precision="fp32"),
        report=ReportConfig(sample_every=1),
    )


def _mnist_mlp() -> Config:
    # The TensorFlow vanilla-GAN tutorial: MLP pair with LeakyReLU(0.01), Adam(2e-4) for G,
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
        # The MLP pair leaves its near-identical first samples slowly: the fixed-noise diversity
        # is 0.03-0.13 of the data's for three epochs and 0.4+ from the fourth on
        # (benchmarks/health_warmup.py), so alarms wait for 300k images (5 epochs).
        health=HealthConfig(warmup_kimg=300),
    )


def _dcgan(data: DataConfig, epochs: int = 20) -> Config:
    # d2l "Deep Convolutional GANs": n_G = n_D = 64, latent 100, Adam lr 0.005 with beta1 0.5,
    # batch 256, BCE losses, every parameter initialised from N(0, 0.02).
    return Config(
        data=data,
        model=ModelConfig(arch="dcgan", z_dim=100, g_width=64, d_width=64, leaky_slope=0.2,
                          init="d2l"),
        loss=LossConfig(reduction="sum"),
        optim_G=OptimizerConfig(name="adam", lr=0.005, beta1=0.5),
        optim_D=OptimizerConfig(name="adam", lr=0.005, beta1=0.5),
        # NHWC: 1.1-1.2x faster steps here (benchmarks/throughput.py); the arithmetic is the same.
        train=TrainConfig(epochs=epochs, batch_size=256, channels_last=True),
        report=ReportConfig(sample_every=1, grid_rows=3, grid_cols=7),
    )


def _pokemon_dcgan() -> Config:
    # The d2l recipe on the 5,080 sprites. Its fixed-noise diversity is 0.004 and 0.11 of the
    # data's after epochs 1 and 2 and 0.48+ from epoch 5 (benchmarks/health_warmup.py): alarms
    # wait for 25k images (5 epochs) so a run that is learning raises none.
    cfg = _dcgan(DataConfig(name="pokemon", resolution=64, channels=3))
    cfg.health = HealthConfig(warmup_kimg=25)
    return cfg


def _gaussian2d_best() -> Config:
    # The seed's toy, fitted tightly in less wall time than the seed's recipe: a fresh sample of
    # 100,000 points (1,000 points pin the mean down to only ~0.07), least-squares loss, a wider
    # D (16-16 tanh), higher learning rates with Adam betas (0.5, 0.99) decayed linearly to 0,
    # batch 256 for 8 epochs, and G_ema. Measured by benchmarks/gaussian_seeds.py.
    cfg = _gaussian2d()
    cfg.data.num_points = 100_000
    cfg.model.d_hidden = 16
    cfg.loss = LossConfig(name="lsgan")
    cfg.optim_G = OptimizerConfig(name="adam", lr=0.02, beta1=0.5, beta2=0.99)
    cfg.optim_D = OptimizerConfig(name="adam", lr=0.04, beta1=0.5, beta2=0.99)
    cfg.train = TrainConfig(epochs=8, batch_size=256, ema_kimg=20, lr_schedule="linear",
                            precision="fp32")
    return cfg


def _best_32(name: str) -> Config:
    # A modern recipe on the DCGAN-32 family for MNIST-like data: class-conditional (conditional
    # BatchNorm in G, projection D), hinge loss, spectral norm on a BatchNorm-free D, G_ema
    # (half-life 10k images), batch 64, a 60-minute wall-clock budget with up to 100 epochs.
    # No augmentation: 60,000 images are plenty. Adam 6e-4 with betas (0, 0.99) for both nets,
    # chosen by a 28-run sweep at 10 epochs (benchmarks/sweep.py; docs/results.md). hardtanh
    # output: with tanh 8.3% of G_ema's MNIST pixels were faint grey specks (the test set 2.5%),
    # with hardtanh 1.5% (benchmarks/background_pixels.py).
    return Config(
        data=DataConfig(name=name, resolution=32, channels=1),
        model=ModelConfig(arch="dcgan", z_dim=128, g_width=64, d_width=64, leaky_slope=0.1,
                          init="dcgan", d_norm="none", spectral_norm_d=True, conditional=True,
                          g_output="hardtanh"),
        loss=LossConfig(name="hinge"),
        optim_G=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        optim_D=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(epochs=100, batch_size=64, ema_kimg=10, max_minutes=60,
                          channels_last=True),
        report=ReportConfig(sample_every=1, grid_rows=4, grid_cols=10),
        eval=EvalConfig(every=1, features="classifier", n=5000),
    )


def _fashion_best() -> Config:
    # The *-best recipe (like every image preset: bf16 autocast where the CPU/GPU computes bf16
    # natively, NHWC) with a G_ema half-life of 20k images.
    cfg = _best_32("fashion-mnist")
    cfg.train.ema_kimg = 20
    return cfg


def _stacked_best() -> Config:
    # fashion-best's SN-DCGAN, unconditional, on Stacked MNIST's 1,000 modes in 60 minutes:
    # widths 48 instead of 64 (fewer FLOPs a step, so more images in the hour: 2.1M on a 2-core
    # CPU, docs/results.md), both learning rates falling along a cosine to a tenth over the
    # second half of the budget, and G_ema's half-life growing from 20k to 50k images.
    cfg = _best_32("stacked-mnist")
    cfg.data = DataConfig(name="stacked-mnist", resolution=32, channels=3)
    cfg.model.conditional = False
    cfg.model.g_width = cfg.model.d_width = 48
    cfg.train.ema_kimg, cfg.train.ema_kimg_end = 20, 50
    cfg.train.lr_schedule, cfg.train.lr_decay_start, cfg.train.lr_end = "cosine", 0.5, 0.1
    cfg.eval = EvalConfig(every=0)
    cfg.report = ReportConfig(sample_every=0, sample_minutes=2, grid_rows=4, grid_cols=8)
    return cfg


def _sn_dcgan_diffaugment(data: DataConfig, train: dict, report: ReportConfig,
                          health: HealthConfig | None = None) -> Config:
    # The small-data recipe that measured best per CPU-minute on colour images (docs/results.md
    # compares StyleGAN2-style, FastGAN-style and ADA with it): DiffAugment (translation,
    # cutout, colour) so D cannot memorise a few thousand images, hinge loss, spectral-norm D
    # without BatchNorm, G_ema, batch 64, half the d2l widths (32) so ~4x more images fit in the
    # same time, and Adam 6e-4 with betas (0, 0.99) as the *-best recipe.
    return Config(
        data=data,
        model=ModelConfig(arch="dcgan", z_dim=128, g_width=32, d_width=32, leaky_slope=0.1,
                          init="dcgan", d_norm="none", spectral_norm_d=True),
        loss=LossConfig(name="hinge"),
        optim_G=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        optim_D=OptimizerConfig(name="adam", lr=6e-4, beta1=0.0, beta2=0.99),
        train=TrainConfig(batch_size=64, ema_kimg=10, augment="translation,cutout,color",
                          channels_last=True, **train),
        report=report,
        health=health or HealthConfig(),
    )


def _pokemon_best() -> Config:
    return _sn_dcgan_diffaugment(DataConfig(name="pokemon", resolution=64, channels=3),
                                 dict(epochs=400, max_minutes=40),
                                 ReportConfig(sample_every=10, grid_rows=3, grid_cols=7))


def _folder() -> Config:
    # Any folder of images, CPU-first: the sprites' recipe with nothing tuned to them. The
    # resolution and channels are read from the images; DiffAugment's fixed policy needs no
    # tuning to the folder's size (Zhao et al. 2020 found it helps from 100 images to the
    # 50,000 of CIFAR-10); a 60-minute budget, a checkpoint every 5 minutes (not every epoch)
    # and a grid every 2, whatever an epoch is; no alarms in the first 10,000 images (a small
    # folder's first epochs).
    return _sn_dcgan_diffaugment(DataConfig(name="folder", resolution=0, channels=0),
                                 dict(epochs=100_000, max_minutes=60, checkpoint_every=0,
                                      checkpoint_minutes=5),
                                 ReportConfig(sample_every=0, sample_minutes=2, grid_rows=4,
                                              grid_cols=8),
                                 HealthConfig(warmup_kimg=10))


def _folder_stylegan2() -> Config:
    # Any folder of images with the style-based architecture: a StyleGAN2-style pair sized for
    # small budgets (width 8: 64 channels up to 16x16, 16 at 64x64), adaptive augmentation so
    # that 1,000 or 100,000 images both work without tuning, the StyleGAN2 optimizer (Adam
    # 2.5e-3, betas (0, 0.99)) with the non-saturating loss and lazy R1, G_ema, batch 32, the
    # resolution read from the images, and a 60-minute wall-clock budget.
    return Config(
        data=DataConfig(name="folder", resolution=0, channels=0),
        model=ModelConfig(arch="stylegan2", z_dim=128, g_width=8, d_width=8, w_dim=256,
                          mapping_layers=4, style_mixing=0.9),
        loss=LossConfig(name="nonsaturating", r1_gamma=0.1, r1_every=16),
        optim_G=OptimizerConfig(name="adam", lr=2.5e-3, beta1=0.0, beta2=0.99),
        optim_D=OptimizerConfig(name="adam", lr=2.5e-3, beta1=0.0, beta2=0.99),
        train=TrainConfig(epochs=100_000, batch_size=32, ema_kimg=10, ema_rampup=0.05,
                          max_minutes=60, ada=True, ada_target=0.6, ada_kimg=100,
                          checkpoint_every=0, checkpoint_minutes=5),
        report=ReportConfig(sample_every=0, sample_minutes=2, grid_rows=4, grid_cols=8),
        health=HealthConfig(warmup_kimg=10),
    )


def _finetune() -> Config:
    # Adapting a trained generator to a small folder (train.init_from=RUN data.path=DIR): the
    # model and the image size come from the source run; the folder recipe (its loss, rates,
    # DiffAugment and G_ema), which measured best side by side in docs/results.md: a third of
    # the rate was worse, and so was Freeze-D on 2 blocks in each of the three comparisons
    # (train.freeze_d=K stays a key); a 30-minute budget.
    cfg = _folder()
    cfg.train.freeze_d = 0
    cfg.train.max_minutes = 30
    cfg.health.warmup_kimg = 0
    return cfg


def _r3gan(data: DataConfig, augment: str, report: ReportConfig) -> Config:
    # R3GAN's recipe (Huang et al. 2024, their CIFAR-10 configuration) at a 2-core CPU's scale:
    # widths 64 instead of 768 and one residual block per resolution instead of two (the same
    # 16 channels per group, expansion 2); RpGAN with R1 + R2 (gamma 0.05 annealed to a tenth,
    # lazily every 4 steps instead of every step), Adam betas (0, 0.9 -> 0.99), the learning
    # rate 2e-4 -> 5e-5 and G_ema's half-life 0.5k -> 20k images, all along cosines over a
    # 60-minute budget; batch 64.
    return Config(
        data=data,
        model=ModelConfig(arch="r3gan", z_dim=64, g_width=64, d_width=64, blocks=1,
                          expansion=2, group_channels=16),
        loss=LossConfig(name="rpgan", r1_gamma=0.05, r2_gamma=0.05, r1_every=4, gamma_end=0.1),
        optim_G=OptimizerConfig(name="adam", lr=2e-4, beta1=0.0, beta2=0.9),
        optim_D=OptimizerConfig(name="adam", lr=2e-4, beta1=0.0, beta2=0.9),
        train=TrainConfig(epochs=100_000, batch_size=64, ema_kimg=0.5, ema_kimg_end=20,
                          ema_rampup=0.0, lr_schedule="cosine", lr_end=0.25, beta2_end=0.99,
                          augment=augment, max_minutes=60, channels_last=True,
                          checkpoint_every=0, checkpoint_minutes=5),
        report=report,
        health=HealthConfig(warmup_kimg=10),
    )


def _stacked_r3gan() -> Config:
    return _r3gan(DataConfig(name="stacked-mnist", resolution=32), "",
                  ReportConfig(sample_every=0, sample_minutes=2, grid_rows=4, grid_cols=8))


def _folder_r3gan() -> Config:
    # DiffAugment stands in for R3GAN's fixed-probability augmentation pipeline.
    return _r3gan(DataConfig(name="folder", resolution=0, channels=0),
                  "translation,cutout,color",
                  ReportConfig(sample_every=0, sample_minutes=2, grid_rows=4, grid_cols=8))


_MODERN = ("Miyato et al. 2018 (spectral norm), Lim & Ye 2017 (hinge loss), Yazici et al. 2019 "
           "(G_ema)")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("gaussian2d", "basic GAN learning a 2-D Gaussian (1,000 points, 20 epochs)",
               f"{D2L}, section 20.1 \"Generative Adversarial Networks\"; Goodfellow et al. 2014",
               _gaussian2d),
        Preset("mnist-mlp", "vanilla MLP GAN on MNIST, label smoothing 0.9 (300 epochs)",
               TF_TUTORIAL, _mnist_mlp),
        Preset("pokemon-dcgan", "DCGAN on the 64x64 Pokemon sprites (20 epochs)",
               f"{D2L}, section 20.2 \"Deep Convolutional Generative Adversarial Networks\"; "
               "Radford et al. 2016",
               _pokemon_dcgan),
        Preset("fashion-dcgan", "the d2l DCGAN recipe on Fashion-MNIST at 32x32",
               f"{D2L}, section 20.2, exercise 2; Fashion-MNIST: Xiao et al. 2017",
               lambda: _dcgan(DataConfig(name="fashion-mnist", resolution=32, channels=1))),
        Preset("mnist-dcgan", "the d2l DCGAN recipe on MNIST at 32x32",
               f"{D2L}, section 20.2, applied to MNIST (LeCun et al. 1998)",
               lambda: _dcgan(DataConfig(name="mnist", resolution=32, channels=1))),
        Preset("gaussian2d-best", "the 2-D toy fitted to < 0.03 mean / < 3% covariance error",
               f"{D2L}, section 20.1, with the least-squares loss of Mao et al. 2017",
               _gaussian2d_best),
        Preset("mnist-best", "conditional SN-DCGAN, hinge, G_ema on MNIST (60-minute budget)",
               f"{_MODERN}, projection D (Miyato & Koyama 2018); evaluated as Lucic et al. 2018",
               lambda: _best_32("mnist")),
        Preset("fashion-best", "conditional SN-DCGAN, hinge, G_ema on Fashion-MNIST (60 min)",
               f"{_MODERN}, projection D (Miyato & Koyama 2018); evaluated as Lucic et al. 2018",
               _fashion_best),
        Preset("pokemon-best", "SN-DCGAN, hinge, DiffAugment, G_ema on the sprites (40 min)",
               f"{_MODERN}, DiffAugment (Zhao et al. 2020)", _pokemon_best),
        Preset("folder", "any folder of images (data.path=DIR): SN-DCGAN, DiffAugment, 60 min",
               f"{_MODERN}, DiffAugment (Zhao et al. 2020)", _folder),
        Preset("folder-stylegan2", "any folder (data.path=DIR): StyleGAN2-style, ADA, 60 min",
               "Karras et al. 2020 (StyleGAN2; ADA: Training GANs with Limited Data)",
               _folder_stylegan2),
        Preset("stacked-best", "unconditional SN-DCGAN, hinge, G_ema on Stacked MNIST (1,000 "
               "modes): widths 48, learning rates decayed over the second half, 60 min",
               f"{_MODERN}; Stacked MNIST: Srivastava et al. 2017 (VEEGAN), Lin et al. 2018 "
               "(PacGAN)", _stacked_best),
        Preset("stacked-r3gan", "R3GAN-style pair on Stacked MNIST (1,000 modes), scaled to a "
               "CPU: widths 64, one block per resolution, 60 min",
               "Huang, Gokaslan, Kuleshov & Tompkin 2024 (R3GAN); Stacked MNIST: Srivastava et "
               "al. 2017 (VEEGAN), Lin et al. 2018 (PacGAN)", _stacked_r3gan),
        Preset("folder-r3gan", "any folder (data.path=DIR): R3GAN-style pair scaled to a CPU, "
               "DiffAugment, 60 min",
               "Huang, Gokaslan, Kuleshov & Tompkin 2024 (R3GAN); DiffAugment (Zhao et al. 2020)",
               _folder_r3gan),
        Preset("finetune", "adapt a trained run to a small folder (train.init_from=RUN "
               "data.path=DIR): the folder recipe from its weights, 30 min",
               "Karras et al. 2020 (ADA, transfer from a trained generator); DiffAugment (Zhao "
               "et al. 2020); Freeze-D (Mo, Cho & Shin 2020) as train.freeze_d, off by "
               "measurement", _finetune,
               needs=(("train.init_from", "RUN", "the run, checkpoint or export to adapt"),
                      ("data.path", "DIR", "the folder of images to adapt it to"))),
    ]
}


def from_preset(name: str, overrides: list[str] | None = None) -> Config:
    """The preset ``name`` with ``key=value`` overrides applied, validated."""
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
    cfg.description = f"{preset.summary}; after {preset.citation}"
    cfg = apply_overrides(cfg, overrides or [])
    chosen = {o.split("=", 1)[0].strip() for o in overrides or [] if "=" in o}
    missing = [(k, what) for k, _, what in preset.needs
               if not getattr(getattr(cfg, k.split(".")[0]), k.split(".")[1])]
    if missing:
        said = "; ".join(f"{k} ({what})" for k, what in missing)
        example = " ".join(f"{k}={placeholder}" for k, placeholder, _ in preset.needs)
        raise ConfigError(f"the {name} preset needs {said}: `ganforge train {name} {example}`")
    if "data.name" in chosen and "data.channels" not in chosen:
        cfg.data.channels = 0  # the new dataset's own channels, not the preset's dataset's
    if chosen & {"model.arch", "optim_G.name", "optim_D.name"}:
        # The preset's keys for its own architecture or optimizer mean nothing for the one an
        # override chose; keys the overrides set themselves are still checked.
        cfg = without_inapplicable(cfg, keep=chosen)
    return validate(cfg)
