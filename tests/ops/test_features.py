"""Latent operations: label search, one latent's details, and one ranking of a document's latents."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saescope import analyses as an
from saescope import ops
from saescope.errors import InputError, NotFoundError
from saescope.ops.analyses import class_guide
from saescope.ops.docsets import DocSet, resolve
from saescope.ops.requests import ExplainRequest, FeatureRequest, SearchFeaturesRequest, TopFeaturesRequest
from tests.ops.helpers import matrix, meta
from tests.server.shared import Data


def expected_ranking(data: Data, row: int, top_k: int) -> list[int]:
    """A document's latents by activation x log((n + 1) / doc_count), computed from the matrix."""
    M = matrix(data).tocsr()
    n = M.shape[0]
    counts = np.asarray((M > 0).sum(axis=0)).ravel()
    dense = M[row].toarray().ravel()
    active = np.flatnonzero(dense > 0)
    scored = [(dense[i] * math.log((n + 1) / counts[i]), dense[i], int(i)) for i in active]
    scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [i for _, _, i in scored[:top_k]]


def test_explain_and_top_features_share_one_ranking(data: Data) -> None:
    ids = meta(data)["doc_id"].tolist()
    for row in (0, 30):
        doc = ids[row]
        explained = ops.explain_document(data.ws, ExplainRequest.build(dataset="reviews", doc_id=doc, top_k=12))
        top = ops.top_features(data.ws, TopFeaturesRequest.build(dataset="reviews", doc_id=doc, top_k=12))
        from_explain = [lat.latent for lat in explained.explanation.latents]
        from_top = [f.latent for f in top.features]
        assert from_explain == from_top == expected_ranking(data, row, 12)
        assert explained.explanation.row == row and explained.explanation.doc_id == doc
        assert top.n_active == explained.explanation.n_active == int((matrix(data)[row].toarray() > 0).sum())
        assert top.evidence == {}
        for lat in explained.explanation.latents:
            assert lat.activation == pytest.approx(matrix(data)[row, lat.latent])
    text = data.ws.dataset("reviews").documents(["text"])["text"].iloc[0]
    first = ops.explain_document(data.ws, ExplainRequest.build(dataset="reviews", doc_id=ids[0]))
    assert first.text == text[:1500] and first.truncated == (len(text) > 1500)
    assert len(first.explanation.latents) == min(15, first.explanation.n_active)  # the request's default top_k


def test_explain_unknown_document(data: Data) -> None:
    with pytest.raises(NotFoundError, match="no-such-doc"):
        ops.explain_document(data.ws, ExplainRequest.build(dataset="reviews", doc_id="no-such-doc"))
    with pytest.raises(NotFoundError):
        ops.top_features(data.ws, TopFeaturesRequest.build(dataset="nope", doc_id="x"))


def test_search_features_finds_labels(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    found = ops.search_features(data.ws, SearchFeaturesRequest.build(dataset="reviews", query="praise", semantic=False))
    assert found.matches and found.matches[0].latent == praise and found.matches[0].lexical == 1.0
    assert found.matches[0].similarity is None
    assert found.n_labels >= len(data.labelled)
    effects = next(k for k, v in data.labelled.items() if v == "special effects")
    semantic = ops.search_features(
        data.ws, SearchFeaturesRequest.build(dataset="reviews", query="special effects", top_k=3)
    )
    assert semantic.matches[0].latent == effects and semantic.matches[0].similarity is not None
    assert len(semantic.matches) <= 3
    none = ops.search_features(
        data.ws, SearchFeaturesRequest.build(dataset="reviews", query="zzqx-nothing", semantic=False)
    )
    assert none.matches == []


def test_guided_search_ranks_latents_by_how_their_firing_follows_the_query(data: Data) -> None:
    req = SearchFeaturesRequest.build(dataset="reviews", query="a summary of a film's plot", guided=True, top_k=5)
    found = ops.search_features(data.ws, req)
    assert found.method == "guided" and len(found.matches) == 5
    M = matrix(data)
    r = resolve(data.ws, DocSet("reviews"))
    guide = class_guide(data.ws, r, ["a summary of a film's plot"])  # dense cosine + best label-matched latent
    corr = an.firing_correlations(M, guide)[:, 0]
    corr[np.asarray((M > 0).sum(axis=0)).ravel() < 2] = 0.0
    want = sorted(range(len(corr)), key=lambda j: (-corr[j], j))[:5]
    assert [m.latent for m in found.matches] == want
    assert [m.guide_correlation for m in found.matches] == pytest.approx([corr[j] for j in want])
    # the top latent separates the plot summaries: it fires far more often on them
    plot = (meta(data)["category"] == "plot").to_numpy()
    top = np.asarray(M[:, want[0]].toarray()).ravel() > 0
    assert top[plot].mean() > top[~plot].mean()
    assert "follows the documents' similarity" in found.to_text() and "guide corr." in found.to_text()


def test_feature_details_counts_the_matrix_column(data: Data) -> None:
    M = matrix(data)
    ids = meta(data)["doc_id"].to_numpy()
    for latent, word in list(data.labelled.items())[:3]:
        det = ops.feature_details(
            data.ws, FeatureRequest.build(dataset="reviews", latent=latent, n_top=4, token_evidence=False)
        )
        col = M[:, latent].toarray().ravel()
        s = det.summary
        assert s.count == int((col > 0).sum()) and s.n_docs == 48
        assert s.freq == pytest.approx(s.count / 48)
        assert s.max_activation == pytest.approx(col.max())
        order = sorted(np.flatnonzero(col > 0).tolist(), key=lambda r: (-col[r], r))[:4]
        assert [d.row for d in s.top_docs] == order
        assert [d.doc_id for d in s.top_docs] == [ids[r] for r in order]
        assert all(col[ids.tolist().index(d)] == 0 for d in s.random_nonfiring)
        assert det.evidence == [] and word in [lab["text"] for lab in det.labels]
    with pytest.raises(InputError):
        ops.feature_details(data.ws, FeatureRequest.build(dataset="reviews", latent=10**6, token_evidence=False))


def test_top_features_evidence_is_the_pooled_activation(data: Data) -> None:
    doc = meta(data)["doc_id"].iloc[5]
    top = ops.top_features(data.ws, TopFeaturesRequest.build(dataset="reviews", doc_id=doc, top_k=5, evidence=1))
    first = top.features[0]
    assert list(top.evidence) == [str(first.latent)]
    tokens = top.evidence[str(first.latent)]
    assert tokens and all(isinstance(t, str) for t, _ in tokens)
    # max pooling: the strongest firing token is the document's pooled activation
    assert tokens[0][1] == pytest.approx(first.activation, abs=0.02)
