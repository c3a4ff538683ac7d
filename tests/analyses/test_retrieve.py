from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses import (
    PropertyLatent,
    PropertyLatents,
    combine_property_latents,
    fuse_rankings,
    group_percentile,
    nonzero_percentile,
    rank_by_latents,
    rank_dense,
    rank_hybrid,
    rank_weights,
    select_latents_by_examples,
    select_latents_guided,
    select_latents_research,
    select_property_latents,
)
from saescope.errors import InputError

X = sp.csr_matrix(
    np.array(
        [
            [2.0, 1.0, 0.0],
            [4.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 3.0],
        ],
        dtype=np.float32,
    )
)
IDS = ["d0", "d1", "d2", "d3", "d4"]


def _order(res: object) -> list[str]:
    return [d.doc_id for d in res.docs]  # type: ignore[attr-defined]


def test_rank_by_latents_normalized_scores_and_ties() -> None:
    res = rank_by_latents(X, {0: 1.0, 1: 0.5}, doc_ids=IDS)
    # normalised by each latent's max: d0 = 2/4 + 0.5 * 1 = 1.0, d1 = 1.0, d2 = 0.5, d3 = 0.25; d4 has no score
    assert _order(res) == ["d0", "d1", "d2", "d3"]
    assert [d.score for d in res.docs] == pytest.approx([1.0, 1.0, 0.5, 0.25])
    assert res.total == 4 and res.next_cursor is None
    assert [(c.latent, c.value) for c in res.docs[0].contributions] == [(0, 0.5), (1, 0.5)]


def test_rank_by_latents_scoring_modes_and_formats() -> None:
    assert _order(rank_by_latents(X, {0: 1.0, 1: 0.5}, doc_ids=IDS, scoring="activation")) == ["d1", "d0", "d3", "d2"]
    assert _order(rank_by_latents(X, {0: 1.0, 1: 0.5}, doc_ids=IDS, scoring="binary")) == ["d0", "d1", "d3", "d2"]
    csc = rank_by_latents(X.tocsc(), {0: 1.0, 1: 0.5}, doc_ids=IDS)
    assert csc == rank_by_latents(X, {0: 1.0, 1: 0.5}, doc_ids=IDS)


def test_rank_by_latents_paging() -> None:
    first = rank_by_latents(X, {0: 1.0, 1: 0.5}, top_k=3)
    assert [d.row for d in first.docs] == [0, 1, 2] and first.next_cursor == 3
    rest = rank_by_latents(X, {0: 1.0, 1: 0.5}, top_k=3, cursor=3)
    assert [(d.rank, d.row) for d in rest.docs] == [(3, 3)] and rest.next_cursor is None


def test_rank_by_latents_errors() -> None:
    with pytest.raises(InputError, match="at least one"):
        rank_by_latents(X, {})
    with pytest.raises(InputError, match=r"0\.\.2"):
        rank_by_latents(X, {7: 1.0})
    with pytest.raises(InputError, match="finite"):
        rank_by_latents(X, {0: math.nan})


def test_select_property_latents_by_label_similarity_then_lift() -> None:
    E = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    q = np.array([2.0, 0.0])
    base = select_property_latents(E, q, top_n=3)
    assert [p.latent for p in base.latents] == [0, 1]
    assert [p.similarity for p in base.latents] == pytest.approx([1.0, 0.8])
    assert base.weights() == pytest.approx({0: 1.0, 1: 0.8})
    # latent 0 fires everywhere (lift 1), latent 1 only in the two positive docs
    M = np.zeros((10, 4))
    M[:, 0] = 1.0
    M[[2, 5], 1] = 1.0
    refined = select_property_latents(E, q, top_n=3, positives=[2, 5], X=sp.csr_matrix(M))
    lift = ((2 + 1) / (2 + 2)) / ((2 + 1) / (10 + 2))
    assert refined.n_positives == 2
    assert [p.latent for p in refined.latents] == [1, 0]
    assert refined.latents[0].lift == pytest.approx(lift)
    assert refined.latents[0].weight == pytest.approx(0.8 * (1 + math.log2(lift)))
    assert refined.latents[1].weight == pytest.approx(1.0)
    with pytest.raises(InputError, match="positives need X"):
        select_property_latents(E, q, positives=[1])


