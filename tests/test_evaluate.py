import json

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.presets import from_preset
from ganforge.errors import GanforgeError
from ganforge.evaluate import eval_geometry, evaluate
from ganforge.metrics.registry import default_metric, metrics_for
from ganforge.metrics.per_class import per_class
from ganforge.metrics.classifier import (DomainClassifier, load_classifier, to_classifier_input,
                                         train_classifier)
from ganforge.training import train

from .conftest import needs_fashion, needs_mnist


def test_eval_geometry_undoes_the_padding():
    cfg = from_preset("fashion-dcgan")
    x = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)
    x[..., 2:30, 2:30] = 7
    out = eval_geometry(x, cfg)
    assert out.shape == (2, 1, 28, 28) and out.eq(7).all()
    assert to_classifier_input(x).shape == (2, 1, 28, 28)


def test_toy_evaluation_is_exact(tmp_path):
    run = train(from_preset("gaussian2d", ["train.epochs=2"]), tmp_path / "run", quiet=True)
    res = evaluate(run.run_dir)
    g = run.summary["gaussian"]
    assert res["mean_error"] == pytest.approx(g["mean_error"])
    assert res["w2"] >= res["mean_error"] - 1e-9  # W2 includes the mean term
    assert "checkpoint/exact/n0" in json.loads((run.run_dir / "eval.json").read_text())
    # the data's kind decides which metrics judge it: FID is for images
    with pytest.raises(GanforgeError, match="fid judge.* images, and gaussian2d holds points"):
        evaluate(run.run_dir, metrics=("fid",), write=False)
    assert evaluate(run.run_dir, metrics=("w2",), write=False)["w2"] == pytest.approx(res["w2"])


def test_the_metric_registry_says_what_judges_which_data():
    assert metrics_for("points") == ["w2"]
    assert {"fid", "kid", "pr", "dc"} <= set(metrics_for("images"))
    assert default_metric("images").name == "fid" and default_metric("points").exact
    # a border padded around the data to train on is cropped again for any size (28 -> 64)
    x = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    x[..., 18:46, 18:46] = 9
    assert eval_geometry(x, from_preset("mnist-dcgan")).eq(9).all()


def test_best_checkpoint_kept_during_training(tmp_path):
    run = train(from_preset("gaussian2d", ["train.epochs=3", "eval.every=1"]), tmp_path / "r",
                quiet=True)
    recs = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    values = [r["eval_w2"] for r in recs]
    best = torch.load(run.run_dir / "checkpoint_best.pt", weights_only=True)["best"]
    assert best["value"] == pytest.approx(min(values)) and best["epoch"] == 1 + values.index(min(values))
    assert run.summary["best"]["value"] == pytest.approx(min(values))


def test_per_class_table():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 4))
    labels = np.repeat([0, 1], 200)
    probs = np.tile([[0.9, 0.1]], (300, 1))  # every generated sample predicted as class 0
    rows = per_class(real, labels, rng.normal(size=(300, 4)), probs, ["a", "b"])
    assert rows[0]["share"] == 1.0 and rows[1]["share"] == 0.0
    assert rows[0]["fid"] is not None and rows[1]["fid"] is None
    assert rows[0]["confidence"] == pytest.approx(0.9)


@pytest.fixture
def tiny_mnist_run(idx_dir, tmp_path):
    """A tiny MLP run on the fixture IDX data, and a classifier trained on it."""
    rec = train_classifier("mnist", epochs=1, data_dir=str(idx_dir.parent), progress=False)
    assert 0 <= rec["test_accuracy"] <= 1
    run = train(from_preset("mnist-mlp", [f"data.path={idx_dir.parent}", "train.epochs=1",
                                          "train.batch_size=32", "eval.every=1", "eval.n=20"]),
                tmp_path / "run", quiet=True)
    return run.run_dir


