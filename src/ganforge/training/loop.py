"""The one training engine, for every model from the 2-D toy to the DCGAN.

Each step: D on the real batch and on a *detached* fake batch (plus the configured penalty: WGAN-GP,
lazy R1), then G on the *same* fake batch (the seeds recompute it; reusing it saves one G forward
per step), with D's parameters frozen during G's backward so no gradient is computed for them;
then the G_ema update. DiffAugment, when on, sits in front of every D call.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__, distributed
from ..config import Config, OptimizerConfig, validate
from ..data import GAUSSIAN_A, GAUSSIAN_B, InMemoryDataset, load_dataset
from ..errors import GanforgeError, describe_state_dict_error
from ..augment import diff_augment, parse_policy
from ..losses import DECISION_THRESHOLD, LOSSES, d_accuracy, gradient_penalty, r1_penalty
from ..models import build_models
from ..report import loss_curve, save_grid, scatter_2d, to_uint8
from .checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, run_path, save_checkpoint
from .ema import EMA


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"train.device={name} but CUDA is not available here; use "
                            "train.device=cpu or train.device=auto")
    return dev


_CPUINFO = "/proc/cpuinfo"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX) *and* PyTorch dispatches
    its AVX-512 kernels here. Without both, bf16 convolutions are emulated and 10-600x slower
    than fp32 (measured on an AVX2 machine); with both, 1.3-1.7x faster training steps
    (fashion-best on a 2-core Zen 4; benchmarks/precision.py)."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or "AMX" in capability):
        return False
    try:
        with open(_CPUINFO) as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap, reliable way to ask; stay on fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> str:
    """``train.precision=auto``: bf16 autocast where the hardware computes bf16 natively (CUDA
    devices that support it; CPUs with AVX-512 BF16 or AMX), otherwise fp32. Never fp16, which
    needs loss scaling and is only worth it on GPUs without bf16; ask for it by name."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        # The fused kernel updates every parameter in one call: 18% faster steps for the 2-D
        # toy on this CPU (dispatch-bound), neutral for the image models, and the fast path on
        # CUDA. Same algorithm; results differ from the per-tensor loop only by rounding.
        params = list(params)
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                fused=fused or None)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.beta1)
    raise GanforgeError(f"unknown optimizer {cfg.name!r}")


def prepare_run_dir(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create the run directory; refuse to reuse a non-empty one unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} is a file; choose a folder for the run")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise GanforgeError(
                f"run directory {out} already exists and is not empty; choose another --out, or "
                "pass --overwrite to replace it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


