"""Exact metrics for the 2-D toy: its linear G(z) = W z + c with z ~ N(0, I) is N(c, W W^T), so
mean, covariance and 2-Wasserstein distance to the data's N(b, A^T A) need no sampling."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .fid import wasserstein2_gaussian


def gaussian_fit(G: nn.Module, A: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    """Fitted and true mean/covariance, the mean error and the relative covariance error, for
    data ``X A + b`` with ``X ~ N(0, I)`` (what :class:`~ganforge.data.DatasetInfo` states)."""
    lin = getattr(G, "net", None)
    if not isinstance(lin, nn.Linear):
        raise TypeError("gaussian_fit needs the linear toy generator")
    W = lin.weight.detach().double().cpu()
    mean = lin.bias.detach().double().cpu()
    cov = W @ W.T
    true_mean = b.double()
    true_cov = A.double().T @ A.double()
    return {
        "true_mean": true_mean.tolist(),
        "true_cov": true_cov.tolist(),
        "fitted_mean": mean.tolist(),
        "fitted_cov": cov.tolist(),
        "mean_error": float(torch.linalg.norm(mean - true_mean)),
        "cov_rel_error": float(torch.linalg.norm(cov - true_cov) / torch.linalg.norm(true_cov)),
    }


def gaussian_metrics(G: nn.Module, A: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean error, relative covariance error and the closed-form W2 of the toy G against data
    ``X A + b``."""
    g = gaussian_fit(G, A, b)
    w2 = wasserstein2_gaussian(g["fitted_mean"], g["fitted_cov"], g["true_mean"], g["true_cov"])
    return {"mean_error": g["mean_error"], "cov_rel_error": g["cov_rel_error"], "w2": w2}
