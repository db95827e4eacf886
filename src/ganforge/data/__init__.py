"""Datasets as one tensor each: decoded once, never re-decoded per epoch.

Images are stored as uint8 NCHW and turned into float NCHW in [-1, 1] per batch
(``x / 127.5 - 1``, the seeds' ``Normalize(0.5, 0.5)``); 2-D points are stored as float32 (N, 2).
IDX datasets are held in memory; image folders are read from their prepared copy, memory-mapped
(:mod:`ganforge.data.prepared`), so a folder larger than memory trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config, DataConfig
from ..errors import DataError
from .idx import IDX_DATASETS, load_idx_dataset
from .images import infer_shape, nearest_power_of_two, read_headers
from .prepared import prepare_folder
from .named_folders import FOLDER_DATASETS, locate_folder
from .stacked import MODES, NAME as STACKED, stacked_mnist

# The seed's 2-D Gaussian: data = X A + b with X ~ N(0, I); its covariance is A^T A.
GAUSSIAN_A = torch.tensor([[1.0, 2.0], [-0.1, 0.5]])
GAUSSIAN_B = torch.tensor([1.0, 2.0])


def gaussian2d(num_points: int = 1000, seed: int = 0) -> torch.Tensor:
    """The d2l basic-GAN data: ``num_points`` rows of ``X @ A + b``, seeded."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(num_points, 2, generator=gen)
    return X @ GAUSSIAN_A + GAUSSIAN_B


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, known from its config before it is loaded: validation, evaluation and
    the explorer read this instead of asking for a dataset by name."""

    kind: str  # "points" (rows of coordinates) or "images" (uint8 NCHW)
    labelled: bool  # may carry class labels (a folder: when it has class sub-folders)
    classifier: bool  # a domain classifier exists for it (``--features classifier``)
    needs_path: bool = False  # data.path must name it
    # Images are compared at this side (generated ones cropped or resized to it); 0 = as trained.
    native_resolution: int = 0
    reference: str = ""  # what evaluation compares with: "test split", "folder" ("" = exact)
    # The exact distribution of points data, as (A, b): data = X A + b, X ~ N(0, I).
    gaussian: tuple[torch.Tensor, torch.Tensor] | None = None
    # Its images stack digits of this domain in their channels (one classifier reads each):
    # how many modes that makes (Stacked MNIST: 1,000), and the digits' dataset.
    modes: int = 0
    digits: str = ""


def describe(cfg: DataConfig) -> DatasetInfo:
    """What the dataset ``cfg`` names is (see :class:`DatasetInfo`)."""
    if cfg.name == "gaussian2d":
        return DatasetInfo("points", labelled=False, classifier=False,
                           gaussian=(GAUSSIAN_A, GAUSSIAN_B))
    if cfg.name in IDX_DATASETS:
        return DatasetInfo("images", labelled=True, classifier=True, native_resolution=28,
                           reference="test split")
    if cfg.name == STACKED:
        return DatasetInfo("images", labelled=True, classifier=False, native_resolution=28,
                           reference="test split", modes=MODES, digits="mnist")
    if cfg.name in FOLDER_DATASETS:
        return DatasetInfo("images", labelled=True, classifier=False, reference="folder")
    if cfg.name == "folder":
        return DatasetInfo("images", labelled=True, classifier=False, needs_path=True,
                           reference="folder")
    raise DataError(f"unknown dataset '{cfg.name}'")


def real_points(cfg: DataConfig, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` rows of a points dataset, to draw beside generated ones: fresh draws of its known
    distribution (seeded), else its first ``n`` rows."""
    info = describe(cfg)
    if info.kind != "points":
        raise DataError(f"{cfg.name} holds {info.kind}, not points")
    if info.gaussian is not None:
        A, b = info.gaussian
        return torch.randn(n, A.shape[0], generator=torch.Generator().manual_seed(seed)) @ A + b
    return load_dataset(cfg, seed).data[:n]


