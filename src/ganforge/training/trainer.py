"""The one training engine, for every model from the 2-D toy to the DCGAN: the loop over epochs
and steps, checkpoints, exact restore, rollbacks, the time budget and the summary
(``train()`` around it is in :mod:`.run`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..config import Config
from ..data import InMemoryDataset, describe
from ..errors import GanforgeError
from ..io import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from ..metrics.gaussian import gaussian_fit
from ..runtime import rng_state, set_rng_state
from .evaluator import TrainingEvaluator
from .health import HealthMonitor
from .logger import RunLogger
from .schedule import cosine, lr_factor, run_progress
from .state import Position, StepReduction
from .step import GAN


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]


READ_EVERY_GPU = 32


class TrainingInterrupted(GanforgeError):
    """SIGINT/SIGTERM: a checkpoint was saved; the message says how to resume."""


class _Diverged(Exception):
    """A non-finite loss or weight: the step is discarded and the run rolls back."""


class _StopRequested(Exception):
    pass


class Trainer:
    """Runs the epochs of one run: position in the data, checkpoints, rollbacks, signals."""

    def __init__(self, cfg: Config, run_dir: Path, dataset: InMemoryDataset, gan: GAN,
                 resolved: dict[str, Any], progress: bool, quiet: bool) -> None:
        self.cfg, self.run_dir, self.dataset, self.gan = cfg, run_dir, dataset, gan
        self.resolved = resolved
        n, bs = len(dataset), cfg.train.batch_size
        self.steps_per_epoch = n // bs if cfg.train.drop_last else math.ceil(n / bs)
        if self.steps_per_epoch == 0:
            raise GanforgeError(f"train.batch_size={bs} exceeds the {n} examples with "
                                "train.drop_last=true; lower the batch size")
        self.pos = Position.start(cfg.train.seed, gan.stat_names)
        self.logger = RunLogger(run_dir, cfg, dataset, gan, quiet)
        self.evaluator = TrainingEvaluator(run_dir, cfg, gan, self.pos, quiet)
        self.health = HealthMonitor(cfg.health, has_accuracy=gan.threshold is not None)
        self.agreed_elapsed = 0.0  # run seconds at the last step, averaged over the ranks
        self.stop_signal: str | None = None
        self.out_of_time = False  # train.max_minutes reached: the run ends after this step
        self.read_every = self.steps_per_read()
        self.postfix_time = 0.0  # when the progress bar's losses were last refreshed
        self.t_start = time.perf_counter()
        self.last_ckpt_time = time.perf_counter()
        self.bar = tqdm(total=cfg.train.epochs * self.steps_per_epoch, unit="step",
                        dynamic_ncols=True, desc=cfg.name,
                        disable=True if (quiet or not progress or not distributed.is_main())
                        else None)

    def steps_per_read(self) -> int:
        """Steps between reads of the step statistics: every step on a CPU (reading costs
        nothing there) and under torchrun (the ranks agree on every step); 32 on a single GPU,
        whose steps queue asynchronously while the host does not wait for them."""
        single_gpu = self.gan.device.type == "cuda" and not distributed.info().enabled
        return READ_EVERY_GPU if single_gpu else 1

    # -------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        st = self.gan.state_dict()
        st["resolved"] = self.resolved
        st["position"] = self.pos.state_dict(self._elapsed(), self.gan.opt_G.param_groups[0]["lr"],
                                             self.gan.opt_D.param_groups[0]["lr"])
        st["rng"] = rng_state(self.gan.device)
        return st

    def save(self) -> None:
        if distributed.is_main():
            save_checkpoint(self.run_dir / CHECKPOINT_NAME, self.state())
        distributed.barrier()  # a rollback on any rank reads a complete file
        self.last_ckpt_time = time.perf_counter()

    def restore(self, st: dict[str, Any]) -> None:
        self.gan.load_state_dict(st)
        self.pos.load_state_dict(st["position"])
        self.agreed_elapsed = self.pos.elapsed
        set_rng_state(st["rng"], self.gan.device)
        self.bar.n = self.gan.epoch * self.steps_per_epoch + self.pos.step_in_epoch
        self.bar.refresh()

    def alarm(self, kind: str, message: str, epoch: int | None = None) -> None:
        self.logger.alarm(kind, message, self.gan.step,
                          self.gan.epoch + 1 if epoch is None else epoch)

    # -------------------------------------------------------------- schedule and budget
    def progress(self) -> float:
        """Share of the run done, 0 to 1. Time is the elapsed seconds that all ranks agreed on
        at the last step, so their learning rates stay identical."""
        t = self.cfg.train
        return run_progress(self.gan.step, t.epochs * self.steps_per_epoch, self.agreed_elapsed,
                            t.max_minutes)

    def scheduled(self) -> bool:
        """Whether anything moves with the run's progress (then it is set before every step)."""
        t, lc = self.cfg.train, self.cfg.loss
        return (t.lr_schedule != "constant" or bool(t.beta2_end) or bool(t.ema_kimg_end)
                or lc.gamma_end != 1.0)

    def set_lr(self) -> None:
        """Learning rates = configured x rollback scale x schedule; and, when annealed, Adam's
        beta2, the penalties' gamma and G_ema's half-life, all from the run's progress (so a
        resume continues them exactly)."""
        t, gan = self.cfg.train, self.gan
        progress = self.progress()
        factor = lr_factor(progress, t.lr_schedule, t.lr_decay_start, t.lr_end)
        for opt, oc in ((gan.opt_G, self.cfg.optim_G), (gan.opt_D, self.cfg.optim_D)):
            for group in opt.param_groups:
                group["lr"] = oc.lr * self.pos.lr_scale * factor
                if t.beta2_end and oc.name == "adam":
                    group["betas"] = (oc.beta1, cosine(progress, oc.beta2, t.beta2_end))
        if self.cfg.loss.gamma_end != 1.0:
            gan.gamma_factor = cosine(progress, 1.0, self.cfg.loss.gamma_end)
        if t.ema_kimg_end and gan.ema is not None:
            gan.ema.half_life_images = 1000 * cosine(progress, t.ema_kimg, t.ema_kimg_end)

    def _elapsed(self) -> float:
        """Seconds of training in this run, resumed parts included."""
        return self.pos.elapsed + time.perf_counter() - self.t_start

    def _over_budget(self) -> bool:
        minutes = self.cfg.train.max_minutes
        return bool(minutes) and self._elapsed() >= 60 * minutes

    def _checkpoint_due(self) -> bool:
        t = self.cfg.train
        if t.checkpoint_steps and self.gan.step % t.checkpoint_steps == 0:
            return True
        return bool(t.checkpoint_minutes) and \
            time.perf_counter() - self.last_ckpt_time > 60 * t.checkpoint_minutes

    def _rollback(self, reason: str) -> None:
        h = self.cfg.health
        retries = self.pos.retries + 1
        if retries > h.max_retries:
            raise GanforgeError(
                f"training diverged ({reason}) and {h.max_retries} rollback(s) with lower learning "
                f"rates did not help; the last good checkpoint is {self.run_dir / CHECKPOINT_NAME}. "
                "Lower optim_D.lr / optim_G.lr and resume with `ganforge train --resume`."
            )
        self.restore(load_checkpoint(self.run_dir / CHECKPOINT_NAME, map_location=self.gan.device))
        self.pos.retries = retries
        self.pos.lr_scale = h.lr_decay ** retries
        self.set_lr()
        lr_g, lr_d = self.gan.opt_G.param_groups[0]["lr"], self.gan.opt_D.param_groups[0]["lr"]
        self.alarm("rollback", f"{reason}; rolled back to step {self.gan.step} with learning rates "
                               f"lowered to lr_G={lr_g:.3g}, lr_D={lr_d:.3g} "
                               f"(retry {retries}/{h.max_retries})")

    # -------------------------------------------------------------- the loop
    def run(self) -> None:
        self.evaluator.prepare()
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
        cfg, gan, ds, pos = self.cfg, self.gan, self.dataset, self.pos
        n, bs = len(ds), cfg.train.batch_size
        scheduled = self.scheduled()
        while gan.epoch < cfg.train.epochs and not self.out_of_time:
            epoch = gan.epoch + 1
            pos.begin_epoch()
            perm = torch.randperm(n, generator=pos.order_gen).to(gan.device)
            t0 = time.perf_counter()
            seen_at_start = pos.seen
            pending: list[tuple[torch.Tensor, int]] = []  # steps whose statistics are unread
            for i in range(pos.step_in_epoch, self.steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                b = idx.numel()
                part, weight = distributed.shard(idx)
                z = gan.noise(b)[part]  # the global batch's noise, identical on every rank
                if scheduled:
                    self.set_lr()
                y = ds.labels_at(idx[part]) if gan.num_classes else None
                stats = gan.train_step(ds.batch(idx[part]), z, weight, global_n=b, y=y)
                last = i + 1 == self.steps_per_epoch
                # The step's contribution to one small reduction: the global mean statistics,
                # and the decisions every rank must take together (stop on a signal, checkpoint
                # now, out of time).
                stop, ckpt, over = (self.stop_signal is not None,
                                    not last and self._checkpoint_due(), self._over_budget())
                pending.append((StepReduction.local(stats, z.shape[0], stop, ckpt, over,
                                                    self._elapsed()), b))
                self.bar.update(1)
                # A read waits for the device (see steps_per_read); a decision or the epoch's
                # end reads at once.
                if len(pending) < self.read_every and not (last or stop or ckpt or over):
                    continue
                red = self._read(pending, seen_at_start, t0, i + 1)
                pending = []
                if red.stop > 0:
                    self.save()
                    raise _StopRequested(self.stop_signal or "a signal on another rank")
                if red.checkpoint > 0:
                    self.save()
                if red.over_budget > 0:  # the time budget ends the run: this epoch is the last
                    self.out_of_time = True
                    break
            if not gan.all_finite():
                raise _Diverged(f"non-finite weights at the end of epoch {epoch}")
            if gan.device.type == "cuda":
                torch.cuda.synchronize(gan.device)
            self._end_epoch(epoch, time.perf_counter() - t0, pos.seen - seen_at_start)

    def _read(self, pending: list[tuple[torch.Tensor, int]], seen_at_start: int, t0: float,
              step_in_epoch: int) -> StepReduction:
        """Reduce the pending steps' contributions over the ranks and read them (one host sync):
        the epoch's running sums, the divergence check and D's accuracy window step by step;
        returns the last step's reduction (the decisions)."""
        gan, pos = self.gan, self.pos
        rows = distributed.all_reduce_sum(torch.stack([t for t, _ in pending])).cpu()
        first_step = gan.step - len(pending) + 1
        for k, (row, (_, b)) in enumerate(zip(rows, pending)):
            red = StepReduction.from_tensor(row)
            means = torch.tensor(red.means(), dtype=torch.float64)
            if not torch.isfinite(means[:2]).all():
                raise _Diverged(f"non-finite loss at step {first_step + k} "
                                f"(loss_D={means[0]:.4g}, loss_G={means[1]:.4g})")
            pos.sums += means * b
            pos.seen += b
            for kind, message in self.health.step(gan.epoch, float(means[2]), gan.images_seen):
                self.alarm(kind, message)
        self.agreed_elapsed = red.elapsed / distributed.info().world_size
        pos.step_in_epoch = step_in_epoch
        if not self.bar.disable and time.perf_counter() - self.postfix_time > 0.5:
            self.postfix_time = time.perf_counter()
            m = pos.means()
            rate = (pos.seen - seen_at_start) / max(time.perf_counter() - t0, 1e-9)
            self.bar.set_postfix(epoch=gan.epoch + 1, loss_D=f"{m['loss_D']:.3f}",
                                 loss_G=f"{m['loss_G']:.3f}", img_s=f"{rate:.0f}")
        return red

    def _end_epoch(self, epoch: int, seconds: float, examples: int) -> None:
        cfg, gan, pos = self.cfg, self.gan, self.pos
        gan.epoch = epoch
        pos.step_in_epoch = 0
        m = pos.means()
        record = {"epoch": epoch, "step": gan.step, "images_seen": gan.images_seen,
                  "loss_D": m["loss_D"], "loss_G": m["loss_G"], "acc_D": m["acc_D"],
                  "examples_per_sec": examples / seconds, "epoch_seconds": seconds,
                  "elapsed_seconds": self._elapsed(),
                  "lr_G": gan.opt_G.param_groups[0]["lr"], "lr_D": gan.opt_D.param_groups[0]["lr"]}
        if cfg.train.beta2_end and "betas" in gan.opt_G.param_groups[0]:  # the annealed values
            record["beta2_G"] = gan.opt_G.param_groups[0]["betas"][1]
        if cfg.loss.gamma_end != 1.0:
            record["gamma_factor"] = gan.gamma_factor
        if cfg.train.ema_kimg_end and gan.ema is not None:
            record["ema_kimg"] = gan.ema.half_life_images / 1000
        if gan.terms:  # D's regularisers: their weighted sum and each one's own value
            record["penalty_D"] = m["penalty"]
            record.update({f"loss_D_{t.name}": m[f"loss_D_{t.name}"] for t in gan.terms})
        if gan.ada is not None:  # the augmentation probability and the signal that moves it
            rt = gan.ada.last_rt
            record["augment_p"], record["ada_rt"] = gan.ada.p_value, None if math.isnan(rt) else rt
        final = epoch == cfg.train.epochs or self.out_of_time
        if self.out_of_time:
            record["stopped_by"] = f"train.max_minutes={cfg.train.max_minutes:g}"
        ev = cfg.eval.every
        if ev and (epoch % ev == 0 or final):
            self.evaluator(record, self.state)
        diversity = self.logger.epoch_end(record, self.logger.grid_due(epoch, final), final)
        for kind, message in self.health.epoch_end(epoch, m["loss_G"], diversity,
                                                      gan.images_seen):
            self.alarm(kind, message, epoch)
        ce = cfg.train.checkpoint_every
        due = (ce and epoch % ce == 0) or final
        if due or distributed.agree(self._checkpoint_due()):
            self.save()

    def summary(self) -> dict[str, Any]:
        cfg, gan = self.cfg, self.gan
        last = self.logger.records[-1]
        summary: dict[str, Any] = {
            "preset": cfg.name,
            "epochs": gan.epoch,
            "steps": gan.step,
            "images_seen": gan.images_seen,
            "final_loss_D": last["loss_D"],
            "final_loss_G": last["loss_G"],
            "train_seconds": last["elapsed_seconds"],
            "device": str(gan.device),
            "precision": gan.precision,
            "checkpoint": CHECKPOINT_NAME,
            "alarms": [a["alarm"] for a in self.logger.alarms],
            "rollbacks": self.pos.retries,
        }
        source = self.resolved.get("init_from")
        if source:  # the weights the run started from
            summary["init_from"] = {k: source.get(k) for k in ("path", "sha256", "data",
                                                               "data_path", "images_seen")}
        if self.out_of_time:
            summary["stopped_by"] = f"train.max_minutes={cfg.train.max_minutes:g}"
        if self.pos.best is not None:
            epoch, value, key = self.pos.best
            summary["best"] = {"epoch": epoch, "metric": key, "value": value,
                               "checkpoint": BEST_CHECKPOINT_NAME}
        target = describe(cfg.data).gaussian
        if target is not None:  # the data's exact distribution is known: the fit, exactly
            summary["gaussian"] = gaussian_fit(gan.G_sample, *target)
        if distributed.info().enabled:
            summary["processes"] = distributed.info().world_size
        return summary
