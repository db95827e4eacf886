"""Grey-level histogram of generated MNIST-like images against the test split.

    python benchmarks/background_pixels.py RUN [--n 1000] [--seed 0]

Prints, for G_ema, G and the test images, the share of pixels that are exactly black (0), faint
grey (1-40) and bright (> 200). Real MNIST / Fashion-MNIST backgrounds are exactly 0; faint specks
on a generated background are invisible to the domain classifier and visible to Inception.
"""

from __future__ import annotations

import argparse

import torch

from ganforge.data.idx import load_idx_dataset
from ganforge.evaluate import eval_geometry
from ganforge.report import to_uint8
from ganforge.generator import generate, load_generator


def shares(u8: torch.Tensor) -> tuple[float, float, float]:
    u8 = u8.to(torch.int16)
    return (float((u8 == 0).float().mean()), float(((u8 >= 1) & (u8 <= 40)).float().mean()),
            float((u8 > 200).float().mean()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print("| images | exactly 0 | grey 1-40 | > 200 |\n|---|---:|---:|---:|")
    for ema in (True, False):
        G, cfg, _, classes = load_generator(args.run, ema=ema)
        with torch.no_grad():
            x = generate(G, cfg.model.z_dim, args.n, seed=args.seed,
                         num_classes=classes)
        row = shares(eval_geometry(to_uint8(x), cfg))
        print(f"| {'G_ema' if ema else 'G'} ({args.n}) | " + " | ".join(f"{v:.3f}" for v in row)
              + " |")
    real, _, _ = load_idx_dataset(cfg.data.name, "test")
    row = shares(torch.from_numpy(real))
    print(f"| {cfg.data.name} test ({len(real)}) | " + " | ".join(f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
