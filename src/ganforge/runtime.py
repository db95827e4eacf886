"""Device, numeric precision, seeding and RNG state: what a run asks of the machine."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from .errors import GanforgeError

_CPUINFO = "/proc/cpuinfo"
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; an unavailable CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"train.device={name} but CUDA is not available here; use "
                            "train.device=cpu or train.device=auto")
    return dev


def check_device(name: str, flag: str = "--device") -> None:
    """Refuse a device name PyTorch does not know, in a sentence (``auto`` is accepted)."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise GanforgeError(f"{flag} {name!r} is not a device: use cpu, cuda, cuda:N, mps or "
                            "auto") from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX) *and* PyTorch dispatches
    its AVX-512 kernels here. Without both, bf16 convolutions are emulated and 10-600x slower
    than fp32 (measured on an AVX2 machine); with both, 1.3-1.7x faster training steps
    (fashion-best on a 2-core Zen 4; benchmarks/precision.py)."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not (capability.startswith("AVX512") or "AMX" in capability):
        return False
    try:
        with open(_CPUINFO) as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap, reliable way to ask; stay on fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> str:
    """``train.precision=auto``: bf16 autocast where the hardware computes bf16 natively (CUDA
    devices that support it; CPUs with AVX-512 BF16 or AMX), otherwise fp32. Never fp16, which
    needs loss scaling and is only worth it on GPUs without bf16; ask for it by name."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def seed_everything(seed: int, rank: int = 0) -> None:
    """torch's generator is seeded alike on every rank (the global batch's noise is drawn in full
    and split, so K processes take exactly the step one process would); Python's and NumPy's get
    per-rank seeds."""
    torch.manual_seed(seed)
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every generator a step draws from, as plain tensors and lists (a ``weights_only`` load
    reads them back)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    # A checkpoint loaded with map_location=cuda holds these on the GPU; generators take their
    # state as a CPU ByteTensor.
    torch.set_rng_state(state["torch"].cpu())
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux: MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
