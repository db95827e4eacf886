"""Where a training step's time goes, per preset: a torch.profiler breakdown of ganforge's step.

    python benchmarks/profile_step.py [--presets gaussian2d mnist-mlp fashion-dcgan pokemon-dcgan]
                                      [--steps 30] [key=value ...]

Columns: wall time per step; the share spent in convolutions and matrix products (the arithmetic
that a faster kernel or bf16 could speed up), in the optimizers (fused Adam), in every other ATen
operator (BatchNorm, activations, losses, copies...), and the remainder -- Python, autograd
bookkeeping and operator dispatch -- that no kernel makes faster. A preset whose remainder
dominates is bound by per-operation overhead, not by arithmetic.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from ganforge.presets import from_preset
from ganforge.data import load_dataset
from ganforge.training import GAN

COMPUTE = ("conv", "addmm", "aten::mm", "bmm", "matmul", "linear")


def profile_preset(preset: str, steps: int, overrides: list[str]) -> dict[str, float]:
    cfg = from_preset(preset, ["data.limit=4096", *overrides])
    ds = load_dataset(cfg.data)
    classes = len(ds.class_names) if cfg.model.conditional else 0
    gan = GAN(cfg, ds.sample_shape, torch.device("cpu"), num_classes=classes)
    bs = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(ds), (bs,), generator=gen) for _ in range(steps + 3)]

    def step(idx):
        y = ds.labels[idx] if cfg.model.conditional else None
        gan.train_step(ds.batch(idx), y=y)

    for idx in batches[:3]:
        step(idx)
    t0 = time.perf_counter()
    for idx in batches[3:]:
        step(idx)
    wall = (time.perf_counter() - t0) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for idx in batches[3:]:
            step(idx)
    compute = optim = other = 0.0
    for ev in prof.key_averages():
        name = ev.key
        if name.startswith("Optimizer.step"):
            optim += ev.cpu_time_total  # inclusive: the fused kernel and its bookkeeping
        elif name.startswith("aten::") and any(k in name for k in COMPUTE):
            compute += ev.self_cpu_time_total
        elif name.startswith("aten::"):
            other += ev.self_cpu_time_total
    # Optimizer ops are aten ops too: take them out of "other" once.
    for ev in prof.key_averages():
        if ev.key.startswith("aten::_fused_adam") or ev.key.startswith("aten::_foreach"):
            other -= ev.self_cpu_time_total
    scale = 1e-6 / steps  # microseconds over all steps -> seconds per step
    compute, optim, other = compute * scale, optim * scale, max(other * scale, 0.0)
    return {"wall": wall, "compute": compute, "optim": optim, "other": other,
            "overhead": max(wall - compute - optim - other, 0.0), "batch": bs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+",
                   default=["gaussian2d", "mnist-mlp", "fashion-dcgan", "pokemon-dcgan"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| preset | batch | ms/step | conv + matmul | optimizers | other ATen ops | "
          "Python + autograd + dispatch |\n|---|---:|---:|---:|---:|---:|---:|")
    for preset in args.presets:
        r = profile_preset(preset, args.steps, args.overrides)
        w = r["wall"]
        print(f"| {preset} | {r['batch']} | {1000 * w:.2f} | {100 * r['compute'] / w:.0f}% | "
              f"{100 * r['optim'] / w:.0f}% | {100 * r['other'] / w:.0f}% | "
              f"{100 * r['overhead'] / w:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
