"""Inception feature throughput on this machine: fp32 NCHW vs fp32 channels_last vs bf16 autocast.

    python benchmarks/inception_speed.py [--n 32]

Prints images/sec for each mode and the extrapolated time of one 10k-image side of an FID.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.metrics.features import InceptionFeatures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32)
    args = p.parse_args()
    net = InceptionFeatures()
    imgs = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8)
    x = net.preprocess(imgs)
    ref = None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("| mode | images/sec | 10k images | max rel. feature diff vs fp32 |\n|---|---:|---:|---:|")
    for mode in ("fp32-nchw", "fp32-channels_last", "bf16-channels_last"):
        inp = x.contiguous() if mode == "fp32-nchw" else x
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                             enabled=mode.startswith("bf16")):
            net.model(inp[:2])
            t0 = time.perf_counter()
            out = net.model(inp).float().reshape(len(inp), -1)
            dt = time.perf_counter() - t0
        if ref is None:
            ref = out
        diff = float(((out - ref).abs().max() / ref.abs().max()))
        print(f"| {mode} | {args.n / dt:.1f} | {10000 / (args.n / dt) / 60:.1f} min | {diff:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
