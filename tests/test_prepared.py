"""Prepared copies of image folders: decoded once, memory-mapped, invalidated by any change."""

import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import images as images_mod
from ganforge.data import load_dataset
from ganforge.data.images import decode_image, load_image_folder
from ganforge.data.prepared import prepare_folder, prepared_root
from ganforge.io import load_checkpoint
from ganforge.presets import from_preset
from ganforge.training import train

from .conftest import write_images


def _folder(root, n=4):
    return write_images(root, n, (20, 14), classes=("cats", "dogs"))


def test_first_run_builds_later_runs_open_without_decoding(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs")
    prep, cached = prepare_folder(root, 8, 3)
    assert not cached and isinstance(prep.images, np.memmap) and prep.images.shape == (8, 3, 8, 8)
    assert prep.meta["classes"] == ["cats", "dogs"] and prep.labels.tolist() == [0] * 4 + [1] * 4
    assert prep.meta["files"][0] == os.path.join("cats", "0.png")
    np.testing.assert_array_equal(prep.images[5], decode_image(root / "dogs" / "1.png", 8, 3))

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images_mod, "decode_image", no_decoding)
    again, cached = prepare_folder(root, 8, 3)
    assert cached and again.path == prep.path
    np.testing.assert_array_equal(again.images, prep.images)
    assert not [p for p in prepared_root().iterdir() if p.name.startswith(".")], "no temp left"


def test_any_change_to_the_folder_or_settings_makes_a_new_copy(tmp_path):
    root = _folder(tmp_path / "imgs")
    first, _ = prepare_folder(root, 8, 3)
    assert prepare_folder(root, 16, 3)[0].path != first.path
    assert prepare_folder(root, 8, 1)[0].path != first.path
    assert prepare_folder(root, 8, 3, limit=3)[0].meta["count"] == 3
    Image.new("RGB", (9, 9), (255, 0, 0)).save(root / "cats" / "0.png")  # same name, new pixels
    changed, cached = prepare_folder(root, 8, 3)
    assert not cached and changed.path != first.path
    assert (changed.images[0, :, 4, 4] == [255, 0, 0]).all()


