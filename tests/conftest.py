"""Shared test fixtures: the offline CIFAR-10 copy beside the checkout, small seeded tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cifar10"


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the offline CIFAR-10 copy is missing at {DATA}")
    return DATA


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
