"""Recipe sweep: train one preset under several override sets side by side, compare per-epoch FID.

    python benchmarks/sweep.py --presets mnist-best fashion-best --epochs 10 \
        --variant base --variant "ttur optim_G.lr=1e-4 optim_D.lr=4e-4" \
        --set train.device=cuda --workers 8 --deadline-minutes 8 --json sweep.json

Each variant is a name followed by ``key=value`` overrides. Every (preset, variant) pair trains
for exactly ``--epochs`` epochs (the preset's wall-clock budget is switched off, so runs compare
at equal images seen, whatever the machine's speed), in its own process, ``--workers`` at a time,
each with one CPU thread. The presets' own per-epoch evaluation (``eval.every``; domain FID for
MNIST-like data) is read back from each run's ``metrics.jsonl``. Runs still going at
``--deadline-minutes`` are stopped (they checkpoint on SIGTERM) and reported as far as they got.
Meant for a GPU or a long CPU night: pick the recipe, then measure it with quality.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ganforge.io import read_jsonl as _read_jsonl


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, *overrides = text.split()
    if "=" in name:
        raise SystemExit(f"--variant {text!r}: start with a name, e.g. --variant 'ttur {text}'")
    return name, overrides


def read_metrics(run: Path) -> list[dict]:
    return _read_jsonl(run / "metrics.jsonl")  # a line cut by a stop is skipped


def fid_key(row: dict) -> str | None:
    return next((k for k in row if k.startswith("eval_fid")), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", required=True)
    p.add_argument("--variant", action="append", default=[],
                   help="'NAME key=value ...' (repeatable); 'base' alone = the preset as it is")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides for every run (e.g. train.device=cuda)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--deadline-minutes", type=float, default=0, help="0 = no deadline")
    p.add_argument("--runs", default="runs/sweep")
    p.add_argument("--json", default="", help="also write the results here")
    args = p.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["base"])]
    jobs = [(preset, name, ov) for preset in args.presets for name, ov in variants]
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    pending, active = list(jobs), []
    t0 = time.time()
    deadline = t0 + 60 * args.deadline_minutes if args.deadline_minutes else float("inf")
    while pending or active:
        while pending and len(active) < args.workers and time.time() < deadline:
            preset, name, ov = pending.pop(0)
            out = runs / f"{preset}--{name}"
            cmd = [sys.executable, "-m", "ganforge", "train", preset, "--out", str(out),
                   "--overwrite", "--quiet", "train.max_minutes=0", f"train.epochs={args.epochs}",
                   "train.threads=1", *args.set, *ov]
            log = open(runs / f"{preset}--{name}.log", "w", encoding="utf-8")
            active.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                           log, f"{preset}--{name}"))
            print(f"[{time.time() - t0:6.0f}s] start {preset} {name} {' '.join(ov)}", flush=True)
        if time.time() >= deadline:
            pending.clear()
            for proc, _, tag in active:
                if proc.poll() is None:
                    print(f"[{time.time() - t0:6.0f}s] deadline: stopping {tag}", flush=True)
                    proc.send_signal(signal.SIGTERM)
            for proc, log, _ in active:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log.close()
            active = []
            break
        for item in list(active):
            proc, log, tag = item
            if proc.poll() is not None:
                log.close()
                active.remove(item)
                print(f"[{time.time() - t0:6.0f}s] done  {tag} (exit {proc.returncode})", flush=True)
        time.sleep(2)

    results = []
    for preset, name, ov in jobs:
        rows = read_metrics(runs / f"{preset}--{name}")
        fids = [(r["epoch"], r[k]) for r in rows if (k := fid_key(r))]
        rates = [r["examples_per_sec"] for r in rows]
        results.append({
            "preset": preset, "variant": name, "overrides": ov,
            "epochs_done": rows[-1]["epoch"] if rows else 0,
            "images_seen": rows[-1]["images_seen"] if rows else 0,
            "fid_by_epoch": dict(fids),
            "final_fid": fids[-1][1] if fids else None,
            "best_fid": min(f for _, f in fids) if fids else None,
            "img_s": sum(rates) / len(rates) if rates else None,
        })
    marks = sorted({e for r in results for e in r["fid_by_epoch"]})
    marks = [e for e in marks if e in (1, 2, 3) or e % max(1, args.epochs // 5) == 0 or
             e == args.epochs]
    head = ["preset", "variant", "epochs", "img/s"] + [f"FID@{e}" for e in marks] + ["best"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in results:
        cells = [r["preset"], r["variant"], str(r["epochs_done"]),
                 f"{r['img_s']:.0f}" if r["img_s"] else "-"]
        cells += [f"{r['fid_by_epoch'][e]:.2f}" if e in r["fid_by_epoch"] else "-" for e in marks]
        cells.append(f"{r['best_fid']:.2f}" if r["best_fid"] is not None else "-")
        print("| " + " | ".join(cells) + " |")
    for r in results:
        print(f"  {r['preset']} {r['variant']}: {' '.join(r['overrides']) or '(preset as is)'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"epochs": args.epochs, "set": args.set,
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
