"""When does a healthy run's sample diversity first reach the mode-collapse threshold? Every
GAN starts with near-identical samples; the health monitor must stay quiet until a run that is
learning has left that phase. For each preset: a short run (one thread), the diversity of its
fixed-noise samples per epoch, the images seen when it first reached ``health.collapse_ratio``
and the lowest value after that. The presets' ``health.warmup_kimg`` comes from this table.

    python benchmarks/health_warmup.py                      # every image preset, 4 min each
    python benchmarks/health_warmup.py --presets mnist-mlp --minutes 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PRESETS = ["mnist-mlp", "mnist-dcgan", "fashion-dcgan", "pokemon-dcgan", "mnist-best",
           "fashion-best", "pokemon-best"]


def run_one(preset: str, minutes: float, root: str) -> dict:
    from ganforge.presets import from_preset
    from ganforge.training import train

    cfg = from_preset(preset, [f"train.max_minutes={minutes}", "train.threads=1", "eval.every=0",
                               "report.sample_every=1", "health.warmup_kimg=0",
                               "health.warmup_epochs=0"])
    out = Path(root) / preset
    train(cfg, out, quiet=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    ratio = cfg.health.collapse_ratio
    first = next((r for r in records if r.get("diversity", 0) >= ratio), None)
    after = [r["diversity"] for r in records if first and r["epoch"] >= first["epoch"]]
    return {"preset": preset, "epochs": len(records), "ratio": ratio,
            "first_epoch": first["epoch"] if first else None,
            "first_kimg": first["images_seen"] / 1000 if first else None,
            "min_after": min(after) if after else None,
            "diversity": [round(r.get("diversity", float("nan")), 3) for r in records[:8]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=PRESETS)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="health-warmup-")
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run_one, args.presets, [args.minutes] * len(args.presets),
                             [root] * len(args.presets)))
    print(f"\nfixed-noise diversity (relative to real data) in {args.minutes:g}-minute runs, one "
          "thread each")
    print("| preset | epochs | first epoch ≥ ratio | images seen then (k) | lowest after | "
          "first epochs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['epochs']} | {r['first_epoch']} | {r['first_kimg']} | "
              f"{r['min_after'] if r['min_after'] is None else round(r['min_after'], 3)} | "
              f"{', '.join(map(str, r['diversity']))} |")


if __name__ == "__main__":
    main()
