import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig
from ganforge.models import (D_block, DCGANDiscriminator, DCGANGenerator, G_block, MLPDiscriminator,
                             MLPGenerator, ToyDiscriminator, ToyGenerator, build_models,
                             init_weights)


# --- the d2l chapter's own shape checks -------------------------------------------------------
def test_g_block_doubles_16_to_32():
    assert G_block(20)(torch.zeros(2, 3, 16, 16)).shape == (2, 20, 32, 32)


def test_g_block_stride1_turns_1x1_into_4x4():
    assert G_block(20, strides=1, padding=0)(torch.zeros(2, 3, 1, 1)).shape == (2, 20, 4, 4)


def test_d_block_halves_16_to_8():
    assert D_block(20)(torch.zeros(2, 3, 16, 16)).shape == (2, 20, 8, 8)


def test_dcgan64_shapes_match_d2l():
    G, D = DCGANGenerator(100, 3, 64, 64), DCGANDiscriminator(3, 64, 64)
    assert G(torch.zeros(1, 100, 1, 1)).shape == (1, 3, 64, 64)
    assert D(torch.zeros(1, 3, 64, 64)).shape == (1, 1)


def test_dcgan64_layers_are_d2l_exactly():
    G, D = DCGANGenerator(100, 3, 64, 64), DCGANDiscriminator(3, 64, 64)
    g_channels = [(m.in_channels, m.out_channels) for m in G.modules()
                  if isinstance(m, nn.ConvTranspose2d)]
    assert g_channels == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    d_channels = [(m.in_channels, m.out_channels) for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert d_channels == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert all(m.bias is None for m in G.modules() if isinstance(m, nn.ConvTranspose2d))
    assert all(m.bias is None for m in D.modules() if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 4
    assert [m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 4
    assert isinstance(G.net[-1], nn.Tanh)


def test_dcgan32_for_mnist_like_data():
    G, D = DCGANGenerator(100, 1, 32, 64), DCGANDiscriminator(1, 32, 64)
    out = G(torch.randn(5, 100))
    assert out.shape == (5, 1, 32, 32) and out.abs().max() <= 1
    assert D(out).shape == (5, 1)


def test_dcgan_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(100, 3, 48)


def test_relu_variant_swaps_the_discriminator_activation():
    D = DCGANDiscriminator(1, 32, 8, act="relu")
    assert not any(isinstance(m, nn.LeakyReLU) for m in D.modules())
    assert sum(isinstance(m, nn.ReLU) for m in D.modules()) == 3


def test_mlp_pair_matches_the_tutorial():
    G, D = MLPGenerator(100, (1, 28, 28), 0.01), MLPDiscriminator((1, 28, 28), 0.01)
    sizes = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    assert sizes == [(100, 100), (100, 128), (128, 128), (128, 256), (256, 784)]
    sizes = [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, nn.Linear)]
    assert sizes == [(784, 128), (128, 128), (128, 128), (128, 1)]
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and D(x).shape == (3, 1)


def test_toy_pair():
    G, D = ToyGenerator(2, 2), ToyDiscriminator(2)
    assert isinstance(G.net, nn.Linear)
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [5, 3, 1]
    assert D(G(torch.randn(7, 2))).shape == (7, 1)


def test_d2l_init_draws_every_parameter_from_n0_002():
    G = DCGANGenerator(100, 3, 64, 64)
    init_weights(G, "d2l", 0.02)
    flat = torch.cat([p.flatten() for p in G.parameters()])
    assert abs(flat.mean()) < 1e-3 and abs(flat.std() - 0.02) < 1e-3
    bn = G.net[0].batch_norm.weight  # even BatchNorm's scale, as d2l's loop does
    assert bn.abs().max() < 0.15


def test_dcgan_init_keeps_batchnorm_scale_near_one():
    G = DCGANGenerator(100, 3, 32, 16)
    init_weights(G, "dcgan", 0.02)
    assert abs(G.net[0].batch_norm.weight.mean() - 1) < 0.02
    assert torch.all(G.net[0].batch_norm.bias == 0)


def test_glorot_init_zero_biases():
    D = MLPDiscriminator((1, 28, 28))
    init_weights(D, "glorot")
    first = D.net[1]
    bound = (6 / (784 + 128)) ** 0.5
    assert torch.all(first.bias == 0) and first.weight.abs().max() <= bound


def test_build_models_from_config():
    G, D = build_models(ModelConfig(arch="dcgan", z_dim=16, g_width=8, d_width=8), (1, 32, 32))
    assert G(torch.randn(2, 16)).shape == (2, 1, 32, 32)


# --- conditional models, spectral norm, D without BatchNorm ------------------------------------
def test_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, img_channels=1, img_resolution=16, width=8, num_classes=3).eval()
    with torch.no_grad():  # a non-trivial class table: otherwise every class starts identical
        for m in G.modules():
            if isinstance(m, nn.Embedding):
                m.weight.normal_(1.0, 0.5)
        z = torch.randn(1, 8).expand(3, -1)
        x = G(z, torch.tensor([0, 1, 2]))
    assert x.shape == (3, 1, 16, 16)
    assert not torch.allclose(x[0], x[1]) and not torch.allclose(x[1], x[2])
    with pytest.raises(ValueError, match="labels"):
        G(z)


def test_conditional_batchnorm_starts_as_plain_batchnorm():
    from ganforge.models.blocks import ConditionalBatchNorm2d

    cbn, bn = ConditionalBatchNorm2d(4, 5), nn.BatchNorm2d(4)
    x = torch.randn(6, 4, 3, 3)
    assert torch.allclose(cbn(x, torch.arange(6) % 5), bn(x), atol=1e-6)


def test_projection_discriminator_adds_the_inner_product():
    D = DCGANDiscriminator(img_channels=1, img_resolution=16, width=4, norm="none", num_classes=3)
    x = torch.randn(2, 1, 16, 16)
    y = torch.tensor([2, 0])
    feats = D.net[:-1](x)
    expected = D.net[-1](feats).flatten() + (D.embed(y) * feats.sum((2, 3))).sum(1)
    assert torch.allclose(D(x, y).flatten(), expected, atol=1e-5)
    assert D(x, y).shape == (2, 1)


def test_d_without_batchnorm_is_per_sample():
    D = DCGANDiscriminator(img_channels=1, img_resolution=16, width=4, norm="none").train()
    x = torch.randn(5, 1, 16, 16)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-6), "a sample's logit ignores the batch"


