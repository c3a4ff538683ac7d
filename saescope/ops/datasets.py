"""The dataset operations: list, describe, read and ingest documents.

Ingest reads a file anywhere for a person at a terminal, and only under the allowed roots (within the
size limits) for an agent over MCP: the caller passes the :class:`IngestLimits` that apply to it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from saescope.errors import InputError
from saescope.ops.files import IngestLimits, check_size, files_to_read, local_path, resolve_under_roots
from saescope.ops.jobs import EmbedJob
from saescope.ops.requests import DescribeRequest, IngestRequest, ReadRequest
from saescope.store.dataset import Dataset, Embedding, check_name
from saescope.store.ingest import IngestOptions, documents_from_list, read_documents
from saescope.workspace import Workspace


class EmbeddingSummary(BaseModel):
    """One embedding of a dataset."""

    key: str = Field(description="embedding key; pass it as `sae` when a dataset has several embeddings")
    sae: str | None = Field(description="SAE id")
    reader: str | None = Field(description="model whose activations the SAE reads")
    layer: int | None
    pooling: str | None = Field(description="how token activations were pooled per document")
    complete: bool = Field(description="false while an embedding job is running or was interrupted")
    n_docs: int = Field(description="documents the embedding covers")
    shards_done: int
    n_shards: int


class DatasetSummary(BaseModel):
    """A dataset, without its documents."""

    name: str
    n_docs: int
    columns: list[str] = Field(description="metadata columns, usable in where filters and as pair keys")
    embeddings: list[EmbeddingSummary]


class DatasetList(BaseModel):
    """Every dataset under the server's data root, and the embedding jobs still running."""

    root: str = Field(description="the data root")
    datasets: list[DatasetSummary]
    active_jobs: list[EmbedJob]

    def to_text(self) -> str:
        if not self.datasets:
            lines = [f"no datasets yet under {self.root}: call ingest_documents, then embed_dataset"]
        else:
            lines = [f"{len(self.datasets)} dataset(s) under {self.root}:"]
            for d in self.datasets:
                embs = (
                    ", ".join(
                        f"{e.sae}{'' if e.complete else f' (incomplete {e.shards_done}/{e.n_shards})'}"
                        for e in d.embeddings
                    )
                    or "not embedded (call embed_dataset)"
                )
                lines.append(f"- {d.name}: {d.n_docs} docs; columns {d.columns or '-'}; embeddings: {embs}")
        lines += [j.to_text() for j in self.active_jobs]
        return "\n".join(lines)


class ColumnSummary(BaseModel):
    """What a metadata column holds."""

    name: str
    dtype: str
    n_missing: int
    n_distinct: int
    top_values: list[tuple[str, int]] = Field(description="most frequent values with counts (up to 8)")
    min: str | None = Field(default=None, description="smallest value, for numbers and dates")
    max: str | None = None


class DocumentText(BaseModel):
    """One document's text (possibly cut) and metadata."""

    doc_id: str
    text: str
    n_chars: int = Field(description="length of the full text")
    truncated: bool = Field(description="true when `text` was cut to max_chars")
    metadata: dict[str, Any]


class DatasetDetails(BaseModel):
    """A dataset described: source, columns, embeddings and a few documents."""

    name: str
    n_docs: int
    source: str
    created: str
    fingerprint: str
    columns: list[ColumnSummary]
    embeddings: list[EmbeddingSummary]
    embedding_stats: dict[str, dict[str, float]] = Field(description="per embedding key: active latents and tokens")
    n_skipped: int = Field(description="rows skipped at ingest")
    skipped: list[str] = Field(description="the first skipped rows, with reasons")
    examples: list[DocumentText]

    def to_text(self) -> str:
        lines = [f"{self.name}: {self.n_docs} documents from {self.source} (created {self.created})"]
        for c in self.columns:
            vals = ", ".join(f"{v!r}x{n}" for v, n in c.top_values[:5])
            rng = f" range {c.min}..{c.max}" if c.min is not None else ""
            lines.append(f"- column {c.name} ({c.dtype}, {c.n_distinct} distinct, {c.n_missing} missing){rng}: {vals}")
        for e in self.embeddings:
            s = self.embedding_stats.get(e.key, {})
            mean = s.get("active_latents_mean")
            lines.append(
                f"- embedding {e.key}: sae {e.sae}, {e.reader} layer {e.layer}, pooling {e.pooling}, "
                f"{'complete' if e.complete else f'incomplete {e.shards_done}/{e.n_shards}'}"
                + (f", {mean} active latents per doc" if mean is not None else "")
            )
        if not self.embeddings:
            lines.append("- not embedded yet: call embed_dataset")
        if self.n_skipped:
            lines.append(f"{self.n_skipped} rows skipped at ingest, e.g. {self.skipped[:2]}")
        for d in self.examples:
            lines.append(f"example {d.doc_id}: {d.text[:200]!r}")
        return "\n".join(lines)


