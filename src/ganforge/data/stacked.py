"""Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): three MNIST digits
in the three colour channels of one image, so the data has 10 x 10 x 10 = 1,000 modes, the digit
triples. Mode coverage is then counted with the MNIST classifier, channel by channel.

The triples are drawn deterministically from a seed: three independent permutations of the
split's digits, one per channel, so each digit image appears exactly once in each channel (every
channel has MNIST's own class balance) and the triples are spread evenly over the 1,000 modes.
The label of an image is its triple read as a number, ``100 a + 10 b + c``.
"""

from __future__ import annotations

import numpy as np

from .idx import load_idx_dataset

NAME = "stacked-mnist"
MODES = 1000
CLASS_NAMES = tuple(f"{k:03d}" for k in range(MODES))


def stacked_mnist(split: str = "train", seed: int = 0, data_dir: str | None = None,
                  allow_download: bool = True) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(images uint8 (N, 3, 28, 28), triples int64 (N,), class names)`` for the MNIST
    ``split`` (60,000 or 10,000 images), the same for the same seed."""
    digits, labels, _ = load_idx_dataset("mnist", split, data_dir, allow_download=allow_download)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    perms = [rng.permutation(len(digits)) for _ in range(3)]
    images = np.stack([digits[p] for p in perms], axis=1)
    triples = 100 * labels[perms[0]] + 10 * labels[perms[1]] + labels[perms[2]]
    return np.ascontiguousarray(images), triples.astype(np.int64), CLASS_NAMES