class GAN:
    """G, D, G_ema, their optimizers and the step counters; ``train_step`` is the whole update."""

    def __init__(self, cfg: Config, sample_shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.sample_shape = tuple(sample_shape)
        self.G, self.D = build_models(cfg.model, sample_shape)
        if cfg.train.sync_bn and distributed.info().enabled:
            if device.type != "cuda":
                raise GanforgeError("train.sync_bn=true needs CUDA devices (SyncBatchNorm); on CPU "
                                    "each rank keeps its own BatchNorm statistics")
            self.G = distributed.convert_sync_batchnorm(self.G)
            self.D = distributed.convert_sync_batchnorm(self.D)
        self.G.to(device)
        self.D.to(device)
        t = cfg.train
        self.channels_last = t.channels_last and len(self.sample_shape) == 3
        if self.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
        self.ema = EMA(self.G, t.ema_kimg, t.ema_rampup) if t.ema_kimg > 0 else None
        self.augment = parse_policy(t.augment) if t.augment else []
        self.precision = resolve_precision(t.precision, device)
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        # fp16 needs loss scaling; one scaler per network since their backward passes are separate.
        self.scaler_D = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        # torch.compile wraps the forward passes only; state dicts come from the plain modules.
        self.G_fwd = torch.compile(self.G) if t.compile else self.G
        self.D_fwd = torch.compile(self.D) if t.compile else self.D
        self.opt_G = make_optimizer(self.G.parameters(), cfg.optim_G)
        self.opt_D = make_optimizer(self.D.parameters(), cfg.optim_D)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss.name]
        self.threshold = DECISION_THRESHOLD[cfg.loss.name]
        self.d_terms = 2.0 if cfg.loss.d_terms == "sum" else 1.0
        self.step = 0
        self.epoch = 0
        self.images_seen = 0

    @property
    def G_sample(self) -> nn.Module:
        """The generator to sample and evaluate with: G_ema when the run keeps one."""
        return self.ema.G_ema if self.ema is not None else self.G

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        gen_device = "cpu" if generator is not None else self.device
        z = torch.randn(n, self.cfg.model.z_dim, generator=generator, device=gen_device)
        return z.to(self.device)

    def _D(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D on ``x`` after DiffAugment (when on), as float32 logits."""
        if self.augment:
            x = diff_augment(x, self.augment)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return (self.D_fwd(x) if y is None else self.D_fwd(x, y)).float()

    def train_step(self, real: torch.Tensor, z: torch.Tensor | None = None, weight: float = 1.0,
                   global_n: int | None = None, y: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
        """One D update then one G update on ``real`` (float, on ``self.device``), with class
        labels ``y`` for conditional models (the fake batch uses the same labels, so generated
        classes follow the data's class frequencies).

        Under torchrun, ``real``, ``z`` and ``y`` are this rank's part of the global batch of
        ``global_n`` examples and ``weight`` its share (see :func:`distributed.shard`); gradients
        are averaged over the ranks before each optimizer step.
        """
        lc = self.cfg.loss
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        r1_now = lc.r1_gamma > 0 and self.step % lc.r1_every == 0
        if r1_now:
            real = real.detach().requires_grad_(True)
        with self._autocast():
            z = self.noise(real.shape[0]) if z is None else z
            fake = self.G_fwd(z) if y is None else self.G_fwd(z, y)
            # Discriminator: real vs detached fake.
            real_logits = self._D(real, y)
            fake_logits = self._D(fake.detach(), y)
            loss_D = self.d_loss_fn(real_logits, fake_logits, lc.real_label)
            penalty = loss_D.new_zeros(())
            if lc.name == "wgan-gp":
                penalty = lc.gp_weight * gradient_penalty(lambda x: self._D(x, y), real, fake)
            if r1_now:  # lazy regularisation: every r1_every steps, weighted by r1_every
                penalty = penalty + (lc.r1_gamma / 2 * lc.r1_every) * r1_penalty(real, real_logits)
        # The seeds' scale of the loss (d2l sums over the batch; the TF tutorial adds the real and
        # fake terms): Adam and RMSprop are scale-invariant only while gradients dwarf their eps,
        # and with d2l's N(0, 0.02) init they do not, so the scale changes the trajectory.
        batch = real.shape[0] if global_n is None else global_n
        scale = float(batch) if lc.reduction == "sum" else 1.0
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler_D.scale(loss_D * (scale * self.d_terms) + penalty).backward()
        distributed.average_gradients(self.D, weight)
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()

        # Generator: the same fake batch through the updated D; D's weights get no gradient.
        self.D.requires_grad_(False)
        with self._autocast():
            loss_G = self.g_loss_fn(self._D(fake, y))
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(loss_G * scale).backward()
        distributed.average_gradients(self.G, weight)
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        self.D.requires_grad_(True)

        self.step += 1
        self.images_seen += batch
        if self.ema is not None:
            self.ema.update(self.G, batch, self.images_seen)
        real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
        threshold = self.threshold
        if threshold is None:  # a critic's scale drifts: split at the midpoint of the means
            threshold = (real_logits.mean() + fake_logits.mean()) / 2
        return {"loss_D": loss_D.detach(), "loss_G": loss_G.detach(),
                "acc_D": d_accuracy(real_logits, fake_logits, threshold),
                "penalty": penalty.detach()}

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype,
                              enabled=self.amp_dtype is not None)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples of G_ema (or G) in eval mode (BatchNorm uses its running statistics), so a
        sample depends on its own noise only, never on the rest of the batch."""
        G = self.G_sample
        was_training = G.training
        G.eval()
        try:
            z = z.to(self.device)
            return G(z) if y is None else G(z, y.to(self.device))
        finally:
            G.train(was_training)

    def state_dict(self) -> dict[str, Any]:
        state = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "scaler_G": self.scaler_G.state_dict(),
            "scaler_D": self.scaler_D.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "images_seen": self.images_seen,
            "config": self.cfg.to_dict(),
            "sample_shape": list(self.sample_shape),
            "ganforge_version": __version__,
        }
        if self.ema is not None:
            state["G_ema"] = self.ema.G_ema.state_dict()
        return state


def _mean_pairwise_distance(x: torch.Tensor) -> float:
    flat = x.detach().float().reshape(len(x), -1)
    if len(flat) < 2:
        return 0.0
    d = torch.cdist(flat, flat)
    return float(d.sum() / (len(flat) * (len(flat) - 1)))


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]