def test_rank_dense_cosine() -> None:
    E = np.array([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-1.0, 0.0]])
    res = rank_dense(E, np.array([1.0, 0.2]), top_k=3, doc_ids=["a", "b", "c", "d"])
    assert _order(res) == ["a", "c", "b"]
    assert res.docs[0].score == pytest.approx(1 / math.sqrt(1.04))
    assert res.total == 4 and res.next_cursor == 3


def test_rank_by_latents_csc_skips_stored_non_firing_entries() -> None:
    csc = X.tocsc()
    csc.data[csc.data == 4.0] = 0.0  # d1's latent-0 entry stays stored but no longer fires
    res = rank_by_latents(csc, {0: 1.0}, doc_ids=IDS)
    # normalised by the new max (2.0): d0 = 1.0, d3 = 0.5
    assert _order(res) == ["d0", "d3"]
    assert [d.score for d in res.docs] == pytest.approx([1.0, 0.5])


def test_p90_scoring_divides_by_the_90th_percentile_of_non_zero_activations() -> None:
    col = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 0.0])
    M = sp.csr_matrix(np.c_[col, np.zeros(7)])
    # non-zero values 1, 2, 3, 4, 10: position 0.9 * 4 = 3.6 -> 4 + 0.6 * (10 - 4) = 7.6, as numpy.percentile
    p90 = float(np.percentile(col[col > 0], 90))
    assert p90 == pytest.approx(7.6)
    assert nonzero_percentile(M) == pytest.approx([7.6, 1.0])  # a latent that never fires divides by 1
    res = rank_by_latents(M, {0: 2.0}, scoring="p90", top_k=10)
    assert [d.row for d in res.docs] == [5, 4, 3, 2, 1]
    assert [d.score for d in res.docs] == pytest.approx([2 * v / 7.6 for v in (10.0, 4.0, 3.0, 2.0, 1.0)])
    # a single firing document: the percentile is its own value
    assert group_percentile(np.array([1, 0, 0]), np.array([5.0, 2.0, 4.0]), 3, 90.0) == pytest.approx([3.8, 5.0, 1.0])


def test_rank_weights_decay_with_rank() -> None:
    w = rank_weights(4, 0.2)
    raw = np.exp(-np.arange(4) / (4 * 0.2))
    assert w == pytest.approx(raw / raw.sum())
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) < 0)
    assert rank_weights(1, 0.2) == pytest.approx([1.0])
    with pytest.raises(InputError, match="temperature"):
        rank_weights(3, 0.0)
    with pytest.raises(InputError, match="n must"):
        rank_weights(0)


def test_select_latents_research_takes_the_best_labels_weighted_by_rank() -> None:
    E = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    q = np.array([2.0, 0.0])
    res = select_latents_research(E, q, n_latents=3, temperature=0.5, labels={0: "a", 1: "b"})
    # latent 2 is unlabelled (zero row) and never chosen; the third is the best of the rest (cos 0)
    assert [p.latent for p in res.latents] == [0, 1, 3]
    assert [p.similarity for p in res.latents] == pytest.approx([1.0, 0.8, 0.0])
    assert [p.weight for p in res.latents] == pytest.approx(rank_weights(3, 0.5))
    assert [p.label for p in res.latents][:2] == ["a", "b"]
    with pytest.raises(InputError, match="no latent has a label"):
        select_latents_research(np.zeros((3, 2)), q)
    with pytest.raises(InputError, match="do not match"):
        select_latents_research(E, np.ones(3))


def test_select_property_latents_mixes_label_and_context_similarity() -> None:
    labels_e = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    contexts = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    q = np.array([1.0, 0.0])
    by_label = select_property_latents(labels_e, q, top_n=2)
    assert [p.latent for p in by_label.latents] == [0, 1]
    mixed = select_property_latents(labels_e, q, top_n=2, context_embeddings=contexts, context_weight=0.5)
    # latent 1: 0.5 * 0.6 + 0.5 * 1.0 = 0.8 beats latent 0: 0.5 * 1.0 + 0.5 * 0.0 = 0.5
    assert [p.latent for p in mixed.latents] == [1, 0]
    assert [p.weight for p in mixed.latents] == pytest.approx([0.8, 0.5])
    assert [p.context_similarity for p in mixed.latents] == pytest.approx([1.0, 0.0])
    ranked = select_property_latents(labels_e, q, top_n=2, context_embeddings=contexts, temperature=0.2)
    assert [p.weight for p in ranked.latents] == pytest.approx(rank_weights(2, 0.2))
    with pytest.raises(InputError, match="context_weight"):
        select_property_latents(labels_e, q, context_embeddings=contexts, context_weight=1.5)
    with pytest.raises(InputError, match="rows"):
        select_property_latents(labels_e, q, context_embeddings=contexts[:2])


