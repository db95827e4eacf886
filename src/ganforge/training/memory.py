"""What a run will need in memory, estimated before anything is allocated: G and D are built on
PyTorch's ``meta`` device (shapes, no storage), their parameters counted, and one forward of
each at the batch size measures the activations a step keeps for its backward pass. The meta
device costs a second or two per process, so configs that cannot come near a machine's memory
(the presets' widths, batches and sizes; see :func:`could_be_large`) are not estimated."""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..errors import GanforgeError
from ..models import build_models
from ..runtime import available_memory

# Bytes per parameter in training: fp32 weights, gradients and two Adam moments; G_ema adds one
# copy of G's.
STATE_BYTES = 16


def _activation_bytes(module: nn.Module, *inputs: torch.Tensor) -> int:
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    try:
        module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def estimate_bytes(cfg: Config, sample_shape: tuple[int, ...], classes: int) -> int | None:
    """Bytes of memory a training step of ``cfg`` needs (None when it cannot be estimated)."""
    try:
        with torch.device("meta"):
            G, D = build_models(cfg.model, sample_shape, classes)
            G.eval()  # the same activations; no random style-mixing cut (a host read)
            D.eval()
            params_G = sum(p.numel() for p in G.parameters())
            params_D = sum(p.numel() for p in D.parameters())
            b = cfg.train.batch_size
            z = torch.zeros(b, cfg.model.z_dim)
            y = torch.zeros(b, dtype=torch.long) if classes else None
            args = (z,) if y is None else (z, y)
            act_G = _activation_bytes(G, *args)
            x = torch.zeros(b, *sample_shape)
            act_D = _activation_bytes(D, *((x,) if y is None else (x, y)))
    except Exception:  # noqa: BLE001 -- an op without a meta kernel: no estimate, no refusal
        return None
    ema = params_G * 4 if cfg.train.ema_kimg > 0 else 0
    # D runs on the real and the fake batch, then on the fake batch again for G's step
    return (params_G + params_D) * STATE_BYTES + ema + act_G + 3 * act_D


def could_be_large(cfg: Config, sample_shape: tuple[int, ...]) -> bool:
    """Whether ``cfg`` may need gigabytes: wide networks (g_width x d_width above 128 x 128),
    a latent above 2,048, samples above 3 x 256 x 256, or batches above 2,048."""
    m, size = cfg.model, 1
    for s in sample_shape:
        size *= s
    return (m.g_width * m.d_width > 128 * 128 or m.z_dim > 2048 or m.w_dim > 2048
            or size > 3 * 256 * 256 or cfg.train.batch_size > 2048)


def check_fits(cfg: Config, sample_shape: tuple[int, ...], classes: int,
               device: torch.device) -> None:
    """Refuse, before allocating, a run that needs more memory than ``device`` has free."""
    if not cfg.train.memory_check or not could_be_large(cfg, sample_shape):
        return
    need = estimate_bytes(cfg, sample_shape, classes)
    if need is None:
        return
    if device.type == "cuda":
        have: int | None = torch.cuda.mem_get_info(device)[0]
    elif device.type == "cpu":
        have = available_memory()
    else:
        have = None
    if have is not None and need > have:
        raise GanforgeError(
            f"this model needs about {need / 2**30:.1f} GiB to train at train.batch_size="
            f"{cfg.train.batch_size} (parameters, gradients, optimizer state and a step's "
            f"activations) and {device} has {have / 2**30:.1f} GiB free: lower model.g_width / "
            "model.d_width or train.batch_size, or set train.memory_check=false to try anyway")
