"""R3GAN's low-pass resampling: separable slices and adds against the depthwise convolution.

    python benchmarks/r3gan_resample.py [--preset stacked-r3gan] [--steps 20] [--rounds 3] [key=value ...]

Times whole training steps of the preset (G and D forward and backward, R1/R2, optimizers) with
`Resample.forward` (slices and adds) and with `Resample.reference` (a depthwise 4x4 convolution,
transposed for upsampling), alternating the two in rounds within one process so that a noisy
machine affects both alike. Prints ms per step and the ratio; the numbers are identical (the
tests compare them), only the time differs.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.data import load_dataset
from ganforge.models import r3gan
from ganforge.presets import from_preset
from ganforge.training import GAN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="stacked-r3gan")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = from_preset(args.preset, ["data.limit=2048", *args.overrides])
    ds = load_dataset(cfg.data)
    classes = len(ds.class_names) if cfg.model.conditional else 0
    gan = GAN(cfg, ds.sample_shape, torch.device("cpu"), num_classes=classes)
    bs = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    fast = r3gan.Resample.forward
    variants = {"slices and adds": fast, "depthwise conv": r3gan.Resample.reference}
    times: dict[str, list[float]] = {k: [] for k in variants}

    def steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, len(ds), (bs,), generator=gen)
            gan.train_step(ds.batch(idx), y=ds.labels[idx] if classes else None)
        return (time.perf_counter() - t0) / n

    try:
        for _ in range(args.rounds):
            for name, fn in variants.items():
                r3gan.Resample.forward = fn
                steps(2)  # warm-up
                times[name].append(steps(args.steps))
    finally:
        r3gan.Resample.forward = fast
    best = {k: min(v) * 1e3 for k, v in times.items()}
    print(f"{args.preset}, batch {bs}, {torch.get_num_threads()} threads, "
          f"best of {args.rounds} rounds of {args.steps} steps")
    print("| resampling | ms/step | vs depthwise conv |\n|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {v:.1f} | {best['depthwise conv'] / v:.2f}x |")


if __name__ == "__main__":
    main()
