"""Analyses over stored embeddings: resolve document sets, fetch matrices and labels, call ``analyses``.

This is the layer the CLI, the MCP server and the evals share. It does the I/O and model work
(loading matrices, embedding label texts, recomputing token evidence); the statistics stay in the
pure :mod:`saescope.analyses` functions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field

from saescope import analyses as an
from saescope.errors import InputError
from saescope.labels import LabelBook
from saescope.paths import cache_home
from saescope.store.dataset import Embedding
from saescope.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocSet:
    """Documents of one dataset, optionally filtered on its metadata (``model == 'gpt-4o'``)."""

    dataset: str
    where: str | None = None
    sae: str | None = None
    """SAE id or embedding key, when the dataset has several embeddings."""

    @property
    def name(self) -> str:
        return f"{self.dataset}[{self.where}]" if self.where else self.dataset


@dataclass
class Resolved:
    """A document set made concrete: its rows, matrix, ids and metadata."""

    docset: DocSet
    embedding: Embedding
    matrix: sp.csr_matrix
    rows: np.ndarray
    doc_ids: np.ndarray
    meta: pd.DataFrame

    @cached_property
    def X(self) -> sp.csr_matrix:
        return self.matrix[self.rows] if len(self.rows) != self.matrix.shape[0] else self.matrix


def resolve(ws: Workspace, docset: DocSet, *, min_docs: int = 1) -> Resolved:
    """Rows of ``docset`` in its dataset's embedding.

    Raises:
        NotFoundError: unknown dataset or no embedding.
        InputError: a bad filter, or fewer than ``min_docs`` documents match.
    """
    emb, matrix = ws.matrix(docset.dataset, docset.sae)
    meta = ws.dataset(docset.dataset).metadata()
    rows = an.select_rows(meta, docset.where) if docset.where else np.arange(len(meta))
    if len(rows) < min_docs:
        raise InputError(
            f"{docset.name} selects {len(rows)} document(s); at least {min_docs} needed. "
            f"Check the filter against the columns {list(meta.columns)}"
        )
    return Resolved(docset, emb, matrix, np.asarray(rows), meta["doc_id"].to_numpy()[rows], meta.iloc[rows])


def _same_space(*sets: Resolved) -> None:
    specs = {
        (s.embedding.manifest.spec.sae.get("id"), str(sorted(s.embedding.manifest.spec.config.items()))) for s in sets
    }
    if len(specs) > 1:
        raise InputError(
            "these document sets were embedded with different SAEs or pooling settings, so their latents "
            f"are not comparable: {sorted(specs)}. Embed them with the same settings."
        )


def labels_for(ws: Workspace, emb: Embedding) -> LabelBook:
    return ws.labels(ws.sae_of(emb))


def diff(ws: Workspace, a: DocSet, b: DocSet, **options: Any) -> an.SetDiff:
    """Which latents fire more often in ``a`` than ``b`` (and the reverse): see :func:`analyses.diff_sets`."""
    ra, rb = resolve(ws, a), resolve(ws, b)
    _same_space(ra, rb)
    overlap = np.intersect1d(ra.rows, rb.rows) if a.dataset == b.dataset else np.array([])
    if len(overlap):
        log.warning("%d documents are in both sets", len(overlap))
    return an.diff_sets(
        ra.X,
        rb.X,
        labels_for(ws, ra.embedding),
        doc_ids_a=ra.doc_ids,
        doc_ids_b=rb.doc_ids,
        name_a=a.name,
        name_b=b.name,
        **options,
    )


def diff_paired(ws: Workspace, a: DocSet, b: DocSet, key: str, **options: Any) -> an.PairedDiff:
    """Paired diff: documents of ``a`` and ``b`` matched by the metadata column ``key`` (e.g. prompt id).

    Raises:
        InputError: ``key`` is missing, repeated within a set, or matches no pairs.
    """
    ra, rb = resolve(ws, a), resolve(ws, b)
    _same_space(ra, rb)
    for r in (ra, rb):
        if key not in r.meta.columns and key != "doc_id":
            raise InputError(f"{r.docset.dataset} has no column {key!r}; columns: {list(r.meta.columns)}")
        dup = r.meta[key][r.meta[key].duplicated()]
        if len(dup):
            raise InputError(f"{r.docset.name}: key {key!r} repeats (e.g. {dup.iloc[0]!r}); pairs must be unique")
    ka = pd.Series(np.arange(len(ra.rows)), index=ra.meta[key].astype(str).to_numpy())
    kb = pd.Series(np.arange(len(rb.rows)), index=rb.meta[key].astype(str).to_numpy())
    common = ka.index.intersection(kb.index)
    if len(common) == 0:
        raise InputError(f"no {key!r} value is shared by {a.name} and {b.name}; nothing to pair")
    ia, ib = ka[common].to_numpy(), kb[common].to_numpy()
    result = an.diff_paired(
        ra.X[ia],
        rb.X[ib],
        labels_for(ws, ra.embedding),
        doc_ids=np.asarray(common),
        name_a=a.name,
        name_b=b.name,
        **options,
    )
    return result


def diff_by_column(
    ws: Workspace,
    dataset: str,
    column: str,
    target: str,
    *,
    where: str | None = None,
    sae: str | None = None,
    **options: Any,
) -> an.OneVsMany:
    """One value of ``column`` (e.g. one model) against every other value: the paper's target-vs-others.

    Raises:
        InputError: the column is missing, or ``target`` is not one of its values.
    """
    base = resolve(ws, DocSet(dataset, where, sae))
    if column not in base.meta.columns:
        raise InputError(f"{dataset} has no column {column!r}; columns: {list(base.meta.columns)}")
    values = base.meta[column].astype(str).to_numpy()
    groups = sorted(set(values))
    if target not in groups:
        raise InputError(f"{column!r} has no value {target!r}; values: {groups[:30]}")
    others = [g for g in groups if g != target]
    if not others:
        raise InputError(f"{column!r} has only the value {target!r}; nothing to compare against")
    X = base.X
    return an.diff_one_vs_many(
        X[values == target],
        [X[values == g] for g in others],
        labels_for(ws, base.embedding),
        others,
        target_name=target,
        doc_ids_target=base.doc_ids[values == target],
        **options,
    )


def correlations(
    ws: Workspace, docset: DocSet, *, dissimilar_labels: float | None = None, **options: Any
) -> an.Cooccurrence:
    """Latent pairs that co-occur unexpectedly often (NPMI); optionally only pairs with unlike labels."""
    r = resolve(ws, docset, min_docs=2)
    emb_labels = None
    if dissimilar_labels is not None:
        emb_labels = label_embeddings(ws, r.embedding)
    return an.latent_cooccurrence(
        r.X, labels_for(ws, r.embedding), label_embeddings=emb_labels, max_label_similarity=dissimilar_labels, **options
    )


def metadata_association(ws: Workspace, docset: DocSet, column: str, **options: Any) -> an.MetadataAssociation:
    """Latents that track a metadata column: per-category enrichment, or rank correlation over numbers/dates."""
    r = resolve(ws, docset, min_docs=3)
    return an.latent_metadata_association(
        r.X, r.meta.reset_index(drop=True), column, labels_for(ws, r.embedding), **options
    )


# --- label embeddings ---------------------------------------------------------------------


_ENCODER: Any = None


def sentence_encoder() -> Any:
    global _ENCODER
    if _ENCODER is None:
        from saescope.embed.sentence import SentenceEncoder

        _ENCODER = SentenceEncoder()
    return _ENCODER


def label_embeddings(ws: Workspace, emb: Embedding) -> np.ndarray:
    """Sentence embeddings of every latent's preferred label (zeros for unlabelled), cached on disk."""
    book = labels_for(ws, emb)
    d_sae = emb.manifest.d_sae
    texts = book.texts()
    digest = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()[:16]
    path = cache_home() / "label-embeddings" / f"{digest}-{d_sae}.npy"
    if path.is_file():
        return np.load(path)
    ids = sorted(texts)
    vecs = sentence_encoder().encode([texts[i] for i in ids]) if ids else np.zeros((0, 384), np.float32)
    out = np.zeros((d_sae, vecs.shape[1] if len(ids) else 384), dtype=np.float32)
    if ids:
        out[ids] = vecs
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def axis_scores(ws: Workspace, emb: Embedding, text: str) -> np.ndarray:
    """Cosine similarity between each latent's label and ``text``."""
    q = sentence_encoder().encode([text])[0]
    return label_embeddings(ws, emb) @ q


