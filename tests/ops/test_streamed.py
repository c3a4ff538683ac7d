"""Operations on an embedding over the memory budget count it shard by shard and return what the in-memory
path returns: the session's data are copied, ``reviews`` re-stored in shards of 7 documents, and each
operation is run with the budget unset (in memory) and at 0 (streamed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import BaseModel

from saescope import ops
from saescope.errors import InputError
from saescope.ops import streamed
from saescope.ops.docsets import DocSet, resolve, resolve_rows, resolve_sides
from saescope.ops.requests import CorrelationsRequest, DiffRequest, TrendRequest
from saescope.store.dataset import MANIFEST
from saescope.store.shards import atomic_write_json, read_shard, write_shard
from saescope.workspace import Workspace
from tests.server.shared import Data

SHARD = 7


@pytest.fixture(scope="module")
def sharded(data: Data, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A copy of the session's data root with ``reviews`` re-stored in shards of :data:`SHARD` documents."""
    root = tmp_path_factory.mktemp("sharded") / "home"
    shutil.copytree(data.root, root)
    ws = Workspace(root, device="cpu")
    emb = ws.embedding("reviews")
    m = emb.manifest
    parts = [read_shard(emb.shard_path(i)) for i in range(m.n_shards)]
    M = sp.vstack([p[0] for p in parts], format="csr")
    n_tok = np.concatenate([p[1] for p in parts])
    for i in range(m.n_shards):
        emb.shard_path(i).unlink()
    for i, lo in enumerate(range(0, m.n_docs, SHARD)):
        write_shard(emb.shard_path(i), M[lo : lo + SHARD], n_tok[lo : lo + SHARD], lo)
    atomic_write_json(emb.path / MANIFEST, m.model_copy(update={"shard_size": SHARD}).model_dump())
    assert ws.embedding("reviews").manifest.n_shards == -(-m.n_docs // SHARD) > 1
    return ws


def _both(ws: Workspace, monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``run(ws)``'s result dumped in memory and streamed; checks each path was the one taken."""
    monkeypatch.delenv(streamed.BUDGET_ENV, raising=False)
    calls: list[str] = []

    def counted(name: str) -> Any:
        real = getattr(streamed, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("diff_sets", "diff_one_vs_many", "diff_paired", "latent_trends", "latent_cooccurrence"):
        monkeypatch.setattr(streamed, name, counted(name))
    in_memory: BaseModel = run(ws)
    assert not calls
    monkeypatch.setenv(streamed.BUDGET_ENV, "0")
    out: BaseModel = run(ws)
    assert len(calls) == 1
    return in_memory.model_dump(), out.model_dump()


@pytest.mark.parametrize(
    "req",
    [
        DiffRequest.build(dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'"),
        DiffRequest.build(
            dataset_a="reviews", where_a="half == 'first'", where_b="category != 'plot'", min_support=1, top_k=50
        ),
        DiffRequest.build(dataset_a="reviews", dataset_b="inject", min_support=1, direction="b", cursor=3),
        DiffRequest.build(dataset_a="inject", dataset_b="reviews", min_support=2, rank_by="p"),
    ],
)
def test_sets_diff_streamed_equals_in_memory(
    req: DiffRequest, data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ops.diff(data.ws, req).model_dump()
    in_memory, out = _both(sharded, monkeypatch, lambda ws: ops.diff(ws, req))
    assert in_memory == expected and out == expected
    assert expected["sets"]["rows"] and any(r["examples_a"] for r in expected["sets"]["rows"])


@pytest.mark.parametrize(
    "req",
    [
        DiffRequest.build(dataset_a="reviews", mode="one_vs_many", column="category", target="fresh", min_support=2),
        DiffRequest.build(
            dataset_a="reviews", mode="one_vs_many", column="half", target="first", min_support=1, rank_by="p", top_k=50
        ),
        DiffRequest.build(
            dataset_a="reviews", where_a="half == 'second'", mode="one_vs_many", column="category", target="plot"
        ),
    ],
)
def test_one_vs_many_streamed_equals_in_memory(
    req: DiffRequest, data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ops.diff(data.ws, req).model_dump()
    in_memory, out = _both(sharded, monkeypatch, lambda ws: ops.diff(ws, req))
    assert in_memory == expected and out == expected
    assert expected["one_vs_many"]["rows"] and any(r["examples_target"] for r in expected["one_vs_many"]["rows"])


@pytest.mark.parametrize(
    "req",
    [
        DiffRequest.build(
            dataset_a="reviews", where_a="half == 'first'", where_b="half == 'second'", mode="paired", pair_key="pair"
        ),
        DiffRequest.build(
            dataset_a="reviews",
            where_a="half == 'second'",
            where_b="half == 'first'",
            mode="paired",
            pair_key="pair",
            min_support=1,
            rank_by="ratio",
            top_k=50,
            direction="a",
        ),
    ],
)
def test_paired_diff_streamed_equals_in_memory(
    req: DiffRequest, data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At budget 0 a chunk is a shard's worth of pairs (7): 24 pairs are read in 4 chunks."""
    expected = ops.diff(data.ws, req).model_dump()
    in_memory, out = _both(sharded, monkeypatch, lambda ws: ops.diff(ws, req))
    assert in_memory == expected and out == expected
    rows = expected["paired"]["rows"]
    assert rows and any(r["examples_only_a"] or r["examples_only_b"] for r in rows)
    sides = resolve_sides(sharded, req.spec)
    assert streamed.pairs_per_chunk(sides.a.source.embedding, sides.b.source.embedding) == SHARD
    monkeypatch.setenv(streamed.BUDGET_ENV, "1")  # 1 MB holds every pair's rows at once
    assert streamed.pairs_per_chunk(sides.a.source.embedding, sides.b.source.embedding) >= len(sides.a.rows)


@pytest.mark.parametrize(
    "req",
    [
        TrendRequest(dataset="reviews", column="category", order=["fresh", "rotten", "plot"], min_support=2),
        TrendRequest(dataset="reviews", column="half", order=["first", "second"], pair_key="pair", min_support=3),
        TrendRequest(dataset="reviews", column="pair", n_bins=4, min_support=2, rank_by="slope", top_k=50),
        TrendRequest(dataset="reviews", column="length", where="category != 'plot'", pair_key="pair", min_support=1),
    ],
)
def test_trend_streamed_equals_in_memory(
    req: TrendRequest, data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ops.trend(data.ws, req).model_dump()
    in_memory, out = _both(sharded, monkeypatch, lambda ws: ops.trend(ws, req))
    assert in_memory == expected and out == expected
    assert expected["trend"]["rows"] and any(r["examples_last"] for r in expected["trend"]["rows"])


@pytest.mark.parametrize(
    "req",
    [
        CorrelationsRequest(dataset="reviews", min_cooc=3),
        CorrelationsRequest(dataset="reviews", where="category == 'fresh'", min_cooc=2, top_k=50, cursor=5),
        CorrelationsRequest(dataset="reviews", min_cooc=40),
    ],
)
def test_cooccurrence_streamed_equals_in_memory(
    req: CorrelationsRequest, data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ops.correlations(data.ws, req).model_dump()
    in_memory, out = _both(sharded, monkeypatch, lambda ws: ops.correlations(ws, req))
    assert in_memory == expected and out == expected


def test_cooccurrence_of_one_latent_streamed_equals_in_memory(
    data: Data, sharded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ops.correlations(data.ws, CorrelationsRequest(dataset="reviews", min_cooc=3))
    assert first.cooccurrence is not None and first.cooccurrence.pairs
    for latent in (first.cooccurrence.pairs[0].latent_a, 0):
        req = CorrelationsRequest(dataset="reviews", min_cooc=3, latent=latent)
        expected = ops.correlations(data.ws, req).model_dump()
        in_memory, out = _both(sharded, monkeypatch, lambda ws, r=req: ops.correlations(ws, r))
        assert in_memory == expected and out == expected


@pytest.mark.parametrize("budget", ["0", "100000"])
def test_errors_are_the_same_on_both_paths(budget: str, sharded: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(streamed.BUDGET_ENV, budget)
    with pytest.raises(InputError, match="at least two non-empty groups"):
        ops.trend(sharded, TrendRequest(dataset="reviews", column="half", order=["first"], where="half == 'first'"))
    with pytest.raises(InputError, match="out of range"):
        ops.correlations(sharded, CorrelationsRequest(dataset="reviews", latent=10**6))
    with pytest.raises(InputError, match="selects 0 document"):
        ops.diff(sharded, DiffRequest.build(dataset_a="reviews", where_a="pair < 0"))


def test_budget_comes_from_the_environment(sharded: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    emb = sharded.embedding("reviews")
    size = streamed.matrix_bytes(emb)
    assert 48 * 8 < size < 48 * emb.manifest.d_sae * 8
    monkeypatch.setenv(streamed.BUDGET_ENV, "0")
    assert streamed.memory_budget() == 0 and not streamed.fits_in_memory(emb)
    monkeypatch.setenv(streamed.BUDGET_ENV, "1")
    assert streamed.fits_in_memory(emb, emb) == (size * streamed.LOAD_FACTOR <= 1 << 20)
    monkeypatch.setenv(streamed.BUDGET_ENV, "lots")
    with pytest.raises(InputError, match="whole number of megabytes"):
        streamed.memory_budget()
    monkeypatch.delenv(streamed.BUDGET_ENV)
    assert 0 < streamed.memory_budget() <= streamed.available_memory()


def test_resolve_rows_reads_the_matrix_only_when_asked(sharded: Workspace) -> None:
    docset = DocSet("reviews", "category == 'plot'")
    lazy, eager = resolve_rows(sharded, docset), resolve(sharded, docset)
    assert lazy._matrix is None and eager._matrix is not None
    assert (lazy.X != eager.X).nnz == 0 and lazy.X.shape == (16, eager.matrix.shape[1])
    assert np.array_equal(lazy.rows, eager.rows) and list(lazy.doc_ids) == list(eager.doc_ids)


def test_rows_are_checked_against_the_manifest(sharded: Workspace, tmp_path: Path) -> None:
    emb = sharded.embedding("reviews")
    m = emb.manifest
    atomic_write_json(emb.path / MANIFEST, m.model_copy(update={"n_docs": m.n_docs + 1}).model_dump())
    try:
        with pytest.raises(InputError, match="changed while it was being read"):
            resolve_rows(sharded, DocSet("reviews"))
    finally:
        atomic_write_json(emb.path / MANIFEST, m.model_dump())
