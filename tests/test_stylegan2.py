"""The StyleGAN2-style architecture and adaptive augmentation."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.augment import AdaptiveAugment, ada_augment, xflip
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.io import load_checkpoint
from ganforge.models import build_models
from ganforge.models.stylegan2 import modulated_conv2d
from ganforge.presets import from_preset
from ganforge.training import train

from .conftest import write_images


def test_modulated_conv_by_hand():
    """One pixel, one input and one output channel, 1x1 kernel: the modulated kernel is
    w * s = 3 * 0.5 = 1.5; demodulated it is 1.5 / |1.5| = 1, so the output is the input."""
    x = torch.tensor([[[[2.0]]]])
    w = torch.tensor([[[[3.0]]]])
    s = torch.tensor([[0.5]])
    assert modulated_conv2d(x, w, s, demodulate=False).item() == pytest.approx(3.0)
    assert modulated_conv2d(x, w, s, demodulate=True).item() == pytest.approx(2.0, rel=1e-6)


def test_modulated_conv_equals_per_sample_kernels():
    """The input-scaling form equals convolving each sample with its own modulated,
    demodulated kernel, the definition in the paper."""
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 4, 5, 5), torch.randn(6, 4, 3, 3), torch.rand(3, 4) + 0.5
    out = modulated_conv2d(x, w, s)
    for n in range(3):
        k = w * s[n][None, :, None, None]
        k = k / k.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[n:n + 1], F.conv2d(x[n:n + 1], k, padding=1),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("res", [32, 64, 128, 256])
def test_shapes_at_each_resolution(res):
    cfg = ModelConfig(arch="stylegan2", z_dim=16, g_width=2, d_width=2, w_dim=16,
                      mapping_layers=2)
    G, D = build_models(cfg, (3, res, res), 0)
    z = torch.randn(2, 16)
    x = G(z)
    assert x.shape == (2, 3, res, res) and D(x).shape == (2, 1)
    G.eval()
    y = G(z)
    assert y.abs().max() <= 1 and torch.equal(y, G(z)), "eval: fixed noise, same latent same image"


def test_conditional_and_truncation_in_w_space():
    cfg = ModelConfig(arch="stylegan2", z_dim=8, g_width=2, d_width=2, w_dim=8, mapping_layers=2,
                      conditional=True)
    G, D = build_models(cfg, (1, 16, 16), 3)
    y = torch.tensor([0, 1, 2, 0])
    assert G(torch.randn(4, 8), y).shape == (4, 1, 16, 16) and D(G(torch.randn(4, 8), y), y).shape == (4, 1)
    with pytest.raises(ValueError, match="class-conditional"):
        G(torch.randn(4, 8))
    G.train()
    for _ in range(5):
        G(torch.randn(16, 8), torch.randint(0, 3, (16,)))  # tracks w_avg
    G.eval()
    z = torch.randn(4, 8)
    G.truncation_psi = 0.0
    collapsed = G(z, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(collapsed, collapsed[:1].expand_as(collapsed), atol=1e-6), \
        "psi = 0: every latent maps to w_avg"


def test_ada_probability_moves_with_the_overfitting_signal():
    ada = AdaptiveAugment(torch.device("cpu"), target=0.6, kimg=1.0)
    for _ in range(4):
        ada.observe(torch.full((8, 1), 3.0))  # D sure of every real image: memorising
    ada.adjust(32)
    assert ada.p_value == pytest.approx(0.032) and ada.last_rt == 1.0
    for _ in range(10):
        ada.observe(torch.tensor([[1.0], [-1.0]]))  # r_t = 0 < target: p falls
        ada.adjust(100)
    assert ada.p_value == 0.0
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(ada(x), x), "p = 0 leaves the images untouched"


def test_ada_transformations_are_differentiable_and_keep_shape():
    x = (torch.rand(5, 3, 16, 16) * 2 - 1).requires_grad_()
    y = ada_augment(x, torch.tensor(1.0))
    y.square().sum().backward()
    assert y.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0
    assert (ada_augment(x, torch.tensor(0.0)) - x).abs().max() < 1e-5
    flipped = xflip(torch.arange(4.0).reshape(1, 1, 1, 4), p=1.0)
    assert flipped.flatten().tolist() == [3.0, 2.0, 1.0, 0.0]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("imgs"), 8, (24, 20))


def _over(root, *extra):
    return [f"data.path={root}", "data.resolution=16", "model.g_width=2", "model.d_width=2",
            "model.w_dim=16", "model.z_dim=16", "train.batch_size=8", "train.max_minutes=0",
            "report.tensorboard=off", "train.ada_kimg=0.5", *extra]


def test_p_rises_when_d_memorises_a_tiny_folder(tmp_path, tiny_folder):
    res = train(from_preset("folder-stylegan2", _over(tiny_folder, "train.epochs=40")), tmp_path / "r",
                quiet=True)
    recs = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    # D is sure of the 8 real images (r_t above the 0.6 target), so p climbs until the
    # augmentations bring r_t back to the target, where it then hovers
    assert max(r["ada_rt"] for r in recs if r["ada_rt"] is not None) > 0.6
    assert recs[-1]["augment_p"] > 0.1 and recs[-1]["augment_p"] > recs[2]["augment_p"]
    assert load_checkpoint(res.run_dir)["ada"]["p"] > 0


def test_resume_with_ada_is_bit_identical(tmp_path, tiny_folder):
    over = _over(tiny_folder, "train.checkpoint_every=1", "train.ada_kimg=0.1")
    full = train(from_preset("folder-stylegan2", over + ["train.epochs=16"]), tmp_path / "full", quiet=True)
    recs = [json.loads(x) for x in (full.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r["augment_p"] > 0 for r in recs[6:]), "ADA was active after the resume point"
    train(from_preset("folder-stylegan2", over + ["train.epochs=7"]), tmp_path / "part", quiet=True)
    assert main(["train", "--resume", str(tmp_path / "part"), "train.epochs=16", "--quiet"]) == 0
    a, b = load_checkpoint(full.run_dir), load_checkpoint(tmp_path / "part")
    assert torch.equal(a["ada"]["p"], b["ada"]["p"]) and torch.equal(a["ada"]["signs"], b["ada"]["signs"])
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


@pytest.mark.parametrize("preset", ["folder", "folder-stylegan2"])
def test_folder_preset_reads_the_resolution_from_the_images(tmp_path, tiny_folder, preset):
    over = [o for o in _over(tiny_folder, "train.epochs=1") if not o.startswith("data.resolution")
            and (preset != "folder" or "w_dim" not in o)]  # w_dim is StyleGAN2's
    assert main(["train", preset, "--out", str(tmp_path / "r"), "--quiet", *over]) == 0
    # 24x20 images: shorter side 20, as a power of two 16, raised to the minimum of 32
    assert json.loads((tmp_path / "r" / "resolved.json").read_text())["sample_shape"] == [3, 32, 32]
    assert main(["sample", str(tmp_path / "r"), "--n", "4", "--truncation", "0.5",
                 "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 32, 32, 3)
    if preset == "folder-stylegan2":  # psi in w-space: at most 1
        assert main(["sample", str(tmp_path / "r"), "--truncation", "2",
                     "--out", str(tmp_path / "t.png")]) == 2
    assert math.isfinite(json.loads((tmp_path / "r" / "summary.json").read_text())["final_loss_D"])


def test_folder_preset_asks_for_a_folder(tmp_path, capsys):
    assert main(["train", "folder", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "data.path must name an image folder" in err and "Traceback" not in err
    assert main(["train", "folder-stylegan2", "data.path=x", "train.augment=color"]) == 2
    assert "choose one" in capsys.readouterr().err


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="needs a CUDA GPU"))])
def test_r1_with_adaptive_augmentation_at_full_strength(device):
    """R1 steps with ADA's resampling on: the penalty is taken at the augmented images D sees,
    so no second derivative of the resampling is needed (CUDA has none)."""
    from ganforge.training import GAN

    cfg = from_preset("folder-stylegan2", ["data.path=unused", "data.resolution=16", "model.g_width=2",
                                 "model.d_width=2", "model.w_dim=16", "model.z_dim=16",
                                 "loss.r1_every=1", "train.precision=fp32"])
    gan = GAN(cfg, (3, 16, 16), torch.device(device))
    gan.ada.p.fill_(1.0)
    gan.ada.p_value = 1.0
    torch.manual_seed(0)
    real = torch.rand(4, 3, 16, 16, device=device) * 2 - 1
    before = [p.detach().clone() for p in gan.D.parameters()]
    stats = gan.train_step(real)
    assert stats.penalty > 0 and torch.isfinite(stats.loss_D)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.D.parameters()))
