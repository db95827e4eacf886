"""The speed switches train correctly (their speed is measured in benchmarks/, not here)."""

import pytest
import torch

from ganforge.config import from_preset
from ganforge.training import GAN, load_checkpoint, train


def _gan(*over):
    cfg = from_preset("mnist-dcgan", ["model.g_width=4", "model.d_width=4", *over])
    return GAN(cfg, (1, 32, 32), torch.device("cpu"))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step_is_finite_and_close_to_fp32(precision):
    real = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    ref = _gan().train_step(real)
    torch.manual_seed(0)
    gan = _gan(f"train.precision={precision}")
    out = gan.train_step(real)
    assert torch.isfinite(out["loss_D"]) and torch.isfinite(out["loss_G"])
    assert abs(out["loss_D"] - ref["loss_D"]) < 0.05  # same init, same noise: losses agree
    assert all(torch.isfinite(p).all() for p in gan.G.parameters())
    assert gan.scaler_G.is_enabled() == (precision == "fp16")


def test_channels_last_matches_the_default_layout():
    real = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    a = _gan()
    a.train_step(real)
    torch.manual_seed(0)
    b = _gan("train.channels_last=true")
    b.train_step(real)
    for (n, p), q in zip(a.G.named_parameters(), b.G.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)


def test_fp16_scaler_state_is_checkpointed(tmp_path):
    res = train(from_preset("gaussian2d", ["train.epochs=1", "train.precision=fp16"]),
                tmp_path / "r", quiet=True)
    st = load_checkpoint(res.run_dir)
    assert st["scaler_G"]["scale"] > 0 and "scaler_D" in st


@pytest.mark.slow
def test_torch_compile_trains_and_checkpoints_plain_modules(tmp_path):
    res = train(from_preset("gaussian2d", ["train.epochs=1", "train.compile=true"]),
                tmp_path / "r", quiet=True)
    st = load_checkpoint(res.run_dir)
    assert all(not k.startswith("_orig_mod") for k in st["G"])
