"""Resume has one owner, ``train(resume=RUN, overrides=[...])``: every preset resumed from a
mid-run checkpoint ends bit-identical to its uninterrupted run, and an override of each optimizer
key on resume equals the uninterrupted run with that value set at the same step."""

import json

import pytest
import torch

from ganforge.config import Config
from ganforge.errors import GanforgeError
from ganforge.presets import PRESETS, from_preset
from ganforge.training import GAN, load_checkpoint, train
from ganforge.validation import OPTIMIZER_KEYS

from .conftest import write_images

CUT = 5  # the simulated crash comes before this step; checkpoints every 2 steps


class _Crash(Exception):
    pass


def _states(run_dir):
    st = load_checkpoint(run_dir)
    return st, {f"{net}.{k}": v for net in ("G", "D", "G_ema") for k, v in st.get(net, {}).items()}


def _assert_same_run(a, b):
    (sa, wa), (sb, wb) = _states(a), _states(b)
    assert wa.keys() == wb.keys() and sa["step"] == sb["step"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for opt in ("opt_G", "opt_D"):
        assert sa[opt]["param_groups"] == sb[opt]["param_groups"]
        for i, state in sa[opt]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb[opt]["state"][i][name])), \
                    (opt, i, name)
    la, lb = ([json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()] for r in (a, b))
    drop = ("examples_per_sec", "epoch_seconds", "elapsed_seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in la] == \
        [{k: v for k, v in r.items() if k not in drop} for r in lb]


def _crash_at(monkeypatch, step, change=None):
    """Crash before ``step``; or (``change``) call ``change(gan)`` before it and go on."""
    original = GAN.train_step

    def patched(self, real, *args, **kwargs):
        if self.step == step:
            if change is None:
                raise _Crash(f"before step {step + 1}")
            change(self)
        return original(self, real, *args, **kwargs)

    monkeypatch.setattr(GAN, "train_step", patched)


def assert_resumes_exactly(cfg, tmp_path, monkeypatch, crash_before: int) -> None:
    """``cfg`` trained into tmp_path/full, and into tmp_path/cut crashed before step
    ``crash_before`` then resumed: the two runs are bit-identical."""
    train(cfg, tmp_path / "full", quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, crash_before)
        with pytest.raises(_Crash):
            train(cfg, tmp_path / "cut", quiet=True)
    train(resume=tmp_path / "cut", quiet=True)
    _assert_same_run(tmp_path / "full", tmp_path / "cut")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("resume") / "imgs", 12, (16, 16), ("a", "b"))


def _tiny(name, folder, idx_dir):
    """The preset ``name`` on a budget of a few steps (its recipe kept: architecture, loss,
    optimizers, augmentation, EMA, schedule)."""
    arch = PRESETS[name].build().model.arch
    over = ["train.epochs=2", "train.max_minutes=0", "train.checkpoint_steps=2",
            "train.checkpoint_minutes=0", "report.tensorboard=off", "eval.every=0",
            "train.device=cpu", "health.warmup_epochs=9"]
    data = PRESETS[name].build().data.name
    if arch == "toy":
        return over + ["data.num_points=64", "train.batch_size=8"]
    if data in ("mnist", "fashion-mnist"):
        over += [f"data.path={idx_dir}", "data.limit=24", "train.batch_size=8"]
    else:
        over += ["data.name=folder", f"data.path={folder}", "data.resolution=16",
                 "train.batch_size=8"]
    if arch == "mlp":
        return over
    over += ["model.g_width=2", "model.d_width=2"] if arch == "stylegan2" else \
        ["model.g_width=4", "model.d_width=4"]
    return over + (["model.w_dim=16", "train.ada_kimg=0.1"] if arch == "stylegan2" else [])


# Every preset, and FastGAN (no preset of its own) with both of its D terms.
FASTGAN = ["model.arch=fastgan", "train.augment=translation", "loss.name=wgan-gp"]


# The default suite resumes one preset per recipe family (architecture, loss and optimizers);
# the presets sharing a family's recipe with another data set run in the slow suite.
DEFAULT = ("gaussian2d", "mnist-mlp", "mnist-dcgan", "fashion-best", "folder-stylegan2")
CASES_PRESETS = [pytest.param(n, marks=() if n in DEFAULT else pytest.mark.slow)
                 for n in PRESETS if not PRESETS[n].needs] + ["folder+fastgan"]
# (a preset that starts from another run, finetune, resumes in tests/test_finetune.py)


