import math

import torch

from ganforge.losses import d_accuracy, d_nonsaturating, g_nonsaturating


def test_zero_logits_give_log2():
    z = torch.zeros(4, 1, 1, 1)
    assert math.isclose(d_nonsaturating(z, z).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(g_nonsaturating(z).item(), math.log(2), rel_tol=1e-6)


def test_hand_computed_values():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    # BCE(real=2, t=1) = log(1 + e^-2); BCE(fake=-1, t=0) = log(1 + e^-1)
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2
    assert math.isclose(d_nonsaturating(real, fake).item(), expected, rel_tol=1e-6)
    # G wants D(fake) high: -log sigmoid(-1) = log(1 + e^1)
    assert math.isclose(g_nonsaturating(fake).item(), math.log1p(math.e), rel_tol=1e-6)


def test_one_sided_label_smoothing():
    real, fake = torch.tensor([3.0]), torch.tensor([-5.0])
    t = 0.9
    sig = 1 / (1 + math.exp(-3.0))
    real_term = -(t * math.log(sig) + (1 - t) * math.log(1 - sig))
    fake_term = math.log1p(math.exp(-5.0))
    got = d_nonsaturating(real, fake, real_label=t).item()
    assert math.isclose(got, (real_term + fake_term) / 2, rel_tol=1e-6)
    # smoothing never touches the fake side: fake logits very negative -> only real term remains
    assert got > d_nonsaturating(real, fake).item()


def test_d_accuracy():
    assert d_accuracy(torch.tensor([1.0, -1.0]), torch.tensor([-2.0, -3.0])).item() == 0.75
