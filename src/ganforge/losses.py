"""Adversarial losses as pure functions of discriminator logits.

They never call ``backward()`` or touch an optimizer; logits of any shape are flattened.
"""

from __future__ import annotations

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


def d_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Share of real and fake inputs that D classifies correctly (threshold at logit 0)."""
    correct = (real_logits.reshape(-1) > 0).sum() + (fake_logits.reshape(-1) < 0).sum()
    return correct.float() / (real_logits.numel() + fake_logits.numel())


LOSSES = {"nonsaturating": (d_nonsaturating, g_nonsaturating)}
