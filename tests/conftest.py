"""Shared fixtures. Tests use ../shared/data as the data root (it holds mnist/) and Debian's
Fashion-MNIST; nothing is downloaded."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")

if "GANFORGE_DATA" not in os.environ and (SHARED_DATA / "mnist").is_dir():
    os.environ["GANFORGE_DATA"] = str(SHARED_DATA)

# Module-scoped fixtures run before the per-test isolation below: they get a cache of their own
# too, so no test ever writes into the user's ~/.cache.
_TEST_CACHE = tempfile.mkdtemp(prefix="ganforge-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)


def _has_mnist() -> bool:
    root = os.environ.get("GANFORGE_DATA")
    return bool(root) and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


needs_mnist = pytest.mark.skipif(not _has_mnist(), reason="MNIST not found under $GANFORGE_DATA")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
needs_pokemon = pytest.mark.skipif(not (SHARED_DATA / "pokemon").is_dir(),
                                   reason="../shared/data/pokemon not present")


_THREADS = torch.get_num_threads()  # train.threads sets the process's count; tests start at this


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real cache; never download; every test starts with the same
    number of CPU threads (a module fixture's train.threads=1 must not leak into it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    torch.manual_seed(0)
    torch.set_num_threads(_THREADS)
    yield
    torch.set_num_threads(_THREADS)


@pytest.fixture
def idx_dir(tmp_path):
    """A tiny MNIST-like dataset written by the test: 64 train and 16 test images."""
    from ganforge.data.idx import write_idx

    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    for split, n in (("train", 64), ("t10k", 16)):
        write_idx(d / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return d


def write_images(root: Path, n: int, size: tuple[int, int], classes: tuple[str, ...] = ()) -> Path:
    """Random RGB PNGs (height, width = ``size``): ``n`` in ``root``, or ``n`` in each class
    sub-folder when ``classes`` are given (an ImageFolder). Returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in [root / c for c in classes] or [root]:
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (*size, 3), np.uint8)).save(folder / f"{i}.png")
    return root


def hold_lock(run_dir) -> subprocess.Popen:
    """Another process holding ``run_dir``'s run lock (until it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ganforge.io.lock import RunLock\n"
         "RunLock(sys.argv[1]); print('held', flush=True); time.sleep(120)", str(run_dir)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def toy_run(tmp_path):
    """A finished one-epoch run of the 2-D toy, through the command line."""
    from ganforge.cli import main

    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1",
                 "report.tensorboard=off"]) == 0
    return run
