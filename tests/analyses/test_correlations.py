from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats as sps

from saescope.analyses import latent_cooccurrence, latent_metadata_association, spearman_columns, stats
from saescope.errors import InputError


def _binary(n: int, d: int, fires: dict[int, list[int]]) -> sp.csr_matrix:
    M = np.zeros((n, d), dtype=np.float32)
    for lat, rows in fires.items():
        M[rows, lat] = 1.0
    return sp.csr_matrix(M)


def test_npmi_of_a_hand_made_pair() -> None:
    # 10 docs: latent 0 in docs 0-3, latent 1 in docs 0-4, latent 2 in docs 7-9 (meets 0 and 1 never)
    X = _binary(10, 4, {0: [0, 1, 2, 3], 1: [0, 1, 2, 3, 4], 2: [7, 8, 9], 3: [4, 9]})
    res = latent_cooccurrence(X, {0: "a", 1: "b"}, min_cooc=2)
    assert res.total == 1
    pair = res.pairs[0]
    assert (pair.latent_a, pair.latent_b, pair.count_ab, pair.count_a, pair.count_b) == (0, 1, 4, 4, 5)
    assert (pair.label_a, pair.label_b) == ("a", "b")
    # p_ab = 0.4, p_a = 0.4, p_b = 0.5: log(0.4 / 0.2) / -log(0.4)
    assert pair.npmi == pytest.approx(math.log(2) / -math.log(0.4))
    # with min_cooc=1 the single co-occurrences (1,3) and (2,3) appear too
    assert latent_cooccurrence(X, None, min_cooc=1).total == 3


def test_npmi_is_one_for_latents_that_always_fire_together() -> None:
    X = _binary(6, 2, {0: [1, 2, 3], 1: [1, 2, 3]})
    assert latent_cooccurrence(X, None, min_cooc=1).pairs[0].npmi == pytest.approx(1.0)


def test_cooccurrence_counts_match_dense_product_across_blocks() -> None:
    X = sp.random(300, 2500, density=0.02, random_state=1, format="csr", dtype=np.float32)  # > 2 blocks
    B = (X.toarray() > 0).astype(np.float64)
    C = np.rint(B.T @ B).astype(np.int64)
    res = latent_cooccurrence(X, None, min_cooc=3, top_k=10_000)
    assert res.total > 100
    iu = np.triu_indices(2500, k=1)
    keep = C[iu] >= 3
    want = {(int(a), int(b)): int(c) for a, b, c in zip(iu[0][keep], iu[1][keep], C[iu][keep], strict=True)}
    got = {(p.latent_a, p.latent_b): p.count_ab for p in res.pairs}
    assert got == want
    npmis = [p.npmi for p in res.pairs]
    assert npmis == sorted(npmis, reverse=True)
    # pages tile the full ranking
    page2 = latent_cooccurrence(X, None, min_cooc=3, top_k=5, cursor=5)
    assert [(p.latent_a, p.latent_b) for p in page2.pairs] == [(p.latent_a, p.latent_b) for p in res.pairs[5:10]]
    # pairs of one latent
    lat = res.pairs[0].latent_a
    only = latent_cooccurrence(X, None, min_cooc=3, top_k=10_000, latent=lat)
    assert {(p.latent_a, p.latent_b) for p in only.pairs} == {k for k in want if lat in k}


def test_cooccurrence_drops_pairs_with_similar_labels() -> None:
    X = _binary(10, 3, {0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1, 2, 5, 6]})
    E = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    full = latent_cooccurrence(X, None, min_cooc=2, label_embeddings=E)
    assert (full.pairs[0].latent_a, full.pairs[0].latent_b) == (0, 1)
    assert full.pairs[0].label_similarity == pytest.approx(1.0)
    res = latent_cooccurrence(X, None, min_cooc=2, label_embeddings=E, max_label_similarity=0.9)
    assert (0, 1) not in [(p.latent_a, p.latent_b) for p in res.pairs]
    assert res.n_dropped_similar == 1
    assert len(res.pairs) == 2
    with pytest.raises(InputError, match="label_embeddings"):
        latent_cooccurrence(X, None, max_label_similarity=0.5)


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    X = sp.random(80, 12, density=0.3, random_state=4, format="csr")
    X.data = np.round(X.data * 3) + 1  # tied activations
    y = rng.integers(0, 5, 80).astype(float)  # tied column values
    for binary in (False, True):
        rho, p = spearman_columns(X, y, binary=binary)
        for j in range(12):
            x = X[:, [j]].toarray().ravel()
            want = sps.spearmanr(x > 0 if binary else x, y)
            assert rho[j] == pytest.approx(want.statistic, abs=1e-12)
            assert p[j] == pytest.approx(want.pvalue, rel=1e-9)