def test_select_latents_by_examples_orders_by_lift() -> None:
    M = np.zeros((10, 4))
    M[:, 0] = 1.0  # everywhere: lift 1, never chosen
    M[[1, 2], 1] = 1.0  # only in the positives
    M[[1, 2, 5, 6, 7], 2] = 1.0  # in the positives and elsewhere
    M[[1], 3] = 1.0  # in one positive only: under min_count
    res = select_latents_by_examples(sp.csr_matrix(M), [1, 2], top_n=5, temperature=0.5)
    assert res.n_positives == 2
    assert [p.latent for p in res.latents] == [1, 2]
    assert res.latents[0].lift == pytest.approx((3 / 4) / (3 / 12))
    assert [p.weight for p in res.latents] == pytest.approx(rank_weights(2, 0.5))
    with pytest.raises(InputError, match="row indices"):
        select_latents_by_examples(sp.csr_matrix(M), [])
    with pytest.raises(InputError, match="row indices"):
        select_latents_by_examples(sp.csr_matrix(M), [10])


def test_fuse_rankings_reciprocal_rank() -> None:
    fused = fuse_rankings([[2, 0], [0, 1, 2, 3]], 5, k=60)
    assert fused == pytest.approx([1 / 62 + 1 / 61, 1 / 62, 1 / 61 + 1 / 63, 1 / 64, 0.0])
    assert np.argsort(-fused, kind="stable").tolist() == [0, 2, 1, 3, 4]
    with pytest.raises(InputError, match="twice"):
        fuse_rankings([[1, 1]], 3)
    with pytest.raises(InputError, match=r"0\.\.2"):
        fuse_rankings([[3]], 3)
    with pytest.raises(InputError, match="k must"):
        fuse_rankings([[0]], 3, k=0)


def test_rank_hybrid_fuses_the_sae_and_dense_orders() -> None:
    # SAE (latent 0, p90): d1 (4), d0 (2), d3 (1); dense: d4, d3, d2, d0, d1
    E = np.array([[0.2, 1.0], [0.0, 1.0], [0.5, 1.0], [1.0, 1.0], [1.0, 0.0]])
    q = np.array([1.0, 0.0])
    res = rank_hybrid(X, {0: 1.0}, E, q, top_k=5, doc_ids=IDS)
    sae = {1: 0, 0: 1, 3: 2}
    dense = {4: 0, 3: 1, 2: 2, 0: 3, 1: 4}
    want = {r: 1 / (61 + dense[r]) + (1 / (61 + sae[r]) if r in sae else 0.0) for r in range(5)}
    assert [d.row for d in res.docs] == sorted(want, key=lambda r: (-want[r], r))
    assert [d.score for d in res.docs] == pytest.approx(sorted(want.values(), reverse=True))
    assert res.total == 5 and "fusion" in res.method
    assert [c.latent for c in res.docs[0].contributions] == [0]
    with pytest.raises(InputError, match="rows"):
        rank_hybrid(X, {0: 1.0}, E[:3], q)


