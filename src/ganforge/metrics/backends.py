"""Runtimes for the TF-Inception network on a CPU, besides PyTorch itself.

The network is the same TorchScript file (checked by its SHA-256); an inference runtime only
runs it faster: ONNX Runtime (the network exported to ONNX in memory, a few seconds once per
process) and OpenVINO (converted from TorchScript) fuse BatchNorm into the convolutions and pick
kernels per layer. Measured with ``benchmarks/inception_speed.py`` (docs/evaluation.md): in fp32
ONNX Runtime is the fastest here, with features within ~1e-6 (relative to their largest value) of
PyTorch's; for the bf16 ``--fast`` mode OpenVINO is. Both are optional (the ``fast`` extra);
without them PyTorch runs the network. ``auto`` picks, per precision, the first installed of
:data:`PREFERENCE`.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from typing import Callable

import numpy as np
import torch

BACKENDS = ("torch", "onnxruntime", "openvino")
# Fastest first, per precision (measured on CPUs with AVX-512 and AMX: docs/evaluation.md).
PREFERENCE = {"fp32": ("onnxruntime", "openvino", "torch"), "bf16": ("openvino", "torch")}
_MODULES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino",)}


def installed(backend: str) -> bool:
    """Whether ``backend`` can run here (its packages are installed; nothing is imported)."""
    return backend == "torch" or all(importlib.util.find_spec(m) is not None
                                     for m in _MODULES[backend])


def choose(backend: str, precision: str, device: torch.device) -> str:
    """The backend to run: ``auto`` = the fastest installed for ``precision`` on a CPU (PyTorch
    on a GPU); a named one must be installed and support the precision."""
    if backend == "auto":
        if device.type != "cpu":
            return "torch"
        return next(b for b in PREFERENCE[precision] if installed(b))
    if backend not in BACKENDS:
        raise ValueError(f"the Inception backend must be auto or one of {', '.join(BACKENDS)}, "
                         f"got {backend!r}")
    if backend != "torch" and device.type != "cpu":
        raise ValueError(f"the {backend} backend runs on the CPU; use --device cpu or the torch "
                         "backend")
    if backend not in PREFERENCE[precision]:
        raise ValueError(f"the {backend} backend has no {precision} mode here; use "
                         f"{' or '.join(PREFERENCE[precision])}")
    if not installed(backend):
        raise ValueError(f"the {backend} backend is not installed: pip install "
                         f"{' '.join(_MODULES[backend])} (or 'ganforge[fast]')")
    return backend


def compile_runtime(model: torch.jit.ScriptModule, backend: str, precision: str
                    ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function float NCHW (N, 3, 299, 299) in [-1, 1) -> (N, 2048) running ``model`` on
    ``backend`` (not torch) in ``precision``."""
    example = torch.zeros(2, 3, 299, 299)
    if backend == "onnxruntime":
        import onnxruntime as ort  # optional dependency, imported only when chosen

        buf = io.BytesIO()
        with warnings.catch_warnings():  # the TorchScript exporter warns that it is the old one
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}}, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        net = ort.InferenceSession(buf.getvalue(), options,
                                   providers=["CPUExecutionProvider"])

        def run_ort(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(net.run(None, {"x": x.contiguous().numpy()})[0])
        return run_ort
    import openvino as ov  # optional dependency, imported only when chosen

    converted = ov.convert_model(model, example_input=example)
    compiled = ov.Core().compile_model(converted, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16",
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()})

    def run_ov(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(compiled([x.contiguous().numpy()])[0]))
    return run_ov
