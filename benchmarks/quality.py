"""Quality table: train the quality presets on a wall-clock budget and evaluate them like papers do.

    python benchmarks/quality.py [--presets mnist-best fashion-best pokemon-dcgan pokemon-best]
                                 [--budget-minutes 60] [--n 10000] [--runs runs/quality]

MNIST-like presets: Inception FID with the Lucic et al. 2018 protocol (N generated vs the 10,000
test images, grayscale tiled to RGB, TF1 bilinear resize to 299), plus domain FID, KID and
precision/recall in Inception features. Pokemon: Inception FID against all 5,080 sprites;
`pokemon-best` gets exactly the wall-clock time `pokemon-dcgan` took (a comparison at equal wall-clock time).

A run directory that already holds a finished run of the same preset (summary.json) is evaluated
again without retraining, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ganforge.presets import from_preset
from ganforge.data import is_image_folder
from ganforge.evaluate import evaluate
from ganforge.training import train

ANCHORS = {  # Lucic et al. 2018 Table 2 best (WGAN) and Zhang & Khoreva 2019 (PA-GAN)
    "mnist": "published best 6.7 (WGAN); target <= 5",
    "fashion-mnist": "published best 21.5 (WGAN), 15.8 (PA-GAN); target <= 10",
    "folder": "target: <= half of pokemon-dcgan's",
}


def run_preset(preset: str, runs: Path, overrides: list[str]) -> dict:
    out = runs / preset
    summary = out / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        if s.get("preset") == preset:
            print(f"[{preset}] reusing the finished run in {out}", flush=True)
            return s
    cfg = from_preset(preset, overrides)
    print(f"[{preset}] training into {out} ({' '.join(overrides) or 'preset budget'})", flush=True)
    return train(cfg, out, overwrite=True, quiet=True).summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+",
                   default=["mnist-best", "fashion-best", "pokemon-dcgan", "pokemon-best"])
    p.add_argument("--budget-minutes", type=float, default=0,
                   help="wall-clock budget per run (default: each preset's own)")
    p.add_argument("--n", type=int, default=10000,
                   help="generated samples per evaluation of MNIST-like presets (Lucic: 10,000)")
    p.add_argument("--n-folder", type=int, default=5000,
                   help="generated samples per evaluation of image-folder presets (the sprites: "
                        "about as many as the folder holds)")
    p.add_argument("--folder-reference", type=int, default=None, metavar="N",
                   help="compare image-folder presets with the folder's first N images only "
                        "(default: all of them)")
    p.add_argument("--runs", default="runs/quality", help="where the runs are written")
    args = p.parse_args()
    runs = Path(args.runs)
    # Rows of presets evaluated by an earlier invocation are kept, so the table can be built
    # up one preset at a time (each 10k-sample Inception side takes ~20 min on 2 CPU cores).
    saved = runs / "quality.json"
    rows = [r for r in (json.loads(saved.read_text()) if saved.is_file() else [])
            if r["preset"] not in args.presets]
    dcgan_seconds = None
    for preset in args.presets:
        over = [f"train.max_minutes={args.budget_minutes:g}"] if args.budget_minutes else []
        if preset == "pokemon-best" and dcgan_seconds is not None:
            over = [f"train.max_minutes={dcgan_seconds / 60:.4f}"]  # the same wall clock
        s = run_preset(preset, runs, over)
        if preset == "pokemon-dcgan":
            dcgan_seconds = s["train_seconds"]
        cfg = from_preset(preset)
        t0 = time.perf_counter()
        folder = is_image_folder(cfg.data)
        n = args.n_folder if folder else args.n
        inc = evaluate(runs / preset, metrics=("fid", "kid", "pr"), n=n, features="inception",
                       progress=True, n_reference=args.folder_reference if folder else None)
        row = {"preset": preset, "images_seen": s["images_seen"], "train_seconds": s["train_seconds"],
               "inception_fid": inc["fid"], "kid": inc["kid"], "kid_std": inc["kid_std"],
               "precision": inc["precision"], "recall": inc["recall"], "n": n,
               "n_reference": inc["n_reference"], "generator": inc["generator"],
               "anchor": ANCHORS.get(cfg.data.name, "")}
        if cfg.data.name in ("mnist", "fashion-mnist"):
            row["domain_fid"] = evaluate(runs / preset, n=args.n, features="classifier",
                                         progress=False)["fid"]
        row["stopped_by"] = s.get("stopped_by") or f"{s['epochs']} epochs"
        row["eval_seconds"] = time.perf_counter() - t0
        rows.append(row)
        saved.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"[{preset}] Inception FID {row['inception_fid']:.2f}", flush=True)
    lines = ["| preset | images seen | train time | N gen / ref | Inception FID | domain FID | "
             "KID x 1000 | precision | recall | anchor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        dom = f"{r['domain_fid']:.2f}" if "domain_fid" in r else "-"
        lines.append(
            f"| {r['preset']} | {r['images_seen']:,} | {r['train_seconds'] / 60:.1f} min | "
            f"{r['n']:,} / {r['n_reference']:,} | {r['inception_fid']:.2f} | {dom} | "
            f"{1000 * r['kid']:.1f} ± {1000 * r['kid_std']:.1f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['anchor']} |")
    stops = ", ".join(f"{r['preset']}: {r['stopped_by']}" for r in rows)
    gens = ", ".join(f"{r['preset']}: {r['generator']}" for r in rows)
    lines.append(f"\nGenerated samples (seed 0) vs the test split or the sprites (N ref). "
                 f"Sampled from {gens}. Stopped by {stops}.")
    table = "\n".join(lines)
    (runs / "quality.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
