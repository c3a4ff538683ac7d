"""The one Dataset API: documents and metadata in parquet, embeddings as manifests plus CSR shards.

Layout under the data root (``$SAESCOPE_HOME``)::

    datasets/<name>/dataset.json               name, counts, columns, source
    datasets/<name>/documents.parquet          doc_id, text, metadata columns
    datasets/<name>/embeddings/<key>/manifest.json
    datasets/<name>/embeddings/<key>/shard-00000.safetensors ...

An embedding's key hashes the reader, the SAE and the pooling configuration, so vectors from
different readers or SAEs never share a folder. Nothing outside this module reads these files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field

from saescope.errors import InputError, NotFoundError, SaescopeError
from saescope.paths import data_home
from saescope.store.shards import atomic_write_json, read_shard, write_shard

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MANIFEST = "manifest.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name.

    Raises:
        InputError: it is empty, too long, or has characters other than letters, digits, ``_.-``.
    """
    if not _NAME.match(name or ""):
        raise InputError(
            f"invalid dataset name {name!r}: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return name


class DatasetInfo(BaseModel):
    """What a dataset is, without its documents."""

    name: str
    n_docs: int
    columns: list[str] = Field(description="metadata columns (besides doc_id and text)")
    source: str
    created: str
    skipped: list[str] = Field(default_factory=list, description="rows skipped at ingest, with reasons")
    fingerprint: str = Field(description="hash of the document ids and texts")


class EmbeddingSpec(BaseModel):
    """Everything that determines an embedding's vectors."""

    reader: dict[str, Any]
    sae: dict[str, Any]
    config: dict[str, Any]

    @property
    def key(self) -> str:
        ident = {
            "reader": self.reader.get("id"),
            "layer": self.reader.get("layer"),
            "sae": self.sae.get("id"),
            "dtype": self.reader.get("dtype"),
            "sae_dtype": self.sae.get("dtype"),
            "config": self.config,
        }
        digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(self.sae.get("id", "sae"))).strip("-")[-40:]
        return f"{slug}-{digest}"


class EmbeddingManifest(BaseModel):
    """The record of one embedding of a dataset."""

    key: str
    spec: EmbeddingSpec
    n_docs: int
    d_sae: int
    shard_size: int
    docs_fingerprint: str
    versions: dict[str, str] = Field(default_factory=dict)
    created: str
    complete: bool = False
    finished: str | None = None
    stats: dict[str, float] = Field(default_factory=dict)

    @property
    def n_shards(self) -> int:
        return (self.n_docs + self.shard_size - 1) // self.shard_size


@dataclass
class ShardProgress:
    """Progress of an embedding run, over all shards."""

    docs_done: int
    docs_total: int
    tokens_done: int
    elapsed_s: float


EmbedFn = Callable[[Iterator[list[str]], Callable[[int, int], None]], Iterator[tuple[sp.csr_matrix, np.ndarray]]]
"""Embeds shards' texts, taken one by one from the iterator, yielding each shard's ``(CSR matrix, tokens
per document)`` in order; reports ``(documents, tokens)`` done so far over the whole call. It may read
the next shard's texts before yielding a shard, to keep its workers busy."""

ShardFn = Callable[[list[str], Callable[[int, int], None]], tuple[sp.csr_matrix, np.ndarray]]
"""Embeds one shard's texts; reports ``(documents, tokens)`` done so far in that shard."""


def shard_by_shard(fn: ShardFn) -> EmbedFn:
    """An :data:`EmbedFn` that calls ``fn`` on one shard at a time."""

    def stream(
        shards: Iterator[list[str]], report: Callable[[int, int], None]
    ) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
        done = [0, 0]  # documents and tokens of the shards before this one

        def shard_report(d: int, t: int) -> None:
            report(done[0] + d, done[1] + t)

        for texts in shards:
            matrix, n_tok = fn(texts, shard_report)
            done[0] += len(texts)
            done[1] += int(n_tok.sum())
            yield matrix, n_tok

    return stream