def test_evaluate_with_the_classifier_and_cache(tiny_mnist_run, capsys):
    assert "eval_fid_classifier" in (tiny_mnist_run / "metrics.jsonl").read_text()
    rc = main(["evaluate", str(tiny_mnist_run), "--features", "classifier", "--n", "40",
               "--metrics", "fid,kid,pr,dc,is,classes", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "FID" in out and "Inception Score" in out and "precision" in out
    res = json.loads((tiny_mnist_run / "eval.json").read_text())["checkpoint/classifier/n40"]
    assert res["reference_cached"] is True  # the evaluation during training cached it
    assert res["fid"] > 0 and len(res["classes"]) == 10
    assert sum(r["share"] for r in res["classes"]) == pytest.approx(1.0)


def test_one_time_classifier_training_is_not_charged_to_the_time_budget(idx_dir, tmp_path,
                                                                        monkeypatch):
    """The domain classifier is trained on first use; with a fake clock on which that takes two
    hours, a run with train.max_minutes=60 still trains all its epochs, and the classifier is
    trained before the first step (once), not at the first evaluation."""
    from ganforge.metrics import classifier
    from ganforge.training import trainer as loop

    now = [0.0]

    def clock() -> float:
        now[0] += 1e-3
        return now[0]

    trainings = []
    real_train = classifier.train_classifier

    def slow_train(*args, **kwargs):
        trainings.append(now[0])
        now[0] += 7200.0
        return real_train(*args, **{**kwargs, "epochs": 1})

    monkeypatch.setattr(loop.time, "perf_counter", clock)
    monkeypatch.setattr(classifier, "train_classifier", slow_train)
    run = train(from_preset("mnist-mlp", [f"data.path={idx_dir.parent}", "train.epochs=3",
                                          "train.batch_size=32", "train.max_minutes=60",
                                          "eval.every=1", "eval.n=20"]),
                tmp_path / "run", quiet=True)
    recs = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(trainings) == 1
    assert [r["epoch"] for r in recs] == [1, 2, 3] and "stopped_by" not in recs[-1]
    assert all("eval_fid_classifier" in r for r in recs)
    assert recs[-1]["elapsed_seconds"] < 60


def test_reference_subset(tiny_mnist_run):
    from ganforge.evaluate import evaluate

    res = evaluate(tiny_mnist_run, n=12, features="classifier", n_reference=8, progress=False)
    assert res["n_reference"] == 8 and res["n_generated"] == 12
    assert "checkpoint/classifier/n12/ref8" in json.loads((tiny_mnist_run / "eval.json").read_text())


def test_conditional_per_class_uses_the_asked_for_class():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 4))
    labels = np.repeat([0, 1], 200)
    asked = np.repeat([0, 1], 150)
    probs = np.tile([[0.8, 0.2]], (300, 1))  # the classifier calls everything class 0
    rows = per_class(real, labels, rng.normal(size=(300, 4)), probs, ["a", "b"], fake_labels=asked)
    assert rows[0]["agreement"] == 1.0 and rows[1]["agreement"] == 0.0
    assert rows[1]["fid"] is not None  # class 1's samples are the ones asked for class 1
    assert rows[1]["confidence"] == pytest.approx(0.2)


def test_is_needs_the_classifier(tiny_mnist_run, capsys):
    assert main(["evaluate", str(tiny_mnist_run), "--metrics", "is", "--quiet"]) == 2
    assert "--features classifier" in capsys.readouterr().err


@pytest.mark.slow
@needs_mnist
def test_mnist_classifier_reaches_99_percent():
    rec = train_classifier("mnist", progress=False)
    assert rec["test_accuracy"] >= 0.99


@pytest.mark.slow
@needs_fashion
def test_fashion_classifier_reaches_91_percent(monkeypatch):
    rec = train_classifier("fashion-mnist", progress=False)
    assert rec["test_accuracy"] >= 0.91
    model, _ = load_classifier("fashion-mnist", train_if_missing=False)
    assert isinstance(model, DomainClassifier)


def test_folder_reference_is_not_decoded_when_cached(tmp_path, monkeypatch):
    from PIL import Image

    from ganforge.evaluate import reference_features
    import ganforge.evaluate as ev

    for i in range(4):
        Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(tmp_path / f"{i}.png")
    cfg = from_preset("pokemon-dcgan", [f"data.path={tmp_path}", "data.resolution=8"])

    class Fake:
        key = "fake-features"

        def __call__(self, images, desc):
            return images.float().reshape(len(images), -1).numpy(), None

    f1, _, _, cached1 = reference_features(Fake(), cfg)
    with monkeypatch.context() as m:  # (undo() would also undo the isolated cache's setenv)
        m.setattr(ev, "reference_images", lambda *a, **k: pytest.fail("decoded again"))
        f2, _, _, cached2 = reference_features(Fake(), cfg)
    assert (cached1, cached2) == (False, True) and np.array_equal(f1, f2)
    Image.new("RGB", (8, 8)).save(tmp_path / "new.png")  # a changed folder is a new reference
    assert reference_features(Fake(), cfg)[3] is False


def test_evaluation_reads_the_reference_at_the_trained_shape():
    """A folder run evaluates against its images at the resolution it trained at, not one
    derived again from a folder that may have changed since."""
    from ganforge.config import Config, DataConfig
    from ganforge.evaluate import with_data_shape

    cfg = Config(data=DataConfig(name="folder", path="/x", resolution=0, channels=0))
    out = with_data_shape(cfg, (3, 32, 32))
    assert (out.data.resolution, out.data.channels) == (32, 3) and cfg.data.resolution == 0
    assert with_data_shape(cfg, (2,)) is cfg
