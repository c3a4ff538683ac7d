"""Shared fixtures: an isolated data root per test, and the real default reader loaded once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``SAESCOPE_HOME`` for one test."""
    root = tmp_path / "home"
    monkeypatch.setenv("SAESCOPE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def default_reader_dir() -> Path:
    from saescope.embed.default import default_reader_dir as locate

    return locate()


@pytest.fixture(scope="session")
def reader(default_reader_dir: Path) -> Iterator[object]:
    from saescope.embed.default import DEFAULT_LAYER, DEFAULT_READER_ID
    from saescope.embed.reader import Reader

    yield Reader(default_reader_dir, DEFAULT_LAYER, device="cpu", model_id=DEFAULT_READER_ID)


@pytest.fixture(scope="session")
def default_sae() -> object:
    from saescope.embed.default import DEFAULT_SAE_DIR
    from saescope.embed.sae import SparseAutoencoder

    return SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, device="cpu")
