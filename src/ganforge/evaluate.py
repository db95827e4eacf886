"""Evaluation: generate samples, extract features, compute the metrics, write ``eval.json``.

Protocol (Lucic et al. 2018 for MNIST-like data): N generated samples against the 10,000-image
*test* split, compared at the data's native 28x28 (generated 32x32 images, which the DCGAN presets
learn on digits padded by 2 black pixels per side, are center-cropped back to 28x28). Image-folder
datasets are compared against the images of the folder, at the training resolution.
Reference features are cached under a hash of everything that produced them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import Config
from .data import (describe, folder_path, is_image_folder, load_dataset, load_split,
                   resolve_shape)
from .data.images import folder_stamp, scan_folder
from .data.roots import user_cache_dir
from .errors import GanforgeError, require_range
from .generator import generate_uint8, generator_from_state
from .runtime import resolve_precision
from .io import atomic_write, file_sha256, load_checkpoint, resolve_checkpoint, write_json
from .io.lock import refuse_if_locked, run_lock
from .report.plots import save_pairs
from .metrics.classifier import ClassifierFeatures
from .metrics.features import InceptionFeatures
from .metrics.modes import read_both as read_modes_of
from .metrics.registry import METRICS, EvalInputs, compute, default_metric, metrics_for

FEATURES = ("inception", "classifier")
REFERENCE_VERSION = 1


def eval_geometry(images: torch.Tensor, cfg: Config) -> torch.Tensor:
    """uint8 NCHW generated images -> the geometry of the reference images."""
    side = describe(cfg.data).native_resolution
    if side and images.shape[-1] != side:
        pad = images.shape[-1] - side
        if pad > 0 and pad % 2 == 0:  # the data was padded with a border to train: crop it
            return images[..., pad // 2:pad // 2 + side, pad // 2:pad // 2 + side].contiguous()
        x = F.interpolate(images.float(), size=(side, side), mode="bilinear", antialias=True,
                          align_corners=False)
        return x.round().clamp(0, 255).to(torch.uint8)
    return images


def reference_images(cfg: Config, n: int | None = None, split: str = "test"
                     ) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """Real images for comparison (uint8 NCHW), their labels, and what identifies them; for a
    dataset with splits, ``split`` (the protocol's test split unless asked otherwise)."""
    data = resolve_shape(cfg.data)
    if describe(data).reference == "test split":
        images, labels, _ = load_split(data, split)  # (Stacked MNIST: triples of seed 0)
        x = torch.from_numpy(images)
        x = x.unsqueeze(1) if x.ndim == 3 else x
        if data.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()
        y = torch.from_numpy(labels)
        ident = {"dataset": data.name, "split": split, "channels": int(x.shape[1])}
    elif is_image_folder(data):
        ds = load_dataset(data)
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
    data = resolve_shape(cfg.data)
    path = folder_path(data)
    files, _, _ = scan_folder(path)
    return {"dataset": "folder", "path": str(Path(path).resolve()), "files": len(files),
            "stamp": folder_stamp(path, files), "resolution": data.resolution,
            "channels": data.channels, "limit": data.limit}


def _cache_path(ident: dict, extractor_key: str) -> Path:
    key = json.dumps({**ident, "features": extractor_key, "v": REFERENCE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return user_cache_dir() / "reference_features" / f"{ident['dataset']}-{digest}.npz"


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Cache ``arrays``; a cache that cannot be written (read-only, full) costs only the next
    evaluation's time, so it is reported and the evaluation goes on."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        atomic_write(path, buf.getvalue())
    except (OSError, GanforgeError) as e:
        print(f"ganforge: note: the reference features could not be cached in {path.parent} "
              f"({e}); the next evaluation computes them again", file=sys.stderr)


def _load_cached(path: Path, n: int | None) -> dict[str, np.ndarray] | None:
    """The cached arrays at ``path`` when they are whole and fit the request (``n`` rows when
    known); None (and the broken file removed) otherwise, so they are computed again."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        feats = out["features"]
        ok = feats.ndim == 2 and len(feats) >= 2 and (n is None or len(feats) == n) \
            and np.isfinite(feats).all() and all(len(v) == len(feats) for v in out.values())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        ok = False
    if ok:
        return out
    try:
        path.unlink()
    except OSError:
        pass
    return None


class FeatureExtractor:
    """Wraps a feature network: features (and class probabilities, for the classifier)."""

    def __init__(self, kind: str, cfg: Config, device: str, inception_path: str | None,
                 progress: bool, fast: bool = False, backend: str = "auto") -> None:
        self.kind = kind
        self.progress = progress
        if fast and kind != "inception":
            raise GanforgeError("--fast is a mode of the Inception features; the classifier's "
                                "features are already fast: drop --fast")
        if fast and resolve_precision("auto", torch.device(device)) != "bf16":
            raise GanforgeError(f"--fast computes Inception features in bf16, which {device} does "
                                "not compute natively (it would be slower than fp32): drop --fast")
        if kind == "inception":
            self.net = InceptionFeatures(inception_path, device=device,
                                         precision="bf16" if fast else "fp32", backend=backend)
        elif kind == "classifier":
            if not describe(cfg.data).classifier:
                raise GanforgeError(f"--features classifier exists for MNIST and Fashion-MNIST, "
                                    f"not {cfg.data.name}; use --features inception")
            self.net = ClassifierFeatures(cfg.data.name, device=device, progress=progress,
                                          data_dir=cfg.data.path or None)
        else:
            raise GanforgeError(f"--features must be one of {', '.join(FEATURES)}, got {kind!r}")
        self.key = self.net.cache_key
        self.backend = getattr(self.net, "backend", "torch")

    def __call__(self, images: torch.Tensor, desc: str) -> tuple[np.ndarray, np.ndarray | None]:
        bs = 50 if self.kind == "inception" else 500
        feats, probs = [], []
        bar = tqdm(total=len(images), desc=desc, unit="img", leave=False,
                   disable=True if not self.progress else None)
        for i in range(0, len(images), bs):
            chunk = images[i:i + bs]
            bar.update(len(chunk))
            if self.kind == "classifier":
                f, p = self.net.features_and_probs(chunk)
                probs.append(p.cpu().numpy())
            else:
                f = self.net(chunk)
            feats.append(f.cpu().numpy().astype(np.float32))
        bar.close()
        return np.concatenate(feats), (np.concatenate(probs) if probs else None)


def reference_features(extractor: FeatureExtractor, cfg: Config, n: int | None = None,
                       split: str = "test"
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """(features, probs, labels, from_cache) of the real images, cached on disk. An image folder
    is not decoded at all when its features are cached."""
    if is_image_folder(cfg.data):
        ident = {**folder_ident(cfg), "n": n}
        path = _cache_path(ident, extractor.key)
        z = _load_cached(path, n)
        if z is not None:
            return z["features"], None, None, True
        images, _, _ = reference_images(cfg, n)
        feats, _ = extractor(images, "reference features")
        _save_npz_atomic(path, features=feats)
        return feats, None, None, False
    images, labels, ident = reference_images(cfg, n, split)
    path = _cache_path(ident, extractor.key)
    lab = None if labels is None else labels.numpy()
    z = _load_cached(path, len(images))
    if z is not None:
        return z["features"], z.get("probs"), lab, True
    feats, probs = extractor(images, "reference features")
    arrays = {"features": feats}
    if probs is not None:
        arrays["probs"] = probs
    _save_npz_atomic(path, **arrays)
    return feats, probs, lab, False


def with_data_shape(cfg: Config, sample_shape: tuple[int, ...]) -> Config:
    """A copy of ``cfg`` whose data resolution and channels are those the generator was trained
    at, so the reference set is read at them (never re-derived from a folder that may have
    changed since)."""
    if len(sample_shape) != 3:
        return cfg
    data = dataclasses.replace(cfg.data, channels=int(sample_shape[0]),
                               resolution=int(sample_shape[-1]))
    return dataclasses.replace(cfg, data=data)


def evaluate_generator(G: torch.nn.Module, cfg: Config, *, metrics: tuple[str, ...] | None = None,
                       n: int = 10000, features: str = "inception", device: str = "cpu",
                       seed: int = 0, inception_path: str | None = None, progress: bool = True,
                       extractor: Any = None, n_reference: int | None = None,
                       num_classes: int = 0, fast: bool = False, backend: str = "auto",
                       nn_out: Path | None = None) -> dict[str, Any]:
    """Evaluate an in-memory generator (conditioned on ``num_classes`` classes, 0 = none)
    against the reference set (the test split, or the image folder), or its first
    ``n_reference`` images; returns a flat dict of results. ``metrics``: names from the metric
    registry that judge this data (default: the data's default metric, FID for images). With
    ``nn`` (against the training images, also for data with a test split), ``nn_out`` is the
    folder that receives ``nn.json`` (each sample's nearest training image) and
    ``nn_pairs.png``."""
    info = describe(cfg.data)
    metrics = tuple(metrics) if metrics else (default_metric(info.kind).name,)
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise GanforgeError(f"unknown metric(s) {', '.join(bad)}; choose from "
                            f"{', '.join(metrics_for(info.kind))}")
    wrong = [m for m in metrics if METRICS[m].data != info.kind]
    if wrong:
        raise GanforgeError(f"{', '.join(wrong)} judge(s) {METRICS[wrong[0]].data}, and "
                            f"{cfg.data.name} holds {info.kind}: use --metrics "
                            f"{','.join(metrics_for(info.kind))}")
    require_range("--seed", seed, 0, 2 ** 63 - 1)
    if n > 10 ** 7 or (n_reference or 0) > 10 ** 7:
        raise GanforgeError(f"--n and --n-reference are at most 10,000,000 samples, got "
                            f"{n} and {n_reference}")
    if n < 2:
        raise GanforgeError(f"--n must be at least 2, got {n}")
    t0 = time.perf_counter()
    if info.kind == "points":  # exact metrics: computed from G and the data's distribution
        exact = EvalInputs(generator=G, gaussian=info.gaussian)
        return {"features": "exact", **compute(metrics, exact),
                "seconds": time.perf_counter() - t0}
    # Wrong arguments are reported before the feature network is looked for (or trained).
    kind = extractor.kind if extractor is not None else features
    if any(METRICS[m].needs_classifier for m in metrics) and kind != "classifier":
        raise GanforgeError("the Inception Score and per-class analysis use the domain "
                            "classifier: add --features classifier (MNIST / Fashion-MNIST)")
    if n_reference is not None and n_reference < 2:
        raise GanforgeError(f"--n-reference must be at least 2, got {n_reference}")
    if "modes" in metrics and not info.modes:
        raise GanforgeError(f"modes counts the modes of stacked digits (data.name=stacked-mnist); "
                            f"{cfg.data.name} has none")
    ext = None
    real_f = real_p = real_y = train_f = None
    cached = train_split = False
    if any(METRICS[m].features for m in metrics):  # else no feature network is needed
        ext = extractor or FeatureExtractor(features, cfg, device, inception_path, progress,
                                            fast, backend)
        real_f, real_p, real_y, cached = reference_features(ext, cfg, n_reference)
        train_split = "nn" in metrics and info.reference == "test split"
        train_f = reference_features(ext, cfg, n_reference, "train")[0] if train_split else None
    t_gen = time.perf_counter()
    fake = eval_geometry(generate_uint8(G, cfg.model.z_dim, n, seed, device,
                                        num_classes=num_classes), cfg)
    fake_f, fake_p = ext(fake, "generated features") if ext is not None else (None, None)
    inputs = EvalInputs(real_f, fake_f, real_p, fake_p, real_y,
                        (np.arange(n) % num_classes) if num_classes else None,
                        tuple(getattr(getattr(ext, "net", None), "class_names", ())),
                        train=train_f)
    if "modes" in metrics:
        inputs = dataclasses.replace(inputs, **read_modes_of(fake, cfg.data, device, progress))
    if ext is not None:
        kind = ext.kind + (" (fast: bf16)" if getattr(ext.net, "precision", "fp32") == "bf16"
                           else "")
        out: dict[str, Any] = {"features": kind, "backend": ext.backend, "n_generated": n,
                               "n_reference": len(real_f), "reference_cached": cached}
    else:
        out = {"features": f"{info.digits} classifier, per channel", "n_generated": n}
    out["seed"] = seed
    out.update(compute(metrics, inputs))
    if "nn" in metrics:
        _nearest_files(out, fake, cfg, n_reference, nn_out, "train" if train_split else "test")
    out["seconds_generated_side"] = time.perf_counter() - t_gen
    out["seconds"] = time.perf_counter() - t0
    return out


def _nearest_files(out: dict[str, Any], fake: torch.Tensor, cfg: Config, n_reference: int | None,
                   folder: Path | None, split: str, shown: int = 32) -> None:
    """Move the per-sample nearest neighbours out of the results into ``folder``/nn.json
    (closest first) and the closest ``shown`` pairs into nn_pairs.png (sample left, its nearest
    training image right)."""
    index, dist = np.asarray(out.pop("nn_index")), np.asarray(out.pop("nn_dist"))
    if folder is None:
        return
    order = np.argsort(dist, kind="stable")
    rows = [{"sample": int(i), "training_index": int(index[i]), "distance": float(dist[i])}
            for i in order]
    write_json(folder / "nn.json", {"seed": out.get("seed"), "threshold": out["nn_threshold"],
                                    "samples": rows})
    real, _, _ = reference_images(cfg, n_reference, split)
    top = torch.from_numpy(order[:shown])
    save_pairs(fake[top], real[torch.from_numpy(index[order[:shown]])], folder / "nn_pairs.png")
    out["nn_files"] = ["nn.json", "nn_pairs.png"]


MODES_N = 26_000  # samples of a mode count by default (PacGAN's protocol)


def evaluate(path: str | os.PathLike, *, metrics: tuple[str, ...] | None = None,
             n: int | None = None,
             features: str = "inception", device: str = "cpu", seed: int = 0,
             inception_path: str | None = None, progress: bool = True, write: bool = True,
             ema: bool = True, n_reference: int | None = None, fast: bool = False,
             backend: str = "auto") -> dict[str, Any]:
    """Evaluate a run directory or checkpoint (its G_ema when it has one, unless ``ema=False``);
    writes ``eval.json`` into the run, each result naming the checkpoint it scored (its step,
    images seen and SHA-256). A checkpoint replaced while it was evaluated (a resumed run saving
    a new one) is noticed: the results are returned, not recorded under the new file."""
    if n is None:
        n = MODES_N if metrics and "modes" in metrics else 10000
    ckpt = resolve_checkpoint(path)
    if write:  # refuse now rather than after minutes of computing
        refuse_if_locked(ckpt.parent)
    digest = file_sha256(ckpt)
    state = load_checkpoint(ckpt, map_location=device)
    G, cfg, shape, classes = generator_from_state(state, path, device, ema)
    scored = {"checkpoint_sha256": digest, "step": state.get("step"),
              "epoch": state.get("epoch"), "images_seen": state.get("images_seen")}
    del state
    cfg = with_data_shape(cfg, shape)
    res = evaluate_generator(G, cfg, metrics=metrics, n=n, features=features, device=device,
                             fast=fast, n_reference=n_reference, num_classes=classes, backend=backend,
                             seed=seed, inception_path=inception_path, progress=progress,
                             nn_out=ckpt.parent if write else None)
    res["checkpoint"] = ckpt.name
    res.update(scored)
    res["generator"] = "G_ema" if ema and cfg.train.ema_kimg > 0 else "G"
    if write and file_sha256(ckpt) != digest:
        res["eval_json_error"] = (f"{ckpt} was replaced while it was evaluated (a run still "
                                  "training or resumed saved a new one); the results above are "
                                  f"for the checkpoint read at the start (sha256 {digest[:16]}...) "
                                  "and were not recorded. Evaluate again when the run is idle.")
        return res
    if write:
        features_key = res["features"].replace(" (fast: bf16)", "-fast")
        key = f"{ckpt.stem}/{features_key}/n{res.get('n_generated', 0)}"
        if n_reference is not None:
            key += f"/ref{res.get('n_reference')}"
        record_result(ckpt.parent, key if res["generator"] == "G" else f"{key}/ema", res)
    return res


def _read_results(out: Path) -> tuple[dict[str, Any], Path | None]:
    """eval.json's records; a file that is not a JSON object is renamed aside (returned)."""
    if not out.is_file():
        return {}, None
    try:
        existing = json.loads(out.read_text())
        if isinstance(existing, dict):
            return existing, None
    except (ValueError, UnicodeDecodeError):
        pass
    aside = out.with_name(f"{out.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(out, aside)
    return {}, aside


def record_result(run_dir: Path, key: str, res: dict[str, Any]) -> None:
    """Add ``res`` to ``run_dir/eval.json`` under ``key`` (under the run's lock, atomically).
    Never raises for the file system: a failure is kept in ``res["eval_json_error"]`` so the
    caller still shows what was computed; a corrupt eval.json is set aside, named in
    ``res["eval_json_set_aside"]``."""
    out = run_dir / "eval.json"
    try:
        with run_lock(run_dir):
            existing, aside = _read_results(out)
            if aside is not None:
                res["eval_json_set_aside"] = str(aside)
            existing[key] = dict(res)
            write_json(out, existing)
        res["eval_json"] = str(out)
    except OSError as e:
        res["eval_json_error"] = (f"could not write {out}: {e.strerror or e}; the results above "
                                  "were not saved")
    except GanforgeError as e:
        res["eval_json_error"] = f"{e} The results above were not saved."
