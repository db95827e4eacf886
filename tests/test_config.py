import pytest

from ganforge.config import Config, ConfigError, all_keys, apply_overrides
from ganforge.presets import PRESETS, from_preset


def test_every_preset_builds_and_validates():
    for name, preset in PRESETS.items():
        needed = [f"{key}=/any/{placeholder}" for key, placeholder, _ in preset.needs]
        cfg = from_preset(name, (["data.path=/any/folder"] if name.startswith("folder") else [])
                          + needed)
        assert cfg.name == name and cfg.description


def test_a_preset_refuses_to_start_without_the_keys_it_needs():
    with pytest.raises(ConfigError, match=r"finetune preset needs train.init_from \(the run.*"
                                          r"`ganforge train finetune train.init_from=RUN "
                                          r"data.path=DIR`"):
        from_preset("finetune", ["data.path=/any/folder"])


def test_preset_hyperparameters_follow_the_seeds():
    g = from_preset("gaussian2d")
    assert (g.optim_D.lr, g.optim_G.lr, g.model.z_dim, g.train.batch_size, g.train.epochs) == \
        (0.05, 0.005, 2, 8, 20)
    m = from_preset("mnist-mlp")
    assert (m.optim_G.name, m.optim_G.lr, m.optim_D.name, m.optim_D.lr) == ("adam", 2e-4, "rmsprop", 2e-4)
    assert (m.train.batch_size, m.loss.real_label, m.report.sample_every, m.train.epochs) == \
        (256, 0.9, 50, 300)
    p = from_preset("pokemon-dcgan")
    assert (p.data.resolution, p.train.batch_size, p.optim_G.lr, p.optim_G.beta1, p.train.epochs) == \
        (64, 256, 0.005, 0.5, 20)
    f = from_preset("fashion-dcgan")
    assert f.data.name == "fashion-mnist" and f.data.resolution == 32


def test_overrides_are_typed():
    cfg = from_preset("fashion-dcgan", ["train.epochs=1", "train.batch_size=128",
                                        "optim_G.lr=1e-3", "data.download=false"])
    assert cfg.train.epochs == 1 and cfg.train.batch_size == 128
    assert cfg.optim_G.lr == 1e-3 and cfg.data.download is False


def test_unknown_key_names_the_closest():
    with pytest.raises(ConfigError, match="train.epochs"):
        from_preset("gaussian2d", ["train.epoch=3"])


def test_bad_type_and_range():
    with pytest.raises(ConfigError, match="train.batch_size must be int"):
        from_preset("gaussian2d", ["train.batch_size=big"])
    with pytest.raises(ConfigError, match="train.epochs must be > 0"):
        from_preset("gaussian2d", ["train.epochs=0"])
    with pytest.raises(ConfigError, match="power of two"):
        from_preset("pokemon-dcgan", ["data.resolution=48"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Config(), ["train.epochs"])


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="fashion-dcgan"):
        from_preset("fashion-dcgn")


def test_round_trip_through_dict():
    cfg = from_preset("mnist-mlp", ["train.seed=7"])
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    assert "optim_D.alpha" in all_keys()


def test_data_path_tilde_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = from_preset("pokemon-dcgan", ["data.path=~/sprites"])
    assert cfg.data.path == str(tmp_path / "sprites")


@pytest.mark.parametrize("over,msg", [
    (["loss.name=wgan-gp"], "model.d_norm=none"),
    (["loss.r1_gamma=1"], "model.d_norm=none"),
    (["loss.name=hinge", "loss.real_label=0.9"], "label smoothing"),
    (["train.augment=translation,rotate"], "unknown augmentation 'rotate'"),
    (["loss.name=wasserstein"], "loss.name must be one of"),
])
def test_issue5_options_are_validated(over, msg):
    with pytest.raises(ConfigError, match=msg):
        from_preset("fashion-dcgan", over)


def test_conditional_needs_labelled_image_data():
    with pytest.raises(ConfigError, match="labelled data|model.arch=dcgan"):
        from_preset("gaussian2d", ["model.conditional=true"])
    with pytest.raises(ConfigError, match="model.arch=dcgan"):
        from_preset("mnist-mlp", ["model.conditional=true"])


def test_g_output_is_for_image_generators():
    with pytest.raises(ConfigError, match="g_output=.hardtanh. does nothing here: model.arch=toy"):
        from_preset("gaussian2d", ["model.g_output=hardtanh"])
    with pytest.raises(ConfigError, match="model.g_output must be one of"):
        from_preset("mnist-mlp", ["model.g_output=sigmoid"])
    assert from_preset("mnist-mlp", ["model.g_output=hardtanh"]).model.g_output == "hardtanh"


def test_validate_returns_a_copy_and_changes_nothing():
    from ganforge.validation import is_validated, validate

    cfg = apply_overrides(Config(), ["data.name=folder", "data.path=~/pictures", "model.arch=dcgan",
                                     "data.resolution=32"])
    before = cfg.to_dict()
    out = validate(cfg)
    assert out is not cfg and cfg.to_dict() == before and not is_validated(cfg)
    assert is_validated(out) and not out.data.path.startswith("~")
    changed = apply_overrides(out, ["train.epochs=3"])
    assert not is_validated(changed) and out.train.epochs == 20, "overrides make a new config"


def test_a_validated_config_cannot_change(tmp_path):
    from ganforge.config import FrozenConfigError, set_value
    from ganforge.training import train
    from ganforge.validation import is_validated

    cfg = from_preset("gaussian2d")
    with pytest.raises(FrozenConfigError, match="validated and cannot change"):
        cfg.train.batch_size = 0
    with pytest.raises(FrozenConfigError):
        set_value(cfg, "train.batch_size", "0")
    with pytest.raises(FrozenConfigError):
        cfg.train = None
    assert cfg.train.batch_size > 0 and is_validated(cfg)
    # a copy can be changed, and training checks it again before anything runs
    bad = apply_overrides(cfg, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="train.batch_size must be > 0"):
        train(bad, tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()


def test_every_key_has_type_default_and_meaning(capsys):
    from ganforge.cli import main
    from ganforge.validation import key_specs

    specs = {s.key: s for s in key_specs()}
    assert set(specs) == set(all_keys())
    assert all(s.help for s in specs.values()), [k for k, s in specs.items() if not s.help]
    assert specs["train.precision"].choices == ("fp32", "bf16", "fp16", "auto")
    assert specs["train.epochs"].type == "int" and specs["train.epochs"].default == 20
    assert main(["presets", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "train.precision: str = 'auto' (fp32 | bf16 | fp16 | auto)" in out
    assert "half-life" in out and out.count("\n") >= 2 * len(specs)


def test_the_configuration_page_is_generated_from_the_schema(capsys):
    """docs/configuration.md is `ganforge presets --keys --markdown`; regenerate it when the
    schema changes."""
    from pathlib import Path

    from ganforge.cli import main

    assert main(["presets", "--keys", "--markdown"]) == 0
    page = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert page.read_text() == capsys.readouterr().out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ConfigError, match="loss.gp_weight must be a finite number"):
        from_preset("gaussian2d", [f"loss.gp_weight={value}"])
