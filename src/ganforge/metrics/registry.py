"""The metric registry: each name a user can ask for (``--metrics fid,kid``) maps to a pure
function of the evaluation's inputs and to the results it produces, with their display names.
``evaluate``, evaluation during training, the text table and the HTML report all read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .fid import fid_from_features
from .inception_score import inception_score
from .kid import kid
from .per_class import per_class
from .prdc import density_coverage, precision_recall


@dataclass
class EvalInputs:
    """Features (N, D) of the real and generated sets, the classifier's probabilities and the
    labels when there are any, and the generated classes asked for (conditional G)."""

    real: np.ndarray
    fake: np.ndarray
    real_probs: np.ndarray | None = None
    fake_probs: np.ndarray | None = None
    real_labels: np.ndarray | None = None
    fake_labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Metric:
    name: str  # what --metrics takes
    compute: Callable[[EvalInputs], dict[str, Any]]
    results: tuple[tuple[str, str], ...]  # (result key, display name); key_std is its spread
    needs_classifier: bool = False  # uses class probabilities: --features classifier


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


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("fid", lambda x: {"fid": fid_from_features(x.real, x.fake)}, (("fid", "FID"),)),
    Metric("kid", _kid, (("kid", "KID"),)),
    Metric("pr", _pr, (("precision", "precision"), ("recall", "recall"))),
    Metric("dc", _dc, (("density", "density"), ("coverage", "coverage"))),
    Metric("is", _is, (("is", "Inception Score"),), needs_classifier=True),
    Metric("classes", _classes, (), needs_classifier=True),
]}

# Results of the exact evaluation of the 2-D toy (no features, no registry entry to ask for).
EXACT_RESULTS = (("mean_error", "mean error"), ("cov_rel_error", "covariance error (rel.)"),
                 ("w2", "2-Wasserstein"))


def display_names() -> dict[str, str]:
    """Every scalar result key -> its display name, in table order."""
    names = {key: label for m in METRICS.values() for key, label in m.results}
    names.update(EXACT_RESULTS)
    return names


def training_metric_key(features: str, exact: bool) -> str:
    """The metrics.jsonl key of evaluation during training: ``eval_w2`` for the toy's exact
    distance, else ``eval_fid_<features>``."""
    return "eval_w2" if exact else f"eval_fid_{features}"
