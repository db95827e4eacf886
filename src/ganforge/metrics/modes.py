"""Mode coverage on stacked digits (Stacked MNIST: VEEGAN, Srivastava et al. 2017; PacGAN, Lin et
al. 2018): each channel of an image is read by the digits' domain classifier, the three digits
make its mode (one of 1,000), and the histogram of modes over N samples gives the modes covered
and the reverse KL divergence KL(q || uniform) of the generated mode distribution q.

A finite sample of the *uniform* distribution does not score KL 0: with N draws over M modes its
expected KL is about (M - 1) / (2 N) (0.019 for 1,000 modes and PacGAN's 26,000 samples), and
the classifier's errors add to it; real stacked digits, read the same way, give the floor every
result is printed beside.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from ..data import describe, load_split
from .classifier import load_classifier, to_classifier_input


def mode_histogram(modes: np.ndarray, n_modes: int) -> np.ndarray:
    """Counts of each mode 0..n_modes-1."""
    return np.bincount(np.asarray(modes, dtype=np.int64), minlength=n_modes)[:n_modes]


def coverage(modes: np.ndarray, n_modes: int) -> tuple[int, float]:
    """(modes covered, reverse KL of the mode histogram against uniform), natural log."""
    counts = mode_histogram(modes, n_modes)
    q = counts / max(counts.sum(), 1)
    nz = q > 0
    kl = float((q[nz] * np.log(q[nz] * n_modes)).sum())
    return int(nz.sum()), kl


def uniform_floor(n: int, n_modes: int) -> float:
    """The expected reverse KL of ``n`` uniform draws over ``n_modes`` modes, to first order."""
    return (n_modes - 1) / (2 * n)


@torch.no_grad()
def read_modes(images: torch.Tensor, classifier: torch.nn.Module, batch: int = 1000,
               device: str | torch.device = "cpu") -> np.ndarray:
    """uint8 (N, C, H, W) stacked digits -> each image's mode: its channels' digits read by
    ``classifier`` as one number in base 10 (first channel most significant)."""
    channels = images.shape[1]
    out = np.zeros(len(images), dtype=np.int64)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        code = torch.zeros(len(chunk), dtype=torch.int64)
        for c in range(channels):
            x = to_classifier_input(chunk[:, c:c + 1]).to(device)
            _, logits = classifier(x)
            code = code * 10 + logits.argmax(1).cpu()
        out[start:start + len(chunk)] = code.numpy()
    return out


def read_both(fake: torch.Tensor, data: DataConfig, device: str | torch.device = "cpu",
              progress: bool = True) -> dict:
    """The modes of the generated images ``fake`` (uint8, at the digits' 28x28) and of as many
    real stacked training images (the floor), read by the digits' domain classifier (trained
    once and cached, as for ``--features classifier``), and that classifier's test accuracy."""
    info = describe(data)
    classifier, record = load_classifier(info.digits, progress=progress,
                                         data_dir=data.path or None)
    classifier = classifier.to(device)
    real, _, _ = load_split(data, "train", seed=0)
    real = torch.from_numpy(real[:len(fake)])
    return {"fake_modes": read_modes(fake, classifier, device=device),
            "real_modes": read_modes(real, classifier, device=device), "n_modes": info.modes,
            "classifier_accuracy": float(record["test_accuracy"])}
