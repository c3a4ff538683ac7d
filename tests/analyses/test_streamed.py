"""Counts taken shard by shard equal the in-memory ones, and so do the diffs, trends and co-occurrences made
from them, on a store written through the store's own code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses import streamed
from saescope.analyses.common import IntArray, column_counts, top_rows_per_column
from saescope.analyses.correlations import cooccurrence_from_counts, cooccurrence_pairs, latent_cooccurrence
from saescope.analyses.diff import diff_paired, diff_paired_from_counts, diff_sets, diff_sets_from_counts
from saescope.analyses.trend import latent_trends, latent_trends_from_counts, trend_rows
from saescope.errors import InputError
from saescope.store.dataset import Embedding, EmbeddingSpec, Store, shard_by_shard
from saescope.store.ingest import documents_from_list

N_DOCS, D_SAE, SHARD = 500, 48, 37


def _embed(texts: list[str], report: object) -> tuple[sp.csr_matrix, np.ndarray]:
    """Deterministic sparse rows: latent frequency depends on the document number (so there are trends)
    and values are coarse, so that float16 storage makes ties among the strongest activations."""
    rows = []
    for t in texts:
        i = int(t.split()[1])
        rng = np.random.default_rng(i)
        p = np.linspace(0.02, 0.5, D_SAE) * (0.5 + i / N_DOCS) ** np.linspace(-1, 1, D_SAE)
        fires = rng.random(D_SAE) < np.clip(p, 0, 1)
        rows.append(np.where(fires, rng.integers(1, 5, D_SAE) / 4, 0.0))
    return sp.csr_matrix(np.array(rows, dtype=np.float32)), np.full(len(texts), 9)


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> Embedding:
    store = Store(tmp_path_factory.mktemp("home"))
    docs = [{"text": f"doc {i}", "year": 2000 + i % 5, "prompt": f"p{i // 5}"} for i in range(N_DOCS)]
    frame, _ = documents_from_list(docs)
    ds = store.create("synthetic", frame, source="test")
    spec = EmbeddingSpec(reader={"id": "r", "layer": 1}, sae={"id": "s"}, config={})
    e = ds.prepare_embedding(spec, D_SAE, shard_size=SHARD)
    e.run(shard_by_shard(_embed))
    return e


def _shards(emb: Embedding) -> Iterator[tuple[int, sp.csr_matrix]]:
    return emb.iter_shards()


def test_iter_shards_makes_the_matrix(emb: Embedding) -> None:
    parts = list(emb.iter_shards())
    assert [first for first, _ in parts] == list(range(0, N_DOCS, SHARD))
    assert all(p.shape[0] == SHARD for _, p in parts[:-1]) and parts[-1][1].shape[0] == N_DOCS % SHARD
    assert (sp.vstack([p for _, p in parts]) != emb.matrix()).nnz == 0


def test_set_counts_equal_column_counts(emb: Embedding) -> None:
    M = emb.matrix()
    rng = np.random.default_rng(1)
    sets: list[IntArray] = [
        np.arange(N_DOCS),
        np.sort(rng.choice(N_DOCS, 200, replace=False)),
        rng.choice(N_DOCS, 300, replace=True),  # unsorted, with repeats
        np.array([N_DOCS - 1, 0], dtype=np.int64),
        np.zeros(0, dtype=np.int64),
    ]
    n, counts = streamed.set_counts(_shards(emb), sets, D_SAE)
    assert n.tolist() == [len(s) for s in sets]
    for k, rows in enumerate(sets):
        assert np.array_equal(counts[k], column_counts(M[rows]))
    assert counts[0].sum() == M.nnz


def test_top_rows_equal_in_memory_with_ties(emb: Embedding) -> None:
    M = emb.matrix()
    rows = np.random.default_rng(2).permutation(N_DOCS)[:350]
    latents = [0, 5, 17, 30, 47]
    for n in (1, 3, 10):
        assert streamed.top_rows(_shards(emb), rows, latents, n, D_SAE) == top_rows_per_column(M[rows], latents, n)
    assert streamed.top_rows(_shards(emb), rows, [], 3, D_SAE) == {}


@pytest.mark.parametrize(("direction", "rank_by"), [("both", "effect"), ("a", "z"), ("b", "p"), ("both", "ratio")])
def test_streamed_diff_equals_in_memory(emb: Embedding, direction: Any, rank_by: Any) -> None:
    M = emb.matrix()
    ids = np.array([f"doc{i}" for i in range(N_DOCS)], dtype=object)
    ra, rb = np.arange(0, 180), np.arange(260, N_DOCS)
    expected = diff_sets(
        M[ra],
        M[rb],
        None,
        doc_ids_a=ids[ra],
        doc_ids_b=ids[rb],
        top_k=15,
        cursor=2,
        direction=direction,
        rank_by=rank_by,
    )
    (n_a, n_b), (ca, cb) = streamed.set_counts(_shards(emb), [ra, rb], D_SAE)
    got = diff_sets_from_counts(
        ca,
        int(n_a),
        cb,
        int(n_b),
        None,
        examples_a=lambda lats, n: streamed.top_rows(_shards(emb), ra, lats, n, D_SAE),
        examples_b=lambda lats, n: streamed.top_rows(_shards(emb), rb, lats, n, D_SAE),
        doc_ids_a=ids[ra],
        doc_ids_b=ids[rb],
        top_k=15,
        cursor=2,
        direction=direction,
        rank_by=rank_by,
    )
    assert got.model_dump() == expected.model_dump()
    assert len(got.rows) == 15 and got.n_tested > 20


@pytest.mark.parametrize("stratified", [False, True])
def test_streamed_trend_equals_in_memory(emb: Embedding, stratified: bool) -> None:
    M = emb.matrix()
    meta = emb.dataset.metadata()
    rows = np.flatnonzero(meta["year"].to_numpy() != 2003)  # a filtered document set
    groups = meta["year"].to_numpy()[rows] - 2000
    groups[::17] = -1  # some rows in no group
    names = ["2000", "2001", "2002", "2003", "2004"]
    strata = None
    if stratified:
        strata = np.unique(meta["prompt"].to_numpy()[rows], return_inverse=True)[1].astype(np.int64)
        strata[::23] = -1
    ids = meta["doc_id"].to_numpy()[rows]
    expected = latent_trends(M[rows], groups, names, None, strata=strata, doc_ids=ids, top_k=12, min_support=3)

    g_idx, s_idx = trend_rows(len(rows), groups, len(names), strata)
    g_full = np.full(N_DOCS, -1, dtype=np.int64)
    s_full = np.full(N_DOCS, -1, dtype=np.int64)
    g_full[rows], s_full[rows] = g_idx, s_idx
    counts = streamed.group_trend_counts(_shards(emb), g_full, len(names), s_full, D_SAE)
    got = latent_trends_from_counts(
        counts,
        g_idx,
        names,
        None,
        examples=lambda pos, lats, n: streamed.top_rows(_shards(emb), rows[pos], lats, n, D_SAE),
        strata=s_idx if stratified else None,
        doc_ids=ids,
        top_k=12,
        min_support=3,
    )
    assert got.model_dump() == expected.model_dump()
    assert got.n_tested > 20 and got.stratified == stratified


@pytest.mark.parametrize("latent", [None, 7])
def test_streamed_cooccurrence_equals_in_memory(emb: Embedding, latent: int | None) -> None:
    M = emb.matrix()
    rows = np.arange(40, 460, 2)
    X = M[rows]
    expected = latent_cooccurrence(X, None, min_cooc=4, top_k=30, latent=latent)
    (n,), (counts,) = streamed.set_counts(_shards(emb), [rows], D_SAE)
    active = np.flatnonzero(counts >= 4)
    C = streamed.cooccurrence_counts(_shards(emb), active, D_SAE, rows=rows)
    assert np.array_equal(C.diagonal(), counts[active])
    if latent is not None:  # counting only the latent's pairs gives the same pairs, in O(m) memory
        only = streamed.cooccurrence_counts(_shards(emb), active, D_SAE, rows=rows, with_latent=latent)
        i = int(np.searchsorted(active, latent))
        dense, full = only.toarray(), C.toarray()
        assert np.array_equal(dense[i, :], full[i, :]) and np.array_equal(dense[:, i], full[:, i])
        assert dense.sum() == full[i, :].sum() + full[:, i].sum() - full[i, i]
        pairs_only, pairs_full = cooccurrence_pairs(only, active, 4, latent), cooccurrence_pairs(C, active, 4, latent)
        assert all(np.array_equal(x, y) for x, y in zip(pairs_only, pairs_full, strict=True))
        with pytest.raises(InputError, match="not one of the latents"):
            streamed.cooccurrence_counts(_shards(emb), active, D_SAE, with_latent=int(active[0]) + D_SAE)
    got = cooccurrence_from_counts(
        int(n), counts, cooccurrence_pairs(C, active, 4, latent), None, min_cooc=4, top_k=30, latent=latent
    )
    assert got.model_dump() == expected.model_dump()
    assert got.total > 30


def test_bad_input_is_refused(emb: Embedding) -> None:
    parts = list(emb.iter_shards())
    with pytest.raises(InputError, match="row order without gaps"):
        streamed.set_counts(iter(parts[1:]), [np.arange(3)], D_SAE)
    with pytest.raises(InputError, match="latents, expected 50"):
        streamed.set_counts(iter(parts), [np.arange(3)], 50)
    with pytest.raises(InputError, match="names row 500, but the embedding has 500 rows"):
        streamed.set_counts(iter(parts), [np.array([1, N_DOCS])], D_SAE)
    with pytest.raises(InputError, match="negative row index"):
        streamed.top_rows(iter(parts), np.array([-1]), [0], 3, D_SAE)
    with pytest.raises(InputError, match=r"latents must be in 0\.\.47"):
        streamed.top_rows(iter(parts), np.array([1]), [48], 3, D_SAE)
    with pytest.raises(InputError, match="ascending, unique"):
        streamed.cooccurrence_counts(iter(parts), [3, 2], D_SAE)
    with pytest.raises(InputError, match="groups give 10 rows"):
        streamed.group_trend_counts(iter(parts), np.zeros(10), 2, np.zeros(10), D_SAE)
    with pytest.raises(InputError, match=r"within 0\.\.n"):
        diff_sets_from_counts(
            np.array([5]), 3, np.array([1]), 3, None, examples_a=lambda *_: {}, examples_b=lambda *_: {}
        )


def test_empty_path_is_not_a_store(tmp_path: Path) -> None:
    n, counts = streamed.set_counts(iter([]), [np.zeros(0, dtype=np.int64)], 4)
    assert n.tolist() == [0] and counts.tolist() == [[0, 0, 0, 0]]


def test_gather_rows_keeps_the_order_and_repeats(emb: Embedding) -> None:
    M = emb.matrix()
    rows = np.array([470, 3, 3, 250, 0, 499])
    got = streamed.gather_rows(_shards(emb), rows, D_SAE)
    assert (got != M[rows]).nnz == 0 and got.shape == (6, D_SAE)
    assert streamed.gather_rows(_shards(emb), np.zeros(0, np.int64), D_SAE).shape == (0, D_SAE)


@pytest.mark.parametrize("same", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_paired_counts_and_examples_equal_in_memory(emb: Embedding, chunk: int, same: bool) -> None:
    """Pairs (i, 499 - i) of one embedding, read a chunk of pairs at a time, give diff_paired's result."""
    M = emb.matrix()
    rows_a = np.arange(0, 200)
    rows_b = N_DOCS - 1 - rows_a
    expected = diff_paired(M[rows_a], M[rows_b], None, min_support=2, top_k=40)

    def source() -> Any:
        return _shards(emb)

    ca, cb, both = streamed.paired_counts(source, source, rows_a, rows_b, D_SAE, chunk, same=same)

    def top_only(lats: list[int], n: int) -> Any:
        return streamed.paired_top_only(source, source, rows_a, rows_b, lats, n, D_SAE, chunk, same=same)

    got = diff_paired_from_counts(
        len(rows_a),
        ca,
        cb,
        both,
        None,
        examples_only_a=lambda lats, n: top_only(lats, n)[0],
        examples_only_b=lambda lats, n: top_only(lats, n)[1],
        min_support=2,
        top_k=40,
    )
    assert got.model_dump() == expected.model_dump()
    assert expected.rows and any(r.examples_only_a for r in expected.rows)
    with pytest.raises(InputError, match="one B row per A row"):
        streamed.paired_counts(source, source, rows_a, rows_b[:-1], D_SAE, chunk)
    with pytest.raises(InputError, match="chunk must be"):
        streamed.paired_counts(source, source, rows_a, rows_b, D_SAE, 0)
    with pytest.raises(InputError, match="consistent"):
        diff_paired_from_counts(3, ca, cb, both, None, examples_only_a=lambda *_: {}, examples_only_b=lambda *_: {})
