"""How well a trained generator reproduces real images by projection, for each distance
``ganforge project --loss`` offers: PSNR and SSIM on images it trained on and on images held out
of its training, the time per image, and a picture of targets over their projections.

    python benchmarks/projection_quality.py --runs runs/pokemon-best runs/fashion-best \
        --n 100 --steps 200 --losses pixels d --figure docs/images

Held out: the test split for MNIST-like data; for an image folder trained with ``data.limit=N``,
the images after the first N. ``--inception-n`` projects that many images of each set with the
TF-Inception distance and with pixels at ``--inception-steps`` (Inception costs ~400x the others
per step on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from ganforge.data import load_dataset
from ganforge.data.idx import IDX_DATASETS
from ganforge.editing import Editor
from ganforge.generator import load_discriminator, load_generator
from ganforge.inversion import project
from ganforge.project import save_png


def image_sets(cfg, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Up to ``n`` training images (a seeded random choice) and ``n`` held-out ones, in [-1, 1]."""
    data = cfg.data
    train = load_dataset(data).data
    gen = torch.Generator().manual_seed(seed)
    sets = {"train": train[torch.randperm(len(train), generator=gen)[:n]]}
    if data.name in IDX_DATASETS:
        test = load_dataset(dataclasses.replace(data, split="test", limit=0)).data
        sets["held out"] = test[:n]
    elif data.limit:
        full = load_dataset(dataclasses.replace(data, limit=0)).data
        assert torch.equal(full[: data.limit][:5], train[:5]), "data.limit keeps the first images"
        sets["held out"] = full[data.limit: data.limit + n]
    return {k: v.float() / 127.5 - 1 for k, v in sets.items() if len(v)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--losses", nargs="+", default=["pixels", "d"])
    ap.add_argument("--inception-n", type=int, default=0)
    ap.add_argument("--inception-steps", type=int, default=20,
                    help="steps of the Inception comparison (with pixels at the same steps)")
    ap.add_argument("--figure", type=Path, help="folder for projection_<run>.png")
    args = ap.parse_args()
    rows = []
    for run in args.runs:
        loaded = load_generator(run)
        editor = Editor(loaded.G, loaded.num_classes)
        D = load_discriminator(run)
        sets = image_sets(loaded.cfg, args.n)
        shown = []
        plan = [(loss, args.n, args.steps) for loss in args.losses]
        if args.inception_n:
            plan += [(loss, args.inception_n, args.inception_steps)
                     for loss in ("pixels", "inception")]
        for loss, n, steps in plan:
            for name, targets in sets.items():
                t0 = time.perf_counter()
                res = project(editor, targets[:n], steps=steps, loss=loss, D=D)
                sec = time.perf_counter() - t0
                rows.append((Path(run).name, name, loss, len(res.psnr), float(res.psnr.mean()),
                             float(res.psnr.std()), float(res.ssim.mean()), sec / len(res.psnr),
                             steps))
                if loss == args.losses[0] and steps == args.steps:
                    shown += [targets[:8], res.images[:8]]
                print(rows[-1], flush=True)
        # one image at a time, as `ganforge project` does, at its default 300 steps
        one = next(iter(sets.values()))[:3]
        t0 = time.perf_counter()
        for i in range(len(one)):
            project(editor, one[i:i + 1], steps=300)
        rows.append((Path(run).name, "one at a time", "pixels", len(one), float("nan"),
                     float("nan"), float("nan"), (time.perf_counter() - t0) / len(one), 300))
        if args.figure:
            args.figure.mkdir(parents=True, exist_ok=True)
            save_png(torch.cat(shown), args.figure / f"projection_{Path(run).name}.png", cols=8)
    print(f"\nprojection (targets batched), {torch.get_num_threads()} CPU thread(s)")
    print("| run | images | distance | n | steps | PSNR dB (mean ± sd) | SSIM | s per image |")
    print("|---|---|---|---|---|---|---|---|")
    for run, name, loss, n, p, sd, s, sec, steps in rows:
        if name == "one at a time":
            print(f"| {run} | one at a time | {loss} | {n} | {steps} | | | {sec:.1f} |")
        else:
            print(f"| {run} | {name} | {loss} | {n} | {steps} | {p:.2f} ± {sd:.2f} | {s:.3f} | "
                  f"{sec:.2f} |")


if __name__ == "__main__":
    main()