def test_numeric_association_ranks_by_abs_rho() -> None:
    n = 40
    y = np.arange(n, dtype=float)
    M = np.zeros((n, 3))
    M[20:, 0] = 1.0  # fires on the upper half: strong positive
    M[:10, 1] = 1.0  # fires on the lowest quarter: negative
    M[::7, 2] = 1.0  # unrelated
    meta = pd.DataFrame({"length": y})
    res = latent_metadata_association(sp.csr_matrix(M), meta, "length", None, top_k=3)
    assert res.kind == "numeric"
    assert [r.latent for r in res.correlations or []] == [0, 1, 2]
    top = (res.correlations or [])[0]
    assert top.rho == pytest.approx(sps.spearmanr(M[:, 0], y).statistic)
    assert top.mean_when_firing == pytest.approx(y[20:].mean())
    assert top.mean_when_not == pytest.approx(y[:20].mean())
    assert top.freq == 0.5


def test_categorical_enrichment_exact() -> None:
    cats = ["x"] * 10 + ["y"] * 10 + [None] * 2
    M = np.zeros((22, 2))
    M[:8, 0] = 1.0  # 8/10 in x
    M[10:12, 0] = 1.0  # 2/10 in y
    M[20:, 0] = 1.0  # missing category: left out
    M[:, 1] = 1.0
    meta = pd.DataFrame({"cat": cats})
    res = latent_metadata_association(sp.csr_matrix(M), meta, "cat", {0: "zero"}, min_support=1)
    assert (res.kind, res.n_docs, res.n_missing, res.n_categories_total) == ("categorical", 20, 2, 2)
    by_cat = {c.category: c for c in res.categories or []}
    row = by_cat["x"].rows[0]
    assert (row.latent, row.label, row.count_in, row.freq_in, row.freq_out) == (0, "zero", 8, 0.8, 0.2)
    _, p, _ = stats.proportion_test([8], [10], [2], [10])
    assert row.p == pytest.approx(p[0])
    lo, _ = stats.newcombe_interval([8], [10], [2], [10])
    assert row.ci_low == pytest.approx(lo[0])
    assert by_cat["y"].rows == []  # latent 0 is depleted in y, latent 1 is flat
    assert "[x]" in res.to_text()


def test_datetime_association_and_monthly_timeline() -> None:
    dates = pd.to_datetime(["2024-01-05"] * 4 + ["2024-02-10"] * 4 + ["2024-03-15"] * 4)
    M = np.zeros((12, 2))
    M[[0, 4, 5, 8, 9, 10, 11], 0] = 1.0  # 1/4, 2/4, 4/4 of the months
    M[[1, 6], 1] = 1.0
    res = latent_metadata_association(
        sp.csr_matrix(M), pd.DataFrame({"when": dates}), "when", None, min_support=1, n_timeline_latents=1
    )
    assert res.kind == "datetime" and res.bucket == "day"
    res = latent_metadata_association(
        sp.csr_matrix(M),
        pd.DataFrame({"when": dates}),
        "when",
        None,
        min_support=1,
        n_timeline_latents=1,
        bucket="month",
    )
    assert res.bucket == "month"
    assert [(b.period, b.n_docs, b.freq[0]) for b in res.timeline or []] == [
        ("2024-01", 4, 0.25),
        ("2024-02", 4, 0.5),
        ("2024-03", 4, 1.0),
    ]
    top = (res.correlations or [])[0]
    assert top.latent == 0
    assert top.rho == pytest.approx(sps.spearmanr(M[:, 0], dates.asi8).statistic)


def test_metadata_errors() -> None:
    X = sp.csr_matrix(np.ones((4, 2)))
    with pytest.raises(InputError, match="unknown column"):
        latent_metadata_association(X, pd.DataFrame({"a": [1, 2, 3, 4]}), "b", None)
    with pytest.raises(InputError, match="aligned"):
        latent_metadata_association(X, pd.DataFrame({"a": [1, 2, 3]}), "a", None)
