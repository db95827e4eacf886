"""Domain features for MNIST-like data: a small CNN classifier trained by ganforge on the
dataset's training split, cached on disk, used for a fast FID, a classifier-based Inception Score,
and per-class analysis of generated samples."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.idx import IDX_DATASETS, load_idx_dataset, user_cache_dir
from ..errors import GanforgeError, require_range
from ..io import save_checkpoint

CLASSIFIER_VERSION = 1
# Epochs chosen from measurement: they clear 99% (MNIST) and 91% (Fashion-MNIST) test accuracy.
DEFAULT_EPOCHS = {"mnist": 4, "fashion-mnist": 10}


class DomainClassifier(nn.Module):
    """28x28 grayscale in [-1, 1] -> (128-d features, 10 logits)."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(1, 32), block(32, 64), nn.Flatten(),
                                  nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU(True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return f, self.head(self.dropout(f))


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW (1 or 3 channels, any size) -> float (N, 1, 28, 28) in [-1, 1].

    32x32 images (MNIST-like data padded by 2 pixels per side) are center-cropped back to 28x28;
    other sizes are resized with antialiased bilinear interpolation; RGB is averaged to gray.
    """
    x = images.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    h = x.shape[-1]
    if h == 32:
        x = x[..., 2:30, 2:30]
    elif h != 28:
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return x / 127.5 - 1.0


def classifier_path(dataset: str) -> Path:
    return user_cache_dir() / "classifiers" / f"{dataset}-v{CLASSIFIER_VERSION}.pt"


def _augment(x: torch.Tensor, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to 2 pixels (pad + crop), and horizontal flips when ``flip``."""
    n = len(x)
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()  # one shift per batch: cheap
    x = padded[..., dy:dy + 28, dx:dx + 28]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x


@torch.no_grad()
def accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        _, logits = model(to_classifier_input(images[i:i + batch_size]))
        correct += int((logits.argmax(1) == labels[i:i + batch_size]).sum())
    return correct / len(images)


def train_classifier(dataset: str, epochs: int | None = None, seed: int = 0,
                     data_dir: str | None = None, progress: bool = True,
                     out: str | os.PathLike | None = None) -> dict:
    """Train the domain classifier on ``dataset``'s training split; save it (atomically) to the
    cache and return its record (test accuracy, epochs, seconds)."""
    if dataset not in IDX_DATASETS:
        raise GanforgeError(f"domain classifiers exist for {', '.join(IDX_DATASETS)}, "
                            f"not {dataset!r}; use --features inception")
    if epochs is not None:
        require_range("--epochs", epochs, 1, 1000)
    require_range("--seed", seed, 0, 2 ** 63 - 1)
    epochs = epochs or DEFAULT_EPOCHS[dataset]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xtr, ytr, classes = load_idx_dataset(dataset, "train", data_dir)
    xte, yte, _ = load_idx_dataset(dataset, "test", data_dir)
    xtr_t = torch.from_numpy(xtr).unsqueeze(1)
    ytr_t = torch.from_numpy(ytr)
    model = DomainClassifier(len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bs = min(128, len(xtr_t))
    steps = epochs * (len(xtr_t) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    flip = dataset == "fashion-mnist"
    t0 = time.perf_counter()
    bar = tqdm(total=steps, desc=f"classifier {dataset}", unit="step",
               disable=True if not progress else None)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        for i in range(len(xtr_t) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            x = _augment(to_classifier_input(xtr_t[idx]), flip, gen)
            _, logits = model(x)
            loss = F.cross_entropy(logits, ytr_t[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    acc = accuracy(model, torch.from_numpy(xte).unsqueeze(1), torch.from_numpy(yte))
    record = {"dataset": dataset, "test_accuracy": acc, "epochs": epochs, "seed": seed,
              "train_seconds": time.perf_counter() - t0, "version": CLASSIFIER_VERSION,
              "class_names": list(classes)}
    path = Path(out) if out else classifier_path(dataset)
    save_checkpoint(path, {"model": model.state_dict(), "record": json.dumps(record)})
    record["path"] = str(path)
    return record


def load_classifier(dataset: str, train_if_missing: bool = True, progress: bool = True,
                    data_dir: str | None = None) -> tuple[DomainClassifier, dict]:
    path = classifier_path(dataset)
    if not path.is_file():
        if not train_if_missing:
            raise GanforgeError(f"no domain classifier for {dataset} yet; run "
                                f"`ganforge train-classifier {dataset}` first")
        print(f"training the {dataset} domain classifier once (cached in {path})")
        train_classifier(dataset, progress=progress, data_dir=data_dir)
    state = torch.load(path, map_location="cpu", weights_only=True)
    record = json.loads(state["record"])
    model = DomainClassifier(len(record["class_names"]))
    model.load_state_dict(state["model"])
    return model.eval(), record


class ClassifierFeatures:
    """uint8 NCHW images -> (128-d features, class probabilities) from the domain classifier."""

    name = "classifier"
    dim = DomainClassifier.feature_dim

    def __init__(self, dataset: str, device: str | torch.device = "cpu", progress: bool = True,
                 data_dir: str | None = None) -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        model, self.record = load_classifier(dataset, progress=progress, data_dir=data_dir)
        self.model = model.to(self.device)
        self.class_names = self.record["class_names"]

    @torch.no_grad()
    def features_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, logits = self.model(to_classifier_input(images).to(self.device))
        return f.float(), logits.float().softmax(dim=1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_probs(images)[0]

    @property
    def cache_key(self) -> str:
        return f"classifier-{self.dataset}-v{CLASSIFIER_VERSION}-acc{self.record['test_accuracy']:.5f}"
