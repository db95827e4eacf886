"""The FastGAN-style pair: shapes at every resolution, the skip-layer excitation by hand, the
self-supervised reconstruction, deterministic sampling, and training through the CLI."""

import pytest
import torch

from ganforge.cli import main
from ganforge.io import load_checkpoint
from ganforge.models.blocks import ConditionalBatchNorm2d
from ganforge.models.fastgan import (FastGANDiscriminator, FastGANGenerator, GLU,
                                     SkipExcitation)

from .conftest import write_images


@pytest.mark.parametrize("res", [16, 32, 64, 128, 256])
def test_output_shapes_at_each_resolution(res):
    G = FastGANGenerator(32, 3, res, width=4)
    D = FastGANDiscriminator(3, res, width=4)
    x = G(torch.randn(2, 32))
    assert x.shape == (2, 3, res, res) and x.abs().max() <= 1
    logits, terms = D(x, aux=True)
    recon = terms["recon"]
    assert logits.shape == (2, 1) and recon.dim() == 0 and torch.isfinite(recon)
    assert D(x).shape == (2, 1)


def test_resolution_outside_the_family_is_refused():
    for res in (8, 48, 512):
        with pytest.raises(ValueError, match="power of two in \\[16, 256\\]"):
            FastGANGenerator(8, 3, res)


def test_glu_and_skip_excitation_by_hand():
    x = torch.tensor([[[[2.0]], [[0.0]]]])  # channels (a, b) = (2, 0): 2 * sigmoid(0) = 1
    assert GLU()(x).item() == pytest.approx(1.0)
    se = SkipExcitation(small_ch=2, big_ch=3)
    torch.nn.init.zeros_(se.net[3].weight)  # the last 1x1 conv: every gate is sigmoid(0) = 0.5
    big = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(se(torch.randn(1, 2, 4, 4), big), big * 0.5)


def test_reconstruction_targets_the_input_at_half_resolution():
    D = FastGANDiscriminator(3, 32, width=4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    recon = D(x, aux=True)[1]["recon"]
    feat = D.stem(x)
    feat8 = feat if feat.shape[-1] == 8 else D.downs[0](feat)
    target = torch.nn.functional.avg_pool2d(x, 2)
    assert recon.item() == pytest.approx(torch.mean((D.decoder(feat8) - target) ** 2).item(),
                                         rel=1e-5)
    recon.backward()
    assert D.decoder.net[1].weight.grad.abs().sum() > 0, "the decoder learns from it"


def test_conditional_and_eval_mode_sampling_is_deterministic():
    G = FastGANGenerator(16, 3, 32, width=4, num_classes=3)
    for m in G.modules():  # per-class shifts start at 0; give the classes something to differ by
        if isinstance(m, ConditionalBatchNorm2d):
            torch.nn.init.normal_(m.beta.weight)
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    G.train()
    G(z, y)  # running statistics
    G.eval()
    a, b = G(z, y), G(z, y)
    torch.testing.assert_close(a, b)
    assert not torch.equal(G(z, torch.tensor([1, 1, 1, 1])), a)
    with pytest.raises(ValueError, match="class-conditional"):
        G(z)


def test_fastgan_trains_through_the_cli_with_ada_and_resumes(tmp_path):
    folder = write_images(tmp_path / "imgs", 16, (16, 16), classes=("a", "b"))
    run = tmp_path / "run"
    args = ["pokemon-best", "data.name=folder", f"data.path={folder}", "model.arch=fastgan",
            "model.g_width=4", "model.d_width=4", "train.augment=", "train.ada=true",
            "model.conditional=true", "train.batch_size=8", "report.tensorboard=off"]
    assert main(["train", *args, "train.epochs=2", "--out", str(run), "--quiet"]) == 0
    assert main(["train", "--resume", str(run), "train.epochs=3", "--quiet"]) == 0
    state = load_checkpoint(run)
    assert state["epoch"] == 3 and "ada" in state
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "g")]) == 0
