"""Starting from another run (``train.init_from``), Freeze-D and the nearest-training-image
check: the weights arrive tensor by tensor, counters start at zero, what does not fit is refused
before a file is written, frozen blocks stay fixed, and a fine-tuned run resumes exactly."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate
from ganforge.export import export_generator
from ganforge.metrics.nearest import memorisation, nearest
from ganforge.presets import from_preset
from ganforge.report.html import write_report
from ganforge.training import GAN, load_checkpoint, train

from .conftest import write_images
from .test_resume import _Crash, _assert_same_run, _crash_at

BASE = ["train.epochs=2", "report.tensorboard=off", "train.device=cpu", "model.g_width=4",
        "model.d_width=4", "train.batch_size=8", "data.resolution=16", "eval.every=0",
        "health.warmup_epochs=9", "train.checkpoint_minutes=0"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    return {"source": write_images(root / "src", 16, (16, 16)),
            "target": write_images(root / "dst", 12, (24, 20)),
            "two": write_images(root / "two", 8, (16, 16), ("a", "b")),
            "three": write_images(root / "three", 6, (16, 16), ("a", "b", "c"))}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, folders):
    run = tmp_path_factory.mktemp("src") / "run"
    train(from_preset("folder", BASE + [f"data.path={folders['source']}"]), run, quiet=True)
    return run


def _finetune(folders, source, *extra, folder="target"):
    over = [f"train.init_from={source}", f"data.path={folders[folder]}", "train.epochs=1",
            "report.tensorboard=off", "train.batch_size=8", "train.device=cpu", "eval.every=0",
            "train.checkpoint_minutes=0", *extra]
    return from_preset("finetune", over), over


def _step0(tmp_path, monkeypatch, cfg, over, name="ft"):
    """The run's checkpoint before its first step (the run stopped there)."""
    with monkeypatch.context() as m:
        _crash_at(m, 0)
        with pytest.raises(_Crash):
            train(cfg, tmp_path / name, overrides=over, quiet=True)
    return load_checkpoint(tmp_path / name)


def test_weights_after_init_from_equal_the_source_and_counters_start_at_zero(
        tmp_path, monkeypatch, folders, source_run):
    src = load_checkpoint(source_run)
    cfg, over = _finetune(folders, source_run)
    st = _step0(tmp_path, monkeypatch, cfg, over)
    assert (st["step"], st["epoch"], st["images_seen"]) == (0, 0, 0)
    for net in ("G", "D", "G_ema"):
        assert st[net].keys() == src[net].keys()
        for k, v in src[net].items():
            assert torch.equal(st[net][k], v), (net, k)
    # the model and the image size are the source's: the 24x20 images were resized to 16x16
    assert st["sample_shape"] == [3, 16, 16] and st["config"]["model"]["g_width"] == 4
    assert not st["opt_D"]["state"] and not st["opt_G"]["state"]  # fresh moments by default
    rec = json.loads((tmp_path / "ft" / "resolved.json").read_text())["init_from"]
    assert rec["sha256"] == __import__("hashlib").sha256(
        (source_run / "checkpoint.pt").read_bytes()).hexdigest()
    assert rec["data_path"] == str(folders["source"]) and rec["images_seen"] == src["images_seen"]


def test_init_optim_takes_the_moments_and_keeps_this_runs_rates(tmp_path, monkeypatch, folders,
                                                               source_run):
    src = load_checkpoint(source_run)
    cfg, over = _finetune(folders, source_run, "train.init_optim=true", "train.freeze_d=0",
                          "optim_D.lr=0.0003")
    st = _step0(tmp_path, monkeypatch, cfg, over)
    for opt in ("opt_G", "opt_D"):
        for i, state in src[opt]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(st[opt]["state"][i][name]), torch.as_tensor(value))
    assert st["opt_D"]["param_groups"][0]["lr"] == 0.0003
    with pytest.raises(GanforgeError, match="freeze_d"):  # another set of D's parameters
        train(_finetune(folders, source_run, "train.init_optim=true", "train.freeze_d=2")[0],
              tmp_path / "x",
              quiet=True)
    assert not (tmp_path / "x").exists()


