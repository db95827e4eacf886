"""Adversarial losses and regularizers as pure functions.

Losses take discriminator logits (any shape; flattened) and return a scalar; regularizers take the
discriminator's input and output and return a scalar penalty. None of them calls ``backward()`` or
touches an optimizer: the training engine owns that.

Every discriminator loss has the signature ``d_loss(real_logits, fake_logits, real_label)`` and every
generator loss ``g_loss(fake_logits)``, so the engine plugs any pair in the same way (:data:`LOSSES`).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def d_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                    real_label: float = 1.0) -> torch.Tensor:
    """Discriminator cross-entropy: mean of the real term (target ``real_label``) and the fake
    term (target 0), as in d2l's ``(loss(real_Y, ones) + loss(fake_Y, zeros)) / 2``.

    ``real_label < 1`` is one-sided label smoothing (the TF tutorial uses 0.9). The tutorial sums
    the two terms instead of averaging them; under Adam/RMSprop that factor of 2 does not change
    the updates (both are invariant to the scale of the loss up to their epsilon).
    """
    real = real_logits.reshape(-1)
    fake = fake_logits.reshape(-1)
    real_loss = F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_label))
    fake_loss = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return (real_loss + fake_loss) / 2


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's non-saturating loss: ``-log sigmoid(D(G(z)))`` = BCE against "real" labels."""
    return F.softplus(-fake_logits.reshape(-1)).mean()


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor,
            real_label: float = 1.0) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``.

    ``real_label`` is accepted for a uniform signature; it must be 1 (smoothing is a BCE notion).
    """
    _no_smoothing("hinge", real_label)
    return F.relu(1 - real_logits.reshape(-1)).mean() + F.relu(1 + fake_logits.reshape(-1)).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge loss: ``-E[D(G(z))]``."""
    return -fake_logits.reshape(-1).mean()


def d_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                  real_label: float = 1.0) -> torch.Tensor:
    """Critic loss of WGAN (Arjovsky et al. 2017): ``E[D(G(z))] - E[D(x)]``; pair it with
    :func:`gradient_penalty` (WGAN-GP, Gulrajani et al. 2017)."""
    _no_smoothing("wgan-gp", real_label)
    return fake_logits.reshape(-1).mean() - real_logits.reshape(-1).mean()


def g_wasserstein(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of WGAN: ``-E[D(G(z))]``."""
    return -fake_logits.reshape(-1).mean()


def d_least_squares(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                    real_label: float = 1.0) -> torch.Tensor:
    """LSGAN (Mao et al. 2017) with targets b = ``real_label`` (1) for real and a = 0 for fake:
    ``(E[(D(x) - b)^2] + E[D(G(z))^2]) / 2``."""
    real = real_logits.reshape(-1)
    return ((real - real_label).square().mean() + fake_logits.reshape(-1).square().mean()) / 2


def g_least_squares(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of LSGAN (target c = 1): ``E[(D(G(z)) - 1)^2] / 2``."""
    return (fake_logits.reshape(-1) - 1).square().mean() / 2


def d_relativistic(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                   real_label: float = 1.0) -> torch.Tensor:
    """Relativistic pairing loss, RpGAN (Jolicoeur-Martineau 2019; the R3GAN baseline, Huang et al.
    2024): ``E[softplus(D(G(z_i)) - D(x_i))]`` over the pairs (real i, fake i) of the batch."""
    _no_smoothing("rpgan", real_label)
    return F.softplus(fake_logits.reshape(-1) - real_logits.reshape(-1)).mean()


def g_relativistic(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of RpGAN: ``E[softplus(D(x_i) - D(G(z_i)))]`` (the real logits are
    constants for G)."""
    return F.softplus(real_logits.reshape(-1) - fake_logits.reshape(-1)).mean()


def _no_smoothing(name: str, real_label: float) -> None:
    if real_label != 1.0:
        raise ValueError(f"loss.real_label={real_label} (label smoothing) applies to the "
                         f"nonsaturating and lsgan losses, not to {name}; set loss.real_label=1")


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` over real inputs, per-sample squared
    norms averaged over the batch. ``real`` must have ``requires_grad`` set before D saw it; the
    result is differentiable (``create_graph``) so it can be minimised. Multiply by gamma / 2.
    The same zero-centred penalty on generated inputs is R2 (:func:`r2_penalty`)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().reshape(len(grad), -1).sum(1).mean()


def r2_penalty(fake: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """R2: ``E[||grad_x D(x)||^2]`` over generated inputs (detached from G, with
    ``requires_grad`` set before D saw them). Multiply by gamma / 2; R3GAN uses R1 + R2."""
    return r1_penalty(fake, fake_logits)


def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's two-sided penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` at ``x_hat = mix * real +
    (1 - mix) * fake``; ``mix`` (one value per sample, broadcast) is drawn uniformly when omitted.
    Multiply by lambda (10 in the paper)."""
    if mix is None:
        mix = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device,
                         dtype=real.dtype)
    x_hat = (mix * real.detach() + (1 - mix) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.reshape(len(grad), -1).norm(2, dim=1)
    return (norms - 1).square().mean()


def d_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor,
               threshold: float = 0.0) -> torch.Tensor:
    """Share of real and fake inputs that D classifies correctly (real above ``threshold``; 0 for
    logit losses, 0.5 for least squares whose targets are 0 and 1)."""
    correct = ((real_logits.reshape(-1) > threshold).sum()
               + (fake_logits.reshape(-1) < threshold).sum())
    return correct.float() / (real_logits.numel() + fake_logits.numel())


LOSSES = {
    "nonsaturating": (d_nonsaturating, g_nonsaturating),
    "hinge": (d_hinge, g_hinge),
    "wgan-gp": (d_wasserstein, g_wasserstein),
    "lsgan": (d_least_squares, g_least_squares),
    "rpgan": (d_relativistic, g_relativistic),
}
# Losses whose generator side also reads D on the real batch (paired with the fakes).
RELATIVISTIC = {"rpgan"}
# Where D's output separates real from fake (for the accuracy shown in logs and health checks).
# None: D's logits have no fixed origin (a critic; a relativistic D, whose loss sees only the
# differences), so the midpoint of the real and fake means splits them.
DECISION_THRESHOLD = {"nonsaturating": 0.0, "hinge": 0.0, "wgan-gp": None, "lsgan": 0.5,
                      "rpgan": None}
