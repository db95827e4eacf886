"""Helper run under torchrun by tests/test_distributed.py (not collected by pytest): one GAN step
on a fixed global batch, split across the ranks; rank 0 saves the gradients it ends with."""

import sys

import torch

from ganforge import distributed
from ganforge.presets import from_preset
from ganforge.training import GAN


def one_step(out: str | None, global_batch: int = 16) -> dict[str, torch.Tensor]:
    distributed.init_from_env("cpu")
    torch.manual_seed(0)
    cfg = from_preset("mnist-mlp", ["train.precision=fp32"])  # sums compared to fp32 rounding
    gan = GAN(cfg, (1, 28, 28), torch.device("cpu"))
    real = torch.rand(global_batch, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    part, weight = distributed.shard(real)
    z = gan.noise(global_batch)[part]
    gan.train_step(real[part], z, weight, global_n=global_batch)
    grads = {f"G.{n}": p.grad.clone() for n, p in gan.G.named_parameters()}
    grads.update({f"D.{n}": p.grad.clone() for n, p in gan.D.named_parameters()})
    if out and distributed.is_main():
        torch.save(grads, out)
    distributed.shutdown()
    return grads


if __name__ == "__main__":
    one_step(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16)
