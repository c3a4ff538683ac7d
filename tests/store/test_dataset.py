from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.errors import InputError, NotFoundError, SaescopeError
from saescope.store.dataset import EmbeddingSpec, Store, shard_by_shard
from saescope.store.ingest import documents_from_list
from saescope.store.shards import read_shard, write_shard


def _spec(sae: str = "s1") -> EmbeddingSpec:
    return EmbeddingSpec(reader={"id": "r", "layer": 1}, sae={"id": sae}, config={"pooling": "max"})


def _fake_embed(texts: list[str], report: object) -> tuple[sp.csr_matrix, np.ndarray]:
    rows = [[len(t) % 7, 3 + len(t) % 2] for t in texts]
    m = sp.lil_matrix((len(texts), 10), dtype=np.float32)
    for i, cols in enumerate(rows):
        for c in cols:
            m[i, c] = 1.0 + i * 0.25
    return sp.csr_matrix(m), np.array([len(t) for t in texts])


def test_create_open_and_unknown_names(home: Path) -> None:
    store = Store()
    frame, _ = documents_from_list([{"text": "a", "m": "x"}, {"text": "bb", "m": "y"}])
    ds = store.create("set1", frame, source="inline")
    assert store.names() == ["set1"]
    assert ds.info.n_docs == 2 and ds.info.columns == ["m"]
    assert ds.metadata()["m"].tolist() == ["x", "y"]
    with pytest.raises(NotFoundError, match=r"unknown dataset 'nope'; known datasets: \['set1'\]"):
        store.open("nope")
    with pytest.raises(InputError, match="already exists"):
        store.create("set1", frame, source="inline")
    with pytest.raises(InputError, match="invalid dataset name"):
        store.create("../evil", frame, source="inline")
    with pytest.raises(NotFoundError):
        ds.row_of(["5"])
    assert ds.row_of(["1", "0"]).tolist() == [1, 0]


def test_shard_roundtrip_is_deterministic(tmp_path: Path) -> None:
    m = sp.random(5, 50, density=0.2, format="csr", dtype=np.float32, random_state=0)
    write_shard(tmp_path / "a.safetensors", m, np.arange(5), 10)
    write_shard(tmp_path / "b.safetensors", m, np.arange(5), 10)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    back, ntok, first = read_shard(tmp_path / "a.safetensors")
    assert first == 10 and ntok.tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(back.toarray(), m.toarray().astype(np.float16).astype(np.float32))
    (tmp_path / "c.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable shard"):
        read_shard(tmp_path / "c.safetensors")


def test_embedding_runs_resume_and_never_mix(home: Path) -> None:
    store = Store()
    frame, _ = documents_from_list([f"doc number {i}" + "x" * i for i in range(10)])
    ds = store.create("d", frame, source="inline")
    emb = ds.prepare_embedding(_spec(), 10, shard_size=3)
    with pytest.raises(SaescopeError, match="incomplete"):
        emb.matrix()
    calls: list[int] = []

    def counting(texts: list[str], report: object) -> tuple[sp.csr_matrix, np.ndarray]:
        calls.append(len(texts))
        return _fake_embed(texts, report)

    emb.run(shard_by_shard(counting))
    assert calls == [3, 3, 3, 1]
    full = emb.matrix()
    assert full.shape == (10, 10) and emb.manifest.complete
    # Remove a shard as if the process died while writing it (its half-written temporary file is left
    # behind): only that shard is recomputed, and the leftover is cleaned up.
    emb.shard_path(2).unlink()
    leftover = emb.path / f".{emb.shard_path(2).name}.99999.tmp"
    leftover.write_bytes(b"half a shard")
    m = emb.manifest
    calls.clear()
    emb.run(shard_by_shard(counting))
    assert calls == [3]
    assert not leftover.exists()
    assert (emb.matrix() != full).nnz == 0
    assert m.stats["active_latents_mean"] == 2.0
    other = ds.prepare_embedding(_spec("s2"), 10, shard_size=3)
    assert other.path != emb.path
    assert ds.embedding().key == emb.key
    other.run(shard_by_shard(_fake_embed))
    with pytest.raises(NotFoundError, match="several embeddings"):
        ds.embedding()
    assert ds.embedding("s2").key == other.key


def test_concurrent_run_is_refused(home: Path) -> None:
    store = Store()
    frame, _ = documents_from_list(["a", "b"])
    emb = store.create("d", frame, source="inline").prepare_embedding(_spec(), 10)
    with emb.lock(), pytest.raises(SaescopeError, match="another process"):
        emb.run(shard_by_shard(_fake_embed))
