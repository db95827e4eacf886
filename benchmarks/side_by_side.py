"""Presets trained side by side on one wall-clock budget, then evaluated.

Every variant is a `ganforge train PRESET OVERRIDES` run with one thread and
``train.max_minutes=--minutes``, all started at once: N single-threaded runs on C cores each get
about C/N of a core for the same wall time (the runs are CPU-bound), so they receive equal
compute whatever their speed per image. Then each run's G_ema (G where the recipe keeps
no G_ema) is evaluated with the metrics
that fit its data (``modes`` on Stacked MNIST, ``kid,fid`` elsewhere, all the folder's images
against as many samples) and one table is printed.

    python benchmarks/side_by_side.py --minutes 45 --out runs/side \\
        --variant 'r3gan=stacked-r3gan' \\
        --variant 'sn-dcgan=fashion-best data.name=stacked-mnist model.conditional=false eval.every=0' \\
        --variant 'dcgan=mnist-dcgan data.name=stacked-mnist train.epochs=1000' \\
        --variant 'sprites-folder=folder data.path=SPRITES' \\
        --variant 'sprites-r3gan=folder-r3gan data.path=SPRITES'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GANFORGE = [sys.executable, "-m", "ganforge"]


def _train(name: str, spec: str, args) -> Path:
    run = Path(args.out) / name
    cmd = [*GANFORGE, "train", *shlex.split(spec), "train.threads=1",
           f"train.max_minutes={args.minutes:g}", "--out", str(run), "--quiet", "--overwrite"]
    with open(Path(args.out) / f"{name}.log", "w") as log:
        log.write(" ".join(shlex.quote(c) for c in cmd[2:]) + "\n")
        log.flush()
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return run


def _result(run: Path, key: str) -> dict | None:
    """The run's last evaluation holding ``key`` of its current checkpoint (G_ema where it has
    one), or None."""
    path = run / "eval.json"
    if not path.exists():
        return None
    digest = hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()
    entries = [e for e in json.loads(path.read_text()).values()
               if key in e and e.get("checkpoint_sha256") == digest]
    entries.sort(key=lambda e: e.get("generator") == "G_ema")
    return entries[-1] if entries else None


def _evaluate(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    stacked = cfg["data"]["name"] == "stacked-mnist"
    key = "modes" if stacked else "kid"
    result = _result(run, key)
    if result is None:
        cmd = [*GANFORGE, "evaluate", str(run), "--metrics", "modes" if stacked else "kid,fid",
               "--quiet"]
        if not stacked:
            from ganforge.data.images import scan_folder

            cmd += ["--n", str(len(scan_folder(cfg["data"]["path"])[0]))]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        result = _result(run, key)
    return {"resolution": cfg["data"]["resolution"], **result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--variant", action="append", required=True, help="NAME=PRESET OVERRIDES")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the runs already in --out")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    variants = [v.split("=", 1) for v in args.variant]
    if not args.eval_only:
        with ThreadPoolExecutor(len(variants)) as pool:
            list(pool.map(lambda v: _train(*v, args), variants))
    rows = {}
    for name, _ in variants:
        rows[name] = _evaluate(Path(args.out) / name)
        print(json.dumps({name: rows[name]}), flush=True)
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{len(variants)} runs side by side, one thread each, {args.minutes:g} minutes")
    print(f"{'variant':<16}{'px':>5}{'images':>11}{'modes':>7}{'KL':>8}{'floor':>8}"
          f"{'KID':>9}{'FID':>8}")
    for name, r in rows.items():
        def cell(key, fmt, width):
            return f"{r[key]:>{width}{fmt}}" if isinstance(r.get(key), (int, float)) else " " * (
                width - 1) + "-"
        print(f"{name:<16}{r['resolution']:>5}{cell('images_seen', ',', 11)}{cell('modes', 'd', 7)}"
              f"{cell('modes_kl', '.4f', 8)}{cell('modes_kl_real', '.4f', 8)}"
              f"{cell('kid', '.4f', 9)}{cell('fid', '.1f', 8)}")


if __name__ == "__main__":
    main()