# --- clustering, retrieval, inspection ----------------------------------------------------


def cluster(
    ws: Workspace,
    docset: DocSet,
    *,
    axis: str | None = None,
    latents: Sequence[int] | None = None,
    dense: bool = False,
    **options: Any,
) -> an.Clustering:
    """Cluster documents along an axis (words and/or latent ids), or on dense sentence embeddings.

    Raises:
        InputError: neither an axis nor latents for SAE clustering, or too few documents.
    """
    r = resolve(ws, docset, min_docs=4)
    if dense:
        texts = ws.dataset(docset.dataset).documents(["text"])["text"].to_numpy()[r.rows].tolist()
        return an.cluster_dense(sentence_encoder().encode(texts), doc_ids=r.doc_ids, **options)
    scores = axis_scores(ws, r.embedding, axis) if axis else None
    return an.cluster_documents(
        r.X,
        labels_for(ws, r.embedding),
        doc_ids=r.doc_ids,
        axis_latents=list(latents) if latents else None,
        axis_scores=scores,
        **options,
    )


class Retrieval(BaseModel):
    """Documents ranked for a property, by SAE latents and (optionally) by dense similarity."""

    query: str
    latents: an.PropertyLatents = Field(description="latents chosen for the property, with weights")
    sae_ranking: an.RankedDocs
    dense_ranking: an.RankedDocs | None = None

    def to_text(self) -> str:
        parts = [f"Property: {self.query!r}", self.latents.to_text(), "SAE ranking:", self.sae_ranking.to_text()]
        if self.dense_ranking is not None:
            parts += ["Dense baseline (MiniLM cosine):", self.dense_ranking.to_text()]
        return "\n".join(parts)


