"""`ganforge fid A B`: any two image sets through the evaluation protocol; the fast Inception
backends against PyTorch's."""

import json
import zipfile

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate
from ganforge.metrics import backends
from ganforge.metrics.classifier import train_classifier
from ganforge.metrics.features import InceptionFeatures
from ganforge.presets import from_preset
from ganforge.score import _array_images, score
from ganforge.training import train

from .conftest import write_images


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    a = write_images(root / "a", 6, (32, 32))
    write_images(root / "b", 6, (32, 32), ("x",))
    rng = np.random.default_rng(1)
    np.save(root / "nhwc.npy", rng.integers(0, 256, (6, 32, 32, 3), np.uint8))
    np.savez(root / "nchw.npz", images=rng.random((6, 1, 32, 32)).astype(np.float32))
    with zipfile.ZipFile(root / "a.zip", "w") as z:
        for p in sorted(a.iterdir()):
            z.write(p, f"a/{p.name}")
    return root


def test_arrays_are_read_in_every_layout_and_range(tmp_path):
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    np.save(tmp_path / "u.npy", x)
    assert torch.equal(_array_images(tmp_path / "u.npy"), torch.from_numpy(x).permute(0, 3, 1, 2))
    np.save(tmp_path / "pm.npy", np.array([[[[-1.0, 0.0, 1.0]]]], np.float32))  # N,C,H,W
    assert _array_images(tmp_path / "pm.npy").flatten().tolist() == [0, 128, 255]
    np.save(tmp_path / "01.npy", np.array([[[[0.0, 0.5, 1.0]]]], np.float32))
    assert _array_images(tmp_path / "01.npy").flatten().tolist() == [0, 128, 255]
    for bad, match in [(np.zeros((2, 4, 4, 5), np.uint8), "1 or 3 channels"),
                       (np.full((2, 1, 4, 4), 3.0, np.float32), r"\[-1, 1\] or \[0, 1\]"),
                       (np.zeros((4, 4), np.uint8), "4 dimensions"),
                       (np.full((2, 1, 4, 4), np.nan, np.float32), "NaN")]:
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(GanforgeError, match=match):
            _array_images(tmp_path / "bad.npy")


@pytest.mark.parametrize("a,b", [("a", "b"), ("nhwc.npy", "a"), ("nchw.npz", "a.zip"),
                                 ("a.zip", "a")])
def test_every_kind_of_set_is_scored(sets, a, b, capsys):
    assert main(["fid", str(sets / a), str(sets / b), "--metrics", "fid,kid", "--json",
                 "--backend", "torch"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fid"] >= -1e-6 and "kid" in res and res["n_generated"] == res["n_reference"] == 6
    if (a, b) == ("a.zip", "a"):  # the same images, zipped: the same features
        assert abs(res["fid"]) < 1e-3


def test_bad_sets_are_refused_in_one_paragraph(sets, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8, 3), np.uint8))
    for args, expect in [([str(tmp_path / "nope"), str(sets / "a")], "is not an image set"),
                         ([str(tmp_path / "one.npy"), str(sets / "a")], "at least 2"),
                         ([str(sets / "a"), str(sets / "b"), "--n", "9"], "fewer than --n 9"),
                         ([str(sets / "a"), str(sets / "b"), "--metrics", "w2"], "unknown metric"),
                         ([str(sets / "a"), "pokemon:test"], "no splits"),
                         ([str(tmp_path / "empty"), str(sets / "a")], "")]:
        assert main(["fid", *args, "--backend", "torch", "--quiet"]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("ganforge: error: ") and expect in err and "Traceback" not in err


def test_a_run_against_its_dataset_is_what_evaluate_gives(idx_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(idx_dir.parent))
    train_classifier("mnist", epochs=1, data_dir=str(idx_dir.parent), progress=False)
    run = train(from_preset("mnist-dcgan", [f"data.path={idx_dir.parent}", "train.epochs=1",
                                            "model.g_width=4", "model.d_width=4",
                                            "train.batch_size=32"]), tmp_path / "r", quiet=True)
    ev = evaluate(run.run_dir, metrics=("fid", "kid"), n=16, features="classifier", write=False)
    sc = score(str(run.run_dir), "mnist:test", metrics=("fid", "kid"), n=16,
               features="classifier", progress=False)
    assert sc["fid"] == pytest.approx(ev["fid"], abs=1e-9) and sc["kid"] == pytest.approx(ev["kid"])
    # the generated 32x32 digits were cropped back to 28x28 on both paths
    assert sc["n_reference"] == ev["n_reference"] == 16


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_fast_backend_gives_the_features_of_pytorch(backend):
    if not backends.installed(backend):
        pytest.skip(f"{backend} is not installed (pip install 'ganforge[fast]')")
    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    ref = InceptionFeatures(backend="torch")(images)
    out = InceptionFeatures(backend=backend)(images)
    assert out.shape == ref.shape == (3, 2048)
    assert float((out - ref).abs().max() / ref.abs().max()) < 1e-4


def test_the_backend_choice_is_explained():
    cpu = torch.device("cpu")
    assert backends.choose("torch", "fp32", cpu) == "torch"
    assert backends.choose("auto", "fp32", torch.device("cuda")) == "torch"
    with pytest.raises(ValueError, match="no bf16 mode"):
        backends.choose("onnxruntime", "bf16", cpu)
    with pytest.raises(ValueError, match="one of torch, onnxruntime, openvino"):
        backends.choose("tensorrt", "fp32", cpu)
