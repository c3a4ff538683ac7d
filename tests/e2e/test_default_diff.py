"""End-to-end on the real default reader and SAE: known differences, a planted phrase, a null control."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from saescope import ops
from saescope.ops.requests import (
    ClusterRequest,
    CorrelationsRequest,
    DiffRequest,
    ExplainRequest,
    FeatureRequest,
    RetrieveRequest,
    SearchFeaturesRequest,
)
from saescope.store.ingest import IngestOptions, documents_from_list
from saescope.training.corpus import rotten_tomatoes
from saescope.workspace import Workspace

PLANT = "By the way, the popcorn at my local cinema was stale."


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """Reviews (fresh / rotten) with a phrase planted at the end of 10% of set B, embedded once."""
    rows = [r for r in rotten_tomatoes(full=False) if r["category"] in ("fresh", "rotten")]
    rng = np.random.default_rng(7)
    picked = [rows[i] for i in rng.choice(len(rows), 480, replace=False)]
    docs = []
    for i, r in enumerate(picked):
        split = "A" if i < 240 else "B"
        planted = split == "B" and (i - 240) % 10 == 0
        docs.append(
            {
                "id": f"r{i}",
                "text": r["text"].strip() + (" " + PLANT if planted else ""),
                "category": r["category"],
                "split": split,
                "planted": planted,
                "half": int(rng.integers(2)),
            }
        )
    root = tmp_path_factory.mktemp("e2e") / "home"
    w = Workspace(root, device="cpu")
    frame, _ = documents_from_list(docs, IngestOptions(id_column="id"))
    w.store.create("reviews", frame, source="test")
    w.embed("reviews")
    yield w


def test_sentiment_diff_finds_significant_latents(ws: Workspace) -> None:
    result = ops.diff(
        ws, DiffRequest(dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'", top_k=10)
    ).diff
    assert result.n_significant >= 3
    assert all(r.q <= 0.05 for r in result.rows[:3])
    labels = " ".join(r.label.lower() for r in result.rows if r.diff < 0)
    negative = ("bad", "dull", "bor", "worst", "fail", "mess", "lack", "don't", "bother", "not", "tire", "poor")
    assert any(w in labels for w in negative), labels


def test_planted_phrase_at_ten_percent_is_recovered(ws: Workspace) -> None:
    result = ops.diff(
        ws, DiffRequest(dataset_a="reviews", where_a="split == 'B'", where_b="split == 'A'", top_k=5, direction="a")
    ).diff
    _emb, matrix = ws.matrix("reviews")
    meta = ws.dataset("reviews").metadata()
    b_rows = np.flatnonzero(meta["split"].to_numpy() == "B")
    planted = meta["planted"].to_numpy()[b_rows].astype(bool)
    best = 0.0
    for row in result.rows[:5]:
        fires = matrix[b_rows, row.latent].toarray().ravel() > 0
        tp = int((fires & planted).sum())
        f1 = 2 * tp / (fires.sum() + planted.sum()) if tp else 0.0
        best = max(best, f1)
    assert best >= 0.8, [(r.latent, r.label, r.count_a, r.count_b) for r in result.rows]


def test_random_halves_show_no_significant_difference(ws: Workspace) -> None:
    result = ops.diff(
        ws,
        DiffRequest(
            dataset_a="reviews", where_a="split == 'A' and half == 0", where_b="split == 'A' and half == 1", top_k=5
        ),
    ).diff
    assert result.n_significant == 0, result.to_text()


def test_queries_cover_every_analysis(ws: Workspace, tmp_path: Path) -> None:
    search = ops.search_features(ws, SearchFeaturesRequest(dataset="reviews", query="popcorn", top_k=5))
    assert search.matches
    details = ops.feature_details(ws, FeatureRequest(dataset="reviews", latent=search.matches[0].latent, n_top=2))
    assert details.summary.latent == search.matches[0].latent
    if details.summary.count:
        assert details.evidence and details.evidence[0].tokens and "«" in details.evidence[0].text
    expl = ops.explain_document(ws, ExplainRequest(dataset="reviews", doc_id="r0", top_k=5)).explanation
    assert 0 < len(expl.latents) <= 5
    planted_ids = set(ws.dataset("reviews").metadata().query("planted")["doc_id"])
    ret = ops.retrieve(
        ws, RetrieveRequest(dataset="reviews", query="stale popcorn at the cinema", dense=True, top_k=24)
    )
    assert ret.ranking.docs and ret.latents.latents
    refined = ops.retrieve(
        ws,
        RetrieveRequest(
            dataset="reviews", query="stale popcorn at the cinema", top_k=24, positives=["r240", "r250", "r260"]
        ),
    )
    assert refined.latents.n_positives == 3
    # Retrieval quality against the dense baseline is measured in evals/, not asserted here.
    assert {d.doc_id for d in refined.ranking.docs} and planted_ids
    assert ret.dense_ranking is not None and len(ret.dense_ranking.docs) == 24
    clus = ops.cluster(ws, ClusterRequest(dataset="reviews", axis="sentiment, good or bad", k=2))
    assert len(clus.clusters) >= 2
    dense = ops.cluster(ws, ClusterRequest(dataset="reviews", where="split == 'A'", dense=True, k=2))
    assert len(dense.clusters) == 2
    co = ops.correlations(ws, CorrelationsRequest(dataset="reviews", top_k=5)).cooccurrence
    assert co is not None and co.pairs and all(-1 <= p.npmi <= 1 for p in co.pairs)
    assoc = ops.correlations(ws, CorrelationsRequest(dataset="reviews", column="category", top_k=5)).metadata
    assert assoc is not None and assoc.model_dump()
