"""Evaluation: generate samples, extract features, compute the metrics, write ``eval.json``.

Protocol (Lucic et al. 2018 for MNIST-like data): N generated samples against the 10,000-image
*test* split, compared at the data's native 28x28 (generated 32x32 images, which the DCGAN presets
learn on digits padded by 2 black pixels per side, are center-cropped back to 28x28). Image-folder
datasets are compared against the images of the folder, at the training resolution.
Reference features are cached under a hash of everything that produced them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .data import load_dataset
from .data.idx import IDX_DATASETS, load_idx_dataset, user_cache_dir
from .errors import GanforgeError
from .metrics import (density_coverage, fid_from_features, frechet_distance, inception_score, kid,
                      precision_recall)
from .report import to_uint8

METRICS = ("fid", "kid", "pr", "dc", "is", "classes")
FEATURES = ("inception", "classifier")
REFERENCE_VERSION = 1


def eval_geometry(images: torch.Tensor, cfg: Config) -> torch.Tensor:
    """uint8 NCHW generated images -> the geometry of the reference images."""
    if cfg.data.name in IDX_DATASETS and images.shape[-1] != 28:
        if images.shape[-1] == 32:
            return images[..., 2:30, 2:30].contiguous()
        x = F.interpolate(images.float(), size=(28, 28), mode="bilinear", antialias=True,
                          align_corners=False)
        return x.round().clamp(0, 255).to(torch.uint8)
    return images


def reference_images(cfg: Config, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """Real images for comparison (uint8 NCHW), their labels, and what identifies them."""
    if cfg.data.name in IDX_DATASETS:
        images, labels, _ = load_idx_dataset(cfg.data.name, "test", cfg.data.path or None,
                                             allow_download=cfg.data.download)
        x = torch.from_numpy(images).unsqueeze(1)
        if cfg.data.channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        y = torch.from_numpy(labels)
        ident = {"dataset": cfg.data.name, "split": "test", "channels": int(x.shape[1])}
    elif cfg.data.name == "folder":
        ds = load_dataset(cfg.data)
        x, y = ds.data, ds.labels
        ident = folder_ident(cfg)
    else:
        raise GanforgeError(f"no image reference for data.name={cfg.data.name}")
    if n is not None and n < len(x):
        x = x[:n]
        y = None if y is None else y[:n]
    ident["n"] = int(len(x))
    return x, y, ident


def folder_ident(cfg: Config) -> dict:
    """What identifies an image folder's reference without decoding it: its files, their sizes
    and modification times, and the resolution/channels/limit they are decoded at."""
    from .data.images import scan_folder

    files, _, _ = scan_folder(cfg.data.path)
    stamp = hashlib.sha256()
    for f in files:
        st = f.stat()
        stamp.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return {"dataset": "folder", "path": str(Path(cfg.data.path).resolve()), "files": len(files),
            "stamp": stamp.hexdigest(), "resolution": cfg.data.resolution,
            "channels": cfg.data.channels, "limit": cfg.data.limit}


def _cache_path(ident: dict, extractor_key: str) -> Path:
    key = json.dumps({**ident, "features": extractor_key, "v": REFERENCE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return user_cache_dir() / "reference_features" / f"{ident['dataset']}-{digest}.npz"


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class FeatureExtractor:
    """Wraps a feature network: features (and class probabilities, for the classifier)."""

    def __init__(self, kind: str, cfg: Config, device: str, inception_path: str | None,
                 progress: bool) -> None:
        self.kind = kind
        self.progress = progress
        if kind == "inception":
            from .metrics.features import InceptionFeatures

            self.net = InceptionFeatures(inception_path, device=device)
        elif kind == "classifier":
            from .metrics.classifier import ClassifierFeatures

            if cfg.data.name not in IDX_DATASETS:
                raise GanforgeError(f"--features classifier exists for MNIST and Fashion-MNIST, "
                                    f"not {cfg.data.name}; use --features inception")
            self.net = ClassifierFeatures(cfg.data.name, device=device, progress=progress,
                                          data_dir=cfg.data.path or None)
        else:
            raise GanforgeError(f"--features must be one of {', '.join(FEATURES)}, got {kind!r}")
        self.key = self.net.cache_key

    def __call__(self, images: torch.Tensor, desc: str) -> tuple[np.ndarray, np.ndarray | None]:
        from tqdm.auto import tqdm

        bs = 50 if self.kind == "inception" else 500
        feats, probs = [], []
        for i in tqdm(range(0, len(images), bs), desc=desc, unit="batch", leave=False,
                      disable=True if not self.progress else None):
            chunk = images[i:i + bs]
            if self.kind == "classifier":
                f, p = self.net.features_and_probs(chunk)
                probs.append(p.cpu().numpy())
            else:
                f = self.net(chunk)
            feats.append(f.cpu().numpy().astype(np.float32))
        return np.concatenate(feats), (np.concatenate(probs) if probs else None)


def reference_features(extractor: FeatureExtractor, cfg: Config, n: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """(features, probs, labels, from_cache) of the real images, cached on disk. An image folder
    is not decoded at all when its features are cached."""
    if cfg.data.name == "folder":
        ident = {**folder_ident(cfg), "n": n}
        path = _cache_path(ident, extractor.key)
        if path.is_file():
            z = np.load(path)
            return z["features"], None, None, True
        images, _, _ = reference_images(cfg, n)
        feats, _ = extractor(images, "reference features")
        _save_npz_atomic(path, features=feats)
        return feats, None, None, False
    images, labels, ident = reference_images(cfg, n)
    path = _cache_path(ident, extractor.key)
    lab = None if labels is None else labels.numpy()
    if path.is_file():
        z = np.load(path)
        return z["features"], (z["probs"] if "probs" in z else None), lab, True
    feats, probs = extractor(images, "reference features")
    arrays = {"features": feats}
    if probs is not None:
        arrays["probs"] = probs
    _save_npz_atomic(path, **arrays)
    return feats, probs, lab, False


@torch.no_grad()
def generate_uint8(G: nn.Module, z_dim: int, n: int, seed: int, device: str | torch.device,
                   batch_size: int = 250, num_classes: int = 0) -> torch.Tensor:
    """``n`` samples as uint8 NCHW; conditional generators (``num_classes`` > 0) get balanced
    labels ``i mod num_classes`` (see :func:`ganforge.sample.class_labels`)."""
    from .sample import class_labels

    gen = torch.Generator().manual_seed(seed)
    labels = class_labels(n, num_classes)
    was = G.training
    G.eval()
    out = []
    for i in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - i), z_dim, generator=gen).to(device)
        x = G(z) if labels is None else G(z, labels[i:i + len(z)].to(device))
        out.append(to_uint8(x))
    G.train(was)
    return torch.cat(out)


def gaussian_metrics(G: nn.Module) -> dict[str, float]:
    """Exact metrics for the 2-D toy: mean error, covariance error, closed-form W2."""
    from .training.loop import gaussian_fit

    g = gaussian_fit(G)
    w2 = float(np.sqrt(frechet_distance(g["fitted_mean"], g["fitted_cov"], g["true_mean"],
                                        g["true_cov"])))
    return {"mean_error": g["mean_error"], "cov_rel_error": g["cov_rel_error"], "w2": w2}


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


def evaluate_generator(G: nn.Module, cfg: Config, *, metrics: tuple[str, ...] = ("fid",),
                       n: int = 10000, features: str = "inception", device: str = "cpu",
                       seed: int = 0, inception_path: str | None = None, progress: bool = True,
                       extractor: Any = None, n_reference: int | None = None) -> dict[str, Any]:
    """Evaluate an in-memory generator against the reference set (the test split, or the image
    folder), or its first ``n_reference`` images; returns a flat dict of results."""
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise GanforgeError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
    if n < 2:
        raise GanforgeError(f"--n must be at least 2, got {n}")
    t0 = time.perf_counter()
    if cfg.data.name == "gaussian2d":
        return {"features": "exact", **gaussian_metrics(G), "seconds": time.perf_counter() - t0}
    # Wrong arguments are reported before the feature network is looked for (or trained).
    kind = extractor.kind if extractor is not None else features
    if ("is" in metrics or "classes" in metrics) and kind != "classifier":
        raise GanforgeError("the Inception Score and per-class analysis use the domain "
                            "classifier: add --features classifier (MNIST / Fashion-MNIST)")
    if n_reference is not None and n_reference < 2:
        raise GanforgeError(f"--n-reference must be at least 2, got {n_reference}")
    ext = extractor or FeatureExtractor(features, cfg, device, inception_path, progress)
    real_f, real_p, real_y, cached = reference_features(ext, cfg, n_reference)
    t_gen = time.perf_counter()
    classes = cfg.model.num_classes if cfg.model.conditional else 0
    fake = eval_geometry(generate_uint8(G, cfg.model.z_dim, n, seed, device,
                                        num_classes=classes), cfg)
    fake_f, fake_p = ext(fake, "generated features")
    out: dict[str, Any] = {"features": ext.kind, "n_generated": n, "n_reference": len(real_f),
                           "reference_cached": cached, "seed": seed}
    if "fid" in metrics:
        out["fid"] = fid_from_features(real_f, fake_f)
    if "kid" in metrics:
        # subsets of at most half of each side, so the spread over subsets means something
        out["kid"], out["kid_std"] = kid(real_f, fake_f,
                                         subset_size=max(2, min(1000, n // 2, len(real_f) // 2)))
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real_f, fake_f)
    if "dc" in metrics:
        out["density"], out["coverage"] = density_coverage(real_f, fake_f)
    if "is" in metrics:
        out["is"], out["is_std"] = inception_score(fake_p)
        out["is_real"] = inception_score(real_p)[0]
    if "classes" in metrics:
        if real_y is None:
            raise GanforgeError("per-class analysis needs labelled reference data")
        fake_y = (np.arange(n) % classes) if classes else None
        out["classes"] = per_class(real_f, real_y, fake_f, fake_p, ext.net.class_names,
                                   fake_labels=fake_y)
    out["seconds_generated_side"] = time.perf_counter() - t_gen
    out["seconds"] = time.perf_counter() - t0
    return out


def evaluate(path: str | os.PathLike, *, metrics: tuple[str, ...] = ("fid",), n: int = 10000,
             features: str = "inception", device: str = "cpu", seed: int = 0,
             inception_path: str | None = None, progress: bool = True, write: bool = True,
             ema: bool = True, n_reference: int | None = None) -> dict[str, Any]:
    """Evaluate a run directory or checkpoint (its G_ema when it has one, unless ``ema=False``);
    writes ``eval.json`` into the run."""
    from .sample import load_generator
    from .training.checkpoint import resolve_checkpoint

    G, cfg, _ = load_generator(path, device, ema=ema)
    res = evaluate_generator(G, cfg, metrics=metrics, n=n, features=features, device=device,
                             n_reference=n_reference,
                             seed=seed, inception_path=inception_path, progress=progress)
    ckpt = resolve_checkpoint(path)
    res["checkpoint"] = ckpt.name
    res["generator"] = "G_ema" if ema and cfg.train.ema_kimg > 0 else "G"
    if write:
        out = ckpt.parent / "eval.json"
        existing = json.loads(out.read_text()) if out.is_file() else {}
        key = f"{ckpt.stem}/{res['features']}/n{res.get('n_generated', 0)}"
        if n_reference is not None:
            key += f"/ref{res.get('n_reference')}"
        existing[key if res["generator"] == "G" else f"{key}/ema"] = res
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(existing, indent=2) + "\n")
        os.replace(tmp, out)
        res["eval_json"] = str(out)
    return res


def format_table(res: dict[str, Any]) -> str:
    """The results as a small text table (per-class rows below, when present)."""
    names = {"fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall",
             "density": "density", "coverage": "coverage", "is": "Inception Score",
             "mean_error": "mean error", "cov_rel_error": "covariance error (rel.)",
             "w2": "2-Wasserstein"}
    lines = [f"features: {res['features']}" + (f", {res['n_generated']} generated vs "
                                                f"{res['n_reference']} real"
                                                if "n_generated" in res else "")]
    for key, label in names.items():
        if key in res:
            val = f"{res[key]:.4f}"
            if f"{key}_std" in res:
                val += f" ± {res[f'{key}_std']:.4f}"
            if key == "is" and "is_real" in res:
                val += f"  (real data: {res['is_real']:.3f})"
            lines.append(f"  {label:<24} {val}")
    if "classes" in res:
        cond = "agreement" in res["classes"][0]
        lines.append(f"  {'class':<14} {'share':>7} {'real':>6} {'conf.':>6} {'FID':>8}"
                     + ("  agreement" if cond else ""))
        for r in res["classes"]:
            fid = "   -" if r["fid"] is None else f"{r['fid']:8.3f}"
            conf = "  -" if r["confidence"] is None else f"{r['confidence']:.3f}"
            agree = "" if not cond or r["agreement"] is None else f"  {100 * r['agreement']:8.1f}%"
            lines.append(f"  {r['name'][:14]:<14} {100 * r['share']:6.1f}% {100 * r['real_share']:5.1f}% "
                         f"{conf:>6} {fid:>8}{agree}")
    lines.append(f"  ({res['seconds']:.1f} s)")
    return "\n".join(lines)
