"""Metrics: pure functions over feature arrays, their registry, and the feature networks."""

from .fid import fid_from_features, frechet_distance, gaussian_stats, wasserstein2_gaussian
from .inception_score import inception_score
from .kid import kid, mmd2_unbiased
from .prdc import density_coverage, precision_recall
from .registry import METRICS, EvalInputs, display_names

__all__ = ["fid_from_features", "frechet_distance", "gaussian_stats", "wasserstein2_gaussian",
           "inception_score", "kid", "mmd2_unbiased", "density_coverage", "precision_recall",
           "METRICS", "EvalInputs", "display_names"]
