"""How close does the seed's 2-D recipe get? Train a preset over several seeds, print a table.

    python benchmarks/gaussian_seeds.py [--preset gaussian2d] [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ganforge.config import from_preset
from ganforge.training import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="gaussian2d")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = from_preset(args.preset, [f"train.seed={seed}"])
            res = train(cfg, Path(tmp) / str(seed), quiet=True)
            g = res.summary["gaussian"]
            rows.append((seed, g["fitted_mean"], g["mean_error"], g["cov_rel_error"],
                         res.summary["train_seconds"]))
    print("| seed | fitted mean | mean error (true b = [1, 2]) | covariance error (rel. Frobenius) | seconds |")
    print("|---:|---|---:|---:|---:|")
    for seed, mean, me, ce, sec in rows:
        print(f"| {seed} | [{mean[0]:.3f}, {mean[1]:.3f}] | {me:.3f} | {100 * ce:.1f}% | {sec:.1f} |")
    me = [r[2] for r in rows]
    ce = [r[3] for r in rows]
    print(f"\n{args.preset}: mean error {min(me):.3f}-{max(me):.3f}, "
          f"covariance error {100 * min(ce):.1f}-{100 * max(ce):.1f}% over seeds {args.seeds}")


if __name__ == "__main__":
    main()
