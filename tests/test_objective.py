"""D's objective is a sum of named terms, each with a weight and an interval, each logged under
its own name."""

import json

import pytest
import torch

from ganforge.presets import from_preset
from ganforge.report.plots import loss_figure
from ganforge.training import GAN, train
from ganforge.training.objective import d_terms

from .conftest import write_images


def _fastgan(*extra):
    return from_preset("folder", ["data.path=/tmp", "data.resolution=16", "model.arch=fastgan",
                                  "model.g_width=4", "model.d_width=4", "train.augment=",
                                  *extra])


def test_the_terms_come_from_the_loss_config_and_the_architecture():
    assert [t.name for t in d_terms(_fastgan())] == ["recon"]
    assert [(t.name, t.weight, t.every) for t in
            d_terms(_fastgan("loss.name=wgan-gp", "loss.gp_weight=5", "loss.r1_gamma=2",
                             "loss.r1_every=4", "model.d_recon=0.5"))] == \
        [("recon", 0.5, 1), ("gp", 5.0, 1), ("r1", 1.0, 4)]
    assert d_terms(_fastgan("model.d_recon=0")) == ()  # a weight of 0 is no term
    assert d_terms(from_preset("gaussian2d")) == ()


def test_a_gradient_penalty_is_added_to_fastgans_reconstruction_not_put_in_its_place():
    cfg = _fastgan("loss.name=wgan-gp", "loss.gp_weight=3", "model.d_recon=2")
    torch.manual_seed(0)
    gan = GAN(cfg, (3, 16, 16), torch.device("cpu"))
    stats = gan.train_step(torch.rand(4, 3, 16, 16) * 2 - 1)
    recon, recon_ran, gp, gp_ran = stats.terms
    assert float(recon_ran) == float(gp_ran) == 1.0 and recon > 0 and gp > 0
    assert torch.allclose(stats.penalty, 2 * recon + 3 * gp)


def test_a_lazy_term_runs_every_k_steps_and_is_weighted_by_k():
    cfg = from_preset("folder", ["data.path=/tmp", "data.resolution=16", "model.g_width=4",
                                 "model.d_width=4", "model.d_norm=none", "loss.r1_gamma=2",
                                 "loss.r1_every=3", "train.augment="])
    gan = GAN(cfg, (3, 16, 16), torch.device("cpu"))
    ran, penalties, values = [], [], []
    for _ in range(6):
        s = gan.train_step(torch.rand(4, 3, 16, 16) * 2 - 1)
        ran.append(float(s.terms[1]))
        penalties.append(float(s.penalty))
        values.append(float(s.terms[0]))
    assert ran == [1, 0, 0, 1, 0, 0]
    for k in (0, 3):  # gamma / 2 * every = 3
        assert penalties[k] == pytest.approx(3 * values[k], rel=1e-5)
    assert penalties[1] == penalties[2] == 0


def test_each_term_is_logged_under_its_own_name(tmp_path):
    folder = write_images(tmp_path / "imgs", 8, (16, 16))
    over = [f"data.path={folder}", "data.resolution=16", "model.arch=fastgan", "model.g_width=4",
            "model.d_width=4", "train.augment=", "loss.r1_gamma=1", "loss.r1_every=4",
            "train.epochs=2", "train.batch_size=4", "train.max_minutes=0", "report.tensorboard=off"]
    run = train(from_preset("folder", over), tmp_path / "r", quiet=True).run_dir
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for r in recs:
        assert r["loss_D_recon"] > 0 and r["penalty_D"] > 0 and "loss_D_r1" in r
        assert not any(k.startswith("ran_") for k in r)
    # 2 steps an epoch, R1 every 4 steps: it ran in epoch 1 (step 0), not in epoch 2
    assert recs[0]["loss_D_r1"] > 0 and recs[1]["loss_D_r1"] is None
    fig = loss_figure(recs)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "D: recon" in labels and "D: r1" in labels


def test_rpgan_with_r1_and_r2_trains_logs_both_terms_and_resumes_exactly(tmp_path, monkeypatch):
    from .test_resume import assert_resumes_exactly

    folder = write_images(tmp_path / "imgs", 8, (16, 16))
    over = [f"data.path={folder}", "data.resolution=16", "model.g_width=4", "model.d_width=4",
            "loss.name=rpgan", "loss.r1_gamma=1", "loss.r2_gamma=1", "loss.r1_every=1",
            "train.epochs=3", "train.batch_size=4", "train.max_minutes=0",
            "train.checkpoint_steps=2", "train.checkpoint_minutes=0", "report.tensorboard=off"]
    cfg = from_preset("folder", over)
    assert [(t.name, t.weight, t.every) for t in d_terms(cfg)] == [("r1", 0.5, 1), ("r2", 0.5, 1)]
    assert_resumes_exactly(cfg, tmp_path, monkeypatch, crash_before=3)
    recs = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_D_r1"] > 0 and r["loss_D_r2"] > 0 for r in recs)
    assert recs[0]["penalty_D"] == pytest.approx(0.5 * (recs[0]["loss_D_r1"] + recs[0]["loss_D_r2"]),
                                                 rel=1e-4)


def test_the_generator_side_of_rpgan_reads_d_on_the_real_batch():
    cfg = from_preset("folder", ["data.path=/tmp", "data.resolution=16", "model.g_width=4",
                                 "model.d_width=4", "loss.name=rpgan", "train.augment="])
    gan = GAN(cfg, (3, 16, 16), torch.device("cpu"))
    calls = []
    original = gan.D_fwd.forward
    gan.D_fwd.forward = lambda x, *a: calls.append(x.shape[0]) or original(x, *a)
    gan.train_step(torch.rand(4, 3, 16, 16) * 2 - 1)
    assert calls == [4, 4, 4, 4]  # D step: real, fake; G step: fake, real
