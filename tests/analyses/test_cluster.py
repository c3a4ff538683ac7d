from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from saescope import analyses as an
from saescope.analyses import (
    adjusted_rand,
    class_margins,
    cluster_dense,
    cluster_documents,
    cluster_guided,
    firing_correlations,
)
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


# --- guided clustering -------------------------------------------------------------------------------
def _two_axes(n: int = 120, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Axis A (2 classes) fires latent 0 or 1; axis B (2 classes, independent of A) fires latents 2-5 or 6-9,
    so B dominates the variance; latents 10-29 are noise. Rows 0-1 fire nothing of axis A."""
    rng = np.random.default_rng(seed)
    a = rng.permutation(np.arange(n) % 2)
    b = rng.permutation(np.arange(n) % 2)
    M = np.zeros((n, 30), dtype=np.float32)
    M[np.arange(n), a] = 1.0
    for i in range(n):
        M[i, 2 + 4 * b[i] : 6 + 4 * b[i]] = rng.uniform(0.5, 2.0, 4)
        M[i, rng.integers(10, 30, 4)] = 1.0
    M[:2, :2] = 0.0
    return sp.csr_matrix(M), a, b


def test_class_margins_are_standardised_leanings() -> None:
    S = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 1.0]])
    M = class_margins(S)
    lean = np.array([0.5, -0.5, 0.0, 0.0])  # score minus the row mean, for class 0
    expected = (lean - lean.mean()) / lean.std()
    np.testing.assert_allclose(M[:, 0], expected)
    np.testing.assert_allclose(M[:, 1], -expected)
    np.testing.assert_allclose(class_margins(np.ones((3, 2))), 0.0)  # constant: no leaning, no division by 0
    with pytest.raises(InputError, match="shape"):
        class_margins(np.ones((3, 1)))
    with pytest.raises(InputError, match="finite"):
        class_margins(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_firing_correlations_equal_pearson_of_binarised_columns() -> None:
    rng = np.random.default_rng(3)
    D = rng.uniform(0, 1, (50, 12)) * (rng.uniform(0, 1, (50, 12)) < 0.3)
    D[:, 4] = 0.0  # never fires
    D[:, 5] = 1.0  # always fires
    G = rng.normal(size=(50, 3))
    G[:, 2] = 7.0  # constant guide
    C = firing_correlations(sp.csr_matrix(D), G)
    B = (D > 0).astype(float)
    for j in range(12):
        for c in range(2):
            want = 0.0 if j in (4, 5) else np.corrcoef(B[:, j], G[:, c])[0, 1]
            assert C[j, c] == pytest.approx(want, abs=1e-12)
    assert np.all(C[:, 2] == 0.0)
    with pytest.raises(InputError, match="one row per document"):
        firing_correlations(sp.csr_matrix(D), G[:10])


def test_cluster_guided_follows_a_weak_guide_to_its_axis_not_the_dominant_one() -> None:
    X, a, b = _two_axes()
    rng = np.random.default_rng(1)
    # a weak, noisy guide for axis A (its zero-shot accuracy alone is far from perfect)
    guide = np.column_stack([(a == 0) * 0.6 + rng.normal(0, 1, len(a)), (a == 1) * 0.6 + rng.normal(0, 1, len(a))])
    zero_shot = guide.argmax(axis=1)
    assert adjusted_rand(a, zero_shot) < 0.5
    names = ["first of A", "second of A"]
    res = cluster_guided(X, guide, {0: "a0", 1: "a1"}, class_names=names, per_class=3, seed=0)
    assert res.k == 2 and res.k_chosen_by == "given" and res.n_unassigned == 2
    assert res.assignment[:2] == [-1, -1] and min(res.placed) >= 0
    assert adjusted_rand(a[2:], res.assignment[2:]) == 1.0
    assert adjusted_rand(b, res.placed) < 0.1  # not the dominant axis
    assert {s.latent for s in res.selected_latents} >= {0, 1}
    for c in res.clusters:  # named after its class, described by its axis latent
        rows = np.flatnonzero(np.asarray(res.assignment) == c.cluster)
        cls = int(np.bincount(a[rows]).argmax())
        assert c.axis_class == names[cls]
        assert c.top_latents[0].latent == cls and c.top_latents[0].freq_in == 1.0
    assert "matched to 'first of A'" in res.to_text()
    # k-means fitted on a sample, the rest predicted: the same clusters here
    sampled = cluster_guided(X, guide, None, class_names=names, per_class=3, seed=0, max_fit_docs=40)
    assert adjusted_rand(res.assignment, sampled.assignment) == 1.0


def test_cluster_guided_more_clusters_than_classes_and_bad_input() -> None:
    X, a, _ = _two_axes()
    guide = np.column_stack([a == 0, a == 1]).astype(float)
    res = cluster_guided(
        X, guide, None, k=3, per_class=5, rows=np.arange(10, 120), doc_ids=[f"d{i}" for i in range(120)]
    )
    assert res.n_docs == 110 and res.k == 3 and len(res.assignment) == 110
    assert all(c.axis_class in ("class 0", "class 1") for c in res.clusters)
    assert all(e.startswith("d") and int(e[1:]) >= 10 for c in res.clusters for e in c.examples)
    with pytest.raises(InputError, match="one row per document"):
        cluster_guided(X, guide[:5], None)
    with pytest.raises(InputError, match="class names"):
        cluster_guided(X, guide, None, class_names=["only one"])
    with pytest.raises(InputError, match="per_class"):
        cluster_guided(X, guide, None, per_class=0)
    with pytest.raises(InputError, match="follows the documents' similarity"):
        cluster_guided(X, np.column_stack([np.ones(120), np.zeros(120)]), None)
    with pytest.raises(InputError, match="rows"):
        cluster_guided(X, guide, None, rows=[500])
    with pytest.raises(InputError, match="boolean mask"):
        cluster_guided(X, guide, None, rows=np.arange(120) < 60)
    with pytest.raises(InputError, match="k must be >= 2"):
        cluster_guided(X, guide, None, k=1)
    with pytest.raises(InputError, match="at least 2 classes"):
        cluster_guided(X, guide[:, :1], None)
    few = sp.csr_matrix(np.vstack([np.eye(2, 30), np.zeros((8, 30))]))  # 2 documents fire anything
    with pytest.raises(InputError, match="fewer than the 3 clusters"):
        cluster_guided(few, np.column_stack([np.arange(10.0), -np.arange(10.0)]), None, k=3, min_count=1)
    with pytest.raises(InputError, match="finite"):
        firing_correlations(X, np.full((120, 1), np.nan))


def test_latent_guide_is_the_best_weight_among_firing_latents() -> None:
    X = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.5], [0.0, 0.0, 1.0]]))
    g = an.latent_guide(X, {0: 0.4, 1: 0.7, 2: 0.1})
    np.testing.assert_array_equal(g, [0.4, 0.0, 0.7, 0.1])
    np.testing.assert_array_equal(an.latent_guide(X, {}), np.zeros(4))
    with pytest.raises(InputError, match="out of range"):
        an.latent_guide(X, {3: 1.0})
    with pytest.raises(InputError, match="non-finite"):
        an.latent_guide(X, {0: float("nan")})


def test_combine_guides_standardises_each_column_before_adding() -> None:
    A = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    B = np.array([[10.0, 0.0], [30.0, 1.0], [20.0, 2.0]])
    out = an.combine_guides(A, B)
    z = np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)
    np.testing.assert_allclose(out[:, 0], z + np.array([-1.0, 1.0, 0.0]) * np.sqrt(1.5))
    np.testing.assert_allclose(out[:, 1], z)  # A's constant column adds nothing
    with pytest.raises(InputError, match="share one 2-D shape"):
        an.combine_guides(A, B[:2])
    with pytest.raises(InputError, match="at least one"):
        an.combine_guides()
    with pytest.raises(InputError, match="finite"):
        an.combine_guides(A, np.full((3, 2), np.inf))
