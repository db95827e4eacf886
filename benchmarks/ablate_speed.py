"""Many small runs at once: a several-seed ablation one run after another vs `ganforge ablate`'s
defaults, side by side in one process.

    python benchmarks/ablate_speed.py [--presets gaussian2d mnist-mlp] [--seeds 5]
                                      [--budget mnist-mlp=train.epochs=5 ...]

"one after another" is one run at a time with every core, drawing the preset's sample grids as
often as a lone `ganforge train` does. "defaults" is `ganforge ablate PRESET --seeds N`: one
process per core with the threads split, the grid after the last epoch only. Both train and
evaluate every seed; the table gives the wall time of each, their ratio and whether the per-seed
results are equal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ganforge.ablate import _cores, ablate
from ganforge.presets import from_preset

BUDGETS = {"gaussian2d": [], "mnist-mlp": ["train.epochs=5"]}


def _timed(preset: str, seeds: int, out: Path, overrides: list[str], workers: int):
    t0 = time.perf_counter()
    res = ablate(preset, [], seeds=seeds, out=str(out), overrides=overrides, workers=workers,
                 quiet=True)
    runs = next(iter(res["summary"]["results"].values()))
    metric = res["summary"]["metric"]
    return time.perf_counter() - t0, [r[metric] for r in runs], metric


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(BUDGETS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", nargs="*", default=[], metavar="PRESET=key=value",
                   help="the budget of a preset's runs (default: mnist-mlp=train.epochs=5)")
    args = p.parse_args()
    budgets = dict(BUDGETS)
    for item in args.budget:
        name, override = item.split("=", 1)
        budgets[name] = budgets.get(name, []) + [override]
    print(f"{_cores()} cores, {args.seeds} seeds\n")
    print("| preset | budget | one after another (s) | defaults (s) | speed-up | "
          "per-seed results |\n|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            over = budgets.get(preset, [])
            every = from_preset(preset, over).report.sample_every
            seq_s, seq, metric = _timed(preset, args.seeds, Path(tmp) / f"{preset}-seq",
                                        over + [f"report.sample_every={every}"], workers=1)
            par_s, par, _ = _timed(preset, args.seeds, Path(tmp) / f"{preset}-par", over,
                                   workers=0)
            same = "identical" if seq == par else "differ: " + ", ".join(
                f"{a:.4g}/{b:.4g}" for a, b in zip(seq, par))
            print(f"| {preset} | {' '.join(over) or 'the preset'} | {seq_s:.1f} | {par_s:.1f} | "
                  f"{seq_s / par_s:.2f}× | {metric} {same} |", flush=True)


if __name__ == "__main__":
    main()
