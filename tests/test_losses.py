import math

import pytest
import torch

from ganforge.losses import (d_accuracy, d_nonsaturating, d_relativistic, g_nonsaturating,
                             g_relativistic, r2_penalty)


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


from ganforge.losses import (d_hinge, d_least_squares, d_wasserstein, g_hinge,  # noqa: E402
                             g_least_squares, g_wasserstein, gradient_penalty, r1_penalty)


def test_hinge_by_hand():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0])
    # relu(1 - real) = [0, 0.5, 2] -> mean 5/6; relu(1 + fake) = [0, 1] -> mean 1/2
    assert math.isclose(d_hinge(real, fake).item(), 5 / 6 + 1 / 2, rel_tol=1e-6)
    assert math.isclose(g_hinge(fake).item(), 1.5, rel_tol=1e-6)


def test_wasserstein_by_hand():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert math.isclose(d_wasserstein(real, fake).item(), -0.5 - 2.0, rel_tol=1e-6)
    assert math.isclose(g_wasserstein(fake).item(), 0.5, rel_tol=1e-6)


def test_least_squares_by_hand():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, -1.0])
    # real: ((0)^2 + (-1)^2)/2 = 0.5; fake: (0.25 + 1)/2 = 0.625; D loss = (0.5 + 0.625) / 2
    assert math.isclose(d_least_squares(real, fake).item(), 0.5625, rel_tol=1e-6)
    # G: ((0.5 - 1)^2 + (-2)^2) / 2 / 2 = (0.25 + 4) / 4
    assert math.isclose(g_least_squares(fake).item(), 4.25 / 4, rel_tol=1e-6)
    # smoothing moves the real target
    assert math.isclose(d_least_squares(torch.tensor([0.9]), torch.tensor([0.0]), 0.9).item(), 0.0,
                        abs_tol=1e-7)


def test_smoothing_is_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="real_label"):
        d_hinge(torch.zeros(2), torch.zeros(2), real_label=0.9)


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([3.0, -4.0])
    x = torch.randn(5, 2, requires_grad=True)
    logits = x @ w  # grad_x = w for every sample -> ||w||^2 = 25
    assert math.isclose(r1_penalty(x, logits).item(), 25.0, rel_tol=1e-6)
    # quadratic critic D(x) = sum(x^2): grad = 2x -> E||2x||^2 = 4 * mean ||x||^2
    x2 = torch.tensor([[1.0, 2.0], [0.0, 1.0]], requires_grad=True)
    assert math.isclose(r1_penalty(x2, x2.square().sum(1)).item(), 4 * (5 + 1) / 2, rel_tol=1e-6)


def test_r1_is_differentiable_in_the_critic_weights():
    w = torch.tensor([3.0, -4.0], requires_grad=True)
    x = torch.randn(4, 2, requires_grad=True)
    r1_penalty(x, x @ w).backward()
    assert torch.allclose(w.grad, 2 * w.detach())  # d||w||^2/dw = 2w


def test_gradient_penalty_by_hand():
    w = torch.tensor([0.6, 0.8])  # unit norm: the penalty vanishes
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(lambda x: x @ w, real, fake).item() < 1e-10
    w3 = 3 * w  # norm 3 -> (3 - 1)^2 = 4 at every interpolate
    assert math.isclose(gradient_penalty(lambda x: x @ w3, real, fake).item(), 4.0, rel_tol=1e-5)
    # D(x) = ||x||^2 / 2 has grad x: with mix = 1 the points are the reals themselves
    real = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    got = gradient_penalty(lambda x: x.square().sum(1) / 2, real, torch.zeros_like(real),
                           mix=torch.ones(2, 1))
    assert math.isclose(got.item(), ((5 - 1) ** 2 + (2 - 1) ** 2) / 2, rel_tol=1e-6)


def test_rpgan_by_hand():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 3.0])
    # D: softplus(fake_i - real_i) = log(1 + e^-1), log(1 + e^3), averaged
    expected_d = (math.log1p(math.exp(-1)) + math.log1p(math.exp(3))) / 2
    assert math.isclose(d_relativistic(real, fake).item(), expected_d, rel_tol=1e-6)
    # G: softplus(real_i - fake_i) = log(1 + e^1), log(1 + e^-3)
    expected_g = (math.log1p(math.exp(1)) + math.log1p(math.exp(-3))) / 2
    assert math.isclose(g_relativistic(fake, real).item(), expected_g, rel_tol=1e-6)
    # pairs, not means: the same logits in another order give another loss
    assert not math.isclose(d_relativistic(real, fake.flip(0)).item(), expected_d)
    # shifting every logit by a constant changes nothing: the loss sees differences only
    assert math.isclose(d_relativistic(real + 5, fake + 5).item(), expected_d, rel_tol=1e-6)
    with pytest.raises(ValueError, match="real_label"):
        d_relativistic(real, fake, real_label=0.9)


def test_r2_is_the_zero_centred_penalty_at_the_fakes_of_a_tiny_d():
    # D(x) = w . x + 0.5 * x0^2: grad = w + (x0, 0) -> per sample ||grad||^2 by hand
    w = torch.tensor([1.0, -2.0])
    fake = torch.tensor([[1.0, 0.0], [-1.0, 5.0]], requires_grad=True)
    logits = fake @ w + 0.5 * fake[:, 0].square()
    # sample 1: grad (2, -2) -> 8; sample 2: grad (0, -2) -> 4; mean 6
    assert math.isclose(r2_penalty(fake, logits).item(), 6.0, rel_tol=1e-6)
    real = torch.tensor([[0.0, 1.0]], requires_grad=True)
    assert math.isclose(r1_penalty(real, real @ w + 0.5 * real[:, 0].square()).item(), 5.0,
                        rel_tol=1e-6)  # grad (1, -2)
