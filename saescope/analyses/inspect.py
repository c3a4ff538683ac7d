"""Feature inspection: find latents by label, summarise one latent, explain one document."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from saescope.analyses.common import (
    DocIds,
    IntArray,
    Labels,
    as_csr,
    check_doc_ids,
    check_labels,
    check_latent,
    column_counts,
    column_entries,
    doc_id,
    label_of,
    label_texts,
    render_table,
    top_order,
)
from saescope.errors import InputError

_TOKEN = re.compile(r"[a-z0-9]+")


class LatentMatch(BaseModel):
    """A latent whose label matches a search."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    score: float = Field(description="lexical + similarity (the ranking key)")
    lexical: float = Field(description="1 if the whole query is in the label, else the share of query words found")
    similarity: float | None = Field(description="cosine of label and query embeddings, when given")
    guide_correlation: float | None = Field(
        default=None,
        description="guided search: correlation of the latent's firing with the per-document guide of the query "
        "(dense similarity plus the best-matching latent by description; the ranking key then)",
    )


class LatentMatches(BaseModel):
    """Latents found by a label search."""

    query: str = Field(description="the search text")
    n_labels: int = Field(description="labelled latents searched")
    matches: list[LatentMatch]
    method: Literal["labels", "guided"] = Field(
        default="labels",
        description="labels: the query matched to latent labels; guided: latents whose firing over the dataset "
        "follows how much each document looks like the query",
    )

    def to_text(self) -> str:
        if self.method == "guided":
            head = f"{len(self.matches)} latents whose firing follows the documents' similarity to {self.query!r}"
            return (
                head
                + "\n"
                + render_table(
                    ["latent", "label", "guide corr.", "lexical"],
                    [[m.latent, m.label, m.guide_correlation, m.lexical] for m in self.matches],
                    max_cell=80,
                )
            )
        head = f"{len(self.matches)} latents matching {self.query!r} (of {self.n_labels} labelled)"
        return (
            head
            + "\n"
            + render_table(
                ["latent", "label", "score", "lexical", "similarity"],
                [[m.latent, m.label, m.score, m.lexical, m.similarity] for m in self.matches],
                max_cell=80,
            )
        )


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def search_latents(
    labels: Labels,
    query: str,
    *,
    label_embeddings: npt.NDArray[np.floating[Any]] | None = None,
    query_embedding: npt.NDArray[np.floating[Any]] | None = None,
    top_k: int = 20,
) -> LatentMatches:
    """Latents whose labels match ``query``.

    ``lexical`` is 1 when the whole query (case-folded) occurs in the label, otherwise the share of
    the query's words that occur in the label's words (as prefixes, so "negat" finds "negation").
    With ``label_embeddings`` (d_sae x dim) and ``query_embedding``, the cosine is added, and latents
    without a label can be found by embedding alone. Ties go to the lower latent id.

    Raises:
        InputError: empty query (without an embedding), mismatched embedding shapes, or ``top_k`` < 1.
    """
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}")
    if not query.strip() and query_embedding is None:
        raise InputError("give a non-empty query")
    if (label_embeddings is None) != (query_embedding is None):
        raise InputError("give both label_embeddings and query_embedding, or neither")
    texts = label_texts(labels)
    q_low = query.strip().lower()
    q_tok = set(_tokens(query))
    lex: dict[int, float] = {}
    for lat, text in texts.items():
        low = text.lower()
        if q_low and q_low in low:
            lex[lat] = 1.0
        elif q_tok:
            words = _tokens(low)
            hit = sum(1 for t in q_tok if any(w.startswith(t) for w in words))
            if hit:
                lex[lat] = hit / len(q_tok)
    sims: npt.NDArray[np.float64] | None = None
    if label_embeddings is not None and query_embedding is not None:
        E = np.asarray(label_embeddings, dtype=np.float64)
        q = np.asarray(query_embedding, dtype=np.float64).ravel()
        if E.ndim != 2 or E.shape[1] != q.shape[0]:
            raise InputError(f"label_embeddings {E.shape} and query_embedding {q.shape} do not match")
        en = np.linalg.norm(E, axis=1)
        sims = (E @ q) / np.where(en > 0, en, 1.0) / max(float(np.linalg.norm(q)), 1e-12)
        cand = np.arange(E.shape[0])
    else:
        cand = np.array(sorted(lex), dtype=np.int64)
    lex_arr = np.array([lex.get(int(c), 0.0) for c in cand])
    score = lex_arr + (sims[cand] if sims is not None else 0.0)
    top = top_order([score, -cand.astype(np.float64)], top_k)
    return LatentMatches(
        query=query,
        n_labels=len(texts),
        matches=[
            LatentMatch(
                latent=int(cand[i]),
                label=texts.get(int(cand[i])) or label_of(labels, int(cand[i])),
                score=float(score[i]),
                lexical=float(lex_arr[i]),
                similarity=None if sims is None else float(sims[cand[i]]),
            )
            for i in top
        ],
    )


class DocActivation(BaseModel):
    """A document and the latent's activation in it."""

    doc_id: str = Field(description="document id")
    row: int = Field(description="row of the document in the matrix")
    activation: float = Field(description="pooled activation of the latent in the document")


