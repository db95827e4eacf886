"""G_ema: decay from a half-life, ramp-up, what it averages and what it copies."""

import math

import torch
from torch import nn

from ganforge.training.ema import EMA, ema_beta


def test_half_life_in_images():
    # after half_life images the old average keeps half its weight, whatever the batch size
    for batch in (8, 64, 256):
        beta = ema_beta(batch, 10_000, images_seen=10**9)
        assert math.isclose(beta ** (10_000 / batch), 0.5, rel_tol=1e-9)


def test_rampup_shortens_the_half_life_early():
    assert ema_beta(100, 10_000, images_seen=1000, rampup=0.05) == 0.5 ** (100 / 50)
    assert ema_beta(100, 10_000, images_seen=10**7, rampup=0.05) == 0.5 ** (100 / 10_000)


def test_update_averages_parameters_and_copies_buffers():
    G = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(G, half_life_kimg=0.001, rampup=0)  # half-life 1 image
    with torch.no_grad():
        old = ema.G_ema[0].weight.clone()
        G[0].weight.add_(1.0)
        G[1].running_mean.fill_(3.0)
    ema.update(G, batch_size=1, images_seen=10)  # beta = 0.5
    assert torch.allclose(ema.G_ema[0].weight, (old + G[0].weight) / 2)
    assert torch.equal(ema.G_ema[1].running_mean, torch.full((2,), 3.0))
    assert not any(p.requires_grad for p in ema.G_ema.parameters())
    assert not ema.G_ema.training