@pytest.mark.parametrize("name", CASES_PRESETS)
def test_every_preset_resumes_bit_identically(tmp_path, monkeypatch, folder, idx_dir, name):
    name, _, variant = name.partition("+")
    over = _tiny(name, folder, idx_dir) + (FASTGAN if variant else [])
    full = train(from_preset(name, over), tmp_path / "full", quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, CUT)
        with pytest.raises(_Crash):
            train(from_preset(name, over), tmp_path / "cut", quiet=True)
    assert load_checkpoint(tmp_path / "cut")["step"] == CUT - 1  # resumed from step 4
    resumed = train(resume=tmp_path / "cut", quiet=True)
    assert resumed.summary["steps"] == full.summary["steps"] > CUT
    _assert_same_run(full.run_dir, tmp_path / "cut")


# Every optimizer the config offers, and a new value for each key it reads.
OPTIMIZERS = {"adam": [], "rmsprop": [], "rmsprop-momentum": ["optim_D.momentum=0.5"],
              "sgd": [], "sgd-momentum": ["optim_D.momentum=0.5"]}
NEW = {"lr": 0.003, "beta1": 0.3, "beta2": 0.9, "eps": 1e-3, "alpha": 0.5, "momentum": 0.8}
CASES = [(opt, key) for opt in OPTIMIZERS for key in [None, *OPTIMIZER_KEYS[opt.split("-")[0]]]]


def _set_in_groups(optimizer, key, value):
    """What the uninterrupted reference does at the resume point: the new value in place."""
    for group in optimizer.param_groups:
        if key in ("beta1", "beta2"):
            b1, b2 = group["betas"]
            group["betas"] = (value, b2) if key == "beta1" else (b1, value)
        else:
            group[key] = value
        if key == "momentum" and "alpha" in group:  # RMSprop: momentum starts from zero
            for p in group["params"]:
                optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))


@pytest.mark.parametrize("opt,key", CASES, ids=[f"{o}-{k or 'none'}" for o, k in CASES])
def test_an_override_of_each_optimizer_key_on_resume(tmp_path, monkeypatch, opt, key):
    """Resume with ``optim_D.<key>=v`` == the uninterrupted run with v set before the same step;
    the saved optimizer then holds v (docs/robustness.md's table)."""
    over = ["data.num_points=64", "train.epochs=2", "train.checkpoint_steps=2",
            "report.tensorboard=off", f"optim_D.name={opt.split('-')[0]}", "optim_D.lr=0.01",
            *OPTIMIZERS[opt]]
    change = [] if key is None else [f"optim_D.{key}={NEW[key]}"]
    with monkeypatch.context() as m:
        if key is not None:  # at the step the resume starts from (the last checkpoint's)
            _crash_at(m, CUT - 1, lambda gan: _set_in_groups(gan.opt_D, key, NEW[key]))
        ref = train(from_preset("gaussian2d", over), tmp_path / "ref", quiet=True)
    with monkeypatch.context() as m:
        _crash_at(m, CUT)
        with pytest.raises(_Crash):
            train(from_preset("gaussian2d", over), tmp_path / "cut", quiet=True)
    train(resume=tmp_path / "cut", overrides=change, quiet=True)
    st, _ = _states(tmp_path / "cut")
    _, w_ref = _states(ref.run_dir)
    _, w_cut = _states(tmp_path / "cut")
    assert all(torch.equal(w_ref[k], w_cut[k]) for k in w_ref)
    if key is not None:
        group = st["opt_D"]["param_groups"][0]
        got = group["betas"][("beta1", "beta2").index(key)] if key.startswith("beta") else group[key]
        assert got == NEW[key]
        assert Config.from_dict(st["config"]).optim_D.__dict__[key] == NEW[key]


def test_resume_is_refused_before_any_file_changes(tmp_path):
    over = ["data.num_points=64", "train.epochs=1", "report.tensorboard=off"]
    run = train(from_preset("gaussian2d", over), tmp_path / "r", quiet=True).run_dir
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(GanforgeError, match="cannot continue from the checkpoint's adam"):
        train(resume=run, overrides=["optim_D.name=sgd", "train.epochs=2"], quiet=True)
    with pytest.raises(GanforgeError, match="unknown config key"):
        train(resume=run, overrides=["train.epoch=2"], quiet=True)
    assert before == {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    # the library call does what the CLI does: the saved config, the overrides on top
    res = train(resume=run / "checkpoint.pt", overrides=["train.epochs=2"], quiet=True)
    assert res.summary["epochs"] == 2 and res.run_dir == run