class IngestResult(BaseModel):
    """A dataset just stored."""

    dataset: DatasetSummary
    source: str
    skipped: list[str] = Field(description="rows skipped (with skip_invalid), with reasons; at most 20 shown")
    n_skipped: int
    next_step: str

    def to_text(self) -> str:
        d = self.dataset
        lines = [f"stored {d.n_docs} documents as {d.name!r} (columns: {d.columns or 'none'}) from {self.source}"]
        if self.n_skipped:
            lines.append(f"skipped {self.n_skipped} rows, e.g. {self.skipped[:3]}")
        lines.append(self.next_step)
        return "\n".join(lines)


class DocumentsPage(BaseModel):
    """Texts of requested documents."""

    dataset: str
    documents: list[DocumentText]
    missing: list[str] = Field(description="requested ids that are not in the dataset")

    def to_text(self) -> str:
        lines = [
            f"{len(self.documents)} document(s) of {self.dataset}"
            + (f"; not found: {self.missing}" if self.missing else "")
        ]
        for d in self.documents:
            meta = ", ".join(f"{k}={v!r}" for k, v in d.metadata.items())
            lines.append(f"--- {d.doc_id} ({meta}){' [cut]' if d.truncated else ''}\n{d.text}")
        return "\n".join(lines)


def embedding_summary(emb: Embedding) -> EmbeddingSummary:
    m = emb.manifest
    return EmbeddingSummary(
        key=m.key,
        sae=m.spec.sae.get("id"),
        reader=m.spec.reader.get("id"),
        layer=m.spec.reader.get("layer"),
        pooling=m.spec.config.get("pooling"),
        complete=m.complete,
        n_docs=m.n_docs,
        shards_done=emb.shards_done(),
        n_shards=m.n_shards,
    )


def dataset_summary(ds: Dataset) -> DatasetSummary:
    info = ds.info
    return DatasetSummary(
        name=info.name,
        n_docs=info.n_docs,
        columns=info.columns,
        embeddings=[embedding_summary(e) for e in ds.embeddings()],
    )


def _columns(frame: pd.DataFrame, names: list[str]) -> list[ColumnSummary]:
    out = []
    for name in names:
        col = frame[name]
        counts = col.astype(str)[col.notna()].value_counts().head(8)
        lo = hi = None
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
            present = col.dropna()
            if len(present):
                lo, hi = str(present.min()), str(present.max())
        out.append(
            ColumnSummary(
                name=name,
                dtype=str(col.dtype),
                n_missing=int(col.isna().sum()),
                n_distinct=int(col.nunique()),
                top_values=[(str(k), int(v)) for k, v in counts.items()],
                min=lo,
                max=hi,
            )
        )
    return out


