import re

import pytest

from evaluation import config


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_presets_load(name):
    cfg = config.load(name)
    assert [a.arch for a in cfg.anchors] == ["resnet50", "mobilenetv2", "efficientnet_b0"]


def test_tiny_preset_is_one_anchor_at_16_pixels_with_quality_at_the_end():
    cfg = config.load("tiny")
    assert [(a.arch, a.width) for a in cfg.anchors] == [("resnet50", 0.0625)]
    assert cfg.data.resolution == 16 and cfg.rejection.quality_step == cfg.train.steps
    assert config.load_search("tiny").min_window == 1


def test_tiny_lr02_is_tiny_at_learning_rate_0_2():
    tiny, hot = config.load("tiny"), config.load("tiny_lr02")
    assert hot.train.lr == 0.2 and tiny.train.lr == 0.05
    assert hot == config.override(tiny, **{"train.lr": 0.2})
    assert config.load_search("tiny_lr02") == config.load_search("tiny")


def test_tiny_plain_is_tiny_lr02_on_the_plain_anchor():
    lr02, plain = config.load("tiny_lr02"), config.load("tiny_plain")
    assert [(a.arch, a.width) for a in plain.anchors] == [("plain", 0.25)]
    assert (plain.data, plain.train, plain.rejection) == (lr02.data, lr02.train, lr02.rejection)
    assert config.load_search("tiny_plain") == config.load_search("tiny_lr02")


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


@pytest.mark.parametrize("key, value, fragment", [
    ("train.batch_size", -3, "train.batch_size must be at least 1, got -3"),
    ("train.steps", 0, "train.steps must be at least 1, got 0"),
    ("train.lr", "0.1", "train.lr must be a number, got '0.1'"),
    ("train.warmup", True, "train.warmup must be a number, got True"),
    ("train.momentum", 1.5, "train.momentum must be in [0, 1), got 1.5"),
    ("train.eval_at", (0, 5), "train.eval_at must be at least 1, got (0, 5)"),
    ("data.per_class", 0, "data.per_class must be at least 1, got 0"),
    ("train.compile_shapes", "static", "train.compile_shapes must be one of per-resolution, dynamic, got 'static'"),
    ("rejection.anchor_order", "cheapest", "rejection.anchor_order must be one of config, fail-first, got 'cheapest'"),
    ("rejection.quality_threshold", 2.0, "rejection.quality_threshold must be in [0, 1], got 2.0"),
    ("device", "gpu", "device must be auto, cpu, mps, cuda or cuda:N, got 'gpu'"),
    ("seed", 1.5, "seed must be an integer, got 1.5"),
])
def test_a_bad_value_is_named_with_what_is_valid(key, value, fragment):
    with pytest.raises(config.ConfigError, match=re.escape(fragment)):
        config.override(config.load("smoke"), **{key: value})


@pytest.mark.parametrize("text, fragment", [
    ("[train]\nbatch_size = -1\n", "train.batch_size must be at least 1, got -1"),
    ("[search]\nbudget = 'ten'\n", "search.budget must be an integer, got 'ten'"),
    ("[search]\ntournament_size = 30\npopulation_size = 10\n", "search.tournament_size (30) must be at most"),
    ("[search]\nseed_layers = 'bn_relu'\n", "search.seed_layers must be a list, got 'bn_relu'"),
    ("[search]\nseed_layers = ['bn_rleu']\n", "'bn_rleu' is not a zoo layer"),
    ("[search]\nexecutor = 'dask'\n", "search.executor must be one of serial, process, ray, got 'dask'"),
    ("[search]\nworkers = 2\n", "search.workers must be 1 with the serial executor, got 2"),
    ("[search]\nmutation_repeat = 1.0\n", "search.mutation_repeat must be in [0, 1), got 1.0"),
    ("[search]\ncrossover = -0.1\n", "search.crossover must be in [0, 1), got -0.1"),
    ("[search]\nflat_tournament = 'greedy'\n", "search.flat_tournament must be random or mutate, got 'greedy'"),
    ("[search]\nmin_window = 20\npopulation_size = 10\ntournament_size = 3\n",
     "search.min_window (20) must be at most search.population_size (10)"),
])
def test_a_bad_file_is_refused_when_loaded(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=re.escape(fragment)):
        config.load(str(path))
        config.load_search(str(path))


def test_an_integer_where_a_number_is_expected_is_fine():
    assert config.override(config.load("smoke"), **{"train.lr": 1}).train.lr == 1


def test_unknown_override_key_is_a_config_error():
    with pytest.raises(config.ConfigError, match="unknown key 'train.stepz'"):
        config.override(config.load("smoke"), **{"train.stepz": 3})


def test_assignments_are_read_as_toml_values_and_bad_ones_named():
    parse_assignments, override = config.parse_assignments, config.override
    assert parse_assignments(["train.steps=300", "data.source=../data/cifar10", "train.eval_at=[5, 10]",
                              "rejection.max_seconds = 2.5", 'device="cuda"']) == {
        "train.steps": 300, "data.source": "../data/cifar10", "train.eval_at": (5, 10),
        "rejection.max_seconds": 2.5, "device": "cuda"}
    with pytest.raises(config.ConfigError, match="expected KEY=VALUE.*'train.steps'"):
        parse_assignments(["train.steps"])
    cfg = override(config.load("smoke"), **parse_assignments(["train.steps=7"]))
    assert cfg.train.steps == 7
    with pytest.raises(config.ConfigError, match="unknown key 'train.stepz'"):
        override(cfg, **parse_assignments(["train.stepz=7"]))


def test_compile_shape_policies_are_the_compilers():
    from gp import compiler

    assert config.COMPILE_SHAPES == compiler.SHAPE_POLICIES
    assert config.TrainConfig().compile_shapes == compiler.SHAPES
