"""Dataset operations: list, describe, read by id, and ingest with and without an agent's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saescope import ops
from saescope.errors import InputError, NotFoundError
from saescope.ops.files import IngestLimits
from saescope.ops.requests import DescribeRequest, IngestRequest, ReadRequest
from saescope.workspace import Workspace
from tests.ops.helpers import meta
from tests.server.shared import Data


def test_list_datasets(data: Data) -> None:
    listed = ops.list_datasets(data.ws)
    by_name = {d.name: d for d in listed.datasets}
    assert {"reviews", "inject"} <= set(by_name)
    assert listed.root == str(data.ws.store.root) and listed.active_jobs == []
    reviews = by_name["reviews"]
    assert reviews.n_docs == 48 and reviews.columns == ["category", "half", "pair", "length"]
    assert len(reviews.embeddings) == 1
    emb = reviews.embeddings[0]
    assert emb.complete and emb.n_docs == 48 and emb.pooling == "max"
    assert by_name["inject"].n_docs == 10
    assert "reviews: 48 docs" in listed.to_text()


def test_list_datasets_of_an_empty_root(tmp_path: Path) -> None:
    listed = ops.list_datasets(Workspace(tmp_path / "home"))
    assert listed.datasets == [] and "no datasets yet" in listed.to_text()


def test_describe_dataset(data: Data) -> None:
    d = ops.describe_dataset(data.ws, DescribeRequest.build(dataset="reviews", n_examples=2))
    assert d.name == "reviews" and d.n_docs == 48 and d.source == "test"
    cols = {c.name: c for c in d.columns}
    assert list(cols) == ["category", "half", "pair", "length"]
    assert dict(cols["category"].top_values) == {"fresh": 16, "rotten": 16, "plot": 16}
    assert cols["half"].n_distinct == 2 and cols["pair"].n_distinct == 24
    m = meta(data)
    assert (cols["length"].min, cols["length"].max) == (str(m["length"].min()), str(m["length"].max()))
    assert cols["category"].min is None and all(c.n_missing == 0 for c in d.columns)
    assert [e.doc_id for e in d.examples] == m["doc_id"].tolist()[:2]
    assert d.examples[0].metadata["category"] == "fresh"
    assert len(d.embeddings) == 1 and d.embeddings[0].key in d.embedding_stats
    assert d.n_skipped == 0
    with pytest.raises(NotFoundError):
        ops.describe_dataset(data.ws, DescribeRequest.build(dataset="no-such"))


def test_read_documents_by_id(data: Data) -> None:
    frame = data.ws.dataset("reviews").documents()
    first, last = str(frame["doc_id"].iloc[0]), str(frame["doc_id"].iloc[47])
    page = ops.read_documents_by_id(
        data.ws, ReadRequest.build(dataset="reviews", doc_ids=[last, "missing-1", first, "missing-2"], max_chars=100)
    )
    assert page.missing == ["missing-1", "missing-2"]
    assert [d.doc_id for d in page.documents] == [last, first]
    full = str(frame["text"].iloc[47])
    doc = page.documents[0]
    assert doc.text == full[:100] and doc.n_chars == len(full) and doc.truncated == (len(full) > 100)
    assert doc.metadata == {"category": "plot", "half": "second", "pair": 23, "length": len(full)}
    assert "not found" in page.to_text()
    with pytest.raises(InputError, match="max_chars"):
        ReadRequest.build(dataset="reviews", doc_ids=[first], max_chars=10)


def test_ingest_inline_without_limits(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    req = IngestRequest.build(
        name="inline",
        documents=["plain text", {"text": "with metadata", "model": "m1"}, {"text": "third", "model": "m2"}],
    )
    out = ops.ingest_documents(ws, req)
    assert out.dataset.name == "inline" and out.dataset.n_docs == 3 and out.dataset.columns == ["model"]
    assert out.source == "inline documents" and out.n_skipped == 0 and "embed_dataset" in out.next_step
    assert ws.store.names() == ["inline"]
    stored = ws.dataset("inline").documents()
    assert stored["text"].tolist() == ["plain text", "with metadata", "third"]
    assert stored["model"].tolist()[1:] == ["m1", "m2"]
    with pytest.raises(InputError, match="already exists"):
        ops.ingest_documents(ws, req)
    again = ops.ingest_documents(ws, req.model_copy(update={"documents": ["only one"], "overwrite": True}))
    assert again.dataset.n_docs == 1 and ws.dataset("inline").info.n_docs == 1


def test_ingest_inline_with_limits(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    ops.ingest_documents(ws, IngestRequest.build(name="kept", documents=["a"]))
    before = ws.store.names()
    limits = IngestLimits(roots=[tmp_path], max_bytes=1000, max_documents=2)
    with pytest.raises(InputError, match="limit of 2"):
        ops.ingest_documents(ws, IngestRequest.build(name="many", documents=["a", "b", "c"]), limits=limits)
    assert ws.store.names() == before
    with pytest.raises(InputError, match="limit of 1,000"):
        ops.ingest_documents(ws, IngestRequest.build(name="big", documents=["x" * 1001]), limits=limits)
    assert ws.store.names() == before
    ok = ops.ingest_documents(ws, IngestRequest.build(name="few", documents=["a", {"text": "b"}]), limits=limits)
    assert ok.dataset.n_docs == 2 and sorted(ws.store.names()) == ["few", "kept"]


def test_inline_size_limit_counts_bytes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    limits = IngestLimits(roots=[tmp_path], max_bytes=1000, max_documents=10)
    wide = "\u00e9" * 600
    assert len(wide.encode("utf-8")) == 1200
    with pytest.raises(InputError, match="limit of 1,000"):
        ops.ingest_documents(ws, IngestRequest.build(name="wide", documents=[wide]), limits=limits)
    small = {"text": "\u00e9" * 200}
    assert len(json.dumps(small, ensure_ascii=False).encode("utf-8")) == 412
    assert ops.ingest_documents(ws, IngestRequest.build(name="small", documents=[small]), limits=limits).dataset.n_docs


def test_ingest_from_files_under_the_roots_only(data: Data, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    limits = IngestLimits(roots=[data.files], max_bytes=10**6, max_documents=100)
    out = ops.ingest_documents(ws, IngestRequest.build(name="small", path="small.jsonl"), limits=limits)
    assert out.dataset.n_docs == 8 and out.source == str(data.files / "small.jsonl")
    assert out.dataset.columns == ["category"]
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"text": "secret"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="outside the allowed roots"):
        ops.ingest_documents(ws, IngestRequest.build(name="leak", path=str(outside)), limits=limits)
    with pytest.raises(InputError, match="outside the allowed roots"):
        ops.ingest_documents(ws, IngestRequest.build(name="leak", path="../" * 12 + "etc/hostname"), limits=limits)
    with pytest.raises(InputError, match="reads no files"):
        ops.ingest_documents(
            ws,
            IngestRequest.build(name="leak", path=str(outside)),
            limits=IngestLimits(roots=[], max_bytes=10**6, max_documents=100),
        )
    tight = IngestLimits(roots=[data.files], max_bytes=10**6, max_documents=5)
    with pytest.raises(InputError, match="limit of 5"):
        ops.ingest_documents(ws, IngestRequest.build(name="small2", path="small.jsonl"), limits=tight)
    tiny = IngestLimits(roots=[data.files], max_bytes=10, max_documents=100)
    with pytest.raises(InputError, match="bytes"):
        ops.ingest_documents(ws, IngestRequest.build(name="small3", path="small.jsonl"), limits=tiny)
    assert ws.store.names() == ["small"]
    # a person at a terminal (no limits) may read a file anywhere
    anywhere = ops.ingest_documents(ws, IngestRequest.build(name="outside", path=str(outside)))
    assert anywhere.dataset.n_docs == 1 and anywhere.source == str(outside.resolve())


def test_ingest_refuses_busy_and_bad_names(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    with pytest.raises(InputError, match="being embedded"):
        ops.ingest_documents(ws, IngestRequest.build(name="busy", documents=["a"]), busy={"busy", "other"})
    with pytest.raises(InputError, match="invalid dataset name"):
        ops.ingest_documents(ws, IngestRequest.build(name="../escape", documents=["a"]))
    with pytest.raises(InputError):
        ops.ingest_documents(ws, IngestRequest.build(name="bad-rows", documents=[{"body": "no text field"}]))
    assert ws.store.names() == []
    skipped = ops.ingest_documents(
        ws, IngestRequest.build(name="skips", documents=["fine", {"body": "no text"}], skip_invalid=True)
    )
    assert skipped.dataset.n_docs == 1 and skipped.n_skipped == 1 and len(skipped.skipped) == 1
