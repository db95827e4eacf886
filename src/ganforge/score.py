"""Scores of any two image sets (``ganforge fid A B``): each side a run or checkpoint (sampled
with its G_ema), an export, a named dataset (``mnist:test``, ``fashion-mnist:train``,
``pokemon``), a folder or ``.zip`` of images, or a ``.npy``/``.npz`` array.

A is judged against B: B plays the reference (precision is the share of A's samples inside B's
manifold, recall the converse), so ``fid RUN mnist:test`` is ``evaluate RUN``. Both sides go
through the evaluation protocol of :mod:`ganforge.evaluate`: the same feature network and
preprocessing (grey tiled to three channels, TF1-bilinear resize from each side's own
resolution), the same reference cache for datasets and folders, the same sampling for runs.
"""

from __future__ import annotations

import dataclasses
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Config, apply_overrides
from .data import describe
from .data.idx import IDX_DATASETS
from .data.named_folders import FOLDER_DATASETS
from .errors import GanforgeError, require_range
from .evaluate import (FeatureExtractor, eval_geometry, reference_features, with_data_shape)
from .generator import generate_uint8, load_generator
from .io import resolve_checkpoint
from .metrics.registry import METRICS, EvalInputs, compute

DEFAULT_SAMPLES = 10_000  # generated per run side unless --n says otherwise
SET_METRICS = ("fid", "kid", "pr", "dc", "is", "nn")


@dataclasses.dataclass
class Side:
    """One side of a comparison, before its features are computed."""

    spec: str  # what the user gave
    kind: str  # "run", "dataset", "folder" or "array"
    cfg: Config | None = None  # datasets and folders: the data config; runs: the run's
    split: str = "test"
    images: torch.Tensor | None = None  # arrays: uint8 NCHW
    loaded: Any = None  # runs: the generator, its config, sample shape and classes