def retrieve(
    ws: Workspace,
    docset: DocSet,
    query: str,
    *,
    positives: Sequence[str] = (),
    latents: Sequence[int] = (),
    n_latents: int = 8,
    dense: bool = False,
    top_k: int = 10,
    cursor: int = 0,
) -> Retrieval:
    """Rank documents by a property in words: label-similar latents (refined by positive examples).

    Raises:
        InputError: empty query, or positive doc ids not in the set.
    """
    if not query.strip() and not latents:
        raise InputError("give a property in words (or latent ids)")
    r = resolve(ws, docset)
    pos_rows = None
    if positives:
        where = pd.Index(r.doc_ids).get_indexer(list(positives))
        missing = [p for p, w in zip(positives, where, strict=True) if w < 0]
        if missing:
            raise InputError(f"positive examples {missing[:5]} are not in {docset.name}")
        pos_rows = where
    q = sentence_encoder().encode([query])[0] if query.strip() else None
    if q is not None:
        chosen = an.select_property_latents(
            label_embeddings(ws, r.embedding),
            q,
            top_n=n_latents,
            labels=labels_for(ws, r.embedding),
            positives=pos_rows,
            X=r.X,
        )
    else:
        book = labels_for(ws, r.embedding)
        chosen = an.PropertyLatents(
            n_positives=0,
            latents=[
                an.PropertyLatent(latent=int(i), label=book.text(int(i)), similarity=1.0, weight=1.0, lift=None)
                for i in latents
            ],
        )
    weights = chosen.weights()
    for i in latents:
        weights[int(i)] = max(weights.get(int(i), 0.0), 1.0)
    ranked = an.rank_by_latents(r.X.tocsc(), weights, top_k=top_k, cursor=cursor, doc_ids=r.doc_ids)
    dense_ranked = None
    if dense and q is not None:
        texts = ws.dataset(docset.dataset).documents(["text"])["text"].to_numpy()[r.rows].tolist()
        E = sentence_encoder().encode(texts)
        dense_ranked = an.rank_dense(E, q, top_k=top_k, cursor=cursor, doc_ids=r.doc_ids)
    return Retrieval(query=query, latents=chosen, sae_ranking=ranked, dense_ranking=dense_ranked)


