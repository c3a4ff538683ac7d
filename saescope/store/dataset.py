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
import logging
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
from pydantic import BaseModel, Field, ValidationError

from saescope.errors import InputError, NotFoundError, SaescopeError, clip
from saescope.paths import data_home
from saescope.store.shards import atomic_write_json, read_shard, write_shard

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LEFTOVER = re.compile(r"^\.(tmp|old)-(.+)-(\d{1,10})$")
"""A dataset folder being written (``.tmp-<name>-<pid>``) or replaced (``.old-<name>-<pid>``) by :meth:`Store.create`."""
MANIFEST = "manifest.json"
MAX_SHARD_SIZE = 1_000_000
"""Most documents per shard: a shard is computed, held and written in one piece."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_shard_size(shard_size: object) -> int:
    """Return ``shard_size`` if it is a usable number of documents per shard.

    Raises:
        InputError: it is not a whole number from 1 to :data:`MAX_SHARD_SIZE`.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or not 1 <= shard_size <= MAX_SHARD_SIZE:
        raise InputError(
            f"shard_size must be a whole number of documents from 1 to {MAX_SHARD_SIZE:,}, got {shard_size!r}; "
            "the default, 256, suits most datasets"
        )
    return shard_size


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name.

    Raises:
        InputError: it is empty, too long, or has characters other than letters, digits, ``_.-``.
    """
    if not _NAME.match(name or ""):
        raise InputError(
            f"invalid dataset name {clip(name)!r}: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit"
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
    def problem(self) -> str | None:
        """Why the manifest cannot describe usable shards (written by an older, unchecked run), or None."""
        if self.shard_size < 1:
            return f"its shard_size is {self.shard_size}"
        if self.n_docs < 0:
            return f"its n_docs is {self.n_docs}"
        if self.d_sae < 1:
            return f"its d_sae is {self.d_sae}"
        return None

    @property
    def n_shards(self) -> int:
        """Number of shards; 0 when the manifest is unusable (see :attr:`problem`)."""
        if self.problem:
            return 0
        return (self.n_docs + self.shard_size - 1) // self.shard_size


@dataclass
class ShardProgress:
    """Progress of an embedding run, over all shards."""

    docs_done: int
    docs_total: int
    tokens_done: int
    elapsed_s: float
    actors_alive: int | None = None
    """Ray actors embedding right now (None on the local path)."""


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
        """The manifest as stored; one with a :attr:`~EmbeddingManifest.problem` always reads as incomplete.

        Raises:
            InputError: the manifest file is missing or not a valid manifest.
        """
        m = read_manifest(self.path / MANIFEST)
        if m.problem and m.complete:
            m = m.model_copy(update={"complete": False})
        return m

    def _unusable(self, problem: str) -> InputError:
        return InputError(
            f"embedding {self.key} of {self.dataset.name} is unusable ({problem}); run `saescope embed` again "
            f"with the same settings to rebuild it, or delete {self.path}"
        )

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
            InputError: it is unusable, or a shard does not hold the rows the manifest expects.
        """
        parts = [part for _, part in self.iter_shards()]
        out = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, self.manifest.d_sae), dtype=np.float32)
        return sp.csr_matrix(out, dtype=np.float32)

    def iter_shards(self) -> Iterator[tuple[int, sp.csr_matrix]]:
        """``(first_row, rows)`` of each shard in document order (float32 CSR), one shard in memory at a time.

        Raises:
            SaescopeError: the embedding is not complete (re-run ``embed`` to finish it).
            InputError: it is unusable, or a shard does not hold the rows the manifest expects.
        """
        m = self.manifest
        if m.problem:
            raise self._unusable(m.problem)
        if not m.complete:
            raise SaescopeError(
                f"embedding {self.key} of {self.dataset.name} is incomplete ({self.shards_done()}/{m.n_shards} "
                "shards); run `saescope embed` again to finish it"
            )
        for i in range(m.n_shards):
            part, _, first = read_shard(self.shard_path(i))
            expected = (min(m.shard_size, m.n_docs - i * m.shard_size), m.d_sae)
            if part.shape != expected or first != i * m.shard_size:
                raise InputError(
                    f"{self.shard_path(i)} holds rows {first}.. of shape {part.shape}, but the manifest expects "
                    f"rows {i * m.shard_size}.. of shape {expected}; delete it and run `saescope embed` again"
                )
            yield first, part

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
            if m.problem:
                raise self._unusable(m.problem)
            bounds = [(i, i * m.shard_size, min((i + 1) * m.shard_size, m.n_docs)) for i in range(m.n_shards)]
            missing = [b for b in bounds if not self.shard_path(b[0]).exists()]
            if m.complete and not missing:
                return m  # nothing to do: the manifest (and its finish time) stays as it is
            docs = self.dataset.documents(["text"])["text"].tolist()
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
        """What the dataset is.

        Raises:
            InputError: its ``dataset.json`` is damaged (delete the dataset and ingest it again).
        """
        path = self.path / "dataset.json"
        try:
            return DatasetInfo.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise InputError(
                f"dataset {self.name} is damaged: {path} is unreadable ({' '.join(str(exc).split())[:200]}); "
                "delete the dataset and ingest it again"
            ) from exc

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
                raise InputError(f"{self.name} has no column(s) {[clip(c) for c in bad]}; columns: {known}")
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
            missing = [clip(str(d)) for d in missing[:10]]
            raise NotFoundError(f"{self.name} has no document(s) {missing}; ids look like {list(ids[:3])}")
        return np.asarray(pos, dtype=np.int64)

    def embeddings(self) -> list[Embedding]:
        """The embeddings whose manifest can be read; see :meth:`broken_embeddings` for the others."""
        return [Embedding(self, p) for p, problem in self._embedding_folders() if problem is None]

    def broken_embeddings(self) -> list[tuple[Path, str]]:
        """Embedding folders whose manifest cannot be read, with the reason (delete them, or re-run embed)."""
        return [(p, problem) for p, problem in self._embedding_folders() if problem is not None]

    def _embedding_folders(self) -> list[tuple[Path, str | None]]:
        root = self.path / "embeddings"
        if not root.is_dir():
            return []
        out: list[tuple[Path, str | None]] = []
        for p in sorted(root.iterdir()):
            if not (p / MANIFEST).is_file():
                continue
            try:
                read_manifest(p / MANIFEST)
            except InputError as exc:
                log.warning("%s", exc)
                out.append((p, str(exc)))
            else:
                out.append((p, None))
        return out

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
        broken = [f"{p} (unreadable manifest: delete it)" for p, _ in self.broken_embeddings()]
        if broken:
            have += broken
        if not cands:
            hint = f"; it has: {have}" if have else "; run `saescope embed` first"
            raise NotFoundError(
                f"{self.name} has no {'complete ' if complete else ''}embedding"
                f"{f' with SAE {clip(sae_id)!r}' if sae_id else ''}{hint}"
            )
        raise NotFoundError(f"{self.name} has several embeddings; choose one by SAE id or key: {have}")

    def prepare_embedding(
        self, spec: EmbeddingSpec, d_sae: int, *, shard_size: int = 256, versions: dict[str, str] | None = None
    ) -> Embedding:
        """The embedding folder for ``spec``, created with its manifest when new.

        A folder whose manifest is unreadable or unusable (e.g. ``shard_size`` 0, written before sizes
        were checked) holds no trustworthy vectors: it is reset and started afresh.

        Raises:
            InputError: ``shard_size`` or ``d_sae`` is not a positive whole number (checked before
                anything is written).
            SaescopeError: the folder exists but was made for other documents.
        """
        check_shard_size(shard_size)
        if isinstance(d_sae, bool) or not isinstance(d_sae, int) or d_sae < 1:
            raise InputError(f"d_sae must be a positive whole number, got {d_sae!r}")
        key = spec.key
        path = self.path / "embeddings" / key
        emb = Embedding(self, path)
        info = self.info
        if (path / MANIFEST).is_file():
            try:
                m = read_manifest(path / MANIFEST)
            except InputError as exc:
                problem: str | None = str(exc)
            else:
                problem = m.problem
                if problem is None:
                    if m.docs_fingerprint != info.fingerprint:
                        raise SaescopeError(f"embedding {key} was made for other documents; delete {path} and re-run")
                    return emb
            with emb.lock():
                log.warning("resetting embedding %s of %s: %s", key, self.name, problem)
                for old in path.glob("shard-*.safetensors"):
                    old.unlink(missing_ok=True)
                (path / MANIFEST).unlink(missing_ok=True)
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