class Embedding:
    """One embedding of a dataset: a manifest and its shards."""

    def __init__(self, dataset: Dataset, path: Path) -> None:
        self.dataset = dataset
        self.path = path

    @property
    def manifest(self) -> EmbeddingManifest:
        return EmbeddingManifest.model_validate_json((self.path / MANIFEST).read_text(encoding="utf-8"))

    @property
    def key(self) -> str:
        return self.path.name

    def shard_path(self, index: int) -> Path:
        return self.path / f"shard-{index:05d}.safetensors"

    def shards_done(self) -> int:
        return sum(1 for i in range(self.manifest.n_shards) if self.shard_path(i).exists())

    def matrix(self) -> sp.csr_matrix:
        """All rows as one CSR matrix (float32), in document order.

        Raises:
            SaescopeError: the embedding is not complete (re-run ``embed`` to finish it).
        """
        m = self.manifest
        if not m.complete:
            raise SaescopeError(
                f"embedding {self.key} of {self.dataset.name} is incomplete ({self.shards_done()}/{m.n_shards} "
                "shards); run `saescope embed` again to finish it"
            )
        parts = [read_shard(self.shard_path(i))[0] for i in range(m.n_shards)]
        out = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, m.d_sae), dtype=np.float32)
        return sp.csr_matrix(out, dtype=np.float32)

    def n_tokens(self) -> np.ndarray:
        m = self.manifest
        return np.concatenate([read_shard(self.shard_path(i))[1] for i in range(m.n_shards)])

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the embedding's run lock, so two runs never write the same shards.

        Raises:
            SaescopeError: another process is embedding it right now.
        """
        fh = (self.path / ".lock").open("w")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise SaescopeError(
                    f"{self.dataset.name} is being embedded with {self.key} by another process; wait for it"
                ) from exc
            yield
        finally:
            fh.close()

    def run(
        self,
        embed_fn: EmbedFn,
        progress: Callable[[ShardProgress], None] | None = None,
    ) -> EmbeddingManifest:
        """Compute every missing shard, committing each atomically, then mark the embedding complete.

        Safe to kill at any moment: a re-run recomputes only the missing shards, and since a shard's
        rows depend only on its documents, the result is byte-identical to an uninterrupted run.
        """
        with self.lock():
            # Half-written shards of a killed run: nobody else writes here while we hold the lock.
            for stale in self.path.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
            m = self.manifest
            docs = self.dataset.documents(["text"])["text"].tolist()
            bounds = [(i, i * m.shard_size, min((i + 1) * m.shard_size, m.n_docs)) for i in range(m.n_shards)]
            missing = [b for b in bounds if not self.shard_path(b[0]).exists()]
            base_docs = m.n_docs - sum(hi - lo for _, lo, hi in missing)
            start = time.perf_counter()

            def report(d: int, t: int) -> None:
                if progress is not None:
                    progress(ShardProgress(base_docs + d, m.n_docs, t, time.perf_counter() - start))

            results = embed_fn((docs[lo:hi] for _, lo, hi in missing), report)
            written = 0
            for (i, lo, hi), (matrix, n_tok) in zip(missing, results, strict=False):
                if matrix.shape != (hi - lo, m.d_sae):
                    raise SaescopeError(f"embedder returned shape {matrix.shape}, expected {(hi - lo, m.d_sae)}")
                write_shard(self.shard_path(i), matrix, n_tok, lo)
                written += 1
            if written < len(missing):
                raise SaescopeError(f"embedder stopped after {written} of {len(missing)} shards; run again to finish")
            full = self._assemble_stats()
            m = self.manifest
            m.complete, m.finished, m.stats = True, _now(), full
            atomic_write_json(self.path / MANIFEST, m.model_dump())
            return m

    def _assemble_stats(self) -> dict[str, float]:
        m = self.manifest
        active: list[np.ndarray] = []
        ntok: list[np.ndarray] = []
        for i in range(m.n_shards):
            mat, nt, _ = read_shard(self.shard_path(i))
            active.append(np.diff(mat.indptr))
            ntok.append(nt)
        a = np.concatenate(active) if active else np.zeros(0)
        t = np.concatenate(ntok) if ntok else np.zeros(0)
        return {
            "active_latents_mean": round(float(a.mean()), 2) if len(a) else 0.0,
            "active_latents_std": round(float(a.std()), 2) if len(a) else 0.0,
            "active_latents_median": float(np.median(a)) if len(a) else 0.0,
            "tokens_total": float(t.sum()),
            "tokens_per_doc_mean": round(float(t.mean()), 2) if len(t) else 0.0,
        }


class Dataset:
    """A named set of documents with metadata, and its embeddings."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo.model_validate_json((self.path / "dataset.json").read_text(encoding="utf-8"))

    def documents(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The documents table (``doc_id``, ``text``, metadata), optionally only some columns.

        Raises:
            InputError: a requested column does not exist.
        """
        cols = None
        if columns is not None:
            known = ["doc_id", "text", *self.info.columns]
            bad = [c for c in columns if c not in known]
            if bad:
                raise InputError(f"{self.name} has no column(s) {bad}; columns: {known}")
            cols = ["doc_id", *[c for c in columns if c != "doc_id"]]
        return pd.read_parquet(self.path / "documents.parquet", columns=cols)

    def metadata(self) -> pd.DataFrame:
        """``doc_id`` and the metadata columns, without texts."""
        return self.documents(["doc_id", *self.info.columns])

    def row_of(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``doc_ids``.

        Raises:
            NotFoundError: an id is not in the dataset.
        """
        ids = self.documents(["doc_id"])["doc_id"]
        index = pd.Index(ids)
        pos = index.get_indexer(list(doc_ids))
        missing = [d for d, p in zip(doc_ids, pos, strict=True) if p < 0]
        if missing:
            raise NotFoundError(f"{self.name} has no document(s) {missing[:10]}; ids look like {list(ids[:3])}")
        return np.asarray(pos, dtype=np.int64)

    def embeddings(self) -> list[Embedding]:
        root = self.path / "embeddings"
        if not root.is_dir():
            return []
        return [Embedding(self, p) for p in sorted(root.iterdir()) if (p / MANIFEST).is_file()]

    def embedding(self, sae_id: str | None = None, *, complete: bool = True) -> Embedding:
        """The dataset's embedding with SAE ``sae_id`` (or its only one).

        Raises:
            NotFoundError: none matches, or several do and ``sae_id`` was not given.
        """
        cands = [e for e in self.embeddings() if (not complete or e.manifest.complete)]
        if sae_id is not None:
            cands = [e for e in cands if e.manifest.spec.sae.get("id") == sae_id or e.key == sae_id]
        if len(cands) == 1:
            return cands[0]
        have = [
            f"{e.key} (sae {e.manifest.spec.sae.get('id')}, {'complete' if e.manifest.complete else 'incomplete'})"
            for e in self.embeddings()
        ]
        if not cands:
            hint = f"; it has: {have}" if have else "; run `saescope embed` first"
            raise NotFoundError(
                f"{self.name} has no {'complete ' if complete else ''}embedding"
                f"{f' with SAE {sae_id!r}' if sae_id else ''}{hint}"
            )
        raise NotFoundError(f"{self.name} has several embeddings; choose one by SAE id or key: {have}")

    def prepare_embedding(
        self, spec: EmbeddingSpec, d_sae: int, *, shard_size: int = 256, versions: dict[str, str] | None = None
    ) -> Embedding:
        """The embedding folder for ``spec``, created with its manifest when new.

        Raises:
            SaescopeError: the folder exists but was made for other documents.
        """
        key = spec.key
        path = self.path / "embeddings" / key
        emb = Embedding(self, path)
        info = self.info
        if (path / MANIFEST).is_file():
            m = emb.manifest
            if m.docs_fingerprint != info.fingerprint:
                raise SaescopeError(f"embedding {key} was made for other documents; delete {path} and re-run")
            return emb
        path.mkdir(parents=True, exist_ok=True)
        manifest = EmbeddingManifest(
            key=key,
            spec=spec,
            n_docs=info.n_docs,
            d_sae=d_sae,
            shard_size=shard_size,
            docs_fingerprint=info.fingerprint,
            versions=versions or {},
            created=_now(),
        )
        atomic_write_json(path / MANIFEST, manifest.model_dump())
        return emb


def fingerprint(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for doc_id, text in zip(frame["doc_id"], frame["text"], strict=True):
        h.update(str(doc_id).encode())
        h.update(b"\0")
        h.update(str(text).encode())
        h.update(b"\1")
    return h.hexdigest()[:16]


class Store:
    """All datasets under a data root (``$SAESCOPE_HOME`` by default)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_home()

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def names(self) -> list[str]:
        d = self.datasets_dir
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "dataset.json").is_file())

    def open(self, name: str) -> Dataset:
        """The dataset called ``name``.

        Raises:
            NotFoundError: there is none; the message lists the datasets that exist.
        """
        path = self.datasets_dir / name
        if not _NAME.match(name or "") or not (path / "dataset.json").is_file():
            known = self.names()
            raise NotFoundError(
                f"unknown dataset {name!r}; known datasets: {known if known else 'none yet (ingest one first)'}"
            )
        return Dataset(path)

    def create(
        self, name: str, documents: pd.DataFrame, *, source: str, skipped: Sequence[str] = (), overwrite: bool = False
    ) -> Dataset:
        """Store ``documents`` (from :mod:`saescope.store.ingest`) as dataset ``name``, atomically.

        Raises:
            InputError: the name is invalid or taken (unless ``overwrite``), or the table lacks
                ``doc_id``/``text``.
        """
        check_name(name)
        if not {"doc_id", "text"} <= set(documents.columns):
            raise InputError("documents need doc_id and text columns")
        target = self.datasets_dir / name
        if target.exists() and not overwrite:
            raise InputError(f"dataset {name!r} already exists; choose another name or pass overwrite")
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.datasets_dir / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            documents.to_parquet(tmp / "documents.parquet", index=False)
            info = DatasetInfo(
                name=name,
                n_docs=len(documents),
                columns=[c for c in documents.columns if c not in ("doc_id", "text")],
                source=source,
                created=_now(),
                skipped=list(skipped)[:1000],
                fingerprint=fingerprint(documents),
            )
            atomic_write_json(tmp / "dataset.json", info.model_dump())
            if target.exists():
                old = self.datasets_dir / f".old-{name}-{os.getpid()}"
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Dataset(target)

    def delete(self, name: str) -> None:
        """Remove a dataset and its embeddings.

        Raises:
            NotFoundError: there is no such dataset.
        """
        ds = self.open(name)
        shutil.rmtree(ds.path)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
