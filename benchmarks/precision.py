"""Training steps per second in fp32, bf16 autocast, and each with channels_last, side by side.

    python benchmarks/precision.py [--presets fashion-best pokemon-best] [--steps 30] [--threads 2]

Times ganforge's own ``train_step`` on a fixed random batch (no data loading, no evaluation), so
the ratio between the rows is the speed-up the switch gives a training run. Also prints what
``train.precision=auto`` resolves to on this machine and why (PyTorch's CPU capability and the
bf16 flags in /proc/cpuinfo), and a dense matmul's GFLOP/s in fp32 and bf16.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.presets import from_preset
from ganforge.training import GAN
from ganforge.runtime import cpu_has_native_bf16, resolve_precision

MODES = {
    "fp32": [],
    "fp32 + channels_last": ["train.channels_last=true"],
    "bf16": ["train.precision=bf16"],
    "bf16 + channels_last": ["train.precision=bf16", "train.channels_last=true"],
}


def _shape(cfg) -> tuple[int, ...]:
    return (cfg.data.channels, cfg.data.resolution, cfg.data.resolution)


def time_steps(preset: str, overrides: list[str], steps: int) -> float:
    """Seconds per training step of ``preset`` with ``overrides`` (after 5 warm-up steps)."""
    cfg = from_preset(preset, ["train.precision=fp32", "train.channels_last=false", *overrides])
    torch.manual_seed(0)
    gan = GAN(cfg, _shape(cfg), torch.device("cpu"), num_classes=10 if cfg.model.conditional else 0)
    bs = cfg.train.batch_size
    real = torch.rand(bs, *_shape(cfg)) * 2 - 1
    y = torch.randint(0, 10, (bs,)) if cfg.model.conditional else None
    for _ in range(5):
        gan.train_step(real, y=y)
    t0 = time.perf_counter()
    for _ in range(steps):
        gan.train_step(real, y=y)
    return (time.perf_counter() - t0) / steps


def matmul_gflops(dtype: torch.dtype, n: int = 1024, reps: int = 20) -> float:
    """Dense n x n matmul throughput in ``dtype``: the arithmetic ceiling each precision has here."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["fashion-best", "pokemon-best"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}, "
          f"train.precision=auto -> {resolve_precision('auto', cpu)}")
    print(f"dense 1024x1024 matmul: fp32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
          f"bf16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s\n")
    print("| preset | batch | mode | ms/step | images/s | vs fp32 |\n|---|---:|---|---:|---:|---:|")
    for preset in args.presets:
        bs = from_preset(preset).train.batch_size
        base = None
        for mode, overrides in MODES.items():
            dt = time_steps(preset, overrides, args.steps)
            base = base or dt
            print(f"| {preset} | {bs} | {mode} | {dt * 1e3:.1f} | {bs / dt:.0f} | "
                  f"{base / dt:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
