"""Memorisation made visible: each generated sample's nearest training image in a feature space
(the one FID uses), against how close distinct training images are to each other.

A generator that copies its data puts samples much closer to a training image than two real
images ever are. ``nn_close`` counts those: the share of samples nearer to their nearest training
image than 95% of the training images are to their nearest other (distinct) one. For samples
drawn from the data's distribution (not copies) it is about 0.05; a share well above says the run
copies some of its images.
"""

from __future__ import annotations

import numpy as np
import torch

CLOSE_QUANTILE = 0.05


def nearest(query: np.ndarray, reference: np.ndarray, exclude_self: bool = False,
            chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``query``, the index of its nearest row of ``reference`` (Euclidean)
    and the distance; ``exclude_self``: ``query`` is ``reference`` and neither a row nor an
    identical copy of it (a duplicate image in the data) is its own neighbour. Computed in
    float64 in chunks, so memory stays ``chunk x len(reference)``."""
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float64))
    ref_sq = (ref * ref).sum(1)
    idx = np.empty(len(query), dtype=np.int64)
    dist = np.empty(len(query), dtype=np.float64)
    for start in range(0, len(query), chunk):
        q = torch.from_numpy(np.ascontiguousarray(query[start:start + chunk], dtype=np.float64))
        d2 = (q * q).sum(1, keepdim=True) - 2 * q @ ref.T + ref_sq
        if exclude_self:  # itself and its exact duplicates (zero up to rounding)
            d2[d2 <= 1e-9 * ((q * q).sum(1, keepdim=True) + ref_sq)] = float("inf")
            rows = torch.arange(len(q))
            d2[rows, rows + start] = float("inf")
        best, where = d2.min(1)
        idx[start:start + len(q)] = where.numpy()
        dist[start:start + len(q)] = best.clamp_min(0).sqrt().numpy()
    return idx, dist


def memorisation(train: np.ndarray, fake: np.ndarray) -> dict:
    """The nearest training image of every sample (``nn_index``, ``nn_dist``, per sample) and
    the summary: the median sample-to-training distance, the median distance of a training
    image to its nearest other one, their ratio, and the share of samples closer than the
    closest 5% of real pairs (``nn_close``)."""
    if len(train) < 2 or len(fake) < 1:
        raise ValueError("the nearest-neighbour check needs at least 2 training images and 1 "
                         "sample")
    idx, dist = nearest(fake, train)
    _, real = nearest(train, train, exclude_self=True)
    real = real[np.isfinite(real)]  # an image whose every other is a duplicate has none
    if not len(real):
        raise ValueError("the training images are all copies of one: no distance between two "
                         "distinct ones to compare with")
    threshold = float(np.quantile(real, CLOSE_QUANTILE))
    median_fake, median_real = float(np.median(dist)), float(np.median(real))
    return {"nn_distance": median_fake, "nn_real": median_real,
            "nn_ratio": median_fake / median_real if median_real > 0 else float("inf"),
            "nn_close": float((dist < threshold).mean()), "nn_threshold": threshold,
            "nn_reference": len(train),
            "nn_index": idx.tolist(), "nn_dist": dist.tolist()}
