"""Metrics for points data of a known Gaussian: the 2-D toy's linear G(z) = W z + c with
z ~ N(0, I) is exactly N(c, W W^T), so its mean, covariance and 2-Wasserstein distance to the
data's N(b, A^T A) need no sampling. Any other points generator is measured on a large seeded
sample (its moments, compared with the data's the same way)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .fid import wasserstein2_gaussian


def gaussian_fit(G: nn.Module, A: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    """Fitted and true mean/covariance, the mean error and the relative covariance error, for
    data ``X A + b`` with ``X ~ N(0, I)`` (what :class:`~ganforge.data.DatasetInfo` states)."""
    lin = getattr(G, "net", None)
    if isinstance(lin, nn.Linear):
        W = lin.weight.detach().double().cpu()
        mean = lin.bias.detach().double().cpu()
        cov = W @ W.T
    else:
        mean, cov = _sampled_moments(G)
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


SAMPLES = 100_000  # a non-linear G's moments: standard error of the mean ~ 0.3% of its spread


@torch.no_grad()
def _sampled_moments(G: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    z_dim = getattr(G, "z_dim", None)
    if not isinstance(z_dim, int):
        raise TypeError("a points generator needs its latent size as G.z_dim to be measured")
    p = next(G.parameters())
    z = torch.randn(SAMPLES, z_dim, generator=torch.Generator().manual_seed(0)).to(p)
    was = G.training
    G.eval()
    try:
        x = G(z).double().cpu()
    finally:
        G.train(was)
    return x.mean(0), torch.cov(x.T)


def gaussian_metrics(G: nn.Module, A: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean error, relative covariance error and the closed-form W2 of the toy G against data
    ``X A + b``."""
    g = gaussian_fit(G, A, b)
    w2 = wasserstein2_gaussian(g["fitted_mean"], g["fitted_cov"], g["true_mean"], g["true_cov"])
    return {"mean_error": g["mean_error"], "cov_rel_error": g["cov_rel_error"], "w2": w2}
