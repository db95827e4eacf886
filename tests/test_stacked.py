"""Stacked MNIST and the mode-coverage metric: triples deterministic per seed and balanced, the
modes read channel by channel, the coverage and reverse KL on histograms known by hand, and
``evaluate --metrics modes`` on a run with its real-data floor."""

import math

import numpy as np
import pytest
import torch

from ganforge.config import ConfigError, DataConfig
from ganforge.data import load_dataset
from ganforge.data.idx import load_idx_dataset
from ganforge.data.stacked import stacked_mnist
from ganforge.evaluate import evaluate
from ganforge.metrics.modes import coverage, read_modes, uniform_floor
from ganforge.presets import from_preset
from ganforge.table import format_table
from ganforge.training import train


def test_triples_are_deterministic_per_seed_and_balanced(idx_dir):
    a, ya, names = stacked_mnist("train", seed=3, data_dir=str(idx_dir))
    b, yb, _ = stacked_mnist("train", seed=3, data_dir=str(idx_dir))
    c, yc, _ = stacked_mnist("train", seed=4, data_dir=str(idx_dir))
    assert a.shape == (64, 3, 28, 28) and np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(ya, yc) and len(names) == 1000 and names[123] == "123"
    digits, labels, _ = load_idx_dataset("mnist", "train", str(idx_dir))
    flat = {d.tobytes(): int(lab) for d, lab in zip(digits, labels)}
    for ch, place in ((0, 100), (1, 10), (2, 1)):
        # every digit image appears exactly once in each channel
        assert sorted(x.tobytes() for x in a[:, ch]) == sorted(d.tobytes() for d in digits)
        # and the label's digit in that place is the label of the image in that channel
        assert [flat[x.tobytes()] for x in a[:, ch]] == [int(t) // place % 10 for t in ya]


def test_the_dataset_trains_at_32_and_refuses_one_channel(idx_dir):
    ds = load_dataset(DataConfig(name="stacked-mnist", path=str(idx_dir), resolution=32), seed=0)
    assert ds.data.shape == (64, 3, 32, 32) and ds.data[:, :, :2].max() == 0  # a black border
    assert int(ds.labels.max()) < 1000 and len(ds.class_names) == 1000
    with pytest.raises(ConfigError, match="3 channels"):
        from_preset("mnist-dcgan", ["data.name=stacked-mnist", "data.channels=1"])


def test_coverage_on_known_histograms():
    assert coverage(np.arange(1000).repeat(7), 1000) == (1000, pytest.approx(0.0, abs=1e-12))
    covered, kl = coverage(np.full(500, 42), 1000)
    assert covered == 1 and kl == pytest.approx(math.log(1000))
    covered, kl = coverage(np.array([0, 0, 1, 1]), 4)  # half the modes, evenly: log 2
    assert covered == 2 and kl == pytest.approx(math.log(2))
    assert uniform_floor(26000, 1000) == pytest.approx(999 / 52000)
    draws = np.random.default_rng(0).integers(0, 1000, 26000)  # the floor of a uniform sample
    assert coverage(draws, 1000)[1] == pytest.approx(uniform_floor(26000, 1000), rel=0.15)


class _ReadsBrightness(torch.nn.Module):
    """A stand-in digit classifier: the digit is the (rescaled) brightness of the input."""

    def forward(self, x):
        digit = ((x.mean((1, 2, 3)) + 1) * 127.5 / 10).round().long().clamp(0, 9)
        return None, torch.nn.functional.one_hot(digit, 10).float()


def test_modes_are_read_channel_by_channel():
    triples = [(1, 2, 3), (9, 0, 4), (0, 0, 0)]
    images = torch.tensor([[[[10 * d]] for d in t] for t in triples], dtype=torch.uint8)
    images = images.expand(-1, -1, 28, 28).contiguous()
    assert read_modes(images, _ReadsBrightness(), batch=2).tolist() == [123, 904, 0]


def test_evaluate_modes_on_a_run_beside_the_real_floor(tmp_path, idx_dir):
    run = tmp_path / "stacked"
    train(from_preset("mnist-dcgan", ["data.name=stacked-mnist", f"data.path={idx_dir}",
                                      "train.epochs=1", "model.g_width=4", "model.d_width=4",
                                      "report.tensorboard=off", "train.batch_size=32"]),
          run, quiet=True)
    res = evaluate(run, metrics=("modes",), n=40, progress=False)
    assert 1 <= res["modes"] <= 40 and 1 <= res["modes_real"] <= 40 and res["n_modes"] == 1000
    for kl in (res["modes_kl"], res["modes_kl_real"]):  # between 0 and one mode's log 1000
        assert 0 <= kl <= math.log(1000) + 1e-9
    # 40 samples over 1,000 modes: the KL is at least that of 40 distinct modes, log(1000 / 40)
    assert res["modes_kl"] >= math.log(1000 / 40) - 1e-9
    assert 0 <= res["modes_classifier_accuracy"] <= 1 and "n_reference" not in res
    table = format_table(res)
    assert "of 1000  (real data:" in table and "uniform draws: 12.4875" in table


def test_the_stacked_best_preset_takes_a_few_steps_from_the_command_line(tmp_path, idx_dir):
    import json

    from ganforge.cli import main
    from ganforge.training import load_checkpoint

    run = tmp_path / "run"
    assert main(["train", "stacked-best", "--out", str(run), "--quiet", f"data.path={idx_dir}",
                 "train.epochs=2", "train.max_minutes=0", "train.batch_size=8", "data.limit=16",
                 "model.g_width=8", "model.d_width=8", "report.tensorboard=off"]) == 0
    st = load_checkpoint(run)
    assert st["step"] == 4 and st["sample_shape"] == [3, 32, 32]
    assert st["config"]["model"]["conditional"] is False and st["config"]["model"]["g_width"] == 8
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # full rates through the first half of the run, then falling along the cosine
    assert recs[0]["lr_G"] == pytest.approx(6e-4) and recs[-1]["lr_G"] < 6e-4
