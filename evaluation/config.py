"""Evaluation configuration: frozen dataclasses, loaded from TOML presets under ``configs/``.

Unknown keys are an error naming the key and the valid ones; so is a value of the wrong type or
out of its range (:func:`validate`, applied by every loader and by :func:`override`), so that a bad
value stops a command before any work instead of hanging it (a negative batch size) or failing every
candidate. ``to_dict`` gives the full config for logging with every search.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass(frozen=True)
class AnchorConfig:
    arch: str  # a name from architectures.names()
    width: float  # channel width multiplier


@dataclass(frozen=True)
class DataConfig:
    source: str = "cifar10"  # "cifar10", "cifar100" or an ImageFolder directory with train/ and test/
    val_size: int = 5000  # held out of the training split; the search never sees the test split
    per_class: int | None = None  # keep only the first k training images of each class (small runs)
    val_limit: int | None = None  # evaluate on at most this many validation images
    val_batch: int | None = None  # images per validation batch (None: 50 on a CPU, 500 on an accelerator)
    split_seed: int = 0  # fixes the train / validation cut
    resolution: int | None = None  # downsample every image to this side by area averaging (None: as stored)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000  # SGD steps per anchor
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate (after a linear warm-up), decayed by cosine to 0
    warmup: float = 0.05  # fraction of steps
    momentum: float = 0.9  # Nesterov
    weight_decay: float = 5e-4  # not applied to norm-act parameters or biases
    eval_at: tuple[int, ...] = ()  # extra steps at which validation accuracy is recorded
    no_act: str = "affine"  # policy where a norm has no activation: affine | candidate | batchnorm
    compile: str = "off"  # torch.compile the candidate: off | survivors (after the quality stage) | always
    compile_shapes: str = "per-resolution"  # compiled sizes: per-resolution (a graph per H, W) | dynamic (one graph)
    cuda_graph: bool = False  # CUDA only: replay each training step from a CUDA graph (evaluation/graphs.py)


@dataclass(frozen=True)
class RejectionConfig:
    quality_step: int = 100  # validation accuracy checked after this many steps...
    quality_threshold: float = 0.2  # ...and the layer rejected below it (twice chance on CIFAR-10)
    stability_steps: int = 100  # gradient-ascent steps on the gradient norm (0 disables)
    stability_threshold: float = 1e8  # reject when the gradient norm passes this
    stability_lr: float = 0.01  # relative step: each conv weight moves by lr * its norm per step
    stability_batch: int = 32
    max_step_ratio: float = 10.0  # reject when a step is this many times slower than BN-ReLU's (0 disables)
    timing_steps: int = 5  # steps timed (after one warm-up step) for that comparison
    max_seconds: float = 0.0  # wall-clock limit of one candidate's whole evaluation, a "budget" rejection (0: off)
    anchor_order: str = "config"  # quality stage: anchors as listed | fail-first (cheapest expected rejection first)


@dataclass(frozen=True)
class EvalConfig:
    anchors: tuple[AnchorConfig, ...] = (AnchorConfig("resnet50", 0.25), AnchorConfig("mobilenetv2", 0.5),
                                         AnchorConfig("efficientnet_b0", 0.5))
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rejection: RejectionConfig = field(default_factory=RejectionConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # seeds model initialisation and batch order


@dataclass(frozen=True)
class SearchConfig:
    """The ``[search]`` table of a preset."""

    algorithm: str = "evolution"  # evolution | random
    criterion: str = "pareto"  # pareto | average: the tournament's winner
    population_size: int = 100  # the aging window
    tournament_size: int = 25
    seed_layers: tuple[str, ...] = ()  # zoo layers placed in the initial population
    mutation: str = "indel"  # paper | point | mixed | indel | indel_edge: the mutation step (gp.variation.STEPS)
    window_rejected: bool = False  # True: rejected candidates also take window slots (they never win)
    mutation_repeat: float = 0.5  # probability of each further mutation step (a geometric number, mean 2)
    flat_tournament: str = "random"  # random | mutate: the ask when every tournament member scores the same
    require_x: bool = True  # evolution's random genomes are drawn among graphs that read x
    min_window: int = 0  # tournaments start when the window holds this many passing layers (0: when full)
    screen: bool = True  # redraw, unevaluated, a proposal the static probe rejects (evolution and random search)
    crossover: float = 0.0  # share of evolution's children grafted from two tournament winners (gp.variation)
    parsimony: bool = False  # of tournament members that score the same, only the smallest live graph competes
    distinct: bool = False  # a candidate scoring exactly as a window member stays out of the window (recorded)
    adaptive_immigration: bool = False  # choose a mutant or a fresh random genome by how often each beat the window
    preselect: int = 0  # proposals drawn per ask, the one a behaviour model rates highest evaluated (0: off)
    batch_stats: bool = True  # False: the batch-independent ("S") search space
    max_nodes: int = 10  # intermediate nodes of random graphs (paper: 10)
    budget: int = 1000  # finished evaluations, duplicates excluded
    workers: int = 1
    executor: str = "serial"  # serial | process | ray
    seed: int = 0


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key {where + '.' if where else ''}{unknown[0]}; valid keys"
                          f"{' in [' + where + ']' if where else ''}: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in values.items():
        hint, path = hints[key], f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, path)
        elif key == "anchors":
            if not isinstance(value, list | tuple) or not value:
                raise ConfigError("anchors: expected a non-empty list of {arch, width} tables")
            kwargs[key] = tuple(_build(AnchorConfig, a, f"anchors[{i}]") for i, a in enumerate(value))
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{path} must be a list, got {value!r}")
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def from_dict(values: dict) -> EvalConfig:
    return validate(_build(EvalConfig, values, ""))


def search_from_dict(values: dict) -> SearchConfig:
    return validate(_build(SearchConfig, values, "search"))


# -- validation: types and ranges of every key ----------------------------------------------------

EXECUTORS = ("serial", "process", "ray")
ALGORITHMS = ("evolution", "random")
CRITERIA = ("pareto", "average")
NO_ACT = ("affine", "candidate", "batchnorm")
COMPILE = ("off", "survivors", "always")
ANCHOR_ORDERS = ("config", "fail-first")
COMPILE_SHAPES = ("per-resolution", "dynamic")  # gp.compiler.SHAPE_POLICIES (a test keeps them equal)
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def _at_least(n: float) -> tuple[Callable, str]:
    return (lambda v: v >= n), f"at least {n}"


def _one_of(*choices: str) -> tuple[Callable, str]:
    return (lambda v: v in choices), "one of " + ", ".join(choices)


_POSITIVE = ((lambda v: v > 0 and math.isfinite(v)), "positive and finite")
_FRACTION = ((lambda v: 0 <= v < 1), "in [0, 1)")
_RANGES: dict[type, dict[str, tuple[Callable, str]]] = {
    AnchorConfig: {"arch": ((lambda v: bool(v)), "a non-empty name"), "width": _POSITIVE},
    DataConfig: {"source": ((lambda v: bool(v)), "a non-empty name or path"), "val_size": _at_least(1),
                 "per_class": _at_least(1), "val_limit": _at_least(1), "val_batch": _at_least(1),
                 "split_seed": _at_least(0),
                 "resolution": _at_least(4)},
    TrainConfig: {"steps": _at_least(1), "batch_size": _at_least(1), "lr": _POSITIVE, "warmup": _FRACTION,
                  "momentum": _FRACTION, "weight_decay": _at_least(0), "eval_at": _at_least(1),
                  "no_act": _one_of(*NO_ACT), "compile": _one_of(*COMPILE),
                  "compile_shapes": _one_of(*COMPILE_SHAPES)},
    RejectionConfig: {"quality_step": _at_least(1), "quality_threshold": ((lambda v: 0 <= v <= 1), "in [0, 1]"),
                      "stability_steps": _at_least(0), "stability_threshold": _POSITIVE,
                      "stability_lr": _POSITIVE, "stability_batch": _at_least(1), "max_step_ratio": _at_least(0),
                      "timing_steps": _at_least(1), "max_seconds": ((lambda v: 0 <= v < math.inf), "0 (off) or a "
                                                                   "positive number of seconds"),
                      "anchor_order": _one_of(*ANCHOR_ORDERS)},
    EvalConfig: {"device": ((lambda v: _DEVICE.fullmatch(v) is not None), "auto, cpu, mps, cuda or cuda:N"),
                 "seed": _at_least(0)},
    SearchConfig: {"algorithm": _one_of(*ALGORITHMS), "criterion": _one_of(*CRITERIA),
                   "population_size": _at_least(1), "tournament_size": _at_least(1), "max_nodes": _at_least(1),
                   "min_window": _at_least(0),
                   "budget": _at_least(1), "workers": _at_least(1), "executor": _one_of(*EXECUTORS),
                   "seed": _at_least(0)},
}
_SECTIONS = {DataConfig: "data", TrainConfig: "train", RejectionConfig: "rejection", SearchConfig: "search"}


def _type_ok(value, hint) -> bool:
    """Whether ``value`` fits ``hint`` (int where a float is expected is fine; a bool is no number)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_type_ok(v, item) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    text = str(hint).replace("typing.", "").replace("evaluation.config.", "")
    return {"<class 'int'>": "an integer", "<class 'float'>": "a number", "<class 'str'>": "a string",
            "<class 'bool'>": "true or false"}.get(text, text)


