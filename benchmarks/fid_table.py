"""FID sanity table: real-vs-real, simple corruptions, and trained runs, in Inception and domain
(classifier) features, against each dataset's test split.

    python benchmarks/fid_table.py --datasets mnist fashion-mnist --n 2000 \
        --features classifier inception [--runs runs/mnist-mlp runs/fashion-dcgan] [--only-runs]

Rows: `train` (the first N training images: real vs real), `noise` (train + Gaussian noise,
sigma = 25 grey levels), `blur` (train blurred with a 5x5 Gaussian, sigma 1), `half-res`
(train at 14x14, upsampled back to 28x28), and one row per run given (N samples of its generator).
Every row is compared with the first N images of the test split.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.presets import from_preset
from ganforge.data.idx import load_idx_dataset
from ganforge.evaluate import FeatureExtractor, eval_geometry
from ganforge.generator import generate_uint8, load_generator
from ganforge.metrics import fid_from_features


def corruptions(x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    f = x.float()
    noise = (f + 25 * torch.randn(f.shape, generator=gen)).round().clamp(0, 255)
    k = torch.exp(-torch.arange(-2, 3, dtype=torch.float32) ** 2 / 2)
    k = (k[:, None] * k[None, :]) / (k.sum() ** 2)
    blur = F.conv2d(F.pad(f, (2, 2, 2, 2), mode="replicate"), k[None, None]).round().clamp(0, 255)
    half = F.interpolate(F.interpolate(f, size=(14, 14), mode="bilinear", antialias=True),
                         size=(28, 28), mode="bilinear").round().clamp(0, 255)
    return {"train": x, "noise": noise.to(torch.uint8), "blur": blur.to(torch.uint8),
            "half-res": half.to(torch.uint8)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--n", type=int, default=2000, help="images per side (default 2000)")
    p.add_argument("--features", nargs="+", default=["classifier", "inception"])
    p.add_argument("--runs", nargs="*", default=[], help="run directories to add as rows")
    p.add_argument("--only-runs", action="store_true",
                   help="skip the real-data rows (train, noise, blur, half-res)")
    args = p.parse_args()

    runs = [(r, *load_generator(r)) for r in args.runs]
    print("| dataset | images | features | FID | seconds |\n|---|---|---|---:|---:|")
    for ds in args.datasets:
        cfg = from_preset("mnist-mlp" if ds == "mnist" else "fashion-dcgan")
        test, _, _ = load_idx_dataset(ds, "test")
        train, _, _ = load_idx_dataset(ds, "train")
        ref = torch.from_numpy(test[: args.n]).unsqueeze(1)
        rows = {} if args.only_runs else corruptions(torch.from_numpy(train[: args.n]).unsqueeze(1))
        for path, G, rcfg, _, classes in runs:
            if rcfg.data.name == ds:
                rows[f"{rcfg.name} ({path})"] = eval_geometry(
                    generate_uint8(G, rcfg.model.z_dim, args.n, 0, "cpu",
                                   num_classes=classes), rcfg)
        if not rows:
            continue
        for feat in args.features:
            ext = FeatureExtractor(feat, cfg, "cpu", None, progress=False)
            real_f, _ = ext(ref, "test")
            for name, imgs in rows.items():
                t0 = time.perf_counter()
                fake_f, _ = ext(imgs, name)
                fid = fid_from_features(real_f, fake_f)
                print(f"| {ds} | {name} | {feat} | {fid:.2f} | {time.perf_counter() - t0:.0f} |",
                      flush=True)
    print(f"\nN = {args.n} images per side (test split vs each row); "
          "FID at small N is biased upwards, compare rows, not papers.")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
