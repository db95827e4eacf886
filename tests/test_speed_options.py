"""The speed switches train correctly (their speed is measured in benchmarks/, not here)."""

import pytest
import torch

from ganforge.presets import from_preset
from ganforge.training import GAN, load_checkpoint, train


def _gan(*over):
    cfg = from_preset("mnist-dcgan", ["model.g_width=4", "model.d_width=4",
                                      "train.precision=fp32", *over])
    return GAN(cfg, (1, 32, 32), torch.device("cpu"))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step_is_finite_and_close_to_fp32(precision):
    real = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    ref = _gan().train_step(real)
    torch.manual_seed(0)
    gan = _gan(f"train.precision={precision}")
    out = gan.train_step(real)
    assert torch.isfinite(out.loss_D) and torch.isfinite(out.loss_G)
    assert abs(out.loss_D - ref.loss_D) < 0.05  # same init, same noise: losses agree
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


def test_default_engine_takes_the_same_steps_as_the_seed_loop():
    """No quality regression: the speed-ups on by default (resident data, the fake batch
    reused for the G step, D frozen in G's backward, fused Adam, batch-mean losses) leave the
    training trajectory of the d2l recipe unchanged -- same weights after several steps from the
    same start, data and noise as d2l's own update_D / update_G."""
    import copy
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from throughput import update_D, update_G

    cfg = from_preset("fashion-dcgan", ["model.g_width=8", "model.d_width=8",
                                        "train.precision=fp32"])  # the seed's arithmetic
    torch.manual_seed(0)
    gan = GAN(cfg, (1, 32, 32), torch.device("cpu"))
    net_G, net_D = copy.deepcopy(gan.G), copy.deepcopy(gan.D)
    loss = torch.nn.BCEWithLogitsLoss(reduction="sum")
    tG = torch.optim.Adam(net_G.parameters(), lr=0.005, betas=(0.5, 0.999))
    tD = torch.optim.Adam(net_D.parameters(), lr=0.005, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        X = torch.rand(16, 1, 32, 32, generator=gen) * 2 - 1
        Z = torch.randn(16, 100, generator=gen)
        update_D(X, Z, net_D, net_G, loss, tD)
        update_G(Z, net_D, net_G, loss, tG)
        gan.train_step(X, Z)
    for ours, seed in ((gan.G, net_G), (gan.D, net_D)):
        for (name, p), q in zip(ours.named_parameters(), seed.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=name)


_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw {extra}\n"


@pytest.mark.parametrize("capability, extra, native", [
    ("AVX512", "avx512_bf16", True),   # Zen 4 / Cooper Lake: bf16 dot products in hardware
    ("AVX512", "amx_bf16 amx_tile", True),  # Sapphire Rapids
    ("AVX512", "avx512_vnni", False),  # AVX-512 without bf16 instructions: emulated
    ("AVX2", "avx512_bf16", False),    # torch does not dispatch its AVX-512 kernels
])
def test_native_bf16_needs_the_instructions_and_torch_dispatching_them(
        tmp_path, monkeypatch, capability, extra, native):
    from ganforge import runtime as loop

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(_FLAGS.format(extra=extra))
    monkeypatch.setattr(loop, "_CPUINFO", str(cpuinfo))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert loop.cpu_has_native_bf16() is native
    assert loop.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    for name in ("fp32", "bf16", "fp16"):  # a named precision is never second-guessed
        assert loop.resolve_precision(name, torch.device("cpu")) == name


def test_auto_precision_is_resolved_and_reported_in_the_summary(tmp_path, monkeypatch):
    from ganforge import runtime as loop

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    res = train(from_preset("gaussian2d", ["train.epochs=1", "train.precision=auto"]),
                tmp_path / "r", quiet=True)
    assert res.summary["precision"] == "bf16"
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    gan = _gan("train.precision=auto")
    assert gan.precision == "fp32" and gan.amp_dtype is None


def test_gpu_throughput_benchmark_runs_on_a_cpu(monkeypatch, capsys):
    """benchmarks/gpu_throughput.py measures an unconditional and a conditional preset (on the
    CPU here: no graphs) and prints one table row each."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import gpu_throughput

    monkeypatch.setattr(sys, "argv", ["gpu_throughput.py", "--seconds", "0.01", "--batches",
                                      "--presets", "gaussian2d", "mnist-best", "--device", "cpu"])
    gpu_throughput.main()
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| gaussian2d", "| mnist-best"]
    for r in rows:
        rates = [float(c.replace(",", "")) for c in r.strip("| ").split(" | ")[3:5]]
        assert all(x > 0 for x in rates)