def _array_images(path: Path) -> torch.Tensor:
    """uint8 NHWC (or NCHW), or float NCHW/NHWC in [-1, 1] or [0, 1] -> uint8 NCHW."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise GanforgeError(f"{path} is not a readable .npy/.npz array ({e})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        names = loaded.files
        if not names:
            raise GanforgeError(f"{path} holds no arrays")
        a = loaded["images"] if "images" in names else loaded[names[0]]
    else:
        a = loaded
    if a.ndim == 3:  # N, H, W: grey
        a = a[:, None]
    if a.ndim != 4:
        raise GanforgeError(f"{path}: an image array has 4 dimensions (N, H, W, C or N, C, H, W), "
                            f"got shape {a.shape}")
    if a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.shape[1] not in (1, 3):
        raise GanforgeError(f"{path}: images need 1 or 3 channels (NHWC or NCHW), got shape "
                            f"{a.shape}")
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a))
    if not np.issubdtype(a.dtype, np.floating):
        raise GanforgeError(f"{path}: images are uint8 (0..255) or float ([-1, 1] or [0, 1]), "
                            f"got {a.dtype}")
    if not np.isfinite(a).all():
        raise GanforgeError(f"{path} holds NaN or infinite values")
    low, high = float(a.min()), float(a.max())
    if low < -1.0001 or high > 1.0001:
        raise GanforgeError(f"{path}: float images must lie in [-1, 1] or [0, 1], found "
                            f"[{low:.3g}, {high:.3g}]")
    x = torch.from_numpy(a.astype(np.float32))
    x = (x + 1) * 127.5 if low < 0 else x * 255.0  # any negative value: the [-1, 1] convention
    return x.round().clamp(0, 255).to(torch.uint8).contiguous()


def open_side(spec: str) -> Side:
    """What ``spec`` names (see the module's docstring); a clear error when it names nothing."""
    name, _, split = spec.partition(":")
    if name in IDX_DATASETS or name in FOLDER_DATASETS:
        if name in FOLDER_DATASETS and split:
            raise GanforgeError(f"{name} has no splits: write {name}, not {spec}")
        split = split or "test"
        if split not in ("train", "test"):
            raise GanforgeError(f"{spec}: the split is train or test")
        cfg = apply_overrides(Config(), [f"data.name={name}", "model.arch=dcgan"])
        return Side(spec, "dataset", cfg, split)
    path = Path(spec).expanduser()
    if path.suffix in (".npy", ".npz") and path.is_file():
        return Side(spec, "array", images=_array_images(path))
    if path.suffix in (".pt", ".safetensors") or (path.is_dir() and (path / "config.json").is_file()
                                                  and any(path.glob("checkpoint*.pt"))):
        return Side(spec, "run")
    if path.is_dir() or (path.suffix == ".zip" and path.is_file()):
        cfg = apply_overrides(Config(), ["data.name=folder", f"data.path={path}",
                                         "model.arch=dcgan"])
        return Side(spec, "folder", cfg)
    raise GanforgeError(
        f"{spec} is not an image set: give a run directory or checkpoint, a .safetensors export, "
        f"a folder or .zip of images, a .npy/.npz array, or a dataset ({', '.join(IDX_DATASETS)} "
        f"with :train or :test, {', '.join(FOLDER_DATASETS)})")


def _features(side: Side, ext: FeatureExtractor, n: int | None, seed: int, device: str,
              like: Side) -> dict[str, Any]:
    """Features (and class probabilities) of one side, with what was scored."""
    if side.kind == "run":
        G, cfg, shape, classes = side.loaded
        if len(shape) != 3:
            raise GanforgeError(f"{side.spec} generates points, not images: score it with "
                                "`ganforge evaluate`")
        count = n or DEFAULT_SAMPLES
        images = eval_geometry(generate_uint8(G, cfg.model.z_dim, count, seed, device,
                                              num_classes=classes), with_data_shape(cfg, shape))
        feats, probs = ext(images, f"{Path(side.spec).name}: features")
        checkpoint = resolve_checkpoint(side.spec).name if not side.spec.endswith(".safetensors") \
            else Path(side.spec).name
        return {"features": feats, "probs": probs, "what": f"{count} samples of {checkpoint}"}
    if side.kind == "array":
        images = side.images
        if n is not None:
            images = images[:n]
        feats, probs = ext(images, f"{Path(side.spec).name}: features")
        return {"features": feats, "probs": probs,
                "what": f"{len(images)} images {tuple(images.shape[1:])}"}
    cfg = side.cfg
    if like is not None and like.kind == "run" and side.kind == "folder":
        # against a run: read the folder at the run's resolution and channels, as `evaluate`
        cfg = with_data_shape(cfg, tuple(like.loaded.sample_shape))
    feats, probs, _, cached = reference_features(ext, cfg, n, side.split)
    return {"features": feats, "probs": probs, "cached": cached,
            "what": f"{len(feats)} images" + (" (features cached)" if cached else "")}


def score(a: str, b: str, *, metrics: tuple[str, ...] = ("fid",), n: int | None = None,
          features: str = "inception", fast: bool = False, backend: str = "auto",
          device: str = "cpu", seed: int = 0, inception_path: str | None = None,
          ema: bool = True, progress: bool = True) -> dict[str, Any]:
    """``metrics`` of set ``a`` judged against set ``b`` (module docstring), as a flat dict."""
    bad = [m for m in metrics if m not in SET_METRICS]
    if bad or not metrics:
        raise GanforgeError(f"unknown metric(s) {', '.join(bad) or '(none)'}; choose from "
                            f"{', '.join(SET_METRICS)}")
    if n is not None:
        require_range("--n", n, 2, 10 ** 7, "images per side")
    require_range("--seed", seed, 0, 2 ** 63 - 1)
    if any(METRICS[m].needs_classifier for m in metrics) and features != "classifier":
        raise GanforgeError("the Inception Score uses the domain classifier's classes: add "
                            "--features classifier (MNIST-like images)")
    t0 = time.perf_counter()
    sides = [open_side(a), open_side(b)]
    for side in sides:
        if side.kind == "run":
            side.loaded = load_generator(side.spec, device, ema=ema)
    data_cfg = next((s.cfg for s in sides if s.cfg is not None and s.kind == "dataset"), None)
    if features == "classifier" and (data_cfg is None or not describe(data_cfg.data).classifier):
        raise GanforgeError("--features classifier needs one side to be mnist or fashion-mnist "
                            "(its domain classifier); use --features inception otherwise")
    ext = FeatureExtractor(features, data_cfg or Config(), device, inception_path, progress,
                           fast, backend)
    got = [_features(s, ext, n, seed, device, sides[1 - i]) for i, s in enumerate(sides)]
    for side, g in zip(sides, got):
        if len(g["features"]) < 2:
            raise GanforgeError(f"{side.spec} holds {len(g['features'])} image(s); a score needs "
                                "at least 2 on each side")
        if n is not None and len(g["features"]) < n:
            raise GanforgeError(f"{side.spec} holds {len(g['features'])} images, fewer than "
                                f"--n {n}: lower --n or leave it out to use every image")
    inputs = EvalInputs(real=got[1]["features"], fake=got[0]["features"],
                        real_probs=got[1]["probs"], fake_probs=got[0]["probs"])
    kind = ext.kind + (" (fast: bf16)" if fast else "")
    out: dict[str, Any] = {"features": kind, "backend": ext.backend, "a": a, "b": b,
                           "a_scored": got[0]["what"], "b_scored": got[1]["what"],
                           "n_generated": len(got[0]["features"]),
                           "n_reference": len(got[1]["features"]), "seed": seed}
    out.update(compute(metrics, inputs))
    for per_sample in ("nn_index", "nn_dist"):  # the summary only (evaluate writes nn.json)
        out.pop(per_sample, None)
    out["seconds"] = time.perf_counter() - t0
    return out

