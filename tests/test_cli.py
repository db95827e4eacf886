"""Every preset through the CLI for a few steps, and `sample` in each output format."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.presets import PRESETS

from .conftest import needs_fashion, needs_mnist, needs_pokemon, write_images


def _train(tmp_path, preset, *overrides):
    out = tmp_path / preset
    rc = main(["train", preset, "--out", str(out), "--quiet", *overrides])
    assert rc == 0
    for name in ("config.json", "metrics.jsonl", "loss_curve.png", "summary.json", "checkpoint.pt"):
        assert (out / name).is_file(), name
    return out


def test_presets_lists_each_one(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    text = " ".join(" ".join(out).split())
    for p in PRESETS.values():  # each preset names the paper or tutorial it follows
        assert f"after {p.citation}" in text
    assert "issue" not in text.lower()
    assert [line.split()[0] for line in out if not line.startswith(" ")] == ["gaussian2d", "mnist-mlp", "pokemon-dcgan",
                                                 "fashion-dcgan", "mnist-dcgan", "gaussian2d-best",
                                                 "mnist-best", "fashion-best", "pokemon-best",
                                                 "folder", "folder-stylegan2", "stacked-best",
                                                 "stacked-r3gan", "folder-r3gan", "finetune"]


def test_gaussian2d_cli(tmp_path, capsys):
    out = _train(tmp_path, "gaussian2d", "train.epochs=2")
    assert (out / "samples" / "epoch_0002.png").is_file()
    assert "covariance error" in capsys.readouterr().out


@needs_mnist
def test_mnist_mlp_cli(tmp_path):
    out = _train(tmp_path, "mnist-mlp", "train.epochs=2", "data.limit=1024",
                 "report.sample_every=50")
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["epoch_0001.png", "epoch_0002.png"]  # first and last, as in the tutorial
    assert Image.open(out / "samples_latest.png").size[0] > 100


@needs_fashion
def test_fashion_dcgan_cli(tmp_path):
    out = _train(tmp_path, "fashion-dcgan", "train.epochs=1", "data.limit=512",
                 "train.batch_size=128")
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 4 and rec["images_seen"] == 512
    grid = Image.open(out / "samples" / "epoch_0001.png")
    assert grid.mode == "L"


@needs_pokemon
def test_pokemon_dcgan_cli(tmp_path):
    out = _train(tmp_path, "pokemon-dcgan", "train.epochs=1", "data.limit=128",
                 "train.batch_size=64")
    assert Image.open(out / "samples" / "epoch_0001.png").mode == "RGB"


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["train", "gaussian2d", "--out", str(tmp_path / "x"), "train.epoch=2"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'train.epochs'" in err and "Traceback" not in err
    assert main(["train", "nosuch", "--out", str(tmp_path / "y")]) == 2
    assert main(["train", "pokemon-dcgan", "--out", str(tmp_path / "z"),
                 "data.path=" + str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "nothing"), "--out", str(tmp_path / "a.png")]) == 2


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A tiny DCGAN run on synthetic 8x8 data written as an image folder."""
    root = write_images(tmp_path_factory.mktemp("data"), 32, (8, 8))
    out = tmp_path_factory.mktemp("runs") / "tiny"
    rc = main(["train", "pokemon-dcgan", "--out", str(out), "--quiet", f"data.path={root}",
               "data.resolution=8", "model.g_width=4", "model.d_width=4", "train.epochs=1",
               "train.batch_size=16"])
    assert rc == 0
    return out


def test_sample_png_grid(image_run, tmp_path):
    assert main(["sample", str(image_run), "--n", "10", "--out", str(tmp_path / "g.png")]) == 0
    img = Image.open(tmp_path / "g.png")
    assert img.mode == "RGB" and img.size[0] > img.size[1]  # 4 columns x 3 rows


def test_sample_npy_same_seed_same_images(image_run, tmp_path):
    ck = str(image_run / "checkpoint.pt")
    for name, seed in (("a.npy", 1), ("b.npy", 1), ("c.npy", 2)):
        assert main(["sample", ck, "--n", "5", "--out", str(tmp_path / name),
                     "--seed", str(seed)]) == 0
    a, b, c = (np.load(tmp_path / n) for n in ("a.npy", "b.npy", "c.npy"))
    assert a.shape == (5, 8, 8, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_folder_of_pngs_matches_npy(image_run, tmp_path):
    assert main(["sample", str(image_run), "--n", "3", "--out", str(tmp_path / "pngs")]) == 0
    assert main(["sample", str(image_run), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 0
    files = sorted((tmp_path / "pngs").iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    arr = np.load(tmp_path / "s.npy")
    assert np.array_equal(np.asarray(Image.open(files[2])), arr[2])
    # never overwrite silently
    assert main(["sample", str(image_run), "--n", "3", "--out", str(tmp_path / "pngs")]) == 2


def test_sample_points_from_the_toy(tmp_path):
    out = _train(tmp_path, "gaussian2d", "train.epochs=1")
    assert main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "p.npy")]) == 0
    pts = np.load(tmp_path / "p.npy")
    assert pts.shape == (50, 2) and pts.dtype == np.float32
    assert main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "p.png")]) == 0


def test_checkpoint_refuses_code(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"G": Evil(), "config": {}}, bad)
    assert main(["sample", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert "refused" in captured.err and "pwned" not in captured.out
