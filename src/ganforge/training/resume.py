"""What a resume may change: overrides a checkpoint cannot continue with exactly are refused here,
before any file of the run changes (the table is in docs/robustness.md)."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..errors import GanforgeError


def check_resume_overrides(cfg: Config, state: dict[str, Any]) -> None:
    """Refuse, before any file changes, overrides a checkpoint cannot continue with exactly."""
    saved = Config.from_dict(state["config"])
    mid_epoch = state.get("position", {}).get("step_in_epoch", 0) > 0
    if mid_epoch and saved.train.batch_size != cfg.train.batch_size:
        raise GanforgeError(
            f"the checkpoint stopped in the middle of epoch {state['epoch'] + 1}, at a position "
            f"counted in batches of {saved.train.batch_size}; resuming with train.batch_size="
            f"{cfg.train.batch_size} would skip or repeat images. Resume with the old batch size "
            "and change it at the next epoch boundary (train.epochs=N with N one more than done)")
    for key in ("optim_G.name", "optim_D.name"):
        old, new = (getattr(getattr(c, key.split(".")[0]), "name") for c in (saved, cfg))
        if old != new:
            raise GanforgeError(f"{key}={new} cannot continue from the checkpoint's {old} state; "
                                f"start a new run to change the optimizer")


def apply_optimizer_settings(trainer: Any, saved: Config) -> None:
    """On resume: the optimizers' saved state brings back the saved hyperparameters; set the
    ones of this config instead, so overrides take effect from the first resumed step. A
    changed learning rate also ends a rollback's lowering (the user chose a new rate)."""
    if (trainer.cfg.optim_G.lr, trainer.cfg.optim_D.lr) != (saved.optim_G.lr, saved.optim_D.lr):
        trainer.pos.lr_scale = 1.0
    for opt, oc in ((trainer.gan.opt_G, trainer.cfg.optim_G), (trainer.gan.opt_D, trainer.cfg.optim_D)):
        for group in opt.param_groups:
            if "betas" in group:
                group["betas"] = (oc.beta1, oc.beta2)
            if oc.name == "sgd":  # beta1 is SGD's momentum; RMSprop's momentum stays as built
                group["momentum"] = oc.beta1
            if "alpha" in group:
                group["alpha"] = oc.alpha
            if "eps" in group:
                group["eps"] = oc.eps
    trainer.set_lr()
