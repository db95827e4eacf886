"""Training throughput of every preset on a GPU: images/sec of ganforge's step at the preset's
batch size and larger ones, and what launch overhead costs.

    python benchmarks/gpu_throughput.py [--presets ...] [--batches 256 1024] [--seconds 3]
                                        [--compile fashion-best ...] [--graphs]

Each preset's own configuration (its precision: bf16 on GPUs that compute it) trains on
synthetic data of the preset's shape resident on the device (throughput does not depend on the
pixels; the `folder` presets are measured at 64x64). Columns:

* ``sync/step``: a host synchronisation after every step, as a training loop that reads each
  step's losses does;
* ``async``: steps queued back to back, one synchronisation at the end (what the trainer does
  between its periodic reads);
* larger batches, async;
* ``compile``: ``train.compile=true`` (Inductor), async, for the presets named by ``--compile``;
* ``graph``: the whole step (both forward/backward passes, both fused Adam updates, G_ema)
  captured once as a CUDA graph and replayed (``--graphs``), the floor that launch overhead
  leaves (G_ema's decay is frozen at its captured value); not for presets whose step changes
  from step to step (lazy R1, ADA).

Runs on a CPU too (no graphs there), which is how its own test runs it.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.data import InMemoryDataset, resolve_shape
from ganforge.presets import PRESETS, from_preset
from ganforge.runtime import resolve_precision
from ganforge.training import GAN

FOLDER_SHAPE = ["data.name=pokemon", "data.resolution=64"]


def _cfg(name: str, overrides: list[str]):
    extra = FOLDER_SHAPE if PRESETS[name].build().data.name == "folder" else []
    return from_preset(name, extra + overrides)


def synthetic(cfg, device: torch.device, n: int = 8192) -> InMemoryDataset:
    """Random data of the preset's shape (and classes), on ``device``."""
    d = resolve_shape(cfg.data)
    if d.name == "gaussian2d":
        return InMemoryDataset(torch.randn(n, 2, device=device))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, d.channels, d.resolution, d.resolution), generator=g,
                           dtype=torch.uint8)
    classes = n_classes(cfg)
    labels = torch.randint(0, max(classes, 1), (n,), generator=g)
    return InMemoryDataset(images.to(device), labels.to(device),
                           [str(i) for i in range(max(classes, 1))])


def n_classes(cfg) -> int:
    """The classes a conditional preset is built for (10 when it takes them from the data)."""
    return (cfg.model.num_classes or 10) if cfg.model.conditional else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(cfg, device: torch.device, seconds: float, sync_every_step: bool) -> float:
    """Images/sec of ``GAN.train_step`` on resident synthetic data."""
    ds = synthetic(cfg, device)
    gan = GAN(cfg, ds.sample_shape, device, n_classes(cfg))
    bs = cfg.train.batch_size
    perm = torch.randperm(len(ds), device=device)

    def step(i: int):
        lo = (i * bs) % max(len(ds) - bs, 1)
        idx = perm[lo:lo + bs]
        y = ds.labels_at(idx) if gan.num_classes else None
        return gan.train_step(ds.batch(idx), y=y)

    for i in range(5):  # warm-up: cuDNN's search, compilation
        step(i)
    _sync(device)
    n, i = 0, 5
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            stats = step(i)
            if sync_every_step:
                stats.stacked().cpu()
            n += bs
            i += 1
        if not sync_every_step:
            _sync(device)
    _sync(device)
    return n / (time.perf_counter() - t0)


def graph_rate(cfg, device: torch.device, seconds: float) -> float:
    """Images/sec of the whole step captured as one CUDA graph and replayed."""
    ds = synthetic(cfg, device)
    gan = GAN(cfg, ds.sample_shape, device, n_classes(cfg))
    for opt in (gan.opt_G, gan.opt_D):  # the fused Adam reads its step count on the device
        for group in opt.param_groups:
            group["capturable"] = True
    bs = cfg.train.batch_size
    real = ds.batch(torch.arange(bs, device=device))
    z = gan.noise(bs)
    y = ds.labels_at(torch.arange(bs, device=device)) if gan.num_classes else None
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            gan.train_step(real, z, y=y)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        gan.train_step(real, z, y=y)
    graph.replay()
    _sync(device)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            z.normal_()
            graph.replay()
            n += bs
        _sync(device)
    return n / (time.perf_counter() - t0)


def _attempt(measure) -> str:
    """A measurement's images/sec, or why it failed (the table goes on)."""
    try:
        return f"{measure():,.0f}"
    except Exception as e:  # noqa: BLE001 - a failing variant is a result too
        return f"failed: {type(e).__name__}: {str(e).strip().splitlines()[-1][:90]}"


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    _sync(device)
    return 10 * 2 * size ** 3 / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+",
                   default=["gaussian2d", "mnist-mlp", "fashion-dcgan", "pokemon-dcgan",
                            "mnist-best", "fashion-best", "pokemon-best", "folder",
                            "folder-stylegan2"])
    p.add_argument("--batches", nargs="*", type=int, default=[256, 1024])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--compile", nargs="*", default=[], metavar="PRESET",
                   help="also measure these presets with train.compile=true")
    p.add_argument("--graphs", action="store_true", help="also measure the step as a CUDA graph")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        size = 8192
    else:
        name, size = f"CPU, {torch.get_num_threads()} threads", 1024
    peaks = {k: matmul_peak(device, dt, size) / 1e12
             for k, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"{name}; torch {torch.__version__}; dense matmul {peaks['fp32']:.1f} TFLOP/s fp32 "
          f"(TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}), "
          f"{peaks['bf16']:.1f} TFLOP/s bf16\n", flush=True)
    head = ["preset", "batch", "precision", "sync/step img/s", "async img/s"]
    head += [f"batch {b} img/s" for b in args.batches] + ["compile img/s", "graph img/s"]
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---|" + "---:|" * (len(head) - 3))
    for preset in args.presets:
        cfg = _cfg(preset, [f"train.device={device}"])
        bs = cfg.train.batch_size
        row = [preset, str(bs), resolve_precision(cfg.train.precision, device),
               f"{rate(cfg, device, args.seconds, True):,.0f}",
               f"{rate(cfg, device, args.seconds, False):,.0f}"]
        for b in args.batches:
            big = _cfg(preset, [f"train.device={device}", f"train.batch_size={b}"])
            row.append(f"{rate(big, device, args.seconds, False):,.0f}")
        if preset in args.compile:
            comp = _cfg(preset, [f"train.device={device}", "train.compile=true"])
            row.append(_attempt(lambda: rate(comp, device, args.seconds, False)))
        else:
            row.append("-")
        varying = cfg.train.ada or cfg.loss.r1_gamma > 0  # a different step every few steps
        if args.graphs and device.type == "cuda" and not varying:
            row.append(_attempt(lambda: graph_rate(cfg, device, args.seconds)))
        else:
            row.append("-")
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
