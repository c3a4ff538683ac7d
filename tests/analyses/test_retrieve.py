from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses import rank_by_latents, rank_dense, select_property_latents
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
