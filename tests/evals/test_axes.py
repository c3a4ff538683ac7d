"""The axis benchmark: documents vary along three balanced, independent axes; the research clustering recipe
recovers an axis its features follow; the report states the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evals import axes
from evals.metrics import adjusted_rand


def test_documents_vary_along_three_balanced_independent_axes() -> None:
    docs = pd.DataFrame(axes.build_documents(seed=0))
    assert len(docs) == 400 and docs["doc_id"].is_unique
    assert set(docs["kind"]) == {"fresh", "rotten", "plot"}
    for axis in ("style", "layout"):
        assert docs[axis].value_counts().tolist() == [200, 200]
    table = pd.crosstab(docs["style"], docs["layout"]).to_numpy()
    assert np.all(np.abs(table - 100) <= 20)  # independent draws: each combination near a quarter
    bullets = docs[docs["layout"] == "bullets"]["text"]
    assert bullets.str.contains("\n- ").all()
    assert docs[docs["layout"] == "prose"]["text"].str.contains("\n- ").sum() == 0
    assert docs.equals(pd.DataFrame(axes.build_documents(seed=0)))


def test_research_recipe_recovers_the_axis_its_features_follow() -> None:
    rng = np.random.default_rng(0)
    n, d = 120, 30
    truth = np.arange(n) % 2
    X = (rng.random((n, d)) < 0.1).astype(float)
    X[:, 0] = truth == 0  # latent 0 fires on class 0, latent 1 on class 1
    X[:, 1] = truth == 1
    labels = np.zeros((d, 4), dtype=np.float32)
    labels[0, 0] = labels[1, 1] = 1.0  # their label embeddings match the two class descriptions
    labels[2:, 2] = 1.0
    phrases = np.eye(4, dtype=np.float32)[:2]
    got, n_feats, n_empty = axes.research_clusters(sp.csr_matrix(X), labels, phrases, 2, seed=0)
    assert n_feats == 10 and n_empty == 0  # 10 per description; both descriptions rank the same ties
    assert adjusted_rand(truth, got) == 1.0


def test_report_states_means_and_the_target() -> None:
    s = axes.AxisScore("style", ["formal", "casual"], 0.6, 0.4, 20, 3, 0.0, 40, 5, 0.3, 0.9, 80, 2, 0.8, 0.1)
    t = axes.AxisScore("layout", ["prose", "bullets"], 0.0, 0.2, 20, 3, 0.0, 40, 5, 0.0, 0.1, 80, 0, 0.0, 0.3)
    text = axes.render([s, t], "python -m evals.axes", 400, 1.0)
    row = "| style | formal, casual | 0.60 | **0.90** (80, 2) | 0.80 | 0.10 | 0.40 (20, 3) | 0.00 (40, 5) | 0.30 |"
    assert row in text
    assert "| **mean** | | 0.30 | **0.50** | 0.40 | 0.20 | 0.30 | 0.00 | 0.15 |" in text
    assert "Dense's dominant axis: style" in text
    assert ">= 2x dense's (0.60)" in text
    assert "mean 0.50 = 1.67x dense's (misses the 2x target); above dense on 1 of the 1 other axes (layout)" in text
    real = axes.render_real([t], "2 answers")
    assert real.startswith("## Real chat answers") and "2 answers" in real and "| layout |" in real


def test_real_axes_classes_come_from_the_detector_rules() -> None:
    long_list = "Certainly! Here are the steps:\n\n1. Open it.\n2. Close it.\n" + "More detail. " * 100
    code = "Use this:\n\n```python\nprint(1)\n```\n"
    got = {axis: [rule(t) for t in (long_list, code)] for axis, (_, rule) in axes.REAL_AXES.items()}
    assert got == {
        "length": ["long", "short"],
        "layout": ["list", "prose"],
        "code": ["no code", "code"],
        "opener": ["certainly", "direct"],
    }
    for classes, _rule in axes.REAL_AXES.values():
        assert len(classes) >= 2 and all(classes.values())
