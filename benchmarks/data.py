"""Image-folder data at scale: prepare once, open memory-mapped, gather batches.

    python benchmarks/data.py [--n 1000 10000 50000] [--resolution 256] [--dir /tmp/ganforge-data-bench]

For each N it writes a synthetic folder of N JPEG images (smooth colour gradients with noise, in
10 class folders; reused when already there), then runs each phase in a fresh process and
prints: the first run's prepare time (decode + write the prepared copy), the second run's start
time (find and open the prepared copy), images/sec of gathering random batches of 64 as training
does (uint8 -> float [-1, 1]), and each phase's peak memory: peak RSS (which counts the
memory-mapped file pages the process touched; the kernel drops them under pressure) and peak
anonymous memory (what must really fit in RAM).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, n: int, res: int) -> None:
    done = root / ".complete"
    if done.is_file():
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float32) / res
    for i in range(n):
        d = root / f"class{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.random(3) * 255
        img = np.stack([a * xx + (255 - a) * yy, b * yy, c * (1 - xx)], -1)
        img += rng.normal(0, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:06d}.jpg", quality=90)
    done.write_text("ok")


def _anon_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def phase(kind: str, root: str, res: int) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    peak_anon = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak_anon[0] = max(peak_anon[0], _anon_kb())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    import torch

    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    ds = load_dataset(DataConfig(name="folder", path=root, resolution=res, channels=3))
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "n": len(ds)}
    if kind == "gather":
        gen = torch.Generator().manual_seed(0)
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 10:
            idx = torch.randint(0, len(ds), (64,), generator=gen)
            ds.batch(idx)
            steps += 1
        out["images_per_sec"] = steps * 64 / (time.perf_counter() - t0)
    stop.set()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_anon_mb"] = max(peak_anon[0], _anon_kb()) / 1024
    print(json.dumps(out))


def run_phase(kind: str, root: Path, res: int, env: dict) -> dict:
    p = subprocess.run([sys.executable, __file__, "--phase", kind, "--root", str(root),
                        "--resolution", str(res)], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[1000, 10000, 50000])
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--dir", default="/tmp/ganforge-data-bench")
    p.add_argument("--phase", choices=["prepare", "open", "gather"], help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        phase(args.phase, args.root, args.resolution)
        return
    base = Path(args.dir)
    env = {**os.environ, "XDG_CACHE_HOME": str(base / "cache")}
    print("| N | resolution | prepared copy | first run: prepare | peak RSS / anon | second run: "
          "open | peak RSS / anon | gather img/s (batch 64) | peak RSS / anon |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n:
        root = base / f"folder{n}"
        t0 = time.perf_counter()
        make_folder(root, n, args.resolution)
        made = time.perf_counter() - t0
        prep = run_phase("prepare", root, args.resolution, env)
        opened = run_phase("open", root, args.resolution, env)
        gather = run_phase("gather", root, args.resolution, env)
        gib = n * 3 * args.resolution ** 2 / 2**30
        print(f"| {n:,} | {args.resolution} | {gib:.2f} GiB | {prep['seconds']:.1f} s | "
              f"{prep['peak_rss_mb']:,.0f} / {prep['peak_anon_mb']:,.0f} MB | "
              f"{opened['seconds']:.2f} s | {opened['peak_rss_mb']:,.0f} / "
              f"{opened['peak_anon_mb']:,.0f} MB | {gather['images_per_sec']:,.0f} | "
              f"{gather['peak_rss_mb']:,.0f} / {gather['peak_anon_mb']:,.0f} MB |", flush=True)
        print(f"(folder of {n:,} written in {made:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