@dataclass
class InMemoryDataset:
    """A dataset resident in memory.

    ``data``: uint8 (N, C, H, W) for images, float32 (N, D) for points.
    ``labels``: int64 (N,) or None.
    """

    data: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def is_image(self) -> bool:
        return self.data.dtype == torch.uint8

    @property
    def kind(self) -> str:
        """"images" or "points", as :class:`DatasetInfo` says."""
        return "images" if self.is_image else "points"

    def labels_at(self, index: torch.Tensor) -> torch.Tensor:
        """The labels of rows ``index``, on ``index``'s device."""
        return self.labels[index.to(self.labels.device)].to(index.device)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    def __len__(self) -> int:
        return len(self.data)

    def to(self, device: torch.device) -> "InMemoryDataset":
        """The dataset resident on ``device``: a GPU gets a copy when it fits in half of its
        free memory (the fast path); otherwise batches are gathered on the CPU and moved."""
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if self.data.nbytes > free // 2:
                return self
        return InMemoryDataset(
            self.data.to(device),
            None if self.labels is None else self.labels.to(device),
            self.class_names,
            self.name,
        )

    def batch(self, index: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows ``index`` as float on ``index``'s device: images in [-1, 1] (NCHW), points as
        stored."""
        x = self.data[index.to(self.data.device)].to(index.device, non_blocking=True)
        if self.is_image:
            return x.to(dtype).div_(127.5).sub_(1.0)
        return x.to(dtype)


def _fit_idx(images: np.ndarray, resolution: int, channels: int) -> torch.Tensor:
    """28x28 IDX digits (N, 28, 28), or stacked ones (N, 3, 28, 28) -> uint8 (N, C, R, R).

    Rule: R = 28 keeps the images; R > 28 pads the border with black (0, the background of
    MNIST/Fashion-MNIST) when the difference is even, e.g. 28 -> 32 adds 2 pixels per side, so the
    content is untouched; any other R resizes with antialiased bilinear interpolation.
    """
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x
    h = x.shape[-1]
    if resolution != h:
        diff = resolution - h
        if diff > 0 and diff % 2 == 0:
            x = F.pad(x, (diff // 2,) * 4, value=0)
        else:
            x = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                              antialias=True, align_corners=False)
            x = x.round().clamp(0, 255).to(torch.uint8)
    if channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def resolve_shape(cfg: DataConfig) -> DataConfig:
    """A copy of ``cfg`` with the dataset's own resolution/channels where it says 0: 28x28
    grayscale for IDX data; for image folders what :func:`~ganforge.data.images.infer_shape`
    reads from the images (the power of two nearest their median shorter side, in [32, 256];
    grayscale when they all are, else RGB)."""
    if cfg.name in IDX_DATASETS:
        return dataclasses.replace(cfg, resolution=cfg.resolution or 28,
                                   channels=cfg.channels or 1)
    if cfg.name == STACKED:
        return dataclasses.replace(cfg, resolution=cfg.resolution or 28, channels=3)
    if is_image_folder(cfg) and not (cfg.resolution and cfg.channels):
        resolution, channels = infer_shape(folder_path(cfg))
        return dataclasses.replace(cfg, resolution=cfg.resolution or resolution,
                                   channels=cfg.channels or channels)
    return cfg


CPU_RESOLUTION_CAP, GPU_RESOLUTION_CAP = 128, 256


def folder_resolution(cfg: DataConfig, device_type: str) -> tuple[int, str]:
    """The resolution a new run trains an image folder at when ``data.resolution`` is 0, and
    why: the power of two nearest the images' median shorter side, at most 128 on a CPU and 256
    on a GPU (a CPU hour is too short for larger images)."""
    side, _ = read_headers(folder_path(cfg))
    nearest = nearest_power_of_two(side)
    cap = CPU_RESOLUTION_CAP if device_type == "cpu" else GPU_RESOLUTION_CAP
    res = min(nearest, cap)
    why = (f"the images' median shorter side is {side} px, and the nearest power of two "
           f"{nearest}" if side else "no image could be read for its size; the smallest")
    if res < nearest:
        why += (f", at most {cap} on a {'CPU' if device_type == 'cpu' else 'GPU'} (set "
                f"data.resolution={nearest} to train at it)")
    return res, why


def is_image_folder(cfg: DataConfig) -> bool:
    """Whether ``cfg`` names a folder of images (any folder, or a named one like pokemon)."""
    return cfg.name == "folder" or cfg.name in FOLDER_DATASETS


def folder_path(cfg: DataConfig) -> str:
    """The image folder ``cfg`` trains on: ``data.path`` for ``folder``; for a named folder
    dataset, its place in the data roots (downloaded there when missing)."""
    if cfg.name in FOLDER_DATASETS:
        return str(locate_folder(cfg.name, cfg.path or None, allow_download=cfg.download))
    return cfg.path


def load_split(cfg: DataConfig, split: str, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The 28x28 images (N, 28, 28) or, stacked, (N, 3, 28, 28), labels and class names of a
    dataset with splits; Stacked MNIST's triples are drawn from ``seed``."""
    if cfg.name == STACKED:
        return stacked_mnist(split, seed, cfg.path or None, allow_download=cfg.download)
    return load_idx_dataset(cfg.name, split, cfg.path or None, allow_download=cfg.download)


def load_dataset(cfg: DataConfig, seed: int = 0, progress: bool = False) -> InMemoryDataset:
    """Build the dataset that ``cfg`` names (see :class:`DataConfig`)."""
    cfg = resolve_shape(cfg)
    if cfg.name == "gaussian2d":
        points = gaussian2d(cfg.num_points, seed)
        return InMemoryDataset(points[: cfg.limit or None], name="gaussian2d")
    if cfg.name in IDX_DATASETS or cfg.name == STACKED:
        images, labels, classes = load_split(cfg, cfg.split, seed)
        if cfg.limit:
            images, labels = images[: cfg.limit], labels[: cfg.limit]
        return InMemoryDataset(
            _fit_idx(images, cfg.resolution, cfg.channels),
            torch.from_numpy(labels),
            list(classes),
            cfg.name,
        )
    if is_image_folder(cfg):
        path = folder_path(cfg)
        prep, _ = prepare_folder(path, cfg.resolution, cfg.channels, limit=cfg.limit,
                                 max_pixels=cfg.max_pixels, progress=progress)
        return InMemoryDataset(torch.from_numpy(prep.images), torch.from_numpy(prep.labels),
                               list(prep.meta["classes"]), path)
    raise DataError(f"unknown dataset '{cfg.name}'")


def resolve_classes(cfg: Config, dataset: InMemoryDataset) -> int:
    """The classes a conditional model is built for, from the data (0 when unconditional)."""
    if not cfg.model.conditional:
        return 0
    classes = len(dataset.class_names)
    if dataset.labels is None or classes < 2:
        raise DataError(
            f"model.conditional=true needs at least 2 classes, but {cfg.data.path or cfg.data.name} "
            f"has {classes}; image folders give classes by sub-folder (DIR/<class>/*.png)")
    if cfg.model.num_classes and cfg.model.num_classes != classes:
        raise DataError(f"model.num_classes={cfg.model.num_classes} but the data has "
                        f"{classes} classes; leave model.num_classes at 0 (taken from the data)")
    return classes
