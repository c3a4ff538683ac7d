from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses import adjusted_rand, cluster_dense, cluster_documents
from saescope.errors import InputError


def _three_groups(n: int = 90, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Group g fires latents 3g..3g+2 (the axis); latents 9..19 fire at random (noise); rows 0-2 fire no axis latent."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    M = np.zeros((n, 20), dtype=np.float32)
    for i, g in enumerate(truth):
        M[i, 3 * g : 3 * g + 3] = rng.uniform(0.5, 2.0, 3)
        M[i, rng.integers(9, 20, 3)] = 1.0
    M[:3, :9] = 0.0
    return sp.csr_matrix(M), truth


def test_cluster_documents_recovers_separable_groups() -> None:
    X, truth = _three_groups()
    res = cluster_documents(X, {0: "zero"}, axis_latents=list(range(9)))
    assert (res.k, res.k_chosen_by, res.n_unassigned) == (3, "silhouette", 3)
    assert res.assignment[:3] == [-1, -1, -1]
    assert adjusted_rand(truth[3:], res.assignment[3:]) == 1.0
    assert res.silhouette == pytest.approx(1.0)
    assert [c.size for c in res.clusters] == [29, 29, 29]
    for c in res.clusters:
        assert len(c.top_latents) == 3 and all(t.freq_in == 1.0 and t.freq_out == 0.0 for t in c.top_latents)
        assert len(c.examples) == 3
    assert res.unassigned_examples == ["#0", "#1", "#2"]
    assert "assignment" not in res.model_dump()
    assert "cluster 0" in res.to_text()


def test_cluster_documents_with_fixed_k_scores_and_subsampling() -> None:
    X, truth = _three_groups(300)
    res = cluster_documents(X, None, axis_scores=-np.arange(20, dtype=float), n_latents=9, k=3, max_fit_docs=60)
    assert res.k_chosen_by == "given"
    assert [s.latent for s in res.selected_latents] == list(range(9))
    assert res.selected_latents[0].relevance == 0.0
    assigned = np.array(res.assignment) >= 0
    assert adjusted_rand(truth[assigned], np.array(res.assignment)[assigned]) == 1.0
    two = cluster_documents(X, None, axis_latents=list(range(9)), k=2)
    assert two.k == 2


def test_cluster_documents_rows_subset_and_errors() -> None:
    X, truth = _three_groups()
    rows = np.flatnonzero(truth != 2)[2:]  # groups 0 and 1 only, no unassigned docs
    res = cluster_documents(X, None, rows=rows, axis_latents=list(range(9)), doc_ids=[f"d{i}" for i in range(90)])
    assert res.n_docs == len(rows) and res.k == 2
    assert adjusted_rand(truth[rows], res.assignment) == 1.0
    assert all(ex.startswith("d") for c in res.clusters for ex in c.examples)
    with pytest.raises(InputError, match="widen"):
        cluster_documents(X, None, axis_latents=[0, 1], min_doc_freq=0.9, max_doc_freq=1.0)
    with pytest.raises(InputError, match="axis_scores"):
        cluster_documents(X, None, axis_scores=np.ones(3))


def test_cluster_dense_both_methods() -> None:
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1, 2], 40)
    E = rng.normal(scale=0.1, size=(120, 8)) + np.eye(8)[truth] * 3
    for method in ("kmeans", "agglomerative"):
        res = cluster_dense(E, method=method, max_fit_docs=50)
        assert res.k == 3
        assert adjusted_rand(truth, res.assignment) == 1.0
        assert res.selected_latents == [] and res.n_unassigned == 0


def test_adjusted_rand() -> None:
    assert adjusted_rand([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert adjusted_rand([0, 0, 1, 1], [0, 1, 0, 1]) < 0
    with pytest.raises(InputError):
        adjusted_rand([0], [0, 1])


def test_unassigned_documents_are_placed_by_their_full_vectors() -> None:
    """Documents where no axis latent fires keep -1 in ``assignment`` but are placed, in ``placed``, in the
    cluster whose mean full binarised vector is nearest by cosine: here each shares its non-axis latents
    with one group only."""
    X, truth = _three_groups()
    M = X.toarray()
    M[:, 9:] = 0.0
    for g in range(3):
        M[truth == g, 9 + 3 * g : 12 + 3 * g] = 1.0  # non-axis latents that follow the group
    M[:3, :9] = 0.0  # three documents with no axis latent, one per group by their other latents
    res = cluster_documents(sp.csr_matrix(M), {0: "zero"}, axis_latents=list(range(9)))
    assert res.assignment[:3] == [-1, -1, -1] and res.n_unassigned == 3
    assert -1 not in res.placed and res.placed[3:] == res.assignment[3:]
    assert adjusted_rand(truth, res.placed) == 1.0
    assert adjusted_rand(truth, res.assignment) < 1.0  # -1 counted as a group of its own costs agreement
    assert "placed" not in res.model_dump()
