"""Every bad input named in the README's error table: one clear paragraph, exit code 2, no
traceback, nothing already written lost."""

import errno

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.presets import from_preset
from ganforge.training import load_checkpoint, train
from ganforge.io import run_path
from ganforge.io.atomic import WriteError


def _fails(capsys, *argv, expect):
    rc = main(list(argv))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expect in err, err
    assert "Traceback" not in err
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip()]
    assert lines[-1].startswith("ganforge: error: "), "one paragraph, last"
    return err


@pytest.fixture
def toy_run(tmp_path):
    return train(from_preset("gaussian2d", ["train.epochs=1"]), tmp_path / "toy", quiet=True).run_dir


def test_config_errors(capsys, tmp_path):
    out = str(tmp_path / "o")
    _fails(capsys, "train", "fashion-dcgn", "--out", out, expect="Did you mean 'fashion-dcgan'")
    _fails(capsys, "train", "gaussian2d", "--out", out, "optim_D.lrr=1",
           expect="Did you mean 'optim_D.lr'")
    _fails(capsys, "train", "gaussian2d", "--out", out, "train.batch_size=eight",
           expect="train.batch_size must be int, got 'eight'")
    _fails(capsys, "train", "gaussian2d", "--out", out, "train.epochs=-1",
           expect="train.epochs must be > 0")
    _fails(capsys, "train", "gaussian2d", "--out", out, "model.arch=dcgan",
           expect="does not fit data.name=gaussian2d")
    assert not (tmp_path / "o").exists(), "nothing is created for a bad config"


def test_data_folder_errors(capsys, tmp_path):
    out = str(tmp_path / "o")
    _fails(capsys, "train", "pokemon-dcgan", "--out", out, f"data.path={tmp_path / 'nope'}",
           expect="does not exist")
    (tmp_path / "empty").mkdir()
    _fails(capsys, "train", "pokemon-dcgan", "--out", out, f"data.path={tmp_path / 'empty'}",
           expect="holds no images")
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(3):
        (junk / f"{i}.png").write_text("this is text, not a picture")
    with pytest.warns(UserWarning, match="skipped 3 of 3"):
        _fails(capsys, "train", "pokemon-dcgan", "--out", out, f"data.path={junk}",
               expect="could be decoded")


def test_decompression_bomb_limit(capsys, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (64, 64)).save(d / "big.png")
    _fails(capsys, "train", "pokemon-dcgan", "--out", str(tmp_path / "o"), f"data.path={d}",
           "data.max_pixels=1000", expect="decompression bombs")


def test_idx_errors(capsys, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for split in ("train", "t10k"):
        (bad / f"{split}-images-idx3-ubyte").write_bytes(b"\x89PNG not idx at all")
        (bad / f"{split}-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    _fails(capsys, "train", "mnist-mlp", "--out", str(tmp_path / "o"), "--data-dir", str(bad),
           expect="not an IDX file")
    from ganforge.data.idx import write_idx

    write_idx(bad / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    _fails(capsys, "train", "mnist-mlp", "--out", str(tmp_path / "o"), "--data-dir", str(bad),
           expect="truncated")


def test_checkpoint_errors(capsys, tmp_path, toy_run):
    ck = toy_run / "checkpoint.pt"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    _fails(capsys, "sample", str(cut), "--out", str(tmp_path / "a.npy"), expect="corrupted")
    # weights of one model under the config of another
    st = torch.load(ck, weights_only=True)
    st["config"]["model"]["z_dim"] = 7
    torch.save(st, tmp_path / "other.pt")
    _fails(capsys, "sample", str(tmp_path / "other.pt"), "--out", str(tmp_path / "b.npy"),
           expect="does not match its own config")
    # resuming with a different model
    _fails(capsys, "train", "--resume", str(toy_run), "model.z_dim=3", "train.epochs=2",
           expect="does not fit")
    _fails(capsys, "train", "--resume", str(tmp_path), expect="without checkpoint.pt")


def test_output_exists(capsys, tmp_path, toy_run):
    _fails(capsys, "train", "gaussian2d", "--out", str(toy_run), expect="already exists")
    assert load_checkpoint(toy_run)["step"] == 125, "the existing run is untouched"
    (tmp_path / "x.png").write_bytes(b"keep")
    _fails(capsys, "sample", str(toy_run), "--out", str(tmp_path / "x.png"), expect="already exists")
    assert (tmp_path / "x.png").read_bytes() == b"keep"


def test_disk_full_keeps_the_previous_checkpoint(capsys, tmp_path, monkeypatch):
    import ganforge.io.checkpoint as ckmod

    real_save = torch.save
    calls = []

    def save_until_full(obj, f, *a, **k):
        calls.append(1)
        if len(calls) >= 3:  # step 0 and epoch 1 succeed, epoch 2 hits a full disk
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ckmod.torch, "save", save_until_full)
    _fails(capsys, "train", "gaussian2d", "--out", str(tmp_path / "r"), "train.epochs=3", "--quiet",
           expect="disk full?")
    monkeypatch.setattr(ckmod.torch, "save", real_save)
    st = load_checkpoint(tmp_path / "r")
    assert st["epoch"] == 1 and st["step"] == 125
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_run_path_never_escapes(tmp_path):
    assert run_path(tmp_path, "samples", "a.png") == (tmp_path / "samples" / "a.png").resolve()
    with pytest.raises(WriteError, match="outside the run directory"):
        run_path(tmp_path, "..", "evil.png")
    with pytest.raises(WriteError):
        run_path(tmp_path, "/etc/passwd")


def test_export_loads_without_pickle(tmp_path, toy_run, capsys, monkeypatch):
    assert main(["export", str(toy_run), "--out", str(tmp_path / "G.safetensors")]) == 0
    raw = (tmp_path / "G.safetensors").read_bytes()
    assert b"__reduce__" not in raw and raw[8:9] == b"{", "a JSON header, not a pickle"
    import pickle

    def no_pickle(*a, **k):
        raise AssertionError("pickle used")

    from ganforge.generator import generate, load_exported, load_generator

    with monkeypatch.context() as m:  # (undo() would also undo the isolated cache's setenv)
        m.setattr(pickle, "load", no_pickle)
        m.setattr(pickle, "loads", no_pickle)
        G1, cfg, _, _ = load_exported(tmp_path / "G.safetensors")
    G0, _, _, _ = load_generator(toy_run)
    torch.testing.assert_close(generate(G1, 2, 10, seed=3), generate(G0, 2, 10, seed=3))
    assert main(["sample", str(tmp_path / "G.safetensors"), "--n", "5",
                 "--out", str(tmp_path / "p.npy")]) == 0
    (tmp_path / "G.json").write_text("{}")
    _fails(capsys, "sample", str(tmp_path / "G.safetensors"), "--out", str(tmp_path / "q.npy"),
           expect="not a usable ganforge export")