def search_features(
    ws: Workspace, dataset: str, query: str, *, top_k: int = 20, semantic: bool = True, sae: str | None = None
) -> an.LatentMatches:
    """Latents whose labels match ``query`` (words, and label-embedding similarity)."""
    emb = ws.embedding(dataset, sae)
    book = labels_for(ws, emb)
    if semantic:
        return an.search_latents(
            book,
            query,
            label_embeddings=label_embeddings(ws, emb),
            query_embedding=sentence_encoder().encode([query])[0],
            top_k=top_k,
        )
    return an.search_latents(book, query, top_k=top_k)


class FeatureEvidence(BaseModel):
    """The tokens of one document that fire a latent, recomputed by the reader."""

    doc_id: str
    activation: float
    tokens: list[tuple[int, str, float]] = Field(description="(position, token, activation), strongest first")
    text: str = Field(description="the document with firing tokens marked «like this», trimmed around them")


class FeatureDetails(BaseModel):
    """One latent in one dataset: labels, how often it fires, where, and on which tokens."""

    summary: an.LatentSummary
    labels: list[dict[str, Any]]
    top_tokens: list[tuple[str, int]] = Field(default_factory=list, description="tokens it fired on in training")
    evidence: list[FeatureEvidence] = Field(default_factory=list)

    def to_text(self) -> str:
        lines = [self.summary.to_text()]
        if self.top_tokens:
            lines.append("fires in training on: " + ", ".join(f"{t!r}x{n}" for t, n in self.top_tokens[:6]))
        for ev in self.evidence:
            toks = ", ".join(f"{t!r}={a:.1f}" for _, t, a in ev.tokens[:5])
            lines.append(f"- {ev.doc_id} (max {ev.activation:.2f}): {toks}\n    {ev.text}")
        return "\n".join(lines)


def highlight(text: str, tokens: Sequence[tuple[int, str, float]], tokenizer: Any, width: int = 240) -> str:
    """``text`` with firing tokens wrapped in «», cut to about ``width`` characters around the first."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    firing = {p for p, _, _ in tokens}
    pieces = [f"«{tokenizer.decode([t])}»" if i in firing else tokenizer.decode([t]) for i, t in enumerate(ids)]
    out = "".join(pieces)
    first = out.find("«")
    if len(out) <= width or first < 0:
        return out[:width]
    lo = max(0, first - width // 3)
    return ("..." if lo else "") + out[lo : lo + width] + ("..." if lo + width < len(out) else "")


def feature_details(
    ws: Workspace, dataset: str, latent: int, *, n_top: int = 5, evidence: bool = True, sae: str | None = None
) -> FeatureDetails:
    """Show one latent: labels, dataset frequency, top documents with firing tokens, non-firing examples."""
    emb, matrix = ws.matrix(dataset, sae)
    ds = ws.dataset(dataset)
    doc_ids = ds.documents(["doc_id"])["doc_id"].to_numpy()
    book = labels_for(ws, emb)
    summary = an.latent_summary(matrix, latent, book, doc_ids, n_top=n_top)
    rec = book.get(latent)
    details = FeatureDetails(
        summary=summary, labels=[lab.model_dump() for lab in rec.labels], top_tokens=rec.top_tokens
    )
    if evidence and summary.top_docs:
        texts = ds.documents(["text"])
        embedder = ws.embedder_of(emb)
        for top in summary.top_docs:
            text = str(texts["text"].iloc[top.row])
            ev = embedder.token_evidence(text, [latent])[latent]
            toks = sorted(((e.position, e.token, round(e.activation, 3)) for e in ev), key=lambda t: -t[2])
            details.evidence.append(
                FeatureEvidence(
                    doc_id=top.doc_id,
                    activation=top.activation,
                    tokens=toks,
                    text=highlight(text, toks, embedder.reader.tokenizer),
                )
            )
    return details


def explain(
    ws: Workspace, dataset: str, doc_id: str, *, top_k: int = 15, sae: str | None = None
) -> an.DocumentExplanation:
    """A document's most distinctive latents (strong activation, rare in the dataset)."""
    emb, matrix = ws.matrix(dataset, sae)
    ds = ws.dataset(dataset)
    row = int(ds.row_of([doc_id])[0])
    doc_ids = ds.documents(["doc_id"])["doc_id"].to_numpy()
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    return an.explain_document(matrix, row, labels_for(ws, emb), top_k=top_k, doc_ids=doc_ids, doc_counts=counts)