def gaussian_fit(G: nn.Module) -> dict[str, Any]:
    """Mean and covariance of a linear G(z) = W z + c with z ~ N(0, I), against the seed's data
    distribution N(b, A^T A): exact, no sampling."""
    lin = getattr(G, "net", None)
    if not isinstance(lin, nn.Linear):
        raise TypeError("gaussian_fit needs the linear toy generator")
    W = lin.weight.detach().double().cpu()
    mean = lin.bias.detach().double().cpu()
    cov = W @ W.T
    true_mean = GAUSSIAN_B.double()
    true_cov = GAUSSIAN_A.double().T @ GAUSSIAN_A.double()
    return {
        "true_mean": true_mean.tolist(),
        "true_cov": true_cov.tolist(),
        "fitted_mean": mean.tolist(),
        "fitted_cov": cov.tolist(),
        "mean_error": float(torch.linalg.norm(mean - true_mean)),
        "cov_rel_error": float(torch.linalg.norm(cov - true_cov) / torch.linalg.norm(true_cov)),
    }


class _Reporter:
    """Writes what a run leaves behind: metrics.jsonl, loss curve, sample grids, scatters."""

    def __init__(self, run_dir: Path, cfg: Config, dataset: InMemoryDataset, gan: GAN,
                 quiet: bool) -> None:
        self.run_dir, self.cfg, self.dataset, self.gan, self.quiet = run_dir, cfg, dataset, gan, quiet
        self.records: list[dict[str, Any]] = []
        gen = torch.Generator().manual_seed(cfg.train.seed + 1)  # same noise every epoch
        n = (cfg.report.grid_rows * cfg.report.grid_cols if dataset.is_image
             else cfg.report.scatter_points)
        self.fixed_z = gan.noise(n, generator=gen)
        # Conditional models: class k in column k of the grid (cycling when there are more).
        classes = cfg.model.num_classes if cfg.model.conditional else 0
        self.fixed_y = (torch.arange(n, device=gan.device) % cfg.report.grid_cols % classes
                        if classes else None)
        self.extractor = None
        self.best: tuple[int, float, str] | None = None
        self.alarms: list[dict[str, Any]] = []
        from ..report.tensorboard import TensorBoardLogger

        self.main = distributed.is_main()  # only the main process writes files and prints
        self.curve_drawn = 0.0
        self.tb = TensorBoardLogger(run_dir, cfg.report.tensorboard if self.main else "off")
        if self.main:
            (run_dir / "samples").mkdir(exist_ok=True)
            self.metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        # Diversity reference: mean pairwise distance within a fixed batch of real data.
        real = dataset.batch(torch.arange(min(len(dataset), len(self.fixed_z)), device=dataset.data.device))
        self.real_diversity = _mean_pairwise_distance(real)

    def reset_records(self, records: list[dict[str, Any]]) -> None:
        """On resume: keep the metrics of the epochs the checkpoint covers, drop the rest."""
        self.records = records
        if not self.main:
            return
        self.metrics_file.close()
        tmp = self.run_dir / "metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, self.run_dir / "metrics.jsonl")
        self.metrics_file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def epoch_end(self, record: dict[str, Any], save_samples: bool,
                  final: bool = False) -> float | None:
        """Log the epoch; returns the fixed-noise sample diversity relative to real data."""
        fake = self.gan.generate(self.fixed_z, self.fixed_y)
        diversity = None
        if self.real_diversity > 0:
            diversity = _mean_pairwise_distance(fake) / self.real_diversity
            record["diversity"] = diversity
        self.records.append(record)
        if not self.main:
            return diversity
        self.tb.scalars(record)
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        # Redrawing the curve costs ~0.1 s: do it with each grid, at the end, or every 10 s.
        if save_samples or final or time.perf_counter() - self.curve_drawn > 10:
            loss_curve(self.records, self.run_dir / "loss_curve.png", title=self.cfg.name)
            self.curve_drawn = time.perf_counter()
        if save_samples:
            png = self.samples(record["epoch"], fake)
            self.tb.image("samples" if self.dataset.is_image else "scatter", png,
                          record["images_seen"])
        if not self.quiet:
            tqdm.write(
                f"epoch {record['epoch']}/{self.cfg.train.epochs}: loss_D {record['loss_D']:.3f}, "
                f"loss_G {record['loss_G']:.3f}, {record['examples_per_sec']:.1f} examples/sec "
                f"on {self.gan.device}"
                + "".join(f", {k[5:]} {v:.3f}" for k, v in record.items() if k.startswith("eval_")),
                file=sys.stdout,
            )
        return diversity

    def samples(self, epoch: int, out: torch.Tensor) -> Path:
        """Write the grid (or scatter) of ``out``, the generator's fixed-noise samples."""
        name = run_path(self.run_dir, "samples", f"epoch_{epoch:04d}.png")
        if self.dataset.is_image:
            save_grid(to_uint8(out), name, self.cfg.report.grid_rows, self.cfg.report.grid_cols)
            shutil.copyfile(name, self.run_dir / "samples_latest.png")
        else:
            real = self.dataset.data[: self.cfg.report.scatter_points].cpu().numpy()
            scatter_2d(real, out.cpu().numpy(), name, title=f"epoch {epoch}")
            shutil.copyfile(name, self.run_dir / "scatter_latest.png")
        return name

    def prepare_evaluation(self) -> None:
        """Build what evaluation during training needs once per machine (the domain classifier,
        trained on first use; the reference set's features), before the run's clock starts, so
        that ``train.max_minutes`` is spent on training and its evaluations, not on cache setup."""
        from ..evaluate import FeatureExtractor, reference_features

        cfg = self.cfg
        if (not self.main or not cfg.eval.every or cfg.data.name == "gaussian2d"
                or self.extractor is not None):  # nothing to build, or built already
            return
        # Progress bars for this one-time work (it can take minutes), none for each epoch's.
        self.extractor = FeatureExtractor(cfg.eval.features, cfg, str(self.gan.device), None,
                                          progress=not self.quiet)
        reference_features(self.extractor, cfg, None)
        self.extractor.progress = False

    def evaluate(self, record: dict[str, Any]) -> None:
        """Evaluation during training: log the metric; keep the best checkpoint."""
        from ..evaluate import evaluate_generator

        cfg = self.cfg
        if not self.main:
            return
        self.prepare_evaluation()
        res = evaluate_generator(self.gan.G_sample, cfg, metrics=("fid",), n=cfg.eval.n,
                                 device=str(self.gan.device), seed=cfg.train.seed,
                                 progress=False, extractor=self.extractor)
        key = "eval_w2" if "w2" in res else f"eval_fid_{res['features']}"
        value = res["w2"] if "w2" in res else res["fid"]
        record[key] = value
        if self.best is None or value < self.best[1]:
            self.best = (record["epoch"], value, key)
            state = self.gan.state_dict()
            state["best"] = {"epoch": record["epoch"], "metric": key, "value": value}
            save_checkpoint(self.run_dir / BEST_CHECKPOINT_NAME, state)

    def close(self) -> None:
        if self.main:
            self.metrics_file.close()
        self.tb.close()