def read_manifest(path: Path) -> EmbeddingManifest:
    """The manifest stored at ``path``.

    Raises:
        InputError: it cannot be read or is not a valid manifest.
    """
    try:
        return EmbeddingManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable embedding manifest ({str(exc).splitlines()[0]}); delete {path.parent} "
            "and run `saescope embed` again"
        ) from exc


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
        """Names of the stored datasets (never the temporary folders of a create in progress or killed)."""
        d = self.datasets_dir
        if not d.is_dir():
            return []
        self.recover()
        return sorted(p.name for p in d.iterdir() if _NAME.match(p.name) and (p / "dataset.json").is_file())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock: taken only around renames of dataset folders and their recovery."""
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        with (self.datasets_dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def recover(self) -> list[str]:
        """Clean up after a :meth:`create` that was killed, and return what was done.

        Its ``.tmp-<name>-<pid>`` folder (a new dataset not yet in place) is deleted. Its
        ``.old-<name>-<pid>`` folder (the dataset being replaced) is put back when no dataset
        ``<name>`` exists (the kill came between the two renames), else deleted. Only folders of
        processes that are no longer running are touched, and a store that cannot be written is
        left as it is.
        """
        d = self.datasets_dir
        if not d.is_dir():
            return []
        leftovers = [p for p in d.iterdir() if _LEFTOVER.match(p.name)]
        if not leftovers:
            return []
        done: list[str] = []
        try:
            with self._locked():
                for p in sorted(leftovers, key=lambda q: q.name):
                    m = _LEFTOVER.match(p.name)
                    if m is None or not p.exists() or _pid_alive(int(m.group(3))):
                        continue
                    kind, name = m.group(1), m.group(2)
                    target = d / name
                    if (
                        kind == "old"
                        and _NAME.match(name)
                        and (p / "dataset.json").is_file()
                        and not target.exists()
                        and not target.is_symlink()
                    ):
                        os.replace(p, target)
                        done.append(f"restored {name} from {p.name}, left by an interrupted overwrite")
                    else:
                        shutil.rmtree(p, ignore_errors=True)
                        if p.is_symlink() or p.is_file():
                            p.unlink(missing_ok=True)
                        done.append(f"deleted {p.name}, left by an interrupted ingest")
        except OSError as exc:  # a read-only store: leftovers stay, and are never listed anyway
            log.warning("could not clean up leftovers in %s: %s", d, exc)
        for line in done:
            log.warning("%s", line)
        return done

    def open(self, name: str) -> Dataset:
        """The dataset called ``name``.

        Raises:
            NotFoundError: there is none; the message lists the datasets that exist.
        """
        path = self.datasets_dir / name
        if _NAME.match(name or "") and not (path / "dataset.json").is_file():
            self.recover()
        if not _NAME.match(name or "") or not (path / "dataset.json").is_file():
            known = self.names()
            raise NotFoundError(
                f"unknown dataset {clip(name)!r}; known datasets: {known if known else 'none yet (ingest one first)'}"
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
        self.recover()
        target = self.datasets_dir / name
        if target.exists() and not overwrite:
            raise InputError(f"dataset {name!r} already exists; choose another name or pass overwrite")
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.datasets_dir / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            try:
                documents.to_parquet(tmp / "documents.parquet", index=False)
            except (ValueError, TypeError, OverflowError, UnicodeError, NotImplementedError) as exc:
                raise InputError(
                    f"cannot store the documents of {name!r}: {exc}. Nothing was stored; read them with "
                    "saescope.store.ingest, which makes metadata storable"
                ) from exc
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
            with self._locked():
                if target.exists():
                    if not overwrite:
                        raise InputError(f"dataset {name!r} already exists; choose another name or pass overwrite")
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


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this machine (a process we cannot signal counts as running)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
