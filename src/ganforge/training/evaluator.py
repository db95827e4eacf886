"""Evaluation during training (``eval.every``): the metric registry's default for the data's
kind (FID for images, the exact W2 for points of a known distribution) on G_ema, logged per
epoch; the best value's state is kept as ``checkpoint_best.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .. import distributed
from ..config import Config
from ..evaluate import FeatureExtractor, evaluate_generator, reference_features, with_data_shape
from ..io import BEST_CHECKPOINT_NAME, save_checkpoint
from ..data import describe
from ..metrics.registry import default_metric, headline, training_metric_key
from .state import Position
from .step import GAN


class TrainingEvaluator:
    def __init__(self, run_dir: Path, cfg: Config, gan: GAN, position: Position,
                 quiet: bool) -> None:
        self.run_dir, self.gan, self.position, self.quiet = run_dir, gan, position, quiet
        self.cfg = with_data_shape(cfg, gan.sample_shape)
        self.extractor: FeatureExtractor | None = None
        self.metric = default_metric(describe(cfg.data).kind)

    def prepare(self) -> None:
        """Build what evaluation needs once per machine (the domain classifier, trained on first
        use; the reference set's features) before the run's clock starts, so that
        ``train.max_minutes`` is spent on training and its evaluations, not on cache setup."""
        cfg = self.cfg
        if not distributed.is_main() or not cfg.eval.every or self.metric.exact or self.extractor:
            return
        # Progress bars for this one-time work (it can take minutes), none for each epoch's.
        self.extractor = FeatureExtractor(cfg.eval.features, cfg, str(self.gan.device), None,
                                          progress=not self.quiet)
        reference_features(self.extractor, cfg, None)
        self.extractor.progress = False

    def __call__(self, record: dict[str, Any], state: Callable[[], dict[str, Any]]) -> None:
        """Add the metric to ``record``; save ``state()`` as the best checkpoint when it is the
        lowest value so far."""
        if not distributed.is_main():
            return
        self.prepare()
        cfg = self.cfg
        res = evaluate_generator(self.gan.G_sample, cfg, metrics=(self.metric.name,), n=cfg.eval.n,
                                 device=str(self.gan.device), seed=cfg.train.seed,
                                 progress=False, extractor=self.extractor,
                                 num_classes=self.gan.num_classes)
        key = training_metric_key(self.metric, res["features"])
        value = res[headline(self.metric)]
        record[key] = value
        best = self.position.best
        if best is None or value < best[1]:
            self.position.best = (record["epoch"], value, key)
            st = state()
            st["best"] = {"epoch": record["epoch"], "metric": key, "value": value}
            save_checkpoint(self.run_dir / BEST_CHECKPOINT_NAME, st)