class LatentSummary(BaseModel):
    """How and where one latent fires in a dataset."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    n_docs: int = Field(description="documents in the dataset")
    count: int = Field(description="documents where it fires")
    freq: float = Field(description="count / n_docs")
    mean_activation: float | None = Field(description="mean activation over the documents where it fires")
    max_activation: float | None = Field(description="largest activation")
    top_docs: list[DocActivation] = Field(description="documents with the strongest activation")
    random_nonfiring: list[str] = Field(description="random documents where it does not fire, for contrast")

    def to_text(self) -> str:
        mean = "-" if self.mean_activation is None else f"{self.mean_activation:.3g}"
        head = (
            f"latent {self.latent}: {self.label}\nfires in {self.count}/{self.n_docs} docs ({self.freq:.2%}), "
            f"mean activation when firing {mean}"
        )
        table = render_table(["doc_id", "activation"], [[d.doc_id, d.activation] for d in self.top_docs])
        return f"{head}\ntop documents:\n{table}\nnot firing (random): {', '.join(self.random_nonfiring) or '-'}"


def latent_summary(
    X: Any,
    latent: int,
    labels: Labels,
    doc_ids: DocIds = None,
    *,
    n_top: int = 5,
    n_random_nonfiring: int = 3,
    seed: int = 0,
) -> LatentSummary:
    """Frequency and strength of one latent, its top documents, and random documents where it is silent.

    Raises:
        InputError: ``latent`` is out of range, or doc ids do not match the rows.
    """
    M = as_csr(X)
    n, d = M.shape
    check_latent(latent, d)
    check_labels(labels, d)
    ids = check_doc_ids(doc_ids, n)
    rows, _, vals = column_entries(M, [latent])
    order = np.lexsort((rows, -vals))[:n_top]
    count = len(rows)
    rng = np.random.default_rng(seed)
    silent = _sample_excluding(n, rows, n_random_nonfiring, rng)
    return LatentSummary(
        latent=latent,
        label=label_of(labels, latent),
        n_docs=n,
        count=count,
        freq=count / n if n else 0.0,
        mean_activation=float(vals.mean()) if count else None,
        max_activation=float(vals.max()) if count else None,
        top_docs=[
            DocActivation(doc_id=doc_id(ids, int(rows[i])), row=int(rows[i]), activation=float(vals[i])) for i in order
        ],
        random_nonfiring=[doc_id(ids, int(r)) for r in silent],
    )


def _sample_excluding(n: int, exclude: IntArray, k: int, rng: np.random.Generator) -> list[int]:
    """Up to ``k`` distinct random rows of ``range(n)`` not in ``exclude``, ascending."""
    free = n - len(np.unique(exclude))
    k = min(k, free)
    if k <= 0:
        return []
    if free < 4 * k or len(exclude) > n // 2:
        pool = np.setdiff1d(np.arange(n), exclude)
        return sorted(int(v) for v in rng.choice(pool, k, replace=False))
    excluded = set(exclude.tolist())
    picked: set[int] = set()
    while len(picked) < k:
        r = int(rng.integers(n))
        if r not in excluded:
            picked.add(r)
    return sorted(picked)


class ExplainedLatent(BaseModel):
    """One latent active in a document."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    activation: float = Field(description="pooled activation in this document")
    doc_freq: float = Field(description="fraction of the dataset's documents where it fires")
    score: float = Field(description="activation x log((n_docs + 1) / doc_count): the ranking key")


class DocumentExplanation(BaseModel):
    """The latents that characterise one document."""

    row: int = Field(description="row of the document in the matrix")
    doc_id: str = Field(description="document id")
    n_active: int = Field(description="latents firing in the document")
    latents: list[ExplainedLatent] = Field(description="top latents, rare-but-strong first")

    def to_text(self) -> str:
        head = f"document {self.doc_id} (row {self.row}): {self.n_active} active latents, top {len(self.latents)}"
        return (
            head
            + "\n"
            + render_table(
                ["latent", "label", "activation", "doc_freq", "score"],
                [[r.latent, r.label, r.activation, r.doc_freq, r.score] for r in self.latents],
                max_cell=70,
            )
        )


def explain_document(
    X: Any,
    row: int,
    labels: Labels,
    *,
    top_k: int = 15,
    doc_ids: DocIds = None,
    doc_counts: npt.NDArray[np.integer[Any]] | None = None,
) -> DocumentExplanation:
    """The latents of one document, ranked by ``activation x idf`` with ``idf = log((n_docs + 1) / doc_count)``.

    A latent that fires strongly here but rarely elsewhere says more about the document than one that
    fires everywhere (whose idf is near 0). ``doc_counts`` (documents per latent) can be passed to
    avoid one pass over the matrix when explaining many documents.

    Raises:
        InputError: ``row`` is out of range, or ``doc_counts`` has the wrong length.
    """
    M = as_csr(X)
    n, d = M.shape
    check_labels(labels, d)
    if not 0 <= row < n:
        raise InputError(f"row {row} is out of range (0..{n - 1})")
    ids = check_doc_ids(doc_ids, n)
    counts = column_counts(M) if doc_counts is None else np.asarray(doc_counts, dtype=np.int64)
    if counts.shape != (d,):
        raise InputError(f"doc_counts must have one count per latent ({d}), got shape {counts.shape}")
    lo, hi = M.indptr[row], M.indptr[row + 1]
    lats = M.indices[lo:hi].astype(np.int64)
    acts = M.data[lo:hi].astype(np.float64)
    idf = np.log((n + 1) / np.maximum(counts[lats], 1))
    score = acts * idf
    top = top_order([score, acts, -lats.astype(np.float64)], top_k)
    return DocumentExplanation(
        row=row,
        doc_id=doc_id(ids, row),
        n_active=len(lats),
        latents=[
            ExplainedLatent(
                latent=int(lats[i]),
                label=label_of(labels, int(lats[i])),
                activation=float(acts[i]),
                doc_freq=float(counts[lats[i]] / n),
                score=float(score[i]),
            )
            for i in top
        ],
    )
