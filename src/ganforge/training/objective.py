"""D's objective as a sum of named terms: the adversarial loss of ``loss.name`` plus each
regulariser, with its weight and its interval (a lazy term is a phase that runs every k D steps,
weighted by k, as in stylegan2-ada's loss). The step sums the terms; the logger names each one
(``loss_D_<term>`` in metrics.jsonl, ``loss/D_<term>`` in TensorBoard, a curve in the report).

Where a term comes from: the loss config (``gp``: WGAN-GP's gradient penalty; ``r1``: lazy R1 on
the real images D sees; ``r2``: the same on the generated ones) or the architecture (its registry entry names the terms its D computes,
e.g. FastGAN's ``recon``). Adding a term is one entry in :func:`d_terms` and its computation in
:mod:`ganforge.training.step`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..models import architecture

SOURCES = ("aux", "gp", "r1", "r2")  # how the step computes a term


@dataclass(frozen=True)
class Term:
    """One regulariser added to D's adversarial loss."""

    name: str  # logged as loss_D_<name>
    weight: float  # multiplies the term's value
    source: str  # "gp", "r1", "r2" or "aux" (computed by D itself)
    every: int = 1  # lazy: computed every `every` D steps and then weighted by `every`

    def due(self, step: int) -> bool:
        return step % self.every == 0

    @property
    def scale(self) -> float:
        """What the value is multiplied by on the steps it runs (a Python float, so the sum is
        the same arithmetic whatever the number of terms)."""
        return self.weight * self.every

    @property
    def on_real_inputs(self) -> bool:
        """Differentiated with respect to the (augmented) real images D sees."""
        return self.source == "r1"

    @property
    def on_fake_inputs(self) -> bool:
        """Differentiated with respect to the (augmented, detached) generated images D sees."""
        return self.source == "r2"


def d_terms(cfg: Config) -> tuple[Term, ...]:
    """The regularisers of D's objective for ``cfg``, in the order they are summed (terms of
    weight 0 are left out)."""
    terms = [Term(t.name, float(getattr(cfg.model, t.weight_key.split(".", 1)[1])), "aux")
             for t in architecture(cfg.model.arch).d_terms]
    if cfg.loss.name == "wgan-gp":
        terms.append(Term("gp", cfg.loss.gp_weight, "gp"))
    if cfg.loss.r1_gamma > 0:
        terms.append(Term("r1", cfg.loss.r1_gamma / 2, "r1", every=cfg.loss.r1_every))
    if cfg.loss.r2_gamma > 0:
        terms.append(Term("r2", cfg.loss.r2_gamma / 2, "r2", every=cfg.loss.r1_every))
    return tuple(t for t in terms if t.weight)
