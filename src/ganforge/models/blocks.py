"""Building blocks shared by the models, and weight initialisation schemes."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def activation(name: str, slope: float = 0.2, inplace: bool = False) -> nn.Module:
    """``leaky_relu`` (with ``slope``) or ``relu`` -- the d2l exercise swaps one for the other."""
    if name == "leaky_relu":
        return nn.LeakyReLU(slope, inplace=inplace)
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    raise ValueError(f"unknown activation {name!r}; use leaky_relu or relu")


def output_activation(name: str) -> nn.Module:
    """The generator's last activation, mapping to [-1, 1]. ``tanh`` (DCGAN) only approaches the
    ends: exact black (-1 rounds to grey 0 below -0.996) needs a pre-activation under -3.1, where
    tanh's slope is < 0.01, so D's push towards a black background arrives 100x weakened and
    faint grey specks remain. ``hardtanh`` (clamp to [-1, 1], slope 1 inside) reaches -1 exactly
    and passes D's gradient unweakened up to it -- for data with flat black or white areas
    (MNIST, Fashion-MNIST)."""
    if name == "tanh":
        return nn.Tanh()
    if name == "hardtanh":
        return nn.Hardtanh(-1.0, 1.0)
    raise ValueError(f"unknown output activation {name!r}; use tanh or hardtanh")


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries et al. 2017; used by
    Miyato & Koyama 2018 and BigGAN): ``gamma[y] * BN(x) + beta[y]``, gamma starting at 1."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (len(y), -1, 1, 1)
        return self.bn(x) * self.gamma(y).view(shape) + self.beta(y).view(shape)


class G_block(nn.Module):
    """d2l's generator block: ConvTranspose2d (no bias) -> BatchNorm2d -> ReLU.

    With the defaults (k4, s2, p1) it doubles height and width; with ``strides=1, padding=0`` it
    turns a 1x1 input into 4x4. ``num_classes > 0`` makes the BatchNorm class-conditional
    (``forward(X, y)`` then needs the labels).
    """

    def __init__(self, out_channels: int, in_channels: int = 3, kernel_size: int = 4,
                 strides: int = 2, padding: int = 1, num_classes: int = 0) -> None:
        super().__init__()
        self.conv2d_trans = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, strides,
                                               padding, bias=False)
        self.batch_norm = (ConditionalBatchNorm2d(out_channels, num_classes) if num_classes
                           else nn.BatchNorm2d(out_channels))
        self.activation = nn.ReLU()

    def forward(self, X: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv2d_trans(X)
        if isinstance(self.batch_norm, ConditionalBatchNorm2d):
            if y is None:
                raise ValueError("this generator is class-conditional: pass the labels y")
            return self.activation(self.batch_norm(h, y))
        return self.activation(self.batch_norm(h))


class D_block(nn.Module):
    """d2l's discriminator block: Conv2d (no bias) -> BatchNorm2d -> LeakyReLU(alpha).

    With the defaults (k4, s2, p1) it halves height and width. ``norm="none"`` drops the
    BatchNorm (and gives the convolution a bias): what spectral norm, WGAN-GP and R1 want, since
    BatchNorm couples the samples of a batch.
    """

    def __init__(self, out_channels: int, in_channels: int = 3, kernel_size: int = 4,
                 strides: int = 2, padding: int = 1, alpha: float = 0.2,
                 act: str = "leaky_relu", norm: str = "batch") -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding,
                                bias=norm != "batch")
        if norm not in ("batch", "none"):
            raise ValueError(f"unknown norm {norm!r}; use batch or none")
        self.batch_norm = nn.BatchNorm2d(out_channels) if norm == "batch" else nn.Identity()
        self.activation = activation(act, alpha, inplace=True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.activation(self.batch_norm(self.conv2d(X)))


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str, std: float = 0.02) -> None:
    """Initialise ``module`` in place.

    * ``d2l``: every parameter (weights, biases, BatchNorm scale and shift) ~ N(0, std), exactly
      what the d2l PyTorch code does with ``for w in net.parameters(): nn.init.normal_(w, 0, 0.02)``;
    * ``dcgan``: conv/linear weights ~ N(0, std), BatchNorm scale ~ N(1, std), all shifts 0
      (Radford et al. 2015, pytorch/examples);
    * ``glorot``: Glorot-uniform weights and zero biases (Keras' defaults, the TF tutorial's);
    * ``torch``: leave PyTorch's defaults.

    Class embeddings of conditional models keep their own initialisation (scales 1, shifts 0 in
    :class:`ConditionalBatchNorm2d`) under every scheme but ``d2l``, which by definition draws
    every parameter.
    """
    if scheme == "torch":
        return
    if scheme == "d2l":
        for p in module.parameters():
            nn.init.normal_(p, 0.0, std)
        return
    cbn_tables = {id(e) for m in module.modules() if isinstance(m, ConditionalBatchNorm2d)
                  for e in (m.gamma, m.beta)}
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            if id(m) in cbn_tables:
                continue
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, std)
            else:
                nn.init.xavier_uniform_(m.weight)
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, std)
            elif scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine and scheme == "dcgan":
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every convolution, linear layer and class
    embedding of ``module`` (not the per-class BatchNorm scales), in place: each weight is divided
    by its largest singular value, estimated by one power iteration per training forward pass."""
    cbn_tables = {id(e) for m in module.modules() if isinstance(m, ConditionalBatchNorm2d)
                  for e in (m.gamma, m.beta)}
    for m in list(module.modules()):
        if id(m) in cbn_tables:
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            spectral_norm(m)
    return module