def _check(obj, where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    ranges = _RANGES.get(type(obj), {})
    for f in dataclasses.fields(obj):
        value, hint, path = getattr(obj, f.name), hints[f.name], f"{where}{f.name}"
        if dataclasses.is_dataclass(value):
            _check(value, f"{path}.")
            continue
        if not _type_ok(value, hint):
            raise ConfigError(f"{path} must be {_type_name(hint)}, got {value!r}")
        if f.name not in ranges or value is None:
            continue
        ok, text = ranges[f.name]
        for v in (value if isinstance(value, tuple) else (value,)):
            if not ok(v):
                raise ConfigError(f"{path} must be {text}, got {value!r}")


def validate(config):
    """``config`` itself, once every key is checked for its type and range; a :class:`ConfigError`
    names the first bad key, its value and what would be valid."""
    if isinstance(config, EvalConfig):
        if not config.anchors:
            raise ConfigError("anchors: expected a non-empty list of {arch, width} tables")
        for i, anchor in enumerate(config.anchors):
            if not isinstance(anchor, AnchorConfig):
                raise ConfigError(f"anchors[{i}] must be an {{arch, width}} table, got {anchor!r}")
            _check(anchor, f"anchors[{i}].")
        _check(dataclasses.replace(config, anchors=()), "")
    elif isinstance(config, SearchConfig):
        _check(config, "search.")
        _check_search(config)
    else:
        _check(config, _SECTIONS.get(type(config), "") + ".")
    return config


def _check_search(cfg: SearchConfig) -> None:
    from gp import zoo
    from gp.search.searcher import FLAT_TOURNAMENT
    from gp.variation import STEPS

    if cfg.tournament_size > cfg.population_size:
        raise ConfigError(f"search.tournament_size ({cfg.tournament_size}) must be at most search.population_size "
                          f"({cfg.population_size})")
    if cfg.min_window > cfg.population_size:
        raise ConfigError(f"search.min_window ({cfg.min_window}) must be at most search.population_size "
                          f"({cfg.population_size})")
    if cfg.mutation not in STEPS:
        raise ConfigError(f"search.mutation must be one of {', '.join(STEPS)}, got {cfg.mutation!r}")
    if not 0.0 <= cfg.mutation_repeat < 1.0:
        raise ConfigError(f"search.mutation_repeat must be in [0, 1), got {cfg.mutation_repeat!r}")
    if not 0.0 <= cfg.crossover < 1.0:
        raise ConfigError(f"search.crossover must be in [0, 1), got {cfg.crossover!r}")
    if cfg.preselect < 0:
        raise ConfigError(f"search.preselect must be 0 (off) or a number of proposals per ask, got {cfg.preselect!r}")
    if cfg.flat_tournament not in FLAT_TOURNAMENT:
        raise ConfigError(f"search.flat_tournament must be {' or '.join(FLAT_TOURNAMENT)}, "
                          f"got {cfg.flat_tournament!r}")
    for name in cfg.seed_layers:
        if name not in zoo.names():
            raise ConfigError(f"search.seed_layers: {name!r} is not a zoo layer; known: {', '.join(zoo.names())}")
    if cfg.executor == "serial" and cfg.workers != 1:
        raise ConfigError(f"search.workers must be 1 with the serial executor, got {cfg.workers}; "
                          "use executor process or ray for parallel evaluations")


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def _read(name_or_path: str) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"unknown preset {name_or_path!r}; presets: {', '.join(presets())}")
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return path, values