class _Diverged(Exception):
    """A non-finite loss or weight: the step is discarded and the run rolls back."""


def _rng_state(device: torch.device) -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    # A checkpoint loaded with map_location=cuda holds these on the GPU; generators take their
    # state as a CPU ByteTensor.
    torch.set_rng_state(state["torch"].cpu())
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _StopRequested(Exception):
    pass


class _Trainer:
    """Runs the epochs of one run: position in the data, checkpoints, rollbacks, signals."""

    def __init__(self, cfg: Config, run_dir: Path, dataset: InMemoryDataset, gan: GAN,
                 reporter: _Reporter, progress: bool, quiet: bool) -> None:
        self.cfg, self.run_dir, self.dataset, self.gan, self.reporter = cfg, run_dir, dataset, gan, reporter
        n, bs = len(dataset), cfg.train.batch_size
        self.steps_per_epoch = n // bs if cfg.train.drop_last else math.ceil(n / bs)
        if self.steps_per_epoch == 0:
            raise GanforgeError(f"train.batch_size={bs} exceeds the {n} examples with "
                                "train.drop_last=true; lower the batch size")
        self.order_gen = torch.Generator().manual_seed(cfg.train.seed)
        # Position inside the current epoch (all zero at an epoch boundary).
        self.epoch_start_order = self.order_gen.get_state()
        self.step_in_epoch = 0
        self.sums = torch.zeros(4, dtype=torch.float64)  # loss_D, loss_G, acc_D, penalty
        self.lr_scale = 1.0  # lowered by rollbacks
        self.seen = 0
        self.retries = 0
        self.elapsed_before = 0.0
        self.agreed_elapsed = 0.0  # run seconds at the last step, averaged over the ranks
        self.acc_window: deque[float] = deque(maxlen=cfg.health.window)
        self.d_alarm_on = False
        self.collapse_alarm_on = False
        self.stop_signal: str | None = None
        self.out_of_time = False  # train.max_minutes reached: the run ends after this step
        self.last_ckpt_time = time.perf_counter()
        self.quiet = quiet
        self.bar = tqdm(total=cfg.train.epochs * self.steps_per_epoch, unit="step",
                        dynamic_ncols=True, desc=cfg.name,
                        disable=True if (quiet or not progress or not distributed.is_main())
                        else None)

    # -------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        st = self.gan.state_dict()
        st["position"] = {"epoch_start_order": self.epoch_start_order,
                          "order_gen": self.order_gen.get_state(),
                          "step_in_epoch": self.step_in_epoch, "sums": self.sums.clone(),
                          "seen": self.seen, "retries": self.retries,
                          "elapsed": self._elapsed(),
                          "lr_scale": self.lr_scale,
                          "lr_G": self.gan.opt_G.param_groups[0]["lr"],
                          "lr_D": self.gan.opt_D.param_groups[0]["lr"],
                          "best": list(self.reporter.best) if self.reporter.best else None}
        st["rng"] = _rng_state(self.gan.device)
        return st

    def save(self) -> None:
        if distributed.is_main():
            save_checkpoint(self.run_dir / CHECKPOINT_NAME, self.state())
        distributed.barrier()  # a rollback on any rank reads a complete file
        self.last_ckpt_time = time.perf_counter()

    def restore(self, st: dict[str, Any]) -> None:
        g = self.gan
        g.G.load_state_dict(st["G"])
        g.D.load_state_dict(st["D"])
        g.opt_G.load_state_dict(st["opt_G"])
        g.opt_D.load_state_dict(st["opt_D"])
        if st.get("scaler_G"):
            g.scaler_G.load_state_dict(st["scaler_G"])
            g.scaler_D.load_state_dict(st["scaler_D"])
        g.step, g.epoch, g.images_seen = st["step"], st["epoch"], st["images_seen"]
        pos = st["position"]
        self.epoch_start_order = pos["epoch_start_order"].cpu()
        self.order_gen.set_state(pos["order_gen"].cpu())
        self.step_in_epoch, self.seen = pos["step_in_epoch"], pos["seen"]
        self.sums = torch.zeros(4, dtype=torch.float64)
        self.sums[: len(pos["sums"])] = pos["sums"]  # checkpoints before 0.2 kept three sums
        self.lr_scale = pos.get("lr_scale", 1.0)
        if g.ema is not None:
            if "G_ema" not in st:
                raise KeyError("G_ema (the checkpoint has no G_ema; train.ema_kimg was 0)")
            g.ema.G_ema.load_state_dict(st["G_ema"])
        self.retries = pos["retries"]
        self.elapsed_before = self.agreed_elapsed = pos["elapsed"]
        if pos.get("best"):
            self.reporter.best = tuple(pos["best"])  # type: ignore[assignment]
        _set_rng_state(st["rng"], g.device)
        self.bar.n = g.epoch * self.steps_per_epoch + self.step_in_epoch
        self.bar.refresh()

    # -------------------------------------------------------------- health
    def alarm(self, kind: str, message: str) -> None:
        rec = {"step": self.gan.step, "epoch": self.gan.epoch + 1, "alarm": kind, "message": message}
        self.reporter.alarms.append(rec)
        if not distributed.is_main():
            return
        with open(self.run_dir / "alarms.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if not self.quiet:
            tqdm.write(f"ALARM [{kind}] step {self.gan.step}: {message}", file=sys.stderr)

    def progress(self) -> float:
        """Share of the run done, 0 to 1: by steps out of all epochs', or by time out of
        ``train.max_minutes`` when that ends the run sooner. Time is the elapsed seconds that all
        ranks agreed on at the last step, so their learning rates stay identical."""
        t = self.cfg.train
        done = self.gan.step / (t.epochs * self.steps_per_epoch)
        if t.max_minutes:
            done = max(done, self.agreed_elapsed / (60 * t.max_minutes))
        return min(done, 1.0)

    def _set_lr(self) -> None:
        """Learning rates = configured x rollback scale x schedule (1, or linear to 0 at the end
        of the run, starting after ``train.lr_decay_start`` of it)."""
        factor = 1.0
        t = self.cfg.train
        if t.lr_schedule == "linear":
            factor = min((1.0 - self.progress()) / (1.0 - t.lr_decay_start), 1.0)
        for opt, oc in ((self.gan.opt_G, self.cfg.optim_G), (self.gan.opt_D, self.cfg.optim_D)):
            for group in opt.param_groups:
                group["lr"] = oc.lr * self.lr_scale * factor

    def _watch_d(self, acc: float) -> None:
        h = self.cfg.health
        if self.gan.epoch < h.warmup_epochs or self.gan.threshold is None:
            return  # the window only holds steps after the warm-up; a critic has no accuracy
        self.acc_window.append(acc)
        if len(self.acc_window) == h.window:
            mean = sum(self.acc_window) / h.window
            if mean >= h.d_acc_limit and not self.d_alarm_on:
                self.d_alarm_on = True
                self.alarm("d_overpowering",
                           f"D has classified {100 * mean:.1f}% of real and fake inputs correctly "
                           f"over the last {h.window} steps: G gets no useful gradient. Try a "
                           "lower optim_D.lr, label smoothing (loss.real_label=0.9) or a smaller D")
            elif mean < h.d_acc_limit - 0.05:
                self.d_alarm_on = False

    def _rollback(self, reason: str) -> None:
        h = self.cfg.health
        self.retries += 1
        if self.retries > h.max_retries:
            raise GanforgeError(
                f"training diverged ({reason}) and {h.max_retries} rollback(s) with lower learning "
                f"rates did not help; the last good checkpoint is {self.run_dir / CHECKPOINT_NAME}. "
                "Lower optim_D.lr / optim_G.lr and resume with `ganforge train --resume`."
            )
        ckpt = self.run_dir / CHECKPOINT_NAME
        from .checkpoint import load_checkpoint

        retries = self.retries
        self.restore(load_checkpoint(ckpt, map_location=self.gan.device))
        self.retries = retries
        self.lr_scale = h.lr_decay ** retries
        self._set_lr()
        lr_g, lr_d = self.gan.opt_G.param_groups[0]["lr"], self.gan.opt_D.param_groups[0]["lr"]
        self.alarm("rollback", f"{reason}; rolled back to step {self.gan.step} with learning rates "
                               f"lowered to lr_G={lr_g:.3g}, lr_D={lr_d:.3g} "
                               f"(retry {self.retries}/{h.max_retries})")

    # -------------------------------------------------------------- the loop
    def run(self) -> None:
        self.reporter.prepare_evaluation()
        self.t_start = time.perf_counter()
        if self.gan.step == 0:
            self.save()  # a rollback target exists from the first step on
        while True:
            try:
                self._epochs()
                return
            except _Diverged as e:
                self._rollback(str(e))

    def _epochs(self) -> None:
        cfg, gan, ds = self.cfg, self.gan, self.dataset
        n, bs = len(ds), cfg.train.batch_size
        device = gan.device
        while gan.epoch < cfg.train.epochs and not self.out_of_time:
            epoch = gan.epoch + 1
            if self.step_in_epoch == 0:
                self.epoch_start_order = self.order_gen.get_state()
                self.sums.zero_()
                self.seen = 0
            else:  # resuming mid-epoch: draw the same permutation again
                self.order_gen.set_state(self.epoch_start_order)
            perm = torch.randperm(n, generator=self.order_gen).to(device)
            t0 = time.perf_counter()
            seen_at_start = self.seen
            for i in range(self.step_in_epoch, self.steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                b = idx.numel()
                part, weight = distributed.shard(idx)
                z = gan.noise(b)[part]  # the global batch's noise, identical on every rank
                if cfg.train.lr_schedule == "linear":
                    self._set_lr()
                y = ds.labels[idx[part]] if cfg.model.conditional else None
                stats = gan.train_step(ds.batch(idx[part]), z, weight, global_n=b, y=y)
                local_b = float(z.shape[0])
                last = i + 1 == self.steps_per_epoch
                # One small reduction per step: the global mean losses, and the decisions every
                # rank must take together (stop on a signal, checkpoint now).
                flags = [float(self.stop_signal is not None),
                         float(not last and self._checkpoint_due()), float(self._over_budget())]
                red = torch.cat([torch.stack([stats["loss_D"], stats["loss_G"], stats["acc_D"],
                                              stats["penalty"]]).double() * local_b,
                                 torch.tensor([local_b, *flags, self._elapsed()],
                                              dtype=torch.float64, device=z.device)])
                red = distributed.all_reduce_sum(red).cpu()
                self.agreed_elapsed = float(red[8]) / distributed.info().world_size
                vals = red[:4] / red[4]
                if not torch.isfinite(vals[:2]).all():
                    raise _Diverged(f"non-finite loss at step {gan.step} (loss_D={vals[0]:.4g}, "
                                    f"loss_G={vals[1]:.4g})")
                self.sums += vals * b
                self.seen += b
                self.step_in_epoch = i + 1
                self._watch_d(float(vals[2]))
                self.bar.update(1)
                if not self.bar.disable and (i % 20 == 0 or i == self.steps_per_epoch - 1):
                    s = (self.sums / self.seen).tolist()
                    rate = (self.seen - seen_at_start) / max(time.perf_counter() - t0, 1e-9)
                    self.bar.set_postfix(epoch=epoch, loss_D=f"{s[0]:.3f}", loss_G=f"{s[1]:.3f}",
                                         img_s=f"{rate:.0f}")
                if red[5] > 0:
                    self.save()
                    raise _StopRequested(self.stop_signal or "a signal on another rank")
                if red[6] > 0:
                    self.save()
                if red[7] > 0:  # the time budget ends the run: this epoch is the last, cut short
                    self.out_of_time = True
                    break
            if not all(torch.isfinite(p).all() for p in gan.G.parameters()) or \
                    not all(torch.isfinite(p).all() for p in gan.D.parameters()):
                raise _Diverged(f"non-finite weights at the end of epoch {epoch}")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            gan.epoch = epoch
            self.step_in_epoch = 0
            loss_D, loss_G, acc_D, penalty = (self.sums / self.seen).tolist()
            record = {"epoch": epoch, "step": gan.step, "images_seen": gan.images_seen,
                      "loss_D": loss_D, "loss_G": loss_G, "acc_D": acc_D,
                      "examples_per_sec": (self.seen - seen_at_start) / dt, "epoch_seconds": dt,
                      "elapsed_seconds": self._elapsed(),
                      "lr_G": gan.opt_G.param_groups[0]["lr"], "lr_D": gan.opt_D.param_groups[0]["lr"]}
            if cfg.loss.name == "wgan-gp" or cfg.loss.r1_gamma > 0:
                record["penalty_D"] = penalty
            if loss_G > cfg.health.g_loss_limit and epoch > cfg.health.warmup_epochs:
                self.alarm("g_loss_divergence",
                           f"epoch {epoch} mean G loss {loss_G:.2f} exceeds "
                           f"health.g_loss_limit={cfg.health.g_loss_limit}: G is losing badly")
            final = epoch == cfg.train.epochs or self.out_of_time
            if self.out_of_time:
                record["stopped_by"] = f"train.max_minutes={cfg.train.max_minutes:g}"
            ev = cfg.eval.every
            if ev and (epoch % ev == 0 or final):
                self.reporter.evaluate(record)
            every = cfg.report.sample_every
            save = epoch == 1 or epoch % every == 0 or final
            diversity = self.reporter.epoch_end(record, save, final)
            if epoch <= cfg.health.warmup_epochs:
                pass
            elif diversity is not None and diversity >= cfg.health.collapse_ratio:
                self.collapse_alarm_on = False
            elif diversity is not None and not self.collapse_alarm_on:
                self.collapse_alarm_on = True
                self.alarm("mode_collapse",
                           f"fixed-noise samples are {100 * diversity:.0f}% as diverse as real data "
                           f"(mean pairwise distance); below health.collapse_ratio="
                           f"{cfg.health.collapse_ratio}: G may be collapsing to few modes")
            ce = cfg.train.checkpoint_every
            due = (ce and epoch % ce == 0) or final
            if due or distributed.agree(self._checkpoint_due()):
                self.save()


    def _elapsed(self) -> float:
        """Seconds of training in this run, resumed parts included."""
        return self.elapsed_before + time.perf_counter() - self.t_start

    def _over_budget(self) -> bool:
        minutes = self.cfg.train.max_minutes
        return bool(minutes) and self._elapsed() >= 60 * minutes

    def _checkpoint_due(self) -> bool:
        t = self.cfg.train
        if t.checkpoint_steps and self.gan.step % t.checkpoint_steps == 0:
            return True
        return bool(t.checkpoint_minutes) and \
            time.perf_counter() - self.last_ckpt_time > 60 * t.checkpoint_minutes


def _read_records(path: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if rec.get("epoch", 0) <= up_to_epoch:
            out.append(rec)
    return out


def train(cfg: Config, out_dir: str | os.PathLike, *, progress: bool = True, quiet: bool = False,
          overwrite: bool = False, resume: bool = False) -> TrainResult:
    """Train ``cfg`` into ``out_dir`` (or continue the run there with ``resume=True``, from its
    latest checkpoint, exactly: weights, optimizers, counters, data position and RNG states)."""
    from .checkpoint import load_checkpoint

    validate(cfg)
    dinfo, rank_device = distributed.init_from_env(cfg.train.device)
    device = rank_device or resolve_device(cfg.train.device)
    if dinfo.enabled and cfg.train.batch_size < dinfo.world_size:
        raise GanforgeError(f"train.batch_size={cfg.train.batch_size} is the global batch; it must "
                            f"be at least the number of processes ({dinfo.world_size})")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    # torch's generator is seeded alike on every rank (the global batch's noise is drawn in full
    # and split, so K processes take exactly the step one process would); Python's and NumPy's
    # get per-rank seeds.
    seed_everything(cfg.train.seed)
    random.seed(cfg.train.seed + dinfo.rank)
    np.random.seed((cfg.train.seed + dinfo.rank) % 2**32)
    state = None
    if resume:
        run_dir = Path(out_dir)
        state = load_checkpoint(run_dir, map_location=device)
        for stale in run_dir.glob(".*.tmp"):  # half-written files of a killed process
            stale.unlink()
    dataset = load_dataset(cfg.data, seed=cfg.train.seed, progress=progress and not quiet)
    if cfg.model.conditional:
        classes = len(dataset.class_names)
        if dataset.labels is None or classes < 2:
            raise GanforgeError(
                f"model.conditional=true needs at least 2 classes, but {cfg.data.path or cfg.data.name} "
                f"has {classes}; image folders give classes by sub-folder (DIR/<class>/*.png)")
        if cfg.model.num_classes and cfg.model.num_classes != classes:
            raise GanforgeError(f"model.num_classes={cfg.model.num_classes} but the data has "
                                f"{classes} classes; leave model.num_classes at 0 (filled in)")
        cfg.model.num_classes = classes
    if not resume:
        run_dir = Path(out_dir)
        if dinfo.is_main:
            prepare_run_dir(out_dir, overwrite)
        distributed.barrier()
    if dinfo.is_main:
        (run_dir / "config.json").write_text(cfg.to_json() + "\n", encoding="utf-8")
    dataset = dataset.to(device)

    gan = GAN(cfg, dataset.sample_shape, device)
    if state is not None and tuple(state.get("sample_shape", ())) != gan.sample_shape:
        raise GanforgeError(f"the checkpoint in {run_dir} was trained on data of shape "
                            f"{tuple(state['sample_shape'])}, this config gives {gan.sample_shape}")
    reporter = _Reporter(run_dir, cfg, dataset, gan, quiet)
    trainer = _Trainer(cfg, run_dir, dataset, gan, reporter, progress, quiet)
    if state is not None:
        try:
            trainer.restore(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise GanforgeError(f"the checkpoint in {run_dir} does not fit this config "
                                f"({describe_state_dict_error(e)}); resume without overrides "
                                "that change the model") from None
        reporter.reset_records(_read_records(run_dir / "metrics.jsonl", gan.epoch))
        if not quiet and dinfo.is_main:
            tqdm.write(f"resuming {run_dir} at epoch {gan.epoch}, step {gan.step}", file=sys.stdout)

    import signal

    def _on_signal(signum, frame):  # finish the current step, checkpoint, exit
        trainer.stop_signal = signal.Signals(signum).name

    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread
            pass
    try:
        trainer.run()
    except _StopRequested as e:
        raise TrainingInterrupted(
            f"{e} received: saved a checkpoint at epoch {gan.epoch}, step {gan.step}; continue with "
            f"`ganforge train --resume {run_dir}`"
        ) from None
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
        trainer.bar.close()
        reporter.close()

    last = reporter.records[-1]
    summary: dict[str, Any] = {
        "preset": cfg.name,
        "epochs": gan.epoch,
        "steps": gan.step,
        "images_seen": gan.images_seen,
        "final_loss_D": last["loss_D"],
        "final_loss_G": last["loss_G"],
        "train_seconds": last["elapsed_seconds"],
        "device": str(device),
        "precision": gan.precision,
        "checkpoint": CHECKPOINT_NAME,
        "alarms": [a["alarm"] for a in reporter.alarms],
        "rollbacks": trainer.retries,
    }
    if trainer.out_of_time:
        summary["stopped_by"] = f"train.max_minutes={cfg.train.max_minutes:g}"
    if reporter.best is not None:
        summary["best"] = {"epoch": reporter.best[0], "metric": reporter.best[2],
                           "value": reporter.best[1], "checkpoint": BEST_CHECKPOINT_NAME}
    if cfg.model.arch == "toy" and cfg.data.name == "gaussian2d":
        summary["gaussian"] = gaussian_fit(gan.G_sample)
    if dinfo.enabled:
        summary["processes"] = dinfo.world_size
    if dinfo.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n",
                                              encoding="utf-8")
    return TrainResult(run_dir, summary)


class TrainingInterrupted(GanforgeError):
    """SIGINT/SIGTERM: a checkpoint was saved; the message says how to resume."""