def test_undecodable_files_leave_no_rows(tmp_path):
    root = _folder(tmp_path / "imgs", n=2)
    (root / "cats" / "bad.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        prep, _ = prepare_folder(root, 8, 3)
    assert prep.meta["count"] == 4 and prep.meta["skipped"] == 1 and len(prep.labels) == 4
    assert prep.meta["skipped_files"] == [os.path.join("cats", "bad.png")]
    assert os.path.getsize(prep.path / "images.u8") == 4 * 3 * 8 * 8
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        ram, labels, _ = load_image_folder(root, 8, 3)
    np.testing.assert_array_equal(prep.images, ram)
    np.testing.assert_array_equal(prep.labels, labels)


def test_an_interrupted_preparation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs")
    real, calls = images_mod.decode_image, []

    def dies_on_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(images_mod, "decode_image", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder(root, 8, 3)
    assert not list(prepared_root().iterdir())
    monkeypatch.setattr(images_mod, "decode_image", real)
    assert not prepare_folder(root, 8, 3)[1]


def test_a_zip_works_as_the_folder(tmp_path):
    root = _folder(tmp_path / "imgs")
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(root.rglob("*.png")):
            zf.write(p, "imgs/" + p.relative_to(root).as_posix())  # one top folder, as pokemon.zip
    a, _ = prepare_folder(root, 8, 3)
    b, _ = prepare_folder(z, 8, 3)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.meta["classes"] == b.meta["classes"] and a.labels.tolist() == b.labels.tolist()
    ds = load_dataset(DataConfig(name="folder", path=str(z), resolution=8))
    assert len(ds) == 8 and ds.class_names == ["cats", "dogs"]


def test_training_reads_the_memory_mapped_copy_and_learns_the_same(tmp_path):
    """The same seed gives the same weights whether the run built the prepared copy or found it."""
    root = _folder(tmp_path / "imgs", n=8)
    over = [f"data.path={root}", "data.name=folder", "data.resolution=8", "train.epochs=2",
            "train.batch_size=4", "model.g_width=4", "model.d_width=4", "report.tensorboard=off"]
    train(from_preset("pokemon-dcgan", over), tmp_path / "a", quiet=True)
    ds = load_dataset(DataConfig(name="folder", path=str(root), resolution=8))
    assert isinstance(ds.data, torch.Tensor) and ds.data.dtype == torch.uint8
    train(from_preset("pokemon-dcgan", over), tmp_path / "b", quiet=True)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k


def test_prepare_command_prints_what_it_holds(tmp_path, capsys):
    root = _folder(tmp_path / "imgs")
    assert main(["prepare", str(root), "data.resolution=16", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "8 images at 16x16, 3 channel(s), 2 class(es): cats, dogs" in out
    assert "MiB; built in" in out
    assert main(["prepare", str(root), "resolution=16", "--quiet"]) == 0
    assert "already prepared" in capsys.readouterr().out
    assert main(["prepare", str(root), "model.z_dim=3"]) == 2
    assert main(["prepare", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).bytes(max(len(data), 8)))
    elif how == "zeros":
        path.write_bytes(bytes(len(data)))
    elif how == "list":
        path.write_text("[1, 2]")
    elif how == "wrong count":
        import json
        meta = json.loads(data)
        meta["count"] = meta["count"] // 2
        path.write_text(json.dumps(meta))
    elif how == "wrong resolution":
        import json
        meta = json.loads(data)
        meta["resolution"] = 4
        path.write_text(json.dumps(meta))


@pytest.mark.parametrize("name,how", [
    ("images.u8", "truncate"), ("images.u8", "empty"), ("images.u8", "zeros"),
    ("images.u8", "random"), ("labels.npy", "truncate"), ("labels.npy", "random"),
    ("meta.json", "empty"), ("meta.json", "random"), ("meta.json", "list"),
    ("meta.json", "wrong count"), ("meta.json", "wrong resolution")])
def test_a_damaged_copy_is_never_obeyed_but_built_again(tmp_path, name, how):
    root = _folder(tmp_path / "imgs")
    good, _ = prepare_folder(root, 8, 3)
    expected = np.array(good.images), good.labels.copy()
    _damage(good.path / name, how)
    again, cached = prepare_folder(root, 8, 3)
    assert not cached, "rebuilt"
    np.testing.assert_array_equal(again.images, expected[0])
    np.testing.assert_array_equal(again.labels, expected[1])
    assert prepare_folder(root, 8, 3)[1], "and then used"


def test_old_copies_and_killed_preparations_are_removed(tmp_path):
    root = _folder(tmp_path / "imgs")
    old, _ = prepare_folder(root, 8, 3)
    other, _ = prepare_folder(root, 16, 3)  # other settings: kept
    stale = prepared_root() / f".{old.path.name}.999999999.abc"  # a dead process's temp folder
    stale.mkdir()
    (stale / "images.u8").write_bytes(b"x" * 100)
    write_images(tmp_path / "more", 1, (20, 14))
    (tmp_path / "more" / "0.png").rename(root / "cats" / "new.png")  # the folder changed
    new, cached = prepare_folder(root, 8, 3)
    assert not cached and new.meta["count"] == 9
    assert not old.path.exists() and not stale.exists() and other.path.exists()


def test_space_is_checked_before_a_copy_is_written(tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    root = _folder(tmp_path / "imgs")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 100, 100))
    assert main(["prepare", str(root), "data.resolution=64", "data.channels=3"]) == 2
    err = capsys.readouterr().err
    assert "needs 96.0 KiB" in err and "100 bytes are free" in err
    assert not prepared_root().exists() or not any(prepared_root().iterdir()), "nothing written"


def test_an_unreadable_class_folder_is_named_not_dropped_silently(tmp_path, capsys, monkeypatch):
    root = _folder(tmp_path / "imgs")
    real = os.access  # (root reads any folder, so the refusal is simulated)
    monkeypatch.setattr(images_mod.os, "access",
                        lambda p, mode: False if str(p).endswith("dogs") else real(p, mode))
    from ganforge.data.images import scan_folder
    files, _, classes = scan_folder(root)
    assert classes == ["cats"] and len(files) == 4
    assert "1 folder(s) could not be read" in capsys.readouterr().err


def test_a_file_name_that_is_not_utf8_is_read_like_any_other(tmp_path):
    root = write_images(tmp_path / "imgs", 3, (8, 8))
    os.rename(bytes(root / "0.png"), bytes(root) + b"/\xff\xfe.png")
    prep, _ = prepare_folder(root, 8, 3)
    assert prep.meta["count"] == 3
    assert prepare_folder(root, 8, 3)[1], "and its copy is found again"