def test_a_shape_that_does_not_fit_is_refused_naming_the_layer_and_nothing_is_written(
        tmp_path, folders, source_run):
    cfg, over = _finetune(folders, source_run, "model.g_width=8")
    with pytest.raises(GanforgeError, match=r"layer G\.net\.0.*model\.g_width=8 \(source 4\)"):
        train(cfg, tmp_path / "wide", overrides=over, quiet=True)
    assert not (tmp_path / "wide").exists()
    cfg, over = _finetune(folders, source_run, "data.resolution=32")
    with pytest.raises(GanforgeError, match="trained at resolution 16"):
        train(cfg, tmp_path / "big", overrides=over, quiet=True)
    assert not (tmp_path / "big").exists()


def test_a_new_number_of_classes_reinitialises_only_the_class_tensors(tmp_path, monkeypatch,
                                                                      folders):
    run = tmp_path / "cond"
    train(from_preset("folder", BASE + [f"data.path={folders['two']}", "model.conditional=true"]),
          run, quiet=True)
    src = load_checkpoint(run)
    cfg, over = _finetune(folders, run, folder="three")
    st = _step0(tmp_path, monkeypatch, cfg, over)
    assert st["config"]["model"]["conditional"] and st["resolved"]["num_classes"] == 3
    fresh = []
    for net in ("G", "D"):
        for k, v in src[net].items():
            if v.shape == st[net][k].shape:
                assert torch.equal(st[net][k], v), (net, k)
            else:
                assert 2 in v.shape and 3 in st[net][k].shape
                fresh.append(f"{net}.{k}")
    assert any("embed" in k for k in fresh) and any("gamma" in k for k in fresh)
    notes = json.loads((tmp_path / "ft" / "resolved.json").read_text())["init_from"]["notes"]
    assert "2 in the source, 3 here" in notes[0] and "D.embed," in notes[0] + ","


def test_an_export_starts_g_and_g_ema_and_d_starts_afresh(tmp_path, monkeypatch, folders,
                                                          source_run):
    path, _ = export_generator(source_run, tmp_path / "g.safetensors")
    src = load_checkpoint(source_run)
    cfg, over = _finetune(folders, path)
    st = _step0(tmp_path, monkeypatch, cfg, over)
    for k, v in src["G_ema"].items():
        assert torch.equal(st["G"][k], v) and torch.equal(st["G_ema"][k], v)
    assert not all(torch.equal(st["D"][k], v) for k, v in src["D"].items())
    notes = json.loads((tmp_path / "ft" / "resolved.json").read_text())["init_from"]["notes"]
    assert any("D starts from random weights" in n for n in notes)


W = ["model.g_width=4", "model.d_width=4"]
ARCHS = {"dcgan": ["model.arch=dcgan", *W], "stylegan2": ["model.arch=stylegan2", *W],
         "fastgan": ["model.arch=fastgan", *W], "mlp": ["model.arch=mlp"]}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_freeze_d_keeps_the_first_blocks_fixed_and_gives_them_no_optimizer_state(arch):
    cfg = from_preset("folder", ["data.path=/nonexistent", "data.resolution=16",
                                 "data.channels=3", "train.freeze_d=2", "train.batch_size=4",
                                 *ARCHS[arch]])
    gan = GAN(cfg, (3, 16, 16), torch.device("cpu"), 0)
    before = {k: v.detach().clone() for k, v in gan.D.named_parameters()}
    frozen = set(gan.frozen_D)
    blocks = gan.D.input_blocks()
    assert frozen == {n for n, p in gan.D.named_parameters()
                      if any(p is q for b in blocks[:2] for q in b.parameters())}
    assert frozen and len(frozen) < len(before)
    torch.manual_seed(0)
    for _ in range(3):
        gan.train_step(torch.rand(4, 3, 16, 16) * 2 - 1)
    for name, p in gan.D.named_parameters():
        if name in frozen:
            assert torch.equal(p, before[name]), name
    assert any(not torch.equal(p, before[n]) for n, p in gan.D.named_parameters()
               if n not in frozen)
    state_ids = {id(p) for p in gan.opt_D.state}
    assert not any(id(p) in state_ids for n, p in gan.D.named_parameters() if n in frozen)
    assert all(p.requires_grad == (n not in frozen) for n, p in gan.D.named_parameters())


