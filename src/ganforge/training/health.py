"""One monitor for a run's health: D overpowering G, G's loss running away, mode collapse.

It decides; it does not write. Each check returns the alarms it raises as ``(kind, message)``
pairs, and the trainer records them (alarms.jsonl, the console, the summary). A non-finite loss
or weight is not an alarm but a rollback, handled by the trainer.
"""

from __future__ import annotations

from collections import deque

import torch

from ..config import HealthConfig

Alarm = tuple[str, str]


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between the rows of ``x`` (flattened): a batch's diversity."""
    flat = x.detach().float().reshape(len(x), -1)
    if len(flat) < 2:
        return 0.0
    d = torch.cdist(flat, flat)
    return float(d.sum() / (len(flat) * (len(flat) - 1)))


class HealthMonitor:
    def __init__(self, cfg: HealthConfig, has_accuracy: bool) -> None:
        self.cfg = cfg
        self.has_accuracy = has_accuracy  # a critic (WGAN) has no decision threshold
        self.acc_window: deque[float] = deque(maxlen=cfg.window)
        self.d_alarm_on = False
        self.collapse_alarm_on = False

    def _warm(self, images_seen: int) -> bool:
        return images_seen >= 1000 * self.cfg.warmup_kimg

    def step(self, epoch: int, acc_D: float, images_seen: int = 0) -> list[Alarm]:
        """After each step of (0-based) ``epoch``: D's accuracy over the last window."""
        h = self.cfg
        if epoch < h.warmup_epochs or not self._warm(images_seen) or not self.has_accuracy:
            return []  # the window only holds steps after the warm-up
        self.acc_window.append(acc_D)
        if len(self.acc_window) < h.window:
            return []
        mean = sum(self.acc_window) / h.window
        if mean >= h.d_acc_limit and not self.d_alarm_on:
            self.d_alarm_on = True
            return [("d_overpowering",
                     f"D has classified {100 * mean:.1f}% of real and fake inputs correctly over "
                     f"the last {h.window} steps: G gets no useful gradient. Try a lower "
                     "optim_D.lr, label smoothing (loss.real_label=0.9) or a smaller D")]
        if mean < h.d_acc_limit - 0.05:
            self.d_alarm_on = False
        return []

    def epoch_end(self, epoch: int, loss_G: float, diversity: float | None,
                  images_seen: int = 0) -> list[Alarm]:
        """After (1-based) ``epoch``: its mean G loss and the fixed-noise samples' diversity
        relative to real data."""
        h = self.cfg
        alarms: list[Alarm] = []
        if not self._warm(images_seen):
            return alarms
        if loss_G > h.g_loss_limit and epoch > h.warmup_epochs:
            alarms.append(("g_loss_divergence",
                           f"epoch {epoch} mean G loss {loss_G:.2f} exceeds "
                           f"health.g_loss_limit={h.g_loss_limit}: G is losing badly"))
        if epoch <= h.warmup_epochs or diversity is None:
            return alarms
        if diversity >= h.collapse_ratio:
            self.collapse_alarm_on = False
        elif not self.collapse_alarm_on:
            self.collapse_alarm_on = True
            alarms.append(("mode_collapse",
                           f"fixed-noise samples are {100 * diversity:.0f}% as diverse as real "
                           f"data (mean pairwise distance); below health.collapse_ratio="
                           f"{h.collapse_ratio}: G may be collapsing to few modes"))
        return alarms
