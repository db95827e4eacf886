"""Results name what produced them, caches that break are rebuilt, and no command writes a file
it was not asked for."""

import json

import numpy as np
import pytest

from ganforge import evaluate as evaluate_module
from ganforge.cli import main
from ganforge.evaluate import _load_cached, evaluate, file_sha256


def test_an_evaluation_records_the_checkpoint_it_scored(toy_run):
    res = evaluate(toy_run)
    rec = next(iter(json.loads((toy_run / "eval.json").read_text()).values()))
    assert rec["checkpoint_sha256"] == file_sha256(toy_run / "checkpoint.pt") == res["checkpoint_sha256"]
    assert rec["step"] == 125 and rec["epoch"] == 1 and rec["images_seen"] == 1000


def test_a_checkpoint_replaced_during_the_evaluation_is_not_credited(toy_run, monkeypatch, capsys):
    real = evaluate_module.evaluate_generator

    def and_a_resume_saves_meanwhile(*args, **kwargs):
        out = real(*args, **kwargs)
        (toy_run / "checkpoint.pt").write_bytes((toy_run / "checkpoint.pt").read_bytes() + b"x")
        return out

    monkeypatch.setattr(evaluate_module, "evaluate_generator", and_a_resume_saves_meanwhile)
    assert main(["evaluate", str(toy_run), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "2-Wasserstein" in captured.out, "the table is printed"
    assert "was replaced while it was evaluated" in captured.err
    assert not (toy_run / "eval.json").exists()


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "wrong rows", "no features"])
def test_a_broken_feature_cache_is_computed_again(tmp_path, damage):
    path = tmp_path / "c.npz"
    np.savez(path, features=np.ones((8, 4), np.float32), probs=np.ones((8, 2), np.float32))
    assert _load_cached(path, 8) is not None
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "wrong rows":
        np.savez(path, features=np.ones((5, 4), np.float32))
    else:
        np.savez(path, other=np.ones((8, 4), np.float32))
    assert _load_cached(path, 8) is None and not path.exists()


def test_a_read_only_cache_still_prints_the_scores(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(evaluate_module, "atomic_write", refuse)
    np.save(tmp_path / "a.npy", np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), np.uint8))
    (tmp_path / "imgs").mkdir()
    from .conftest import write_images
    write_images(tmp_path / "imgs", 4, (16, 16))
    assert main(["fid", str(tmp_path / "a.npy"), str(tmp_path / "imgs"), "--backend", "torch",
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "FID" in captured.out and "could not be cached" in captured.err


def test_export_never_replaces_a_runs_config(toy_run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", "gaussian2d", "--out", str(other), "--quiet", "train.epochs=1",
                 "report.tensorboard=off"]) == 0
    before = (other / "config.json").read_bytes()
    assert main(["export", str(toy_run), "--out", str(other / "config.safetensors"),
                 "--overwrite"]) == 2
    assert "is not an export's config" in capsys.readouterr().err
    assert (other / "config.json").read_bytes() == before
    assert not (other / "config.safetensors").exists()
    # an earlier export is replaced with --overwrite
    out = tmp_path / "g.safetensors"
    assert main(["export", str(toy_run), "--out", str(out)]) == 0
    assert main(["export", str(toy_run), "--out", str(out), "--overwrite"]) == 0


def test_a_relative_data_path_is_made_absolute_when_the_run_is_created(tmp_path, monkeypatch):
    from .conftest import write_images

    write_images(tmp_path / "imgs", 8, (16, 16))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "folder", "data.path=imgs", "--out", "run", "--quiet", "train.epochs=1",
                 "data.resolution=16", "model.g_width=4", "model.d_width=4", "train.max_minutes=0",
                 "report.tensorboard=off"]) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["path"] == str(tmp_path / "imgs")
    assert json.loads((tmp_path / "run" / "resolved.json").read_text())["data_path"] == str(tmp_path / "imgs")


def test_a_resume_on_changed_data_is_refused_mid_epoch_and_noted_at_a_boundary(tmp_path, capsys):
    from .conftest import write_images

    folder = write_images(tmp_path / "imgs", 16, (16, 16))
    common = ["data.resolution=16", "model.g_width=4", "model.d_width=4", "train.max_minutes=0",
              "report.tensorboard=off", "train.batch_size=4", "--quiet"]
    assert main(["train", "folder", f"data.path={folder}", "--out", str(tmp_path / "a"),
                 "train.epochs=1", "train.checkpoint_steps=2", *common]) == 0
    for extra in range(16, 24):  # the folder grows
        write_images(tmp_path / "more", 1, (16, 16))
        (tmp_path / "more" / "0.png").rename(folder / f"x{extra}.png")
    assert main(["train", "--resume", str(tmp_path / "a"), "train.epochs=2", "--quiet"]) == 0
    assert "held 16 examples and holds 24 now" in capsys.readouterr().err
    # stopped in the middle of an epoch: the position counts into the old data
    ckpt = tmp_path / "a" / "checkpoint.pt"
    import torch
    state = torch.load(ckpt, weights_only=True)
    state["position"]["step_in_epoch"] = 1
    state["resolved"]["examples"] = 16
    torch.save(state, ckpt)
    before = ckpt.read_bytes()
    assert main(["train", "--resume", str(tmp_path / "a"), "train.epochs=3", "--quiet"]) == 2
    assert "middle of an epoch" in capsys.readouterr().err and ckpt.read_bytes() == before


