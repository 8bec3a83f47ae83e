"""Shared test fixtures: the offline CIFAR-10 copy beside the checkout, small seeded tensors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cifar10"


@pytest.fixture(scope="session", autouse=True)
def test_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for the whole session (and its subprocesses), never the user's."""
    path = tmp_path_factory.mktemp("evonorm-cache")
    os.environ["EVONORM_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the offline CIFAR-10 copy is missing at {DATA}")
    return DATA


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
