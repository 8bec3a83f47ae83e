import pytest

from evaluation import config


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_presets_load(name):
    cfg = config.load(name)
    assert [a.arch for a in cfg.anchors] == ["resnet50", "mobilenetv2", "efficientnet_b0"]


def test_paper_preset_uses_the_papers_widths_and_protocols():
    cfg = config.load("paper")
    assert [a.width for a in cfg.anchors] == [0.25, 0.5, 0.5] and cfg.train.batch_size == 128
    assert (cfg.rejection.quality_step, cfg.rejection.quality_threshold) == (100, 0.2)
    assert (cfg.rejection.stability_steps, cfg.rejection.stability_threshold) == (100, 1e8)


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nstepz = 3\n")
    with pytest.raises(config.ConfigError, match="unknown key train.stepz; valid keys in \\[train\\]: batch_size"):
        config.load(str(path))


def test_unknown_preset_lists_presets():
    with pytest.raises(config.ConfigError, match="presets: cpu, fast, paper, smoke"):
        config.load("quick")


def test_override_and_dict_round_trip():
    cfg = config.override(config.load("smoke"), **{"train.steps": 3, "seed": 9})
    assert cfg.train.steps == 3 and cfg.seed == 9
    assert config.from_dict(config.to_dict(cfg)) == cfg
