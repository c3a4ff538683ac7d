from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saescope.training.corpus import CorpusDoc, build_corpus
from saescope.training.prompts import build_prompts
from saescope.training.train import label_from_tokens


def test_prompts_are_deterministic_and_varied() -> None:
    a, b = build_prompts(300, seed=0), build_prompts(300, seed=0)
    assert a == b and len(set(a)) == 300
    assert build_prompts(50, seed=1) != a[:50]
    assert any("Python" in p for p in a) and any("français" in p for p in a)


def test_held_out_split_is_stable() -> None:
    docs = [CorpusDoc("s", str(i), "x") for i in range(4000)]
    frac = np.mean([d.held_out for d in docs])
    assert 0.03 < frac < 0.07
    assert [d.held_out for d in docs] == [CorpusDoc("s", str(i), "y").held_out for i in range(4000)]


def test_label_from_tokens() -> None:
    from collections import Counter

    assert (
        label_from_tokens(Counter({" refund": 8, " money": 3, " the": 1}), Counter({"reviews": 12}), 12)
        == "'refund', 'money' [reviews]"
    )
    assert label_from_tokens(Counter({"a": 1, "b": 1}), Counter({"x": 1, "y": 1}), 2) == "'a', 'b'"


@pytest.mark.slow
def test_tiny_training_run_produces_a_loadable_sae(tmp_path: Path) -> None:
    from saescope.embed.sae import SparseAutoencoder
    from saescope.training.pipeline import SHIPPED_RESPONSES, train_default_sae
    from saescope.training.train import TrainConfig

    assert SHIPPED_RESPONSES.is_file()
    docs = build_corpus(SHIPPED_RESPONSES)
    assert {d.source for d in docs} >= {"reader_responses", "rotten_tomatoes", "python_docs", "convention_speeches"}
    cfg = TrainConfig(d_sae=128, k=8, training_samples=200_000, batch_size=512, n_prompts=1700)
    quality = train_default_sae(tmp_path / "sae", tmp_path / "work", cfg, max_docs=120)
    assert 0 < quality.fvu < 0.9 and quality.l0 == pytest.approx(8, abs=0.01)
    sae = SparseAutoencoder.from_disk(tmp_path / "sae")
    assert sae.d_sae == 128 and sae.layer == 15 and sae.thresholds is not None
    meta = json.loads((tmp_path / "sae" / "saescope.json").read_text())
    assert meta["quality"]["train_tokens"] > 1000 and meta["train_config"]["k"] == 8
    assert (tmp_path / "sae" / "labels.jsonl.gz").is_file()
