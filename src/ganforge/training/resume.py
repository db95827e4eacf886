"""Resume, in one place: read the checkpoint once, rebuild its config with the overrides, refuse
(before any file of the run changes) what a checkpoint cannot continue with exactly, and after
the GAN is restored, give the optimizers this config's hyperparameters. The table of what an
override means on resume is in docs/robustness.md."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import Config, OptimizerConfig, apply_overrides
from ..errors import GanforgeError
from ..io import load_checkpoint, resolve_checkpoint
from ..io.lock import refuse_if_locked
from ..validation import validate
from .state import Position


@dataclass
class Resumption:
    """A checkpoint read for resuming: where the run is, its state, and the config to go on with
    (the saved one with the overrides applied, validated)."""

    run_dir: Path
    checkpoint: Path
    state: dict[str, Any]
    cfg: Config
    saved: Config  # the config the checkpoint was trained with


def prepare_resume(run: str | os.PathLike, overrides: Sequence[str] = (),
                   cfg: Config | None = None) -> Resumption:
    """Read the latest checkpoint of the run directory ``run`` (or the checkpoint file ``run``)
    and the config to resume with: ``cfg`` when given, else the saved config with ``overrides``.
    Refuses a locked run and overrides the checkpoint cannot continue with; writes nothing."""
    ckpt = resolve_checkpoint(run)
    run_dir = ckpt.parent
    refuse_if_locked(run_dir)
    state = load_checkpoint(ckpt)  # on the CPU: restoring moves each tensor to its device
    saved = Config.from_dict(state["config"])
    if cfg is None:
        cfg = validate(apply_overrides(saved, list(overrides)))
    elif overrides:
        cfg = validate(apply_overrides(cfg, list(overrides)))
    else:
        cfg = validate(cfg)
    check_resume_overrides(cfg, saved, state)
    return Resumption(run_dir, ckpt, state, cfg, saved)


def check_resume_overrides(cfg: Config, saved: Config, state: dict[str, Any]) -> None:
    """Refuse, before any file changes, overrides a checkpoint cannot continue with exactly."""
    mid_epoch = state.get("position", {}).get("step_in_epoch", 0) > 0
    if mid_epoch and saved.train.batch_size != cfg.train.batch_size:
        raise GanforgeError(
            f"the checkpoint stopped in the middle of epoch {state['epoch'] + 1}, at a position "
            f"counted in batches of {saved.train.batch_size}; resuming with train.batch_size="
            f"{cfg.train.batch_size} would skip or repeat images. Resume with the old batch size "
            "and change it at the next epoch boundary (train.epochs=N with N one more than done)")
    if saved.train.freeze_d != cfg.train.freeze_d:
        raise GanforgeError(
            f"train.freeze_d={cfg.train.freeze_d} cannot continue from the checkpoint's "
            f"{saved.train.freeze_d}: D's optimizer holds another set of parameters. Start a new "
            "run from this one instead (train.init_from=RUN train.freeze_d=K)")
    if saved.train.init_from != cfg.train.init_from:
        raise GanforgeError("train.init_from chooses the weights a run starts from; a resume "
                            "continues its own. Start a new run to begin from other weights")
    for key in ("optim_G.name", "optim_D.name"):
        old, new = (getattr(getattr(c, key.split(".")[0]), "name") for c in (saved, cfg))
        if old != new:
            raise GanforgeError(f"{key}={new} cannot continue from the checkpoint's {old} state; "
                                f"start a new run to change the optimizer")


def check_same_data(resumed: Resumption, examples: int, quiet: bool) -> None:
    """The data a resume reads against what the checkpoint was trained on: a different number
    of examples in the middle of an epoch is refused (the position counts into the old data);
    at an epoch boundary the run goes on with the new data, and says so."""
    before = (resumed.state.get("resolved") or {}).get("examples")
    if before is None or before == examples:
        return
    where = resumed.cfg.data.path or resumed.cfg.data.name
    if resumed.state.get("position", {}).get("step_in_epoch", 0) > 0:
        raise GanforgeError(
            f"the data changed since the checkpoint: {where} held {before} examples and holds "
            f"{examples} now, and the checkpoint stopped in the middle of an epoch, at a position "
            "in the old data. Restore the data, or start a new run on the new data")
    if not quiet:
        print(f"ganforge: note: the data changed since the checkpoint: {where} held {before} "
              f"examples and holds {examples} now; the next epochs use the new data",
              file=sys.stderr)


def set_hyperparameters(opt: torch.optim.Optimizer, oc: OptimizerConfig) -> None:
    """The keys of ``oc`` that ``opt`` reads (betas, momentum, alpha, eps), in every group."""
    for group in opt.param_groups:
        if oc.name == "adam":
            group["betas"] = (oc.beta1, oc.beta2)
        if oc.name in ("rmsprop", "sgd"):
            group["momentum"] = oc.momentum
        if oc.name == "rmsprop":
            group["alpha"] = oc.alpha
        if oc.name in ("adam", "rmsprop"):
            group["eps"] = oc.eps


def apply_optimizer_settings(optimizers: Sequence[torch.optim.Optimizer], cfg: Config,
                             saved: Config, position: Position) -> None:
    """After restoring: the optimizers' saved state brought back the saved hyperparameters; set
    the ones of ``cfg`` instead, so overrides take effect from the first resumed step. A changed
    learning rate also ends a rollback's lowering (the user chose a new rate). The learning
    rates themselves are set by the trainer's schedule. Momentum turned on at a resume starts
    from a zero buffer, as it does at the start of a run."""
    if (cfg.optim_G.lr, cfg.optim_D.lr) != (saved.optim_G.lr, saved.optim_D.lr):
        position.lr_scale = 1.0
    for opt, oc in zip(optimizers, (cfg.optim_G, cfg.optim_D)):
        set_hyperparameters(opt, oc)
        for group in opt.param_groups:
            if oc.name == "rmsprop" and oc.momentum > 0:
                for p in group["params"]:
                    st = opt.state.get(p)
                    if st and "momentum_buffer" not in st:
                        st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
