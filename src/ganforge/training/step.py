"""G, D, their optimizers and the one update every model takes.

Each step: D on the real batch and on a *detached* fake batch (plus the terms of its objective:
WGAN-GP, lazy R1 and R2, an architecture's own, see :mod:`.objective`), then G on the *same*
fake batch (the seeds recompute it; reusing it saves one G forward per step; a relativistic loss
also reads the updated D on the real batch), with D's parameters frozen during G's backward so
no gradient is computed for them (Freeze-D's blocks stay frozen throughout); then the G_ema
update. DiffAugment, when on, sits in front of every D call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import __version__, distributed
from ..augment import AdaptiveAugment, diff_augment, parse_policy, xflip
from ..config import Config, OptimizerConfig
from ..errors import GanforgeError
from ..losses import (DECISION_THRESHOLD, LOSSES, RELATIVISTIC, d_accuracy, gradient_penalty,
                      r1_penalty, r2_penalty)
from ..models import build_models, class_count
from ..runtime import AMP_DTYPES, resolve_precision
from .ema import EMA
from .objective import Term, d_terms


def make_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        # The fused kernel updates every parameter in one call: 18% faster steps for the 2-D
        # toy on a CPU (dispatch-bound), neutral for the image models, and the fast path on
        # CUDA. Same algorithm; results differ from the per-tensor loop only by rounding.
        params = list(params)
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                fused=fused or None)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps,
                                   momentum=cfg.momentum)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    raise GanforgeError(f"unknown optimizer {cfg.name!r}")


def freeze_d_blocks(D: nn.Module, k: int) -> list[str]:
    """Freeze-D (Mo et al. 2020): D's first ``k`` blocks from the input side get no gradient;
    returns the names of the frozen parameters (the optimizer is built without them)."""
    if not k:
        return []
    blocks = D.input_blocks() if hasattr(D, "input_blocks") else []
    if k > len(blocks):
        raise GanforgeError(f"train.freeze_d={k}, but this discriminator has {len(blocks)} blocks "
                            f"from the input side (at this resolution): use at most "
                            f"{len(blocks)}, or 0 to train all of D")
    frozen = {id(p) for b in blocks[:k] for p in b.parameters()}
    for b in blocks[:k]:
        b.requires_grad_(False)
    return [n for n, p in D.named_parameters() if id(p) in frozen]


@dataclass
class StepStats:
    """What one step reports, as 0-d tensors on the step's device (no host sync until read)."""

    loss_D: torch.Tensor
    loss_G: torch.Tensor
    acc_D: torch.Tensor  # share of real and fake inputs D classified correctly
    penalty: torch.Tensor  # D's terms beyond the adversarial loss, weighted and summed
    # Per term of D's objective: its unweighted value and 1 (or 0 and 0 on a step a lazy term
    # skipped), in the objective's order.
    terms: tuple[torch.Tensor, ...] = ()

    FIELDS = ("loss_D", "loss_G", "acc_D", "penalty")

    @staticmethod
    def names(terms: tuple[Term, ...]) -> tuple[str, ...]:
        """The names of :meth:`stacked`'s entries for an objective with ``terms``."""
        return StepStats.FIELDS + tuple(n for t in terms for n in (f"loss_D_{t.name}",
                                                                    f"ran_{t.name}"))

    def stacked(self) -> torch.Tensor:
        return torch.stack([*(getattr(self, f) for f in self.FIELDS), *self.terms])


