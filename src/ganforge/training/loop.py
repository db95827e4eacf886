"""The one training engine, for every model from the 2-D toy to the DCGAN.

Each step: D on the real batch and on a *detached* fake batch, then G with the non-saturating loss
on the *same* fake batch (the seeds recompute it; reusing it saves one G forward per step), with D's
parameters frozen during G's backward so no gradient is computed for them.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__
from ..config import Config, OptimizerConfig, validate
from ..data import GAUSSIAN_A, GAUSSIAN_B, InMemoryDataset, load_dataset
from ..errors import GanforgeError
from ..losses import LOSSES, d_accuracy
from ..models import build_models
from ..report import loss_curve, save_grid, scatter_2d, to_uint8
from .checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, save_checkpoint


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"train.device={name} but CUDA is not available here; use "
                            "train.device=cpu or train.device=auto")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
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
    """G, D, their optimizers and the step counters; ``train_step`` is the whole update."""

    def __init__(self, cfg: Config, sample_shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.sample_shape = tuple(sample_shape)
        self.G, self.D = build_models(cfg.model, sample_shape)
        self.G.to(device)
        self.D.to(device)
        self.opt_G = make_optimizer(self.G.parameters(), cfg.optim_G)
        self.opt_D = make_optimizer(self.D.parameters(), cfg.optim_D)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss.name]
        self.step = 0
        self.epoch = 0
        self.images_seen = 0

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        gen_device = "cpu" if generator is not None else self.device
        z = torch.randn(n, self.cfg.model.z_dim, generator=generator, device=gen_device)
        return z.to(self.device)

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update then one G update on ``real`` (float, on ``self.device``)."""
        G, D = self.G, self.D
        fake = G(self.noise(real.shape[0]))

        # Discriminator: real vs detached fake.
        real_logits = D(real)
        fake_logits = D(fake.detach())
        loss_D = self.d_loss_fn(real_logits, fake_logits, self.cfg.loss.real_label)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()

        # Generator: the same fake batch through the updated D; D's weights get no gradient.
        D.requires_grad_(False)
        loss_G = self.g_loss_fn(D(fake))
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        D.requires_grad_(True)

        self.step += 1
        self.images_seen += real.shape[0]
        return {"loss_D": loss_D.detach(), "loss_G": loss_G.detach(),
                "acc_D": d_accuracy(real_logits.detach(), fake_logits.detach())}

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G in eval mode (BatchNorm uses its running statistics), so a sample depends on its
        own noise only, never on the rest of the batch."""
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(z.to(self.device))
        finally:
            self.G.train(was_training)

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "images_seen": self.images_seen,
            "config": self.cfg.to_dict(),
            "sample_shape": list(self.sample_shape),
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
            "ganforge_version": __version__,
        }



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
        (run_dir / "samples").mkdir(exist_ok=True)
        self.metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        self.extractor = None
        self.best: tuple[int, float, str] | None = None

    def epoch_end(self, record: dict[str, Any], save_samples: bool) -> None:
        self.records.append(record)
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        loss_curve(self.records, self.run_dir / "loss_curve.png", title=self.cfg.name)
        if save_samples:
            self.samples(record["epoch"])
        if not self.quiet:
            tqdm.write(
                f"epoch {record['epoch']}/{self.cfg.train.epochs}: loss_D {record['loss_D']:.3f}, "
                f"loss_G {record['loss_G']:.3f}, {record['examples_per_sec']:.1f} examples/sec "
                f"on {self.gan.device}"
                + "".join(f", {k[5:]} {v:.3f}" for k, v in record.items() if k.startswith("eval_")),
                file=sys.stdout,
            )

    def samples(self, epoch: int) -> Path:
        out = self.gan.generate(self.fixed_z)
        name = self.run_dir / "samples" / f"epoch_{epoch:04d}.png"
        if self.dataset.is_image:
            save_grid(to_uint8(out), name, self.cfg.report.grid_rows, self.cfg.report.grid_cols)
            shutil.copyfile(name, self.run_dir / "samples_latest.png")
        else:
            real = self.dataset.data[: self.cfg.report.scatter_points].cpu().numpy()
            scatter_2d(real, out.cpu().numpy(), name, title=f"epoch {epoch}")
            shutil.copyfile(name, self.run_dir / "scatter_latest.png")
        return name

    def evaluate(self, record: dict[str, Any]) -> None:
        """Evaluation during training: log the metric; keep the best checkpoint."""
        from ..evaluate import _Extractor, evaluate_generator

        cfg = self.cfg
        if self.extractor is None and cfg.data.name != "gaussian2d":
            self.extractor = _Extractor(cfg.eval.features, cfg, str(self.gan.device), None,
                                        progress=False)
        res = evaluate_generator(self.gan.G, cfg, metrics=("fid",), n=cfg.eval.n,
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
        self.metrics_file.close()


def train(cfg: Config, out_dir: str | os.PathLike, *, progress: bool = True, quiet: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train ``cfg`` and write the run into ``out_dir``; see the README for what it holds."""
    validate(cfg)
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    dataset = load_dataset(cfg.data, seed=cfg.train.seed, progress=progress and not quiet)
    run_dir = prepare_run_dir(out_dir, overwrite)
    (run_dir / "config.json").write_text(cfg.to_json() + "\n", encoding="utf-8")
    dataset = dataset.to(device)

    gan = GAN(cfg, dataset.sample_shape, device)
    reporter = _Reporter(run_dir, cfg, dataset, gan, quiet)
    n, bs = len(dataset), cfg.train.batch_size
    steps_per_epoch = n // bs if cfg.train.drop_last else math.ceil(n / bs)
    if steps_per_epoch == 0:
        raise GanforgeError(f"train.batch_size={bs} exceeds the {n} examples with "
                            "train.drop_last=true; lower the batch size")
    order_gen = torch.Generator().manual_seed(cfg.train.seed)
    bar = tqdm(total=cfg.train.epochs * steps_per_epoch, unit="step", dynamic_ncols=True,
               disable=True if (quiet or not progress) else None, desc=cfg.name)
    start = time.perf_counter()
    try:
        for epoch in range(1, cfg.train.epochs + 1):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=order_gen).to(device)
            sums = torch.zeros(3, dtype=torch.float64, device=device)
            seen = 0
            for i in range(steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                stats = gan.train_step(dataset.batch(idx))
                b = idx.numel()
                sums += torch.stack([stats["loss_D"], stats["loss_G"], stats["acc_D"]]).double() * b
                seen += b
                bar.update(1)
                if not bar.disable and (i % 20 == 0 or i == steps_per_epoch - 1):
                    s = (sums / seen).tolist()
                    bar.set_postfix(epoch=epoch, loss_D=f"{s[0]:.3f}", loss_G=f"{s[1]:.3f}")
            gan.epoch = epoch
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            loss_D, loss_G, acc_D = (sums / seen).tolist()
            if not (math.isfinite(loss_D) and math.isfinite(loss_G)):
                raise GanforgeError(
                    f"training diverged at epoch {epoch}: loss_D={loss_D}, loss_G={loss_G}; "
                    "lower the learning rates (optim_D.lr / optim_G.lr)"
                )
            record = {"epoch": epoch, "step": gan.step, "images_seen": gan.images_seen,
                      "loss_D": loss_D, "loss_G": loss_G, "acc_D": acc_D,
                      "examples_per_sec": seen / dt, "epoch_seconds": dt,
                      "elapsed_seconds": time.perf_counter() - start}
            ev = cfg.eval.every
            if ev and (epoch % ev == 0 or epoch == cfg.train.epochs):
                reporter.evaluate(record)
            every = cfg.report.sample_every
            save = epoch == 1 or epoch % every == 0 or epoch == cfg.train.epochs
            reporter.epoch_end(record, save)
            ce = cfg.train.checkpoint_every
            if ce and epoch % ce == 0 and epoch != cfg.train.epochs:
                save_checkpoint(run_dir / CHECKPOINT_NAME, gan.state_dict())
    finally:
        bar.close()
        reporter.close()

    save_checkpoint(run_dir / CHECKPOINT_NAME, gan.state_dict())
    last = reporter.records[-1]
    summary: dict[str, Any] = {
        "preset": cfg.name,
        "epochs": gan.epoch,
        "steps": gan.step,
        "images_seen": gan.images_seen,
        "final_loss_D": last["loss_D"],
        "final_loss_G": last["loss_G"],
        "train_seconds": time.perf_counter() - start,
        "device": str(device),
        "checkpoint": CHECKPOINT_NAME,
    }
    if reporter.best is not None:
        summary["best"] = {"epoch": reporter.best[0], "metric": reporter.best[2],
                           "value": reporter.best[1], "checkpoint": BEST_CHECKPOINT_NAME}
    if cfg.model.arch == "toy" and cfg.data.name == "gaussian2d":
        summary["gaussian"] = gaussian_fit(gan.G)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrainResult(run_dir, summary)
