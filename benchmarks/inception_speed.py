"""Inception feature throughput on this machine, every backend side by side in one run: PyTorch
fp32 (NCHW and channels_last, the protocol's path before the runtimes), ONNX Runtime and
OpenVINO in fp32, and the bf16 ``--fast`` mode on PyTorch and OpenVINO.

    python benchmarks/inception_speed.py [--n 32]

Prints images/sec, the time of one 10k-image side of an FID, the speed-up over PyTorch fp32
(channels_last, what ``evaluate`` ran before the runtimes) and the largest feature difference
relative to the largest feature of PyTorch fp32. Backends that are not installed are listed as
such (``pip install 'ganforge[fast]'``).
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.metrics import backends
from ganforge.metrics.features import InceptionFeatures


def _rate(net: InceptionFeatures, images: torch.Tensor, channels_last: bool = True
          ) -> tuple[float, torch.Tensor]:
    net(images[:2])  # warm-up (and the runtime's first-call setup)
    if not channels_last:  # the old NCHW path, for the record
        x = net.preprocess(images).contiguous()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = net.model(x).float().reshape(len(x), -1)
        return len(images) / (time.perf_counter() - t0), out
    t0 = time.perf_counter()
    out = net(images)
    return len(images) / (time.perf_counter() - t0), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32)
    args = p.parse_args()
    images = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.n} images")
    print("| backend | precision | images/sec | 10k images | vs torch fp32 | max rel. feature diff |")
    print("|---|---|---:|---:|---:|---:|")
    base_rate, ref = None, None
    rows = [("torch", "fp32", False), ("torch", "fp32", True), ("onnxruntime", "fp32", True),
            ("openvino", "fp32", True), ("torch", "bf16", True), ("openvino", "bf16", True)]
    for backend, precision, channels_last in rows:
        name = backend + ("" if channels_last or backend != "torch" else " (NCHW)")
        if not backends.installed(backend):
            print(f"| {name} | {precision} | not installed | | | |", flush=True)
            continue
        net = InceptionFeatures(precision=precision, backend=backend)
        rate, out = _rate(net, images, channels_last)
        if ref is None:
            ref = out
        if backend == "torch" and precision == "fp32" and channels_last:
            base_rate = rate
        diff = float((out - ref).abs().max() / ref.abs().max())
        speed = f"{rate / base_rate:.2f}x" if base_rate else ""
        print(f"| {name} | {precision} | {rate:.1f} | {10000 / rate / 60:.1f} min | {speed} | "
              f"{diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