def test_rank_hybrid_with_guided_weights_fuses_three_orders() -> None:
    E = np.array([[0.2, 1.0], [0.0, 1.0], [0.5, 1.0], [1.0, 1.0], [1.0, 0.0]])
    q = np.array([1.0, 0.0])
    res = rank_hybrid(X, {0: 1.0}, E, q, guided_weights={2: 1.0, 1: 0.5}, top_k=5, doc_ids=IDS)
    sae = {1: 0, 0: 1, 3: 2}
    guided = {4: 0, 0: 1, 2: 2}  # normalised: d4 1.0 (latent 2), d0 and d2 0.5 (latent 1), row order on ties
    dense = {4: 0, 3: 1, 2: 2, 0: 3, 1: 4}
    want = {
        r: 1 / (61 + dense[r])
        + (1 / (61 + sae[r]) if r in sae else 0.0)
        + (1 / (61 + guided[r]) if r in guided else 0.0)
        for r in range(5)
    }
    assert [d.row for d in res.docs] == sorted(want, key=lambda r: (-want[r], r))
    assert [d.score for d in res.docs] == pytest.approx(sorted(want.values(), reverse=True))
    assert "guided latents (normalized, 2 latents)" in res.method


def test_select_latents_guided_takes_the_latents_that_correlate_with_the_guide() -> None:
    rng = np.random.default_rng(0)
    n = 200
    has = rng.random(n) < 0.3
    guide = has * 0.3 + rng.normal(0, 0.3, n)  # a weak, noisy signal of the property
    M = np.zeros((n, 6))
    M[has, 0] = rng.uniform(0.5, 2.0, int(has.sum()))  # the crisp latent of the property
    M[:, 1] = rng.random(n) < 0.5  # noise
    M[has & (rng.random(n) < 0.5), 2] = 1.0  # fires on half of the property
    M[0, 3] = 1.0  # fires once: too rare to be chosen
    M[:, 4] = 1.0  # fires everywhere: no correlation
    chosen = select_latents_guided(sp.csr_matrix(M), guide, top_n=2, labels={0: "prop"})
    assert [p.latent for p in chosen.latents] == [0, 2]
    for p in chosen.latents:
        want = np.corrcoef(M[:, p.latent] > 0, guide)[0, 1]
        assert p.weight == pytest.approx(want) and p.guide_correlation == pytest.approx(want)
    assert chosen.latents[0].label == "prop"
    ranked = rank_by_latents(sp.csr_matrix(M), chosen.weights(), top_k=n, scoring="normalized")
    top = [d.row for d in ranked.docs[: int(has.sum())]]
    assert np.mean(has[top]) == 1.0  # the crisp latent ranks every document with the property first
    with pytest.raises(InputError, match="one finite number per document"):
        select_latents_guided(sp.csr_matrix(M), guide[:5])
    with pytest.raises(InputError, match="follows the documents' similarity"):
        select_latents_guided(sp.csr_matrix(M), -has.astype(float) * 0 + 1.0)
    with pytest.raises(InputError, match="top_n"):
        select_latents_guided(sp.csr_matrix(M), guide, top_n=0)


def test_positives_boost_only_latents_that_fire_in_them() -> None:
    E = np.array([[1.0, 0.0], [0.9, 0.1]])
    M = np.zeros((50, 2))
    M[[0, 1], 0] = 1.0  # fires in both positives
    M[[30], 1] = 1.0  # rare, but in no positive: add-one smoothing alone would lift it
    res = select_property_latents(E, np.array([1.0, 0.0]), top_n=2, positives=[0, 1], X=sp.csr_matrix(M))
    by = {p.latent: p for p in res.latents}
    assert by[1].lift is not None and by[1].lift > 1 and by[1].weight == pytest.approx(by[1].similarity)
    assert by[0].weight == pytest.approx(1.0 * (1 + math.log2(min(16.0, by[0].lift or 1.0))))


def test_combine_property_latents_gives_each_side_half() -> None:
    def pl(latent: int, weight: float, lift: float | None = None) -> PropertyLatent:
        return PropertyLatent(latent=latent, label=str(latent), weight=weight, similarity=0.5, lift=lift)

    query = PropertyLatents(n_positives=0, latents=[pl(1, 3.0), pl(2, 1.0)])
    examples = PropertyLatents(n_positives=4, latents=[pl(2, 0.5, 8.0), pl(3, 0.5, 4.0)])
    both = combine_property_latents(query, examples)
    assert both.n_positives == 4
    assert [(p.latent, p.weight) for p in both.latents] == [(1, 0.75), (2, 0.75), (3, 0.5)]
    assert [p.lift for p in both.latents] == [None, 8.0, 4.0]
    assert sum(p.weight for p in both.latents) == pytest.approx(2.0)
