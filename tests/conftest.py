"""Shared test fixtures: the offline CIFAR-10 copy beside the checkout, small seeded tensors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
# EVONORM_TEST_DATA points elsewhere (a machine where ../shared is not beside the checkout)
DATA = Path(os.environ.get("EVONORM_TEST_DATA", ROOT.parent / "shared" / "data" / "cifar10"))


@pytest.fixture(scope="session", autouse=True)
def test_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for the whole session (and its subprocesses), never the user's; MLflow's
    default store and artifacts, and anything else written to the working directory, in a temporary
    directory, never in the repository."""
    path = tmp_path_factory.mktemp("evonorm-cache")
    os.environ["EVONORM_CACHE"] = str(path)
    work = tmp_path_factory.mktemp("cwd")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.chdir(work)
    return path


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the offline CIFAR-10 copy is missing at {DATA}")
    return DATA


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


TINY = """
device = "cpu"
seed = 0
[[anchors]]
arch = "resnet50"
width = 0.0625
[data]
source = "{data}"
per_class = 30
val_size = 60
[train]
steps = 4
batch_size = 16
lr = 0.05
[rejection]
quality_step = 4
quality_threshold = 0.0
stability_steps = 2
stability_batch = 8
max_step_ratio = 0
[search]
population_size = 4
tournament_size = 2
budget = 8
seed = 0
"""


@pytest.fixture(scope="session")
def tiny_text(cifar_dir) -> str:
    """A search config that runs in seconds: one tiny ResNet anchor on 300 images."""
    return TINY.format(data=cifar_dir)


@pytest.fixture
def tiny_config(tmp_path, tiny_text):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_text)
    return path
