import json

import pytest
import torch

from ganforge.config import from_preset
from ganforge.errors import GanforgeError
from ganforge.training import GAN, gaussian_fit, load_checkpoint, train


def test_toy_gan_learns_the_gaussian(tmp_path):
    """The seed's own recipe (20 epochs, batch 8). Measured over seeds 0-4 with this engine:
    mean error 0.09-0.57 and covariance error 5-15%; an untrained G sits ~2.2 from b."""
    res = train(from_preset("gaussian2d"), tmp_path / "run", quiet=True)
    g = res.summary["gaussian"]
    assert g["mean_error"] < 0.8
    assert g["cov_rel_error"] < 0.3
    assert sum(g["true_cov"], []) == pytest.approx([1.01, 1.95, 1.95, 4.25])


def test_training_is_deterministic_on_cpu(tmp_path):
    cfg = from_preset("gaussian2d", ["train.epochs=2"])
    a = train(cfg, tmp_path / "a", quiet=True)
    b = train(from_preset("gaussian2d", ["train.epochs=2"]), tmp_path / "b", quiet=True)
    sa, sb = load_checkpoint(a.run_dir), load_checkpoint(b.run_dir)
    for k in sa["G"]:
        assert torch.equal(sa["G"][k], sb["G"][k])
    assert a.summary["gaussian"] == b.summary["gaussian"]


def test_step_reuses_fake_batch_and_freezes_D(monkeypatch):
    gan = GAN(from_preset("mnist-mlp"), (1, 28, 28), torch.device("cpu"))
    calls = []
    forward = gan.G.forward
    monkeypatch.setattr(gan.G, "forward", lambda z: calls.append(1) or forward(z))
    snapshot = {}
    d_step = gan.opt_D.step

    def spy_step(*a, **k):
        snapshot["grads"] = [p.grad.clone() for p in gan.D.parameters()]
        return d_step(*a, **k)

    monkeypatch.setattr(gan.opt_D, "step", spy_step)
    stats = gan.train_step(torch.rand(4, 1, 28, 28) * 2 - 1)
    assert len(calls) == 1, "one G forward per step: the G step reuses the fake batch"
    # The G backward added nothing to D's gradients (D was frozen), and G did get gradients.
    for before, p in zip(snapshot["grads"], gan.D.parameters()):
        assert torch.equal(before, p.grad)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gan.G.parameters())
    assert all(p.requires_grad for p in gan.D.parameters()), "D unfrozen after the step"
    assert gan.step == 1 and gan.images_seen == 4 and stats["loss_D"].requires_grad is False


def test_run_directory_contents(tmp_path):
    res = train(from_preset("gaussian2d", ["train.epochs=3"]), tmp_path / "run", quiet=True)
    d = res.run_dir
    for name in ("config.json", "metrics.jsonl", "loss_curve.png", "summary.json",
                 "checkpoint.pt", "scatter_latest.png", "samples/epoch_0003.png"):
        assert (d / name).is_file(), name
    lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[-1]["images_seen"] == 3000 and lines[-1]["examples_per_sec"] > 0
    assert json.loads((d / "config.json").read_text())["train"]["epochs"] == 3
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    assert {"G", "D", "opt_G", "opt_D", "step", "config"} <= set(state)
    assert state["step"] == 3 * 125
    summary = json.loads((d / "summary.json").read_text())
    assert set(summary["gaussian"]) >= {"fitted_mean", "fitted_cov", "true_mean", "true_cov"}


def test_gaussian_fit_is_exact_for_a_known_linear_map():
    gan = GAN(from_preset("gaussian2d"), (2,), torch.device("cpu"))
    with torch.no_grad():
        gan.G.net.weight.copy_(torch.tensor([[1.0, -0.1], [2.0, 0.5]]))  # = A^T
        gan.G.net.bias.copy_(torch.tensor([1.0, 2.0]))
    g = gaussian_fit(gan.G)
    assert g["mean_error"] < 1e-7 and g["cov_rel_error"] < 1e-7


def test_existing_run_directory_is_not_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("precious")
    with pytest.raises(GanforgeError, match="already exists"):
        train(from_preset("gaussian2d", ["train.epochs=1"]), tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "keep.txt").read_text() == "precious"
