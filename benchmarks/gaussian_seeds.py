"""How close do the 2-D recipes get? Train each preset over several seeds, print a table.

    python benchmarks/gaussian_seeds.py [--presets gaussian2d gaussian2d-best] [--seeds 0 1 2 3 4]

Runs the presets one after the other in this process, so their wall times are comparable.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ganforge.presets import from_preset
from ganforge.training import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["gaussian2d", "gaussian2d-best"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for seed in args.seeds:
                cfg = from_preset(preset, [f"train.seed={seed}"])
                res = train(cfg, Path(tmp) / f"{preset}-{seed}", quiet=True)
                g = res.summary["gaussian"]
                rows.append((preset, seed, g["fitted_mean"], g["mean_error"], g["cov_rel_error"],
                             res.summary["train_seconds"]))
    print("| preset | seed | fitted mean | mean error (true b = [1, 2]) | covariance error "
          "(rel. Frobenius) | seconds |")
    print("|---|---:|---|---:|---:|---:|")
    for preset, seed, mean, me, ce, sec in rows:
        print(f"| {preset} | {seed} | [{mean[0]:.3f}, {mean[1]:.3f}] | {me:.3f} | {100 * ce:.1f}% "
              f"| {sec:.1f} |")
    print()
    for preset in args.presets:
        mine = [r for r in rows if r[0] == preset]
        me, ce, sec = [r[3] for r in mine], [r[4] for r in mine], sum(r[5] for r in mine)
        print(f"{preset}: mean error {min(me):.3f}-{max(me):.3f}, covariance error "
              f"{100 * min(ce):.1f}-{100 * max(ce):.1f}%, {sec / len(mine):.1f} s per run "
              f"(seeds {args.seeds})")


if __name__ == "__main__":
    main()
