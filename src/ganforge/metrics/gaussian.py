"""Exact metrics for the 2-D toy: its linear G(z) = W z + c with z ~ N(0, I) is N(c, W W^T), so
mean, covariance and 2-Wasserstein distance to the data's N(b, A^T A) need no sampling."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import GAUSSIAN_A, GAUSSIAN_B
from .fid import wasserstein2_gaussian


def gaussian_fit(G: nn.Module) -> dict[str, Any]:
    """Fitted and true mean/covariance, the mean error and the relative covariance error."""
    lin = getattr(G, "net", None)
    if not isinstance(lin, nn.Linear):
        raise TypeError("gaussian_fit needs the linear toy generator")
    W = lin.weight.detach().double().cpu()
    mean = lin.bias.detach().double().cpu()
    cov = W @ W.T
    true_mean = GAUSSIAN_B.double()
    true_cov = GAUSSIAN_A.double().T @ GAUSSIAN_A.double()
    return {
        "true_mean": true_mean.tolist(),
        "true_cov": true_cov.tolist(),
        "fitted_mean": mean.tolist(),
        "fitted_cov": cov.tolist(),
        "mean_error": float(torch.linalg.norm(mean - true_mean)),
        "cov_rel_error": float(torch.linalg.norm(cov - true_cov) / torch.linalg.norm(true_cov)),
    }


def gaussian_metrics(G: nn.Module) -> dict[str, float]:
    """Mean error, relative covariance error and the closed-form W2 of the toy G."""
    g = gaussian_fit(G)
    w2 = wasserstein2_gaussian(g["fitted_mean"], g["fitted_cov"], g["true_mean"], g["true_cov"])
    return {"mean_error": g["mean_error"], "cov_rel_error": g["cov_rel_error"], "w2": w2}
