"""A run's position and counters, beyond G, D and their optimizers: where in the data it is, the
epoch's running sums, rollbacks, elapsed time, the best evaluation so far. Also the one small
record the ranks agree on after every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .step import StepStats


@dataclass
class Position:
    """Everything a resume needs besides the GAN and the RNG states."""

    order_gen: torch.Generator  # draws each epoch's permutation of the data
    epoch_start_order: torch.Tensor  # order_gen's state when the current epoch began
    names: tuple[str, ...] = StepStats.FIELDS  # what each entry of ``sums`` sums
    step_in_epoch: int = 0  # 0 at an epoch boundary
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(4, dtype=torch.float64))
    seen: int = 0  # examples seen in the current epoch
    retries: int = 0  # rollbacks so far
    elapsed: float = 0.0  # training seconds before this process started
    lr_scale: float = 1.0  # lowered by rollbacks
    best: tuple[int, float, str] | None = None  # (epoch, value, metric key) of checkpoint_best

    @classmethod
    def start(cls, seed: int, names: tuple[str, ...] = StepStats.FIELDS) -> "Position":
        """At the start of a run whose steps report the statistics ``names``
        (:meth:`StepStats.names`)."""
        gen = torch.Generator().manual_seed(seed)
        return cls(order_gen=gen, epoch_start_order=gen.get_state(), names=tuple(names),
                   sums=torch.zeros(len(names), dtype=torch.float64))

    def begin_epoch(self) -> None:
        """At an epoch boundary: remember where the permutation starts and clear the sums; in the
        middle of an epoch (a resume), rewind the generator to draw the same permutation."""
        if self.step_in_epoch == 0:
            self.epoch_start_order = self.order_gen.get_state()
            self.sums.zero_()
            self.seen = 0
        else:
            self.order_gen.set_state(self.epoch_start_order)

    def means(self) -> dict[str, float | None]:
        """The epoch's running means of the step statistics, by name; a term's mean is over the
        steps it ran (None when a lazy term has not run yet this epoch)."""
        sums = dict(zip(self.names, self.sums.tolist()))
        out: dict[str, float | None] = {}
        for name, total in sums.items():
            if name.startswith("ran_"):
                continue
            ran = sums.get(f"ran_{name[len('loss_D_'):]}") if name.startswith("loss_D_") else None
            if ran is None:
                out[name] = total / max(self.seen, 1)
            else:
                out[name] = total / ran if ran else None
        return out

    def state_dict(self, elapsed: float, lr_G: float, lr_D: float) -> dict[str, Any]:
        return {"epoch_start_order": self.epoch_start_order,
                "order_gen": self.order_gen.get_state(),
                "step_in_epoch": self.step_in_epoch, "sums": self.sums.clone(),
                "seen": self.seen, "retries": self.retries, "elapsed": elapsed,
                "lr_scale": self.lr_scale, "lr_G": lr_G, "lr_D": lr_D,
                "best": list(self.best) if self.best else None}

    def load_state_dict(self, pos: dict[str, Any]) -> None:
        self.epoch_start_order = pos["epoch_start_order"].cpu()
        self.order_gen.set_state(pos["order_gen"].cpu())
        self.step_in_epoch, self.seen = pos["step_in_epoch"], pos["seen"]
        self.sums = torch.zeros(len(self.names), dtype=torch.float64)
        saved = pos["sums"][: len(self.names)]
        self.sums[: len(saved)] = saved  # checkpoints before 0.2 kept three sums
        self.lr_scale = pos.get("lr_scale", 1.0)
        self.retries = pos["retries"]
        self.elapsed = pos["elapsed"]
        self.best = tuple(pos["best"]) if pos.get("best") else None  # type: ignore[assignment]


@dataclass
class StepReduction:
    """What every rank contributes after a step, summed over the ranks in one all-reduce: the
    step statistics weighted by the rank's examples, and the decisions all ranks take together."""

    stats: list[float]  # the step statistics (StepStats.stacked) times the examples
    examples: float  # this rank's examples in the step
    stop: float  # a signal asked this rank to stop
    checkpoint: float  # this rank's checkpoint timer is due
    over_budget: float  # this rank's clock passed train.max_minutes
    elapsed: float  # this rank's training seconds

    @classmethod
    def local(cls, stats: StepStats, examples: int, stop: bool, checkpoint: bool,
              over_budget: bool, elapsed: float) -> torch.Tensor:
        """This rank's contribution as one float64 tensor on the statistics' device (no host
        sync): the statistics times ``examples``, then the flags and the clock."""
        weighted = stats.stacked().double() * examples
        rest = torch.tensor([examples, float(stop), float(checkpoint), float(over_budget), elapsed],
                            dtype=torch.float64, device=weighted.device)
        return torch.cat([weighted, rest])

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> "StepReduction":
        values = t.tolist()
        return cls(values[:-5], *values[-5:])

    def means(self) -> list[float]:
        """The global batch's mean statistics (loss_D, loss_G, acc_D, penalty, then the terms'
        values and ran-flags), in :meth:`StepStats.names`' order."""
        return [v / self.examples for v in self.stats]

