"""Inception Score from class probabilities: exp(E_x KL(p(y|x) || p(y))), mean and std over splits."""

from __future__ import annotations

import numpy as np


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(axis=1), 1, atol=1e-4):
        raise ValueError("inception_score needs rows of class probabilities (N, K) summing to 1")
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
