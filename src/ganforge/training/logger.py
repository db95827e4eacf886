"""What a run leaves behind as it goes: metrics.jsonl, alarms.jsonl, TensorBoard, the loss
curve, sample grids (scatters for 2-D data) and the console lines. Only the main process writes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..config import Config
from ..data import InMemoryDataset
from ..io import JsonlWriter, atomic_write, run_path
from ..report.plots import loss_curve, save_grid, scatter_2d, to_uint8
from ..report.tensorboard import TensorBoardLogger
from .health import mean_pairwise_distance
from .step import GAN


class RunLogger:
    def __init__(self, run_dir: Path, cfg: Config, dataset: InMemoryDataset, gan: GAN,
                 quiet: bool) -> None:
        self.run_dir, self.cfg, self.dataset, self.gan, self.quiet = run_dir, cfg, dataset, gan, quiet
        self.records: list[dict[str, Any]] = []
        self.alarms: list[dict[str, Any]] = []
        gen = torch.Generator().manual_seed(cfg.train.seed + 1)  # same noise every epoch
        n = (cfg.report.grid_rows * cfg.report.grid_cols if dataset.is_image
             else cfg.report.scatter_points)
        self.fixed_z = gan.noise(n, generator=gen)
        # Conditional models: class k in column k of the grid (cycling when there are more).
        classes = gan.num_classes
        self.fixed_y = (torch.arange(n, device=gan.device) % cfg.report.grid_cols % classes
                        if classes else None)
        self.main = distributed.is_main()  # only the main process writes files and prints
        self.curve_drawn = 0.0
        self.grid_time = time.perf_counter()  # when the last sample grid was written
        self.tb = TensorBoardLogger(run_dir, cfg.report.tensorboard if self.main else "off")
        self.metrics = JsonlWriter(run_dir / "metrics.jsonl")
        self.alarm_log = JsonlWriter(run_dir / "alarms.jsonl")
        if self.main:
            (run_dir / "samples").mkdir(exist_ok=True)
        # Diversity reference: mean pairwise distance within a fixed batch of real data.
        real = dataset.batch(torch.arange(min(len(dataset), len(self.fixed_z)),
                                          device=dataset.data.device))
        self.real_diversity = mean_pairwise_distance(real)

    def reset_records(self, records: list[dict[str, Any]]) -> None:
        """On resume: keep the metrics of the epochs the checkpoint covers, drop the rest."""
        self.records = records
        if self.main:
            self.metrics.reset(records)

    def alarm(self, kind: str, message: str, step: int, epoch: int) -> None:
        rec = {"step": step, "epoch": epoch, "alarm": kind, "message": message}
        self.alarms.append(rec)
        if not self.main:
            return
        self.alarm_log.append(rec)
        if not self.quiet:
            tqdm.write(f"ALARM [{kind}] step {step}: {message}", file=sys.stderr)

    def epoch_end(self, record: dict[str, Any], save_samples: bool,
                  final: bool = False) -> float | None:
        """Log the epoch; returns the fixed-noise sample diversity relative to real data."""
        fake = self.gan.generate(self.fixed_z, self.fixed_y)
        diversity = None
        if self.real_diversity > 0:
            diversity = mean_pairwise_distance(fake) / self.real_diversity
            record["diversity"] = diversity
        self.records.append(record)
        if not self.main:
            return diversity
        self.tb.scalars(record)
        self.metrics.append(record)
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

    def grid_due(self, epoch: int, final: bool) -> bool:
        """A grid after the last epoch, every ``report.sample_every`` epochs, once
        ``report.sample_minutes`` passed since the last one (a grid a few minutes apart whether
        an epoch is 100 images or 100,000), and after the first epoch unless both are 0."""
        r = self.cfg.report
        late = r.sample_minutes > 0 and time.perf_counter() - self.grid_time >= 60 * r.sample_minutes
        first = epoch == 1 and (r.sample_every > 0 or r.sample_minutes > 0)
        return first or final or late or bool(r.sample_every and epoch % r.sample_every == 0)

    def samples(self, epoch: int, out: torch.Tensor) -> Path:
        """Write the grid (or scatter) of ``out``, the generator's fixed-noise samples."""
        name = run_path(self.run_dir, "samples", f"epoch_{epoch:04d}.png")
        self.grid_time = time.perf_counter()
        if self.dataset.is_image:
            save_grid(to_uint8(out), name, self.cfg.report.grid_rows, self.cfg.report.grid_cols)
            latest = "samples_latest.png"
        else:
            real = self.dataset.data[: self.cfg.report.scatter_points].cpu().numpy()
            scatter_2d(real, out.cpu().numpy(), name, title=f"epoch {epoch}")
            latest = "scatter_latest.png"
        atomic_write(self.run_dir / latest, name.read_bytes())
        return name

    def close(self) -> None:
        self.metrics.close()
        self.alarm_log.close()
        self.tb.close()