def test_a_model_too_large_for_the_machine_is_refused_before_allocating(tmp_path, capsys):
    """Estimated on the meta device: nothing of the model is allocated, no file is written."""
    import torch

    from ganforge.errors import GanforgeError
    from ganforge.presets import from_preset
    from ganforge.training.memory import check_fits, could_be_large, estimate_bytes

    cfg = from_preset("pokemon-dcgan", ["model.g_width=4096", "model.d_width=4096"])
    assert could_be_large(cfg, (3, 64, 64)) and estimate_bytes(cfg, (3, 64, 64), 0) > 50 * 2**30
    with pytest.raises(GanforgeError, match="memory_check=false"):
        check_fits(cfg, (3, 64, 64), 0, torch.device("cpu"))
    small = from_preset("pokemon-dcgan", ["model.g_width=256", "model.d_width=256"])
    assert could_be_large(small, (3, 64, 64))
    check_fits(small, (3, 64, 64), 0, torch.device("cpu"))  # estimated, and it fits
    assert not could_be_large(from_preset("pokemon-dcgan"), (3, 64, 64)), "presets: no cost"
    folder = _images(tmp_path)
    import subprocess
    import sys

    # The child reports its own peak, VmHWM of its address space (ru_maxrss would also count
    # the forked copy of this test process before the exec, and RUSAGE_CHILDREN every child the
    # test run ever started).
    code = ("import re, sys\nfrom ganforge.cli import main\nrc = main(sys.argv[1:])\n"
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "print('peak', hwm, file=sys.stderr)\nsys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "train", "folder", f"data.path={folder}",
                          "--out", str(tmp_path / "big"), "model.g_width=4096",
                          "model.d_width=4096", "data.resolution=64"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "GiB to train" in out.stderr and not (tmp_path / "big").exists()
    peak = int(out.stderr.split("peak ")[-1].split()[0]) * 1024
    assert peak < 2 * 2**30, f"the refusal itself used {peak / 2**30:.1f} GiB"


def test_large_samples_stream_to_disk_and_equal_the_whole_draw(tmp_path):
    from ganforge.sample import sample

    run = tmp_path / "dc"
    assert main(["train", "mnist-dcgan", "--out", str(run), "--quiet", "data.name=folder",
                 f"data.path={_images(tmp_path)}", "data.resolution=16", "model.g_width=4",
                 "model.d_width=4", "train.epochs=1", "train.batch_size=8",
                 "report.tensorboard=off"]) == 0
    sample(run, 600, tmp_path / "a.npy")  # streamed in chunks of 256
    a = np.load(tmp_path / "a.npy")
    assert a.shape[:3] == (600, 16, 16) and a.dtype == np.uint8
    sample(run, 600, tmp_path / "folder")
    from PIL import Image
    png = np.asarray(Image.open(tmp_path / "folder" / "000599.png"))
    assert np.array_equal(png.reshape(a[599].shape), a[599])
    # the first chunk equals a small draw of the same seed
    sample(run, 4, tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), a[:4])
    with pytest.raises(Exception, match="a grid holds at most 4096"):
        sample(run, 5000, tmp_path / "g.png")


def _images(tmp_path):
    from .conftest import write_images
    return write_images(tmp_path / "imgs", 8, (16, 16))


def test_download_calls_a_dataset_present_only_when_it_is_whole(tmp_path, capsys, monkeypatch):
    import shutil

    from ganforge.data import idx
    from .conftest import SHARED_DATA, write_images

    partial = write_images(tmp_path / "sprites" / "pokemon", 3, (8, 8))
    assert main(["download", "pokemon", "--dir", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "holds 3 files" in err and "it is partial" in err
    mnist = SHARED_DATA / "mnist"
    if not (mnist / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST not found beside the checkout")
    dest = tmp_path / "mnist"
    shutil.copytree(mnist, dest)
    assert idx.verify_present(idx.IDX_DATASETS["mnist"], dest) == []
    labels = dest / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-40])  # truncated
    monkeypatch.setattr(idx.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert main(["download", "mnist", "--dir", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in err and "Traceback" not in err


def test_a_full_disk_during_prepare_is_a_message_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """On a 1 MiB tmpfs (where this process may mount one): the space check refuses the copy."""
    import subprocess

    from ganforge.data.prepared import prepared_root

    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or in a container without it)")
    try:
        monkeypatch.setenv("XDG_CACHE_HOME", str(disk))
        folder = _images(tmp_path)
        assert main(["prepare", str(folder), "data.resolution=256", "data.channels=3"]) == 2
        assert "are free" in capsys.readouterr().err
        assert not prepared_root().exists() or not any(prepared_root().iterdir())
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
