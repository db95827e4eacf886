"""Architectures describe themselves: each registers its facts in its own module, and the
validation, the builder, sampling, the step and the docs read them. A new architecture is one
module and a registration."""

import pytest
import torch
from torch import nn

from ganforge.config import ConfigError, ModelConfig
from ganforge.models import ARCHITECTURES, Architecture, build_models, register
from ganforge.presets import from_preset
from ganforge.training import train
from ganforge.validation import key_specs, keys_markdown


def _shape(arch):
    return (2,) if arch.data == "points" else (3, max(16, arch.resolutions[0]), max(16, arch.resolutions[0]))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_builds_what_it_describes(name):
    arch = ARCHITECTURES[name]
    cfg = ModelConfig(arch=name, z_dim=8, g_width=4, d_width=4, w_dim=16, mapping_layers=2)
    for classes in ([0, 3] if arch.conditional else [0]):
        G, D = build_models(cfg, _shape(arch), classes)
        z = torch.randn(4, 8)
        y = torch.tensor([0, 1, 2, 0]) if classes else None
        x = G(z) if y is None else G(z, y)
        assert x.shape == (4, *_shape(arch))
        logits = D(x) if y is None else D(x, y)
        assert logits.shape == (4, 1), "every D returns logits of shape (N, 1)"
        assert G.latent_space == arch.latent_space
        if arch.d_terms:
            out, terms = D(x, y, aux=True)
            assert out.shape == (4, 1) and set(terms) == {t.name for t in arch.d_terms}


def test_the_choices_and_the_configuration_page_come_from_the_registry():
    spec = {s.key: s for s in key_specs()}
    assert spec["model.arch"].choices == tuple(ARCHITECTURES)
    assert "[stylegan2]" in spec["model.w_dim"].help and "[fastgan]" in spec["model.d_recon"].help
    assert "[dcgan]" in spec["model.d_norm"].help and "[rmsprop]" in spec["optim_D.alpha"].help
    page = keys_markdown()
    assert all(name in page for name in ARCHITECTURES)


@pytest.mark.parametrize("preset,override,names", [
    ("folder-stylegan2", "model.spectral_norm_d=true", "model.w_dim"),  # equalized layers
    ("folder-stylegan2", "model.d_norm=none", "model.style_mixing"),
    ("gaussian2d", "model.g_output=hardtanh", "model.d_hidden"),
    ("pokemon-dcgan", "model.d_recon=2", "model.d_norm"),
    ("gaussian2d", "optim_D.alpha=0.5", "optim_D.beta2"),
    ("mnist-mlp", "optim_D.beta1=0.5", "optim_D.alpha"),
])
def test_a_key_that_does_not_apply_is_refused_naming_those_that_do(preset, override, names):
    with pytest.raises(ConfigError, match="does nothing here") as e:
        from_preset(preset, ["data.path=/tmp", override])
    assert names in str(e.value)


def test_changing_the_architecture_drops_only_the_presets_keys_for_the_old_one():
    cfg = from_preset("pokemon-best", ["model.arch=stylegan2", "model.w_dim=64"])
    assert (cfg.model.arch, cfg.model.w_dim, cfg.model.spectral_norm_d) == ("stylegan2", 64, False)
    with pytest.raises(ConfigError, match="model.spectral_norm_d"):  # asked for, so refused
        from_preset("pokemon-best", ["model.arch=stylegan2", "model.spectral_norm_d=true"])


def test_resolution_and_conditioning_rules_come_from_the_architecture():
    with pytest.raises(ConfigError, match="power of two from 16 to 256 for model.arch=fastgan"):
        from_preset("folder", ["data.path=/tmp", "model.arch=fastgan", "data.resolution=8"])
    with pytest.raises(ConfigError, match="needs model.arch=dcgan or stylegan2 or fastgan"):
        from_preset("mnist-mlp", ["model.conditional=true"])
    # the MLP flattens any image: no resolution rule
    assert from_preset("mnist-mlp", ["data.resolution=20"]).data.resolution == 20


class _QuadG(nn.Module):
    """A toy generator that is not linear: G(z) = W z + V z^2 + c."""

    latent_space = "z"

    def __init__(self, z_dim):
        super().__init__()
        self.z_dim = z_dim
        self.lin, self.quad = nn.Linear(z_dim, 2), nn.Linear(z_dim, 2, bias=False)

    def forward(self, z, y=None):
        return self.lin(z) + self.quad(z * z)


def test_a_new_architecture_is_one_registration(tmp_path):
    """Registered from outside the package, it is a model.arch choice, validated against the
    data, trained by the one engine, and refuses keys it does not read."""
    def build(cfg, shape, classes):
        return _QuadG(cfg.z_dim), nn.Sequential(nn.Linear(shape[0], 8), nn.Tanh(), nn.Linear(8, 1))

    register(Architecture("quad", "a quadratic toy G", build, data="points", keys=()))
    try:
        res = train(from_preset("gaussian2d", ["model.arch=quad", "train.epochs=2",
                                               "report.tensorboard=off"]), tmp_path / "q", quiet=True)
        assert res.summary["steps"] > 0 and res.summary["gaussian"]["mean_error"] >= 0
        with pytest.raises(ConfigError, match="does not fit data.name=mnist"):
            from_preset("mnist-mlp", ["model.arch=quad"])
        with pytest.raises(ConfigError, match="model.d_hidden"):
            from_preset("gaussian2d", ["model.arch=quad", "model.d_hidden=4"])
    finally:
        ARCHITECTURES.pop("quad")