def _plain(value: Any) -> Any:
    """A metadata value as JSON: missing values become null, numpy scalars Python ones, the rest text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str | int | float | bool) else str(value)


def _doc_text(row: pd.Series, columns: list[str], max_chars: int) -> DocumentText:
    text = str(row["text"])
    return DocumentText(
        doc_id=str(row["doc_id"]),
        text=text[:max_chars],
        n_chars=len(text),
        truncated=len(text) > max_chars,
        metadata={c: _plain(row[c]) for c in columns},
    )


def list_datasets(ws: Workspace, active_jobs: Sequence[EmbedJob] = ()) -> DatasetList:
    """Every dataset under the data root, with its embeddings, and the embedding jobs still running."""
    store = ws.store
    return DatasetList(
        root=str(store.root),
        datasets=[dataset_summary(store.open(n)) for n in store.names()],
        active_jobs=list(active_jobs),
    )


def describe_dataset(ws: Workspace, req: DescribeRequest) -> DatasetDetails:
    """One dataset: source, each metadata column, its embeddings and a few documents.

    Raises:
        NotFoundError: unknown dataset.
    """
    ds = ws.dataset(req.dataset)
    info = ds.info
    frame = ds.documents()
    return DatasetDetails(
        name=info.name,
        n_docs=info.n_docs,
        source=info.source,
        created=info.created,
        fingerprint=info.fingerprint,
        columns=_columns(frame, info.columns),
        embeddings=[embedding_summary(e) for e in ds.embeddings()],
        embedding_stats={e.key: e.manifest.stats for e in ds.embeddings()},
        n_skipped=len(info.skipped),
        skipped=info.skipped[:10],
        examples=[_doc_text(frame.iloc[i], info.columns, 300) for i in range(min(req.n_examples, len(frame)))],
    )


def read_documents_by_id(ws: Workspace, req: ReadRequest) -> DocumentsPage:
    """The text and metadata of documents by id; unknown ids are listed as missing.

    Raises:
        NotFoundError: unknown dataset.
    """
    ds = ws.dataset(req.dataset)
    frame = ds.documents()
    by_id = {d: i for i, d in enumerate(frame["doc_id"].astype(str))}
    return DocumentsPage(
        dataset=req.dataset,
        missing=[d for d in req.doc_ids if d not in by_id],
        documents=[_doc_text(frame.iloc[by_id[d]], ds.info.columns, req.max_chars) for d in req.doc_ids if d in by_id],
    )


def _inline_size(documents: Sequence[str | dict[str, Any]]) -> int:
    """Bytes of the inline documents as UTF-8 (objects as compact JSON), as a file would hold them."""
    return sum(
        len(
            (d if isinstance(d, str) else json.dumps(d, default=str, ensure_ascii=False)).encode(
                "utf-8", "surrogatepass"
            )
        )
        for d in documents
    )


def ingest_documents(
    ws: Workspace, req: IngestRequest, *, limits: IngestLimits | None = None, busy: Collection[str] = ()
) -> IngestResult:
    """Store documents from a file or folder, or inline, as a new dataset (nothing is stored if any row is
    invalid, unless ``skip_invalid``).

    Raises:
        InputError: a bad name, a dataset in ``busy`` (being embedded), a path outside ``limits.roots``, input
            over the limits, invalid rows, or an existing dataset without ``overwrite``.
    """
    check_name(req.name)
    if req.name in busy:
        raise InputError(
            f"{req.name!r} is being embedded right now; wait for the job (embed_status) or use another name"
        )
    opts = IngestOptions(
        text_column=req.text_column,
        id_column=req.id_column,
        skip_invalid=req.skip_invalid,
        format=req.format,
        max_bytes=None if limits is None else limits.max_bytes,
        roots=None if limits is None else tuple(limits.roots),
    )
    if req.path is not None:
        if limits is None:
            real = local_path(req.path)
        else:
            real = resolve_under_roots(req.path, limits.roots)
            check_size(files_to_read(real, limits.roots), limits.max_bytes)
        frame, report = read_documents(real, opts)
        source = str(real)
    else:
        documents = req.documents or []
        if limits is not None:
            if len(documents) > limits.max_documents:
                raise InputError(
                    f"{len(documents):,} documents is over this server's limit of {limits.max_documents:,} "
                    "(--max-documents); split the input"
                )
            size = _inline_size(documents)
            if size > limits.max_bytes:
                raise InputError(
                    f"the inline documents hold {size:,} bytes, over this server's limit of "
                    f"{limits.max_bytes:,} (--max-bytes); write them to a file under an allowed root"
                )
        frame, report = documents_from_list(list(documents), opts)
        source = "inline documents"
    if limits is not None and len(frame) > limits.max_documents:
        raise InputError(
            f"{req.path} holds {len(frame):,} documents, over this server's limit of {limits.max_documents:,} "
            "(--max-documents); split it"
        )
    ds = ws.store.create(req.name, frame, source=source, skipped=report.skipped, overwrite=req.overwrite)
    return IngestResult(
        dataset=dataset_summary(ds),
        source=source,
        skipped=report.skipped[:20],
        n_skipped=len(report.skipped),
        next_step=f"call embed_dataset(dataset={req.name!r}) to compute its SAE vectors",
    )
