"""The metric registry: each name a user can ask for (``--metrics fid,kid``) maps to a pure
function of the evaluation's inputs, the kind of data it judges (images or points), and the
results it produces, with their display names. ``evaluate``, evaluation during training,
``ablate``, the text table and the HTML report all read it; the data's kind
(:func:`ganforge.data.describe`) picks the metrics that apply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import GanforgeError
from .fid import fid_from_features
from .gaussian import gaussian_metrics
from .inception_score import inception_score
from .kid import kid
from .modes import coverage, uniform_floor
from .nearest import memorisation
from .per_class import per_class
from .prdc import density_coverage, precision_recall


@dataclass
class EvalInputs:
    """Features (N, D) of the real and generated sets, the classifier's probabilities and the
    labels when there are any, and the generated classes asked for (conditional G)."""

    real: np.ndarray | None = None
    fake: np.ndarray | None = None
    real_probs: np.ndarray | None = None
    fake_probs: np.ndarray | None = None
    real_labels: np.ndarray | None = None
    fake_labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    # Points data whose distribution is known exactly: the generator and the data's (A, b).
    generator: nn.Module | None = None
    gaussian: tuple[torch.Tensor, torch.Tensor] | None = None
    # The training images' features when the reference is another split (MNIST's test set):
    # what the nearest-neighbour check compares the samples with.
    train: np.ndarray | None = None
    # Stacked digits: each image's mode as the domain classifier reads it (generated and as many
    # real images), the number of modes and the classifier's test accuracy.
    fake_modes: np.ndarray | None = None
    real_modes: np.ndarray | None = None
    n_modes: int = 0
    classifier_accuracy: float | None = None


@dataclass(frozen=True)
class Metric:
    name: str  # what --metrics takes
    compute: Callable[[EvalInputs], dict[str, Any]]
    results: tuple[tuple[str, str], ...]  # (result key, display name); key_std is its spread
    needs_classifier: bool = False  # uses class probabilities: --features classifier
    data: str = "images"  # the kind of data it judges: "images" (from features) or "points"
    default: bool = False  # the one evaluation during training and ``ablate`` use for its data
    features: bool = True  # reads the feature network's features (not only the images)

    @property
    def exact(self) -> bool:
        """Computed from the generator itself, not from features of samples."""
        return self.data == "points"


def _kid(x: EvalInputs) -> dict[str, Any]:
    # subsets of at most half of each side, so the spread over subsets means something
    size = max(2, min(1000, len(x.fake) // 2, len(x.real) // 2))
    value, std = kid(x.real, x.fake, subset_size=size)
    return {"kid": value, "kid_std": std}


def _pr(x: EvalInputs) -> dict[str, Any]:
    p, r = precision_recall(x.real, x.fake)
    return {"precision": p, "recall": r}


def _dc(x: EvalInputs) -> dict[str, Any]:
    d, c = density_coverage(x.real, x.fake)
    return {"density": d, "coverage": c}


def _is(x: EvalInputs) -> dict[str, Any]:
    value, std = inception_score(x.fake_probs)
    return {"is": value, "is_std": std, "is_real": inception_score(x.real_probs)[0]}


def _classes(x: EvalInputs) -> dict[str, Any]:
    if x.real_labels is None:
        raise ValueError("per-class analysis needs labelled reference data")
    return {"classes": per_class(x.real, x.real_labels, x.fake, x.fake_probs,
                                 list(x.class_names), fake_labels=x.fake_labels)}


def _nn(x: EvalInputs) -> dict[str, Any]:
    return memorisation(x.real if x.train is None else x.train, x.fake)


def _modes(x: EvalInputs) -> dict[str, Any]:
    if x.fake_modes is None or x.real_modes is None:
        raise ValueError("modes counts the modes of stacked digits: data.name=stacked-mnist")
    covered, kl = coverage(x.fake_modes, x.n_modes)
    real_covered, real_kl = coverage(x.real_modes, x.n_modes)
    return {"modes": covered, "modes_kl": kl, "modes_real": real_covered, "modes_kl_real": real_kl,
            "modes_kl_uniform": uniform_floor(len(x.fake_modes), x.n_modes),
            "n_modes": x.n_modes, "modes_classifier_accuracy": x.classifier_accuracy}


def _exact(x: EvalInputs) -> dict[str, Any]:
    if x.generator is None or x.gaussian is None:
        raise ValueError("the exact metrics need points data whose distribution is known")
    return gaussian_metrics(x.generator, *x.gaussian)


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("fid", lambda x: {"fid": fid_from_features(x.real, x.fake)}, (("fid", "FID"),),
           default=True),
    Metric("kid", _kid, (("kid", "KID"),)),
    Metric("pr", _pr, (("precision", "precision"), ("recall", "recall"))),
    Metric("dc", _dc, (("density", "density"), ("coverage", "coverage"))),
    Metric("is", _is, (("is", "Inception Score"),), needs_classifier=True),
    Metric("classes", _classes, (), needs_classifier=True),
    # Memorisation: each sample's nearest training image (per-sample lists go to nn.json).
    Metric("nn", _nn, (("nn_distance", "NN distance"), ("nn_real", "NN distance, real pairs"),
                       ("nn_close", "copies (< real 5%)"), ("nn_ratio", "NN ratio (fake/real)"))),
    # Mode coverage of stacked digits, read channel by channel by the digits' classifier.
    Metric("modes", _modes, (("modes", "modes covered"), ("modes_kl", "reverse KL (modes)")),
           features=False),
    # The 2-D toy's linear G is exactly Gaussian: its distance to the data needs no sampling.
    Metric("w2", _exact, (("mean_error", "mean error"), ("cov_rel_error", "covariance error (rel.)"),
                          ("w2", "2-Wasserstein")), data="points", default=True),
]}


def display_names() -> dict[str, str]:
    """Every scalar result key -> its display name, in table order."""
    return {key: label for m in METRICS.values() for key, label in m.results}


def metrics_for(kind: str) -> list[str]:
    """The metrics that judge data of ``kind`` ("images" or "points")."""
    return [m.name for m in METRICS.values() if m.data == kind]


def default_metric(kind: str) -> Metric:
    """The metric evaluation during training and ``ablate`` use for data of ``kind``."""
    return next(m for m in METRICS.values() if m.data == kind and m.default)


def training_metric_key(metric: Metric, features: str) -> str:
    """The metrics.jsonl key of evaluation during training: ``eval_<metric>`` for an exact
    metric (``eval_w2``), else ``eval_<metric>_<features>`` (``eval_fid_inception``)."""
    return f"eval_{metric.name}" if metric.exact else f"eval_{metric.name}_{features}"


def headline(metric: Metric) -> str:
    """The result key a metric is ranked by (its last result: fid, w2)."""
    return metric.results[-1][0]


def compute(metrics: tuple[str, ...] | list[str], inputs: EvalInputs) -> dict[str, Any]:
    """The results of ``metrics`` (registry names) on ``inputs``; a metric that cannot be
    computed on them raises a GanforgeError naming it."""
    out: dict[str, Any] = {}
    for name in metrics:
        try:
            out.update(METRICS[name].compute(inputs))
        except (ValueError, TypeError) as e:
            raise GanforgeError(f"metric {name}: {e}") from None
    return out