def load(name_or_path: str) -> EvalConfig:
    """The evaluation config of a preset name (``smoke``, ``cpu``, ``paper``) or a TOML file."""
    path, values = _read(name_or_path)
    values.pop("search", None)  # the search's own table, read by load_search
    try:
        return from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_search(name_or_path: str) -> SearchConfig:
    """The ``[search]`` table of a preset or TOML file (defaults where it has none)."""
    path, values = _read(name_or_path)
    try:
        return search_from_dict(values.get("search", {}))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def override(config, **changes):
    """Replace ``section.key`` values: ``override(c, **{"train.steps": 50})``; the result is
    validated (:func:`validate`), and an unknown key is a :class:`ConfigError` too."""
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        try:
            if section:
                part = getattr(config, section)
                config = dataclasses.replace(config, **{section: dataclasses.replace(part, **{key: value})})
            else:
                config = dataclasses.replace(config, **{key: value})
        except (AttributeError, TypeError):
            raise ConfigError(f"unknown key {dotted!r}") from None
    return validate(config)


def parse_assignments(texts) -> dict:
    """``["train.steps=300", "data.source=cifar10"]`` as ``{"train.steps": 300, ...}``, each value
    read as a TOML value (a bare word is a string), for :func:`override` and ``--set`` options."""
    changes = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE (e.g. train.steps=300), got {text!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        changes[key.strip()] = tuple(value) if isinstance(value, list) else value
    return changes
