"""Fine-tuning vs training from scratch on a small folder, at equal budgets.

Each variant is a `ganforge train` command on the target folder: the `finetune` preset from a
base run (with variations of its recipe) or the `folder` preset from random weights. Budgets
are counted in images (``--rate`` images per one-core minute, the recipe's speed alone on one
core of the machine), so that runs sharing the CPU still get equal compute: every variant
trains to the first budget, is evaluated (KID and FID of all the folder's images against as many
G_ema samples, and the nearest-training-image check), and is resumed to the next budget, which
continues it exactly. Variants run at once, one thread each (``--jobs`` at a time).

    python benchmarks/finetune.py --base runs/base-sprites --data ICONS --out runs/ft-icons \\
        --minutes 10 30 --variant finetune= --variant 'no-freeze=train.freeze_d=0' \\
        --variant scratch=@folder --minutes-of scratch=10,30,60

A variant is NAME=OVERRIDES (space-separated key=value, applied to the finetune preset), or
NAME=@PRESET OVERRIDES for another preset trained from scratch at the base's resolution.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GANFORGE = [sys.executable, "-m", "ganforge"]


def _images_in(folder: str) -> int:
    from ganforge.data.images import scan_folder

    return len(scan_folder(folder)[0])


def _train(cmd: list[str], log: Path) -> None:
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def _evaluate(run: Path, n: int) -> dict:
    code = ("import json, sys, torch; torch.set_num_threads(1)\n"
            "from ganforge.evaluate import evaluate\n"
            "r = evaluate(sys.argv[1], metrics=('fid', 'kid', 'nn'), n=int(sys.argv[2]), "
            "progress=False)\n"
            "print(json.dumps({k: v for k, v in r.items() if isinstance(v, (int, float))}))")
    out = subprocess.run([sys.executable, "-c", code, str(run), str(n)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_variant(name: str, spec: str, minutes: list[float], args, n_images: int) -> list[dict]:
    run = Path(args.out) / name
    log = Path(args.out) / f"{name}.log"
    rows, done = [], 0
    for budget in minutes:
        epochs = math.ceil(budget * args.rate / n_images)
        if done == 0:
            if spec.startswith("@"):
                preset, _, rest = spec[1:].partition(" ")
                over = [f"data.resolution={args.resolution}"] + shlex.split(rest)
            else:
                preset, over = "finetune", [f"train.init_from={args.base}"] + shlex.split(spec)
            cmd = [*GANFORGE, "train", preset, f"data.path={args.data}", "train.threads=1",
                   "train.max_minutes=0", f"train.epochs={epochs}", "train.checkpoint_minutes=0",
                   "train.checkpoint_every=0", "report.tensorboard=off", *over,
                   "--out", str(run), "--quiet", "--overwrite"]
        else:
            cmd = [*GANFORGE, "train", "--resume", str(run), f"train.epochs={epochs}", "--quiet"]
        _train(cmd, log)
        done = epochs
        shutil.copy(run / "checkpoint.pt", run / f"checkpoint_{budget:g}min.pt")
        res = _evaluate(run / f"checkpoint_{budget:g}min.pt", n_images)
        rows.append({"variant": name, "minutes": budget, "epochs": epochs,
                     "images": epochs * n_images, **{k: res.get(k) for k in (
                         "fid", "kid", "kid_std", "nn_distance", "nn_real", "nn_close")}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the run the fine-tunes start from")
    ap.add_argument("--data", required=True, help="the target folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 30])
    ap.add_argument("--minutes-of", action="append", default=[],
                    help="NAME=M1,M2,...: other budgets for one variant (e.g. scratch=10,30,60)")
    ap.add_argument("--variant", action="append", required=True, help="NAME=OVERRIDES")
    ap.add_argument("--rate", type=float, default=14000,
                    help="images per one-core minute of the recipe (default 14,000, the folder "
                         "recipe's at 64x64 on one core of a Zen 4)")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    n_images = _images_in(args.data)
    own = dict(m.split("=", 1) for m in args.minutes_of)
    variants = [v.split("=", 1) for v in args.variant]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_variant, name, spec,
                               [float(x) for x in own[name].split(",")] if name in own
                               else args.minutes, args, n_images) for name, spec in variants]
        rows = [r for f in futures for r in f.result()]
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{n_images} images in {args.data}; budgets of {args.rate:,.0f} images a minute")
    print(f"{'variant':<16}{'min':>5}{'images':>10}{'KID':>9}{'FID':>8}{'NN':>8}{'NN real':>9}"
          f"{'copies':>8}")
    for r in rows:
        print(f"{r['variant']:<16}{r['minutes']:>5g}{r['images']:>10,}{r['kid']:>9.4f}"
              f"{r['fid']:>8.1f}{r['nn_distance']:>8.2f}{r['nn_real']:>9.2f}{r['nn_close']:>8.3f}")


if __name__ == "__main__":
    main()