def test_freeze_d_beyond_the_blocks_is_refused():
    cfg = from_preset("folder", ["data.path=/nonexistent", "data.resolution=16",
                                 "data.channels=3", "train.freeze_d=9"])
    with pytest.raises(GanforgeError, match="train.freeze_d=9.*at most 2"):
        GAN(cfg, (3, 16, 16), torch.device("cpu"), 0)


def test_a_fine_tuned_run_resumes_bit_identically(tmp_path, monkeypatch, folders, source_run):
    cfg, over = _finetune(folders, source_run, "train.epochs=2", "train.checkpoint_steps=2",
                          "train.freeze_d=2")
    train(cfg, tmp_path / "full", overrides=over, quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, 3)
        with pytest.raises(_Crash):
            train(cfg, tmp_path / "cut", overrides=over, quiet=True)
    assert load_checkpoint(tmp_path / "cut")["step"] == 2
    train(resume=tmp_path / "cut", quiet=True)
    _assert_same_run(tmp_path / "full", tmp_path / "cut")
    for run in ("full", "cut"):  # the source stays recorded through the resume
        assert json.loads((tmp_path / run / "summary.json").read_text())["init_from"]["sha256"]
    with pytest.raises(GanforgeError, match="freeze_d"):
        train(resume=tmp_path / "cut", overrides=["train.freeze_d=1"], quiet=True)
    page = Path(write_report([tmp_path / "cut"])).read_text()
    assert "started from" in page and str(source_run / "checkpoint.pt") in page
    assert "D&#x27;s first 2 block(s) fixed" in page or "D's first 2 block(s) fixed" in page


def test_nearest_neighbours_by_hand():
    train_f = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    idx, dist = nearest(np.array([[0.1, 0.0], [0.0, 2.0]]), train_f)
    assert idx.tolist() == [0, 2] and np.allclose(dist, [0.1, 1.0])
    _, own = nearest(train_f, train_f, exclude_self=True)  # 1, 1, 3: a row is not its own
    assert np.allclose(own, [1.0, 1.0, 3.0])
    res = memorisation(train_f, np.array([[0.1, 0.0], [0.0, 2.0], [5.0, 5.0]]))
    assert res["nn_real"] == 1.0 and res["nn_threshold"] == 1.0
    assert res["nn_close"] == pytest.approx(1 / 3)  # only the first is nearer than the closest real pairs
    assert res["nn_distance"] == 1.0 and res["nn_index"] == [0, 2, 2]


def test_nn_compares_with_the_training_split_not_the_test_split(tmp_path, idx_dir):
    run = tmp_path / "mlp"
    train(from_preset("mnist-mlp", [f"data.path={idx_dir}", "train.epochs=1",
                                    "report.tensorboard=off", "train.batch_size=32"]), run,
          quiet=True)
    res = evaluate(run, metrics=("fid", "nn"), n=8, progress=False)
    assert res["n_reference"] == 16 and res["nn_reference"] == 64  # test split, training split
    rows = json.loads((run / "nn.json").read_text())["samples"]
    assert max(r["training_index"] for r in rows) < 64


def test_evaluate_nn_writes_the_pairs_of_a_run(tmp_path, folders, source_run):
    run = tmp_path / "copy"
    __import__("shutil").copytree(source_run, run)
    res = evaluate(run, metrics=("nn",), n=10, progress=False)
    assert 0 <= res["nn_close"] <= 1 and res["nn_distance"] > 0 and "nn_index" not in res
    rows = json.loads((run / "nn.json").read_text())["samples"]
    assert len(rows) == 10 and [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert all(0 <= r["training_index"] < 16 for r in rows)
    with Image.open(run / "nn_pairs.png") as img:  # 10 pairs, 4 a row: 3 rows of 16 px tiles
        assert img.width > img.height > 0
    recorded = json.loads((run / "eval.json").read_text())
    assert any("nn_distance" in v for v in recorded.values())


def test_duplicates_in_the_training_set_do_not_make_every_sample_look_original():
    train_f = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    _, own = nearest(train_f, train_f, exclude_self=True)
    assert np.allclose(own, [4.0, 4.0, 4.0, 4.0, 4.0])  # the copies are not each other's neighbours
    res = memorisation(train_f, np.array([[0.0, 0.1], [6.0, 6.0]]))  # a copy, and a new point
    assert res["nn_real"] == 4.0 and res["nn_close"] == 0.5
