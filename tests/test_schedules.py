"""The cosine schedules R3GAN anneals with (learning rates, Adam's beta2, the penalties' gamma,
G_ema's half-life): values by hand, logged per epoch, and continued exactly by a resume."""

import json
import math

import pytest

from ganforge.presets import from_preset
from ganforge.training.schedule import cosine, lr_factor

from .conftest import write_images
from .test_resume import assert_resumes_exactly


def test_cosine_schedules_by_hand():
    assert cosine(0.0, 0.9, 0.99) == 0.9 and cosine(1.0, 0.9, 0.99) == pytest.approx(0.99)
    assert cosine(0.5, 0.9, 0.99) == pytest.approx(0.945)
    assert cosine(0.25, 1.0, 0.0) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert lr_factor(0.5, "cosine") == pytest.approx(0.5)
    assert lr_factor(1.0, "cosine", end=0.25) == pytest.approx(0.25)
    assert lr_factor(0.5, "cosine", end=0.25) == pytest.approx(0.625)
    assert lr_factor(0.2, "cosine", decay_start=0.5, end=0.25) == 1.0  # before the decay
    assert lr_factor(0.75, "cosine", decay_start=0.5) == pytest.approx(0.5)  # halfway through it
    assert lr_factor(0.5, "linear", end=0.5) == pytest.approx(0.75)
    assert lr_factor(0.5, "linear") == 0.5  # the linear schedule without an end is unchanged


def test_every_annealed_value_is_logged_and_resumes_exactly(tmp_path, monkeypatch):
    folder = write_images(tmp_path / "imgs", 8, (16, 16))
    over = [f"data.path={folder}", "data.resolution=16", "model.g_width=4", "model.d_width=4",
            "loss.name=rpgan", "loss.r1_gamma=1", "loss.r2_gamma=1", "loss.r1_every=1",
            "loss.gamma_end=0.1", "train.lr_schedule=cosine", "train.lr_end=0.25",
            "optim_G.beta2=0.9", "optim_D.beta2=0.9", "train.beta2_end=0.99",
            "train.ema_kimg=0.01", "train.ema_kimg_end=0.5", "train.epochs=4",
            "train.batch_size=4", "train.max_minutes=0", "train.checkpoint_steps=3",
            "train.checkpoint_minutes=0", "report.tensorboard=off"]
    cfg = from_preset("folder", over)
    assert_resumes_exactly(cfg, tmp_path, monkeypatch, crash_before=5)
    recs = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    total = 4 * 2  # 2 steps an epoch; values are set before each step, from the steps done
    for r in recs:
        p = (r["step"] - 1) / total
        assert r["lr_G"] == pytest.approx(6e-4 * lr_factor(p, "cosine", end=0.25))
        assert r["beta2_G"] == pytest.approx(cosine(p, 0.9, 0.99))
        assert r["gamma_factor"] == pytest.approx(cosine(p, 1.0, 0.1))
        assert r["ema_kimg"] == pytest.approx(cosine(p, 0.01, 0.5))
    assert recs[-1]["beta2_G"] > recs[0]["beta2_G"] and recs[-1]["lr_G"] < recs[0]["lr_G"]
