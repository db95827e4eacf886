"""k-NN manifold metrics: improved precision/recall (Kynkäänniemi et al. 2019) and
density/coverage (Naeem et al. 2020)."""

from __future__ import annotations

import numpy as np
import torch


def _pairwise(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    ta, tb = torch.from_numpy(np.asarray(a, np.float32)), torch.from_numpy(np.asarray(b, np.float32))
    return torch.cat([torch.cdist(ta[i:i + chunk], tb) for i in range(0, len(ta), chunk)]).numpy()


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour within ``x`` (itself excluded)."""
    d = _pairwise(x, x)
    return np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself (distance 0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Precision: share of fake samples inside the real manifold (union of k-NN balls);
    recall: share of real samples inside the fake manifold."""
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = _pairwise(fake, real)  # (F, R)
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density: mean number of real k-NN balls holding each fake sample, divided by k;
    coverage: share of real samples whose k-NN ball holds at least one fake sample."""
    r_real = _kth_radius(real, k)
    d = _pairwise(fake, real)
    inside = d <= r_real[None, :]
    density = float(inside.sum(axis=1).mean() / k)
    coverage = float((d.min(axis=0) <= r_real).mean())
    return density, coverage
