"""Data parallelism through torchrun on CPU (gloo, 2 processes; train.device=cpu also where a GPU
is present)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge import distributed
from ganforge.training import load_checkpoint

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args, nproc=2, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           "--master-addr=127.0.0.1", f"--master-port={_free_port()}", *args]
    path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_shard_weights_make_uneven_batches_exact(monkeypatch):
    monkeypatch.setattr(distributed, "_INFO", distributed.DistInfo(rank=1, world_size=2))
    part, w = distributed.shard(torch.arange(7))
    assert (part.start, part.stop) == (4, 7) and w == pytest.approx(3 * 2 / 7)
    monkeypatch.setattr(distributed, "_INFO", distributed.DistInfo(rank=0, world_size=2))
    part, w = distributed.shard(torch.arange(7))
    assert (part.start, part.stop) == (0, 4) and w == pytest.approx(4 * 2 / 7)


@pytest.mark.parametrize("global_batch", [16, 15])
def test_two_process_step_equals_one_process_step(tmp_path, global_batch):
    out = tmp_path / "grads.pt"
    res = _torchrun(str(HERE / "ddp_step.py"), str(out), str(global_batch))
    assert res.returncode == 0, res.stderr[-3000:]
    two = torch.load(out, weights_only=True)
    sys.path.insert(0, str(HERE))
    from ddp_step import one_step

    one = one_step(None, global_batch)
    assert two.keys() == one.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=k)


def test_torchrun_trains_and_only_rank0_writes(tmp_path, idx_dir):
    run = tmp_path / "run"
    res = _torchrun("-m", "ganforge", "train", "mnist-mlp", "--out", str(run), "--quiet",
                    f"data.path={idx_dir.parent}", "train.epochs=2", "train.batch_size=16",
                    "train.device=cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2], "one line per epoch, written once"
    assert recs[-1]["images_seen"] == 128 and recs[-1]["step"] == 8  # 64 images, global batch 16
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2
    st = load_checkpoint(run)  # loadable by a single process
    assert st["step"] == 8
    assert res.stdout.count("results in") == 1, "only rank 0 prints the summary"


def test_torchrun_conditional_run_with_ema_and_augmentation(tmp_path, idx_dir):
    """The modern-recipe machinery under DDP: labels split with the batch, G_ema identical on every
    rank (it is updated from identical weights), one checkpoint that samples in one process."""
    from ganforge.cli import main

    run = tmp_path / "run"
    res = _torchrun("-m", "ganforge", "train", "mnist-dcgan", "--out", str(run), "--quiet",
                    f"data.path={idx_dir.parent}", "train.epochs=1", "train.batch_size=16",
                    "train.device=cpu",
                    "model.g_width=4", "model.d_width=4", "model.conditional=true",
                    "model.d_norm=none", "model.spectral_norm_d=true", "loss.name=hinge",
                    "train.ema_kimg=0.05", "train.augment=translation,cutout")
    assert res.returncode == 0, res.stderr[-3000:]
    st = load_checkpoint(run)
    assert st["step"] == 4 and "G_ema" in st
    assert main(["sample", str(run), "--n", "4", "--class", "7", "--out", str(tmp_path / "s.npy")]) == 0


def test_more_local_ranks_than_gpus_is_a_clear_error(monkeypatch):
    """torchrun --nproc-per-node=2 on a one-GPU machine: say so, before any process group."""
    from ganforge.errors import GanforgeError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for k, v in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(GanforgeError, match="--nproc-per-node=1"):
        distributed.init_from_env("auto")
    assert not torch.distributed.is_initialized()