def test_spectral_norm_bounds_every_layer():
    cfg = ModelConfig(arch="dcgan", z_dim=8, g_width=4, d_width=4, d_norm="none",
                      spectral_norm_d=True, conditional=True, num_classes=3, init="dcgan")
    _, D = build_models(cfg, (1, 16, 16))
    D.train()
    for _ in range(30):  # power iterations converge during training forwards
        D(torch.randn(2, 1, 16, 16), torch.tensor([0, 1]))
    for m in D.modules():
        if isinstance(m, (nn.Conv2d, nn.Embedding)):
            w = m.weight.detach().reshape(m.weight.shape[0], -1)
            assert torch.linalg.matrix_norm(w, ord=2) < 1.05


def test_toy_discriminator_width_is_configurable():
    _, D = build_models(ModelConfig(arch="toy", d_hidden=16), (2,))
    assert D.net[0].out_features == 16 and D.net[2].out_features == 16


def test_hardtanh_output_reaches_exact_black_with_full_gradient():
    """tanh needs a pre-activation below -3.1 for grey 0 and passes < 1% of the gradient there;
    hardtanh clamps to exactly -1 and passes all of it inside (-1, 1)."""
    from ganforge.models import output_activation

    pre = torch.tensor([-5.0, -0.9, 0.3, 2.0], requires_grad=True)
    out = output_activation("hardtanh")(pre)
    out.sum().backward()
    assert out.tolist() == pytest.approx([-1.0, -0.9, 0.3, 1.0])
    assert pre.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    t = torch.tensor([-3.1], requires_grad=True)
    output_activation("tanh")(t).sum().backward()
    assert t.grad.item() < 0.01
    with pytest.raises(ValueError, match="hardtanh"):
        output_activation("sigmoid")


def test_generators_take_the_output_option():
    cfg = ModelConfig(arch="dcgan", z_dim=16, g_width=8, d_width=8, g_output="hardtanh")
    from ganforge.models import build_models

    G, _ = build_models(cfg, (1, 32, 32))
    assert isinstance(G.net[-1], nn.Hardtanh)
    with torch.no_grad():  # a large init makes many outputs hit the clamp: exactly -1 or 1
        G.net[-2].weight.mul_(1e4)
    out = G(torch.randn(8, 16))
    assert out.abs().max() == 1.0 and (out.abs() == 1).float().mean() > 0.2
    G, _ = build_models(ModelConfig(arch="mlp", z_dim=16, g_output="hardtanh"), (1, 28, 28))
    assert isinstance(G.net[-1], nn.Hardtanh)
