"""Per-class analysis with the domain classifier: what share of samples each class gets, how
sure the classifier is, and a per-class FID."""

from __future__ import annotations

import numpy as np

from .fid import fid_from_features


def per_class(real_f: np.ndarray, real_labels: np.ndarray, fake_f: np.ndarray,
              fake_probs: np.ndarray, class_names: list[str], min_count: int = 100,
              fake_labels: np.ndarray | None = None) -> list[dict]:
    """Per class: share of generated samples predicted as it, mean confidence, and the FID
    between real test images of the class and generated samples of it: those the classifier
    predicts as the class, or for a conditional generator (``fake_labels``, the classes asked
    for) those generated for it -- then ``agreement`` is the share the classifier recognises."""
    pred = fake_probs.argmax(1)
    rows = []
    for c, name in enumerate(class_names):
        mask = pred == c if fake_labels is None else fake_labels == c
        count = int(mask.sum())
        fid_c = (fid_from_features(real_f[real_labels == c], fake_f[mask])
                 if count >= min_count and (real_labels == c).sum() >= 2 else None)
        row = {"class": c, "name": name, "share": float((pred == c).mean()),
               "real_share": float((real_labels == c).mean()),
               "confidence": float(fake_probs[mask, c].mean()) if count else None,
               "fid": fid_c}
        if fake_labels is not None:
            row["agreement"] = float((pred[mask] == c).mean()) if count else None
        rows.append(row)
    return rows
