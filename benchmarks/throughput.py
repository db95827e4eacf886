"""Training throughput: ganforge's engine vs a faithful re-implementation of the seed's loop.

    python benchmarks/throughput.py [--presets gaussian2d mnist-mlp fashion-dcgan pokemon-dcgan]
                                    [--seconds 20] [key=value ...]   # overrides for ganforge's side

The seed loop is the d2l DCGAN code as written: a DataLoader (``d2l.get_dataloader_workers()`` =
4 workers) over a dataset that decodes/converts and normalises every example on every epoch
(ImageFolder + ``Resize`` + ``ToTensor`` + ``Normalize(0.5, 0.5)`` for the sprites; per-item
``ToTensor`` + ``Normalize`` for the IDX data; a tensor dataset for the 2-D toy), ``update_D`` and
``update_G`` with ``BCEWithLogitsLoss(reduction='sum')``, and the G step recomputing ``net_G(Z)``.
Both sides use the same architecture, batch size, optimizers and data. FLOPs per step are counted
with ``torch.utils.flop_counter`` and compared with a dense fp32 matmul measured here.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganforge.presets import from_preset
from ganforge.data import folder_path, is_image_folder, load_dataset
from ganforge.data.idx import load_idx_dataset
from ganforge.data.images import scan_folder
from ganforge.models import build_models
from ganforge.training import GAN

# --------------------------------------------------------------------------- the seed's loop


class _FolderDataset(torch.utils.data.Dataset):
    """torchvision.datasets.ImageFolder + Resize((R, R)) + ToTensor + Normalize(0.5, 0.5)."""

    def __init__(self, root: str, resolution: int) -> None:
        self.files, self.labels, _ = scan_folder(root)
        self.r = resolution

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = Image.open(self.files[i]).convert("RGB").resize((self.r, self.r), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)
        return (x - 0.5) / 0.5, self.labels[i]


class _IdxDataset(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST/MNIST + Resize(R) + ToTensor + Normalize(0.5, 0.5)."""

    def __init__(self, name: str, resolution: int) -> None:
        self.images, self.labels, _ = load_idx_dataset(name, "train")
        self.r = resolution

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i])
        if self.r != 28:
            img = img.resize((self.r, self.r), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0)[None]
        return (x - 0.5) / 0.5, int(self.labels[i])


def update_D(X, Z, net_D, net_G, loss, trainer_D):
    batch_size = X.shape[0]
    ones = torch.ones((batch_size,), device=X.device)
    zeros = torch.zeros((batch_size,), device=X.device)
    trainer_D.zero_grad()
    real_Y = net_D(X)
    fake_X = net_G(Z)
    fake_Y = net_D(fake_X.detach())
    loss_D = (loss(real_Y, ones.reshape(real_Y.shape)) + loss(fake_Y, zeros.reshape(fake_Y.shape))) / 2
    loss_D.backward()
    trainer_D.step()
    return loss_D


def update_G(Z, net_D, net_G, loss, trainer_G):
    batch_size = Z.shape[0]
    ones = torch.ones((batch_size,), device=Z.device)
    trainer_G.zero_grad()
    fake_X = net_G(Z)  # recomputed, as in the seed
    fake_Y = net_D(fake_X)
    loss_G = loss(fake_Y, ones.reshape(fake_Y.shape))
    loss_G.backward()
    trainer_G.step()
    return loss_G


def seed_loop(cfg, seconds: float) -> float:
    """Images/sec of the seed's loop (after one warm-up batch), over about ``seconds``."""
    d = cfg.data
    if is_image_folder(d):
        ds = _FolderDataset(folder_path(d), d.resolution)
        shape = (3, d.resolution, d.resolution)
    elif d.name == "gaussian2d":
        ds = torch.utils.data.TensorDataset(load_dataset(d).data)
        shape = (2,)
    else:
        ds = _IdxDataset(d.name, d.resolution)
        shape = (1, d.resolution, d.resolution)
    workers = 0 if d.name == "gaussian2d" else 4  # d2l.load_array has none; image loaders use 4
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    net_G, net_D = build_models(cfg.model, shape)
    loss = nn.BCEWithLogitsLoss(reduction="sum")
    tG = torch.optim.Adam(net_G.parameters(), lr=cfg.optim_G.lr, betas=(cfg.optim_G.beta1, 0.999))
    tD = torch.optim.Adam(net_D.parameters(), lr=cfg.optim_D.lr, betas=(cfg.optim_D.beta1, 0.999))
    n = 0
    t0 = None
    while True:
        for batch in loader:
            X = batch[0]
            Z = torch.normal(0, 1, size=(X.shape[0], cfg.model.z_dim))
            update_D(X, Z, net_D, net_G, loss, tD)
            update_G(Z, net_D, net_G, loss, tG)
            if t0 is None:
                t0 = time.perf_counter()  # the first batch (worker start-up) is not timed
                continue
            n += X.shape[0]
            if time.perf_counter() - t0 > seconds:
                return n / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- ganforge


def ganforge_loop(cfg, seconds: float) -> tuple[float, float, str]:
    """Images/sec of ganforge's engine on resident data, FLOPs per image of one step, and the
    precision the run resolved to."""
    ds = load_dataset(cfg.data)
    gan = GAN(cfg, ds.sample_shape, torch.device("cpu"))
    bs = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(ds), generator=gen)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        gan.train_step(ds.batch(perm[:bs]))
    flops = counter.get_total_flops() / bs
    n, i = 0, 1
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        lo = (i * bs) % max(len(ds) - bs, 1)
        gan.train_step(ds.batch(perm[lo:lo + bs]))
        n += bs
        i += 1
    return n / (time.perf_counter() - t0), flops, gan.precision


def matmul_peak(dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a dense 2048x2048 matmul in ``dtype``: the best of 3 rounds of 5."""
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * 2048 ** 3 / (time.perf_counter() - t0))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+",
                   default=["gaussian2d", "mnist-mlp", "fashion-dcgan", "pokemon-dcgan"])
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per side")
    p.add_argument("overrides", nargs="*", help="key=value for ganforge's side (e.g. train.channels_last=true)")
    args = p.parse_args()
    peaks = {"fp32": matmul_peak(), "bf16": matmul_peak(torch.bfloat16)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dense matmul "
          f"{peaks['fp32'] / 1e9:.0f} GFLOP/s fp32, {peaks['bf16'] / 1e9:.0f} GFLOP/s bf16; "
          f"ganforge overrides: {' '.join(args.overrides) or 'none'}\n")
    print("| preset | batch | seed loop img/s | ganforge img/s | speed-up | precision | GFLOP/img | "
          "ganforge GFLOP/s | of that precision's matmul peak |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for name in args.presets:
        seed_cfg = from_preset(name)
        ours_cfg = from_preset(name, args.overrides)
        torch.manual_seed(0)
        ours, flops, precision = ganforge_loop(ours_cfg, args.seconds)
        torch.manual_seed(0)
        seed = seed_loop(seed_cfg, args.seconds)
        achieved = ours * flops
        peak = peaks.get(precision, peaks["fp32"])
        print(f"| {name} | {ours_cfg.train.batch_size} | {seed:,.0f} | {ours:,.0f} | "
              f"{ours / seed:.2f}x | {precision} | {flops / 1e9:.3f} | {achieved / 1e9:.1f} | "
              f"{100 * achieved / peak:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
