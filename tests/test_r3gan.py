"""The R3GAN-style pair: shapes at every resolution, the fix-up initialisation (a fresh residual
block is the identity), the low-pass resampling, conditioning, and a run with its objective
(RpGAN + R1 + R2) that resumes exactly."""

import json
import math
from pathlib import Path

import pytest
import torch

from ganforge.models import build_models
from ganforge.models.r3gan import LRELU_GAIN, Resample, ResidualBlock
from ganforge.presets import from_preset
from ganforge.training import train

from .conftest import write_images
from .test_resume import assert_resumes_exactly

R3 = ["model.arch=r3gan", "model.g_width=16", "model.d_width=16", "model.blocks=1",
      "loss.name=rpgan", "loss.r1_gamma=1", "loss.r2_gamma=1", "loss.r1_every=1",
      "train.augment="]


def _cfg(res, *extra):
    return from_preset("folder", ["data.path=/tmp", f"data.resolution={res}", "data.channels=3",
                                  *R3, *extra])


@pytest.mark.parametrize("res", [16, 32, 64, 128, 256])
def test_shapes_at_each_resolution(res):
    cfg = _cfg(res)
    G, D = build_models(cfg.model, (3, res, res), 0)
    x = G(torch.randn(2, cfg.model.z_dim))
    assert x.shape == (2, 3, res, res) and D(x).shape == (2, 1)
    stages = len(G.stages)
    assert stages == res.bit_length() - 2 and len(D.input_blocks()) == stages - 1


def test_conditional_pair_uses_the_labels():
    cfg = _cfg(16, "model.conditional=true")
    G, D = build_models(cfg.model, (3, 16, 16), 5)
    z = torch.randn(3, cfg.model.z_dim)
    a, b = G(z, torch.tensor([0, 1, 2])), G(z, torch.tensor([4, 4, 4]))
    assert a.shape == (3, 3, 16, 16) and not torch.allclose(a, b)
    assert D(a, torch.tensor([0, 1, 2])).shape == (3, 1)
    with pytest.raises(ValueError, match="pass labels"):
        G(z)


def test_a_fresh_residual_block_is_the_identity_and_its_gain_follows_the_block_count():
    x = torch.randn(2, 32, 8, 8)
    block = ResidualBlock(32, 2, 16, total_blocks=16)
    assert torch.equal(block(x), x) and not block.narrow.weight.any()
    # the widening 1x1 convolution: std = gain * 16^(-1/4) / sqrt(fan_in 32)
    expected = LRELU_GAIN * 16 ** -0.25 / 32 ** 0.5
    assert block.widen.weight.std().item() == pytest.approx(expected, rel=0.05)
    assert block.grouped.groups == 64 // 16  # 16 channels per group of the 64 widened ones


def test_resampling_is_low_pass_and_keeps_a_constant():
    x = torch.full((1, 2, 8, 8), 3.0)
    up, down = Resample(2, 2, up=True), Resample(2, 2, up=False)
    assert up(x).shape == (1, 2, 16, 16) and down(x).shape == (1, 2, 4, 4)
    assert torch.allclose(up(x)[..., 2:-2, 2:-2], x.new_full((1, 2, 12, 12), 3.0))
    assert torch.allclose(down(x)[..., 1:-1, 1:-1], x.new_full((1, 2, 2, 2), 3.0))
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1  # Nyquist
    assert down(checker.expand(1, 2, 8, 8))[..., 1:-1, 1:-1].abs().max() < 1e-6


@pytest.mark.parametrize("up", [True, False])
@pytest.mark.parametrize("widths", [(3, 3), (4, 6)])
def test_separable_resampling_equals_the_depthwise_convolution(up, widths):
    torch.manual_seed(0)
    r = Resample(*widths, up=up)
    x = torch.randn(2, widths[0], 8, 6, requires_grad=True)  # non-square, borders included
    fast, ref = r(x), r.reference(x)
    assert fast.shape == ref.shape == (2, widths[1], *((16, 12) if up else (4, 3)))
    assert torch.allclose(fast, ref, atol=1e-6)
    g_fast, = torch.autograd.grad(fast.square().sum(), x)
    g_ref, = torch.autograd.grad(ref.square().sum(), x)
    assert torch.allclose(g_fast, g_ref, atol=1e-5)


def test_an_r3gan_run_resumes_bit_identically(tmp_path, monkeypatch):
    folder = write_images(tmp_path / "imgs", 8, (16, 16))
    cfg = from_preset("folder", [f"data.path={folder}", "data.resolution=16", *R3,
                                 "train.epochs=3", "train.batch_size=4", "train.max_minutes=0",
                                 "train.checkpoint_steps=2", "train.checkpoint_minutes=0",
                                 "report.tensorboard=off"])
    assert_resumes_exactly(cfg, tmp_path, monkeypatch, crash_before=3)


@pytest.mark.parametrize("preset", ["stacked-r3gan", "folder-r3gan"])
def test_the_r3gan_presets_take_a_few_steps_from_the_command_line(tmp_path, idx_dir, preset):
    from ganforge.cli import main
    from ganforge.training import load_checkpoint

    data = [f"data.path={idx_dir}"] if preset.startswith("stacked") else \
        [f"data.path={write_images(tmp_path / 'imgs', 16, (20, 20))}"]
    run = tmp_path / "run"
    assert main(["train", preset, "--out", str(run), "--quiet", *data, "train.epochs=2",
                 "train.max_minutes=0", "model.g_width=16", "model.d_width=16",
                 "train.batch_size=8", "data.limit=16", "report.tensorboard=off"]) == 0
    st = load_checkpoint(run)
    assert st["step"] == 4 and st["config"]["model"]["arch"] == "r3gan"
    assert st["sample_shape"] == [3, 32, 32]  # stacked digits padded to 32; the folder's 20 px -> 32
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["beta2_G"] > 0.9 and recs[-1]["lr_G"] < 2e-4
    assert recs[0]["loss_D_r1"] > 0 and recs[0]["loss_D_r2"] > 0  # lazy: at step 0 of every 4


def test_an_r3gan_run_samples_exports_evaluates_and_reports(tmp_path):
    from PIL import Image

    from ganforge.evaluate import evaluate
    from ganforge.export import export_generator
    from ganforge.generator import load_generator
    from ganforge.report.html import write_report
    from ganforge.sample import sample

    folder = write_images(tmp_path / "imgs", 8, (16, 16))
    run = tmp_path / "run"
    train(from_preset("folder-r3gan", [f"data.path={folder}", "data.resolution=16",
                                       "model.g_width=16", "model.d_width=16", "train.epochs=2",
                                       "train.max_minutes=0", "train.batch_size=4",
                                       "report.tensorboard=off"]), run, quiet=True)
    sample(run, 6, tmp_path / "s.png", truncation=0.7)
    with Image.open(tmp_path / "s.png") as img:
        assert img.width > 0
    path, _ = export_generator(run, tmp_path / "g.safetensors")
    a, b = load_generator(run).G, load_generator(path).G
    z = torch.randn(3, a.z_dim)
    assert torch.equal(a(z), b(z))
    res = evaluate(run, metrics=("kid",), n=8, progress=False)
    assert math.isfinite(res["kid"]) and res["n_generated"] == 8
    page = Path(write_report([run])).read_text()
    assert "R3GAN-style pair" in page and "D: r1" in page and "D: r2" in page  # the loss terms
