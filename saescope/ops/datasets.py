"""Results of the server's own tools (datasets, documents, ingest); analysis results come from the library."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from saescope.server.jobs import EmbedJob


class EmbeddingSummary(BaseModel):
    """One embedding of a dataset."""

    key: str = Field(description="embedding key; pass it as `sae` when a dataset has several embeddings")
    sae: str | None = Field(description="SAE id")
    reader: str | None = Field(description="model whose activations the SAE reads")
    layer: int | None
    pooling: str | None = Field(description="how token activations were pooled per document")
    complete: bool = Field(description="false while an embedding job is running or was interrupted")
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
