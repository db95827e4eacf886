"""Exact resume, crash safety (SIGKILL at random moments), signals, rollbacks and alarms."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganforge.presets import from_preset
from ganforge.errors import GanforgeError
from ganforge.training import GAN, load_checkpoint, train


def _weights(run_dir):
    st = load_checkpoint(run_dir)
    return {f"{net}.{k}": v for net in ("G", "D", "G_ema") for k, v in st.get(net, {}).items()}


def _assert_identical(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


class _Crash(Exception):
    pass


def _crash_at(monkeypatch, step):
    original = GAN.train_step

    def step_or_crash(self, real, *args, **kwargs):
        if self.step == step:
            raise _Crash(f"simulated crash before step {step + 1}")
        return original(self, real, *args, **kwargs)

    monkeypatch.setattr(GAN, "train_step", step_or_crash)


@pytest.mark.parametrize("crash_step,ckpt_steps", [(230, 50), (300, 0)])
def test_resume_is_bit_identical_on_cpu(tmp_path, monkeypatch, crash_step, ckpt_steps):
    """Mid-epoch checkpoint (step 200) and epoch-boundary checkpoint (step 250)."""
    over = ["train.epochs=4", f"train.checkpoint_steps={ckpt_steps}", "train.device=cpu"]
    full = train(from_preset("gaussian2d", over), tmp_path / "full", quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, crash_step)
        with pytest.raises(_Crash):
            train(from_preset("gaussian2d", over), tmp_path / "cut", quiet=True)
    st = load_checkpoint(tmp_path / "cut")
    assert st["step"] == (200 if ckpt_steps else 250)
    resumed = train(from_preset("gaussian2d", over), tmp_path / "cut", quiet=True, resume=True)
    _assert_identical(full.run_dir, resumed.run_dir)
    assert resumed.summary["steps"] == full.summary["steps"] == 500
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]
    ra = [json.loads(x)["loss_D"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x)["loss_D"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert ra == rb, "epoch statistics survive a mid-epoch resume"


MODERN = ["model.conditional=true", "model.d_norm=none", "model.spectral_norm_d=true",
          "loss.name=hinge", "loss.r1_gamma=1", "loss.r1_every=2", "train.ema_kimg=0.01",
          "train.augment=translation,cutout,color", "train.lr_schedule=linear"]


@pytest.mark.parametrize("recipe", [[], MODERN], ids=["d2l", "modern"])
def test_resume_restores_batchnorm_and_optimizer_state(tmp_path, monkeypatch, idx_dir, recipe):
    """BatchNorm statistics and Adam moments (d2l recipe); G_ema, spectral-norm vectors,
    DiffAugment's random draws, lazy R1's phase and the LR schedule (modern recipe)."""
    over = [f"data.path={idx_dir.parent}", "train.epochs=2", "train.batch_size=16",
            "train.checkpoint_steps=3", "train.device=cpu", *recipe]
    full = train(from_preset("mnist-dcgan", over + ["model.g_width=4", "model.d_width=4"]),
                 tmp_path / "full", quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, 5)
        with pytest.raises(_Crash):
            train(from_preset("mnist-dcgan", over + ["model.g_width=4", "model.d_width=4"]),
                  tmp_path / "cut", quiet=True)
    train(from_preset("mnist-dcgan", over + ["model.g_width=4", "model.d_width=4"]),
          tmp_path / "cut", quiet=True, resume=True)
    _assert_identical(full.run_dir, tmp_path / "cut")
    a, b = load_checkpoint(full.run_dir), load_checkpoint(tmp_path / "cut")
    assert torch.equal(a["opt_G"]["state"][0]["exp_avg"], b["opt_G"]["state"][0]["exp_avg"])
    assert ("G_ema" in a) == bool(recipe)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda_continues_from_the_checkpoint(tmp_path, monkeypatch, idx_dir):
    """A checkpoint loaded onto the GPU holds RNG states there too; resuming must still work
    (GPU kernels are not bit-reproducible, so this checks counters and closeness, not equality)."""
    over = [f"data.path={idx_dir.parent}", "train.epochs=2", "train.batch_size=16",
            "train.checkpoint_steps=3", "train.device=cuda", "model.g_width=4",
            "model.d_width=4", "train.ema_kimg=1", "train.augment=translation"]
    with monkeypatch.context() as m:
        _crash_at(m, 5)
        with pytest.raises(_Crash):
            train(from_preset("mnist-dcgan", over), tmp_path / "cut", quiet=True)
    res = train(from_preset("mnist-dcgan", over), tmp_path / "cut", quiet=True, resume=True)
    assert res.summary["steps"] == 8 and load_checkpoint(tmp_path / "cut")["step"] == 8
    assert all(torch.isfinite(v).all() for v in _weights(tmp_path / "cut").values())


def _cli(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ganforge", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    run = tmp_path / "run"
    over = ["train.epochs=12", "train.checkpoint_steps=20", "--quiet"]
    ref = _cli(["train", "gaussian2d", "--out", str(tmp_path / "ref"), *over])
    assert ref.wait(timeout=300) == 0
    rng = random.Random(1)
    kills = 0
    for attempt in range(4):
        args = (["train", "--resume", str(run), *over] if (run / "checkpoint.pt").exists()
                else ["train", "gaussian2d", "--out", str(run), "--overwrite", *over])
        p = _cli(args)
        time.sleep(rng.uniform(1.5, 3.5))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=60)
        if (run / "checkpoint.pt").exists():
            st = load_checkpoint(run)  # always loadable, whatever the moment of the kill
            assert st["step"] % 20 == 0 or st["step"] % 125 == 0
    assert kills >= 2, "the test must actually interrupt training"
    p = _cli(["train", "--resume", str(run), *over] if (run / "checkpoint.pt").exists()
             else ["train", "gaussian2d", "--out", str(run), "--overwrite", *over])
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert json.loads((run / "summary.json").read_text())["steps"] == 12 * 125
    _assert_identical(tmp_path / "ref", run)
    assert not list(run.glob(".checkpoint.pt.*")), "resume cleans temporary files of a kill"


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    p = _cli(["train", "gaussian2d", "--out", str(run), "train.epochs=200", "--quiet"])
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    st = load_checkpoint(run)
    assert st["step"] > 0 and st["epoch"] < 200


def test_nan_rolls_back_with_lower_learning_rate(tmp_path, monkeypatch):
    original = GAN.train_step
    hits = []

    def poisoned(self, real, *args, **kwargs):
        out = original(self, real, *args, **kwargs)
        if self.step == 60 and not hits:
            hits.append(1)
            out.loss_D = torch.full_like(out.loss_D, float("nan"))
        return out

    monkeypatch.setattr(GAN, "train_step", poisoned)
    res = train(from_preset("gaussian2d", ["train.epochs=2", "train.checkpoint_steps=25"]),
                tmp_path / "r", quiet=True)
    assert res.summary["rollbacks"] == 1 and "rollback" in res.summary["alarms"]
    rec = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["lr_D"] == pytest.approx(0.025) and rec["lr_G"] == pytest.approx(0.0025)
    alarm = json.loads((tmp_path / "r" / "alarms.jsonl").read_text().splitlines()[0])
    assert "rolled back to step 50" in alarm["message"]


def test_nan_stops_after_max_retries(tmp_path, monkeypatch):
    original = GAN.train_step

    def always_nan(self, real, *args, **kwargs):
        out = original(self, real, *args, **kwargs)
        out.loss_G = torch.full_like(out.loss_G, float("inf"))
        return out

    monkeypatch.setattr(GAN, "train_step", always_nan)
    with pytest.raises(GanforgeError, match="rollback"):
        train(from_preset("gaussian2d", ["train.epochs=1", "health.max_retries=2"]),
              tmp_path / "r", quiet=True)
    assert load_checkpoint(tmp_path / "r")["step"] == 0  # the last good checkpoint survives


def _alarms(tmp_path, idx_dir, *over):
    res = train(from_preset("mnist-mlp", [f"data.path={idx_dir.parent}", "train.epochs=3",
                                          "train.batch_size=16", "health.window=10",
                                          "health.warmup_epochs=0", "health.warmup_kimg=0",
                                          *over]),
                tmp_path / "r", quiet=True)
    return res.summary["alarms"], [json.loads(x) for x in
                                   (tmp_path / "r" / "alarms.jsonl").read_text().splitlines()]


def test_alarm_d_overpowering(tmp_path, idx_dir):
    kinds, recs = _alarms(tmp_path, idx_dir, "optim_G.lr=1e-7", "optim_D.lr=1e-3")
    assert "d_overpowering" in kinds and "lower optim_D.lr" in recs[0]["message"]


def test_alarm_mode_collapse(tmp_path, idx_dir):
    kinds, _ = _alarms(tmp_path, idx_dir, "optim_G.lr=5", "optim_D.lr=1e-3")
    assert kinds.count("mode_collapse") == 1  # raised once, not every epoch


def test_alarm_g_loss_divergence(tmp_path, idx_dir):
    kinds, _ = _alarms(tmp_path, idx_dir, "optim_G.lr=1e-7", "optim_D.lr=1e-3",
                       "health.g_loss_limit=3")
    assert "g_loss_divergence" in kinds


def test_no_alarm_during_warmup(tmp_path, idx_dir):
    res = train(from_preset("mnist-mlp", [f"data.path={idx_dir.parent}", "train.epochs=1",
                                          "train.batch_size=16", "health.window=2",
                                          "optim_G.lr=5", "optim_D.lr=1e-3"]),
                tmp_path / "r", quiet=True)
    assert res.summary["alarms"] == []  # the same provocation alarms after the warm-up epoch


def test_resume_overrides_of_the_optimizer_take_effect(tmp_path):
    """The optimizer's saved state must not bring back the old rate: the divergence message's
    own advice (lower optim_D.lr and resume) has to work."""
    from ganforge.cli import main

    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1"]) == 0
    assert main(["train", "--resume", str(run), "--quiet", "train.epochs=2", "optim_D.lr=0.01",
                 "optim_G.beta2=0.9"]) == 0
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["epoch"] == 2 and rec["lr_D"] == pytest.approx(0.01) and rec["lr_G"] == 0.005
    st = load_checkpoint(run)
    assert st["opt_D"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    assert tuple(st["opt_G"]["param_groups"][0]["betas"]) == (0.9, 0.9)


def test_batch_size_change_mid_epoch_is_refused_before_anything_changes(tmp_path, capsys):
    from ganforge.cli import main

    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1",
                 "train.checkpoint_steps=50"]) == 0
    st = load_checkpoint(run)
    st["position"]["step_in_epoch"] = 50  # as if killed at step 50 of epoch 2
    st["epoch"] = 1
    torch.save(st, run / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(run), "train.batch_size=16", "train.epochs=2"]) == 2
    assert "middle of epoch 2" in capsys.readouterr().err
    assert before == {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


@pytest.mark.parametrize("optim", ["rmsprop", "sgd"])
def test_resume_of_an_rmsprop_or_sgd_run_is_bit_identical(tmp_path, optim):
    """RMSprop has no momentum buffer unless built with one; a resume must not give it one
    (the tutorial's preset trains D with RMSprop)."""
    from ganforge.cli import main

    over = [f"optim_D.name={optim}", "optim_D.lr=0.01", "--quiet"]
    assert main(["train", "gaussian2d", "--out", str(tmp_path / "a"), "train.epochs=2", *over]) == 0
    assert main(["train", "gaussian2d", "--out", str(tmp_path / "b"), "train.epochs=1", *over]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "train.epochs=2", "--quiet"]) == 0
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