class GAN:
    """G, D, G_ema, their optimizers and the step counters; ``train_step`` is the whole update.

    ``num_classes`` is the number of classes a conditional model is built for (default: the
    config's ``model.num_classes`` when ``model.conditional``, else 0).
    """

    def __init__(self, cfg: Config, sample_shape: tuple[int, ...], device: torch.device,
                 num_classes: int | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.sample_shape = tuple(sample_shape)
        self.num_classes = class_count(cfg.model) if num_classes is None else num_classes
        self.G, self.D = build_models(cfg.model, sample_shape, self.num_classes)
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
        self.amp_dtype = AMP_DTYPES[self.precision]
        # fp16 needs loss scaling; one scaler per network since their backward passes are separate.
        self.scaler_D = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        # torch.compile wraps the forward passes only; state dicts come from the plain modules.
        self.G_fwd = torch.compile(self.G) if t.compile else self.G
        self.D_fwd = torch.compile(self.D) if t.compile else self.D
        self.frozen_D = freeze_d_blocks(self.D, t.freeze_d)
        self.d_trainable = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_G = make_optimizer(self.G.parameters(), cfg.optim_G)
        self.opt_D = make_optimizer(self.d_trainable, cfg.optim_D)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss.name]
        self.threshold = DECISION_THRESHOLD[cfg.loss.name]
        self.relativistic = cfg.loss.name in RELATIVISTIC
        self.ada = (AdaptiveAugment(device, t.ada_target, t.ada_kimg, self.threshold or 0.0)
                    if t.ada else None)
        self.d_terms = 2.0 if cfg.loss.d_terms == "sum" else 1.0
        self.terms = d_terms(cfg)  # D's regularisers, summed after its adversarial loss
        self.gamma_factor = 1.0  # R1's and R2's gamma now, as a share of loss.*_gamma
        self.stat_names = StepStats.names(self.terms)
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

    def _augmented(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` after DiffAugment or ADA (when on)."""
        if self.augment or self.ada is not None:
            x = diff_augment(x, self.augment) if self.augment else self.ada(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _D(self, x: torch.Tensor, y: torch.Tensor | None, aux: bool = False,
           augment: bool = True):
        """D on ``x`` after DiffAugment or ADA (when on and ``augment``), as float32 logits; with
        ``aux``, also the terms D computes itself on that input (a dict by term name)."""
        if augment:
            x = self._augmented(x)
        if aux:
            logits, terms = self.D_fwd(x, y, aux=True)
            return logits.float(), terms
        return (self.D_fwd(x) if y is None else self.D_fwd(x, y)).float()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype,
                              enabled=self.amp_dtype is not None)

    def train_step(self, real: torch.Tensor, z: torch.Tensor | None = None, weight: float = 1.0,
                   global_n: int | None = None, y: torch.Tensor | None = None) -> StepStats:
        """One D update then one G update on ``real`` (float, on ``self.device``), with class
        labels ``y`` for conditional models (the fake batch uses the same labels, so generated
        classes follow the data's class frequencies).

        Under torchrun, ``real``, ``z`` and ``y`` are this rank's part of the global batch of
        ``global_n`` examples and ``weight`` its share (see :func:`distributed.shard`); gradients
        are averaged over the ranks before each optimizer step.
        """
        lc = self.cfg.loss
        if self.cfg.train.xflip:
            real = xflip(real)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        due = [t for t in self.terms if t.due(self.step)]
        r1_now = any(t.on_real_inputs for t in due)
        if r1_now:
            # R1 penalises D's gradient at the images D sees: the reals are augmented first and
            # differentiated after the augmentation (the second derivative of ADA's resampling
            # is not implemented in PyTorch; StyleGAN2-ADA needed a custom op for it).
            real = self._augmented(real).detach().requires_grad_(True)
        with self._autocast():
            z = self.noise(real.shape[0]) if z is None else z
            fake = self.G_fwd(z) if y is None else self.G_fwd(z, y)
            # Discriminator: real vs detached fake.
            aux: dict[str, torch.Tensor] = {}
            if any(t.source == "aux" for t in due):
                real_logits, aux = self._D(real, y, aux=True, augment=not r1_now)
            else:
                real_logits = self._D(real, y, augment=not r1_now)
            fake_in = fake.detach()
            r2_now = any(t.on_fake_inputs for t in due)
            if r2_now:  # as R1: differentiated at the augmented image D sees
                fake_in = self._augmented(fake_in).detach().requires_grad_(True)
            fake_logits = self._D(fake_in, y, augment=not r2_now)
            loss_D = self.d_loss_fn(real_logits, fake_logits, lc.real_label)
            if self.ada is not None:
                self.ada.observe(real_logits)
            penalty, values = self._terms(due, real, fake, y, real_logits, aux,
                                          (fake_in, fake_logits))
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
            if self.relativistic:  # paired with D's (updated) logits of the same real batch
                with torch.no_grad():
                    real_now = self._D(real.detach(), y, augment=not r1_now)
                loss_G = self.g_loss_fn(self._D(fake, y), real_now)
            else:
                loss_G = self.g_loss_fn(self._D(fake, y))
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(loss_G * scale).backward()
        distributed.average_gradients(self.G, weight)
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        for p in self.d_trainable:  # the frozen blocks (Freeze-D) stay frozen
            p.requires_grad_(True)

        self.step += 1
        self.images_seen += batch
        if self.ada is not None and self.step % self.ada.interval == 0:
            self.ada.adjust(batch * self.ada.interval, distributed.all_reduce_sum)
        if self.ema is not None:
            self.ema.update(self.G, batch, self.images_seen)
        real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
        threshold = self.threshold
        if threshold is None:  # a critic's scale drifts: split at the midpoint of the means
            threshold = (real_logits.mean() + fake_logits.mean()) / 2
        logged: tuple[torch.Tensor, ...] = ()
        if self.terms:
            zero, one = loss_D.new_zeros(()).detach(), loss_D.new_ones(()).detach()
            logged = tuple(x for t in self.terms for x in ((values[t.name].detach().float(), one)
                                                           if t.name in values else (zero, zero)))
        return StepStats(loss_D.detach(), loss_G.detach(),
                         d_accuracy(real_logits, fake_logits, threshold), penalty.detach(), logged)

    def _terms(self, due: list[Term], real: torch.Tensor, fake: torch.Tensor,
               y: torch.Tensor | None, real_logits: torch.Tensor, aux: dict[str, torch.Tensor],
               fake_seen: tuple[torch.Tensor, torch.Tensor]
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted sum of the terms due at this step, and each one's unweighted value."""
        penalty = real_logits.new_zeros(())
        values: dict[str, torch.Tensor] = {}
        for t in due:
            if t.source == "aux":
                value = aux[t.name]
            elif t.source == "gp":
                value = gradient_penalty(lambda x: self._D(x, y), real, fake)
            elif t.source == "r2":  # at the augmented fakes, as R1
                value = r2_penalty(*fake_seen)
            else:  # r1: at the augmented reals, every `every` steps, weighted by `every`
                value = r1_penalty(real, real_logits)
            scale = t.scale * self.gamma_factor if t.source in ("r1", "r2") else t.scale
            penalty = penalty + scale * value
            values[t.name] = value
        return penalty, values

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

    def all_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for m in (self.G, self.D) for p in m.parameters())

    def resolved(self) -> dict[str, Any]:
        """What this run resolved at run time: kept beside the config, never written into it."""
        return {"sample_shape": list(self.sample_shape), "num_classes": self.num_classes,
                "precision": self.precision, "device": str(self.device)}

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
            "resolved": self.resolved(),
            "ganforge_version": __version__,
        }
        if self.ema is not None:
            state["G_ema"] = self.ema.G_ema.state_dict()
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Weights, optimizers, scalers and counters from :meth:`state_dict`'s output."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if state.get("scaler_G"):
            self.scaler_G.load_state_dict(state["scaler_G"])
            self.scaler_D.load_state_dict(state["scaler_D"])
        if self.ema is not None:
            if "G_ema" not in state:
                raise KeyError("G_ema (the checkpoint has no G_ema; train.ema_kimg was 0)")
            self.ema.G_ema.load_state_dict(state["G_ema"])
        if self.ada is not None:
            if "ada" not in state:
                raise KeyError("ada (the checkpoint was trained without train.ada)")
            self.ada.load_state_dict(state["ada"])
        self.step, self.epoch, self.images_seen = state["step"], state["epoch"], state["images_seen"]
