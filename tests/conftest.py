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

    yield Reader(default_reader_dir, DEFAULT_LAYER, device="cpu", dtype="float32", model_id=DEFAULT_READER_ID)


@pytest.fixture(scope="session")
def default_sae() -> object:
    from saescope.embed.default import DEFAULT_SAE_DIR
    from saescope.embed.sae import SparseAutoencoder

    return SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, device="cpu")


def build_topk_sae(folder: Path, d_in: int, d_sae: int, k: int, hook_name: str, model_name: str, seed: int = 0) -> Path:
    """Save a randomly initialised SAELens TopK SAE (inference format) to ``folder``."""
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig

    torch.manual_seed(seed)
    cfg = TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, dtype="float32", device="cpu")
    cfg.metadata.hook_name = hook_name
    cfg.metadata.model_name = model_name
    sae = TopKSAE(cfg)
    with torch.no_grad():
        sae.W_enc.normal_(0, 1.0 / d_in**0.5)
        sae.W_dec.copy_(sae.W_enc.T)
        sae.b_enc.normal_(0, 0.1)
    sae.save_model(str(folder))
    return folder


@pytest.fixture(scope="session")
def random_sae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random TopK SAE on the default reader's block 15 (fast to build; for pooling semantics)."""
    folder = tmp_path_factory.mktemp("random_sae")
    return build_topk_sae(folder, 576, 256, 16, "blocks.15.hook_resid_post", "smollm2-135m-instruct-q4_1")
