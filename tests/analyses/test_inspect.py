from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses import explain_document, latent_summary, search_latents
from saescope.errors import InputError
from saescope.labels import FeatureLabel, LabelBook

LABELS = {0: "Negation words like not", 1: "Python code", 2: "negative sentiment", 3: "French text"}


def test_search_latents_lexical() -> None:
    res = search_latents(LABELS, "negat")
    assert [(m.latent, m.lexical) for m in res.matches] == [(0, 1.0), (2, 1.0)]
    res = search_latents(LABELS, "python functions")
    assert [(m.latent, m.lexical) for m in res.matches] == [(1, 0.5)]
    assert search_latents(LABELS, "nothing like it").matches[0].latent == 0  # "like" matches 1 of 3 words


def test_search_latents_with_embeddings_and_label_book() -> None:
    book = LabelBook("sae", 5)
    for i, text in LABELS.items():
        book.add(i, FeatureLabel(source="llm", text=text))
    E = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    res = search_latents(book, "sentiment", label_embeddings=E, query_embedding=np.array([1.0, 0.0]), top_k=3)
    assert [m.latent for m in res.matches] == [2, 0, 4]
    assert res.matches[0].score == pytest.approx(1.0 + 0.9 / math.hypot(0.9, 0.1))
    assert res.matches[2].label == "latent 4 (unlabelled)"
    with pytest.raises(InputError, match="both"):
        search_latents(book, "x", label_embeddings=E)


def test_latent_summary_exact() -> None:
    M = np.zeros((6, 2))
    M[[1, 3, 4], 0] = [2.0, 5.0, 1.0]
    res = latent_summary(sp.csr_matrix(M), 0, LABELS, [f"d{i}" for i in range(6)], n_top=5, n_random_nonfiring=3)
    assert (res.count, res.freq, res.max_activation) == (3, 0.5, 5.0)
    assert res.mean_activation == pytest.approx(8 / 3)
    assert [(d.doc_id, d.activation) for d in res.top_docs] == [("d3", 5.0), ("d1", 2.0), ("d4", 1.0)]
    assert res.random_nonfiring == ["d0", "d2", "d5"]
    big = sp.csr_matrix(np.eye(1000)[:, :3])
    sample = latent_summary(big, 0, None, n_random_nonfiring=5, seed=1).random_nonfiring
    assert len(set(sample)) == 5 and "#0" not in sample
    with pytest.raises(InputError, match="out of range"):
        latent_summary(big, 3, None)


def test_explain_document_ranks_rare_strong_latents_first() -> None:
    M = np.zeros((4, 3))
    M[:, 0] = 5.0  # everywhere
    M[0, 1] = 1.0  # only here
    M[[0, 2], 2] = 2.0  # in half
    res = explain_document(sp.csr_matrix(M), 0, LABELS, doc_ids=["a", "b", "c", "d"])
    # scores: 2 * log(5/2) = 1.83, 1 * log(5/1) = 1.61, 5 * log(5/4) = 1.12
    assert [r.latent for r in res.latents] == [2, 1, 0]
    assert res.latents[0].score == pytest.approx(2 * math.log(5 / 2))
    assert res.latents[1].doc_freq == 0.25
    assert (res.doc_id, res.n_active) == ("a", 3)
    with pytest.raises(InputError, match="row"):
        explain_document(sp.csr_matrix(M), 9, None)
