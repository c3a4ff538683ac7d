"""Property retrieval: rank documents by a weighted handful of latents, or by dense cosine as a baseline.

For repeated queries over a large corpus pass ``X`` as CSC: scoring then reads only the chosen
latents' columns. A CSR matrix works too, at the cost of one pass over its stored column indices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from saescope.analyses.common import (
    DocIds,
    FloatArray,
    Labels,
    as_csr,
    as_csr_or_csc,
    check_doc_ids,
    check_labels,
    check_page,
    column_counts,
    column_entries,
    doc_id,
    label_of,
    page_footer,
    render_table,
    top_order,
)
from saescope.errors import InputError

Scoring = Literal["normalized", "activation", "binary"]


class Contribution(BaseModel):
    """How much one latent added to a document's score."""

    latent: int = Field(description="latent index in the SAE")
    value: float = Field(description="weight x (normalised) activation")


class RankedDoc(BaseModel):
    """One retrieved document."""

    rank: int = Field(description="0-based rank")
    row: int = Field(description="row of the document in the matrix")
    doc_id: str = Field(description="document id")
    score: float = Field(description="retrieval score (higher is better)")
    contributions: list[Contribution] = Field(description="latents that fired in it, largest contribution first")


class RankedDocs(BaseModel):
    """Documents ranked for a property, one page of them."""

    method: str = Field(description="how the score was computed")
    n_docs: int = Field(description="documents searched")
    total: int = Field(description="documents with a positive score (all documents for dense)")
    cursor: int = Field(description="rank of the first document of this page")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    docs: list[RankedDoc]

    def to_text(self) -> str:
        table = render_table(
            ["rank", "doc_id", "score", "contributions (latent:value)"],
            [
                [d.rank, d.doc_id, d.score, " ".join(f"{c.latent}:{c.value:.2f}" for c in d.contributions[:6])]
                for d in self.docs
            ],
            max_cell=70,
        )
        return "\n".join(
            [
                f"{self.method} over {self.n_docs} docs",
                table,
                page_footer(self.total, self.cursor, len(self.docs), self.next_cursor),
            ]
        )


class PropertyLatent(BaseModel):
    """A latent chosen to represent a property, with why."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    weight: float = Field(description="weight used for ranking documents")
    similarity: float = Field(description="cosine between the latent's label embedding and the query embedding")
    lift: float | None = Field(description="firing frequency in the positive examples / in the corpus (smoothed)")


class PropertyLatents(BaseModel):
    """Latents and weights for retrieving a property."""

    n_positives: int = Field(description="positive example documents used to refine the weights")
    latents: list[PropertyLatent]

    def weights(self) -> dict[int, float]:
        """``{latent: weight}``, ready for :func:`rank_by_latents`."""
        return {p.latent: p.weight for p in self.latents}

    def to_text(self) -> str:
        head = f"{len(self.latents)} latents for the property" + (
            f" (refined with {self.n_positives} positive examples)" if self.n_positives else ""
        )
        return (
            head
            + "\n"
            + render_table(
                ["latent", "label", "weight", "similarity", "lift"],
                [[p.latent, p.label, p.weight, p.similarity, p.lift] for p in self.latents],
            )
        )


def rank_by_latents(
    X: Any,
    latent_weights: Mapping[int, float],
    *,
    top_k: int = 20,
    cursor: int = 0,
    doc_ids: DocIds = None,
    scoring: Scoring = "normalized",
    n_contributions: int = 5,
) -> RankedDocs:
    """Rank documents by ``sum_j weight_j * value_j(doc)`` over the given latents.

    ``scoring``: ``normalized`` (default) divides each latent's activation by its maximum over the
    corpus, so latents with large raw activations do not drown the others; ``activation`` uses raw
    activations; ``binary`` counts firing (weight when it fires). Only documents with a positive
    score are ranked (``total``); ties go to the lower row.

    Raises:
        InputError: no latents, a latent out of range, a non-finite weight, or bad paging.
    """
    M = as_csr_or_csc(X)
    n, d = M.shape
    check_page(top_k, cursor)
    ids = check_doc_ids(doc_ids, n)
    if not latent_weights:
        raise InputError("give at least one latent with a weight")
    if scoring not in ("normalized", "activation", "binary"):
        raise InputError(f"unknown scoring {scoring!r}; choose normalized, activation or binary")
    lats = np.array(sorted(int(k) for k in latent_weights), dtype=np.int64)
    if lats.min() < 0 or lats.max() >= d:
        raise InputError(f"latents must be in 0..{d - 1}")
    w = np.array([float(latent_weights[int(k)]) for k in lats])
    if not np.all(np.isfinite(w)):
        raise InputError("latent weights must be finite numbers")

    rows, cols, vals = column_entries(M, lats)
    pos = np.searchsorted(lats, cols)
    if scoring == "binary":
        vals = np.ones_like(vals)
    elif scoring == "normalized" and len(vals):
        vmax = np.zeros(len(lats))
        np.maximum.at(vmax, pos, vals)
        vals = vals / vmax[pos]
    contrib = w[pos] * vals
    scores = np.bincount(rows, weights=contrib, minlength=n)
    cand = np.flatnonzero(scores > 0)
    order = cand[top_order([scores[cand], -cand.astype(np.float64)], cursor + top_k)]
    page = order[cursor : cursor + top_k]
    nxt = cursor + top_k if cursor + top_k < len(cand) else None

    in_page = np.isin(rows, page)
    pr, pc, pv = rows[in_page], cols[in_page], contrib[in_page]
    docs = []
    for rank, r in enumerate(page, start=cursor):
        m = pr == r
        o = np.lexsort((pc[m], -pv[m]))[:n_contributions]
        docs.append(
            RankedDoc(
                rank=rank,
                row=int(r),
                doc_id=doc_id(ids, int(r)),
                score=float(scores[r]),
                contributions=[Contribution(latent=int(pc[m][i]), value=float(pv[m][i])) for i in o],
            )
        )
    return RankedDocs(
        method=f"weighted latents ({scoring}): " + ", ".join(f"{int(k)}x{v:.2g}" for k, v in zip(lats, w, strict=True)),
        n_docs=n,
        total=len(cand),
        cursor=cursor,
        next_cursor=nxt,
        docs=docs,
    )


def select_property_latents(
    label_embeddings: npt.NDArray[np.floating[Any]],
    query_embedding: npt.NDArray[np.floating[Any]],
    *,
    top_n: int = 10,
    labels: Labels = None,
    positives: npt.ArrayLike | None = None,
    X: Any = None,
    min_similarity: float = 0.0,
) -> PropertyLatents:
    """Choose latents (and weights) for a property described by a query embedding.

    Base weight: the cosine between each latent's label embedding and the query (only latents above
    ``min_similarity``). With ``positives`` (row indices of example documents that have the
    property) and ``X``, each weight is multiplied by ``1 + log2(lift)``, ``lift`` being the latent's
    firing frequency among the positives over that in the corpus (add-one smoothed, clipped to 1..16),
    so latents that actually fire in the examples win over look-alike labels that do not.

    Raises:
        InputError: shapes do not match, ``positives`` without ``X`` or out of range, or ``top_n`` < 1.
    """
    E = np.asarray(label_embeddings, dtype=np.float64)
    q = np.asarray(query_embedding, dtype=np.float64).ravel()
    if E.ndim != 2 or E.shape[1] != q.shape[0]:
        raise InputError(f"label_embeddings {E.shape} and query_embedding {q.shape} do not match")
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    d = E.shape[0]
    check_labels(labels, d)
    en = np.linalg.norm(E, axis=1)
    qn = float(np.linalg.norm(q))
    sims = (E @ q) / np.where(en > 0, en, 1.0) / (qn if qn > 0 else 1.0)
    weight = np.where(sims > min_similarity, sims, 0.0)
    lift: FloatArray | None = None
    n_pos = 0
    if positives is not None:
        if X is None:
            raise InputError("positives need X, the matrix the example rows belong to")
        M = as_csr(X)
        if M.shape[1] != d:
            raise InputError(f"X has {M.shape[1]} latents but label_embeddings has {d} rows")
        pos = np.unique(np.asarray(positives, dtype=np.int64))
        if pos.size == 0 or pos.min() < 0 or pos.max() >= M.shape[0]:
            raise InputError(f"positives must be row indices in 0..{M.shape[0] - 1}")
        n_pos = len(pos)
        f_pos = (column_counts(M[pos]) + 1) / (n_pos + 2)
        f_all = (column_counts(M) + 1) / (M.shape[0] + 2)
        lift = f_pos / f_all
        weight = weight * (1 + np.log2(np.clip(lift, 1.0, 16.0)))
    cand = np.flatnonzero(weight > 0)
    top = cand[top_order([weight[cand], -cand.astype(np.float64)], top_n)]
    return PropertyLatents(
        n_positives=n_pos,
        latents=[
            PropertyLatent(
                latent=int(j),
                label=label_of(labels, int(j)),
                weight=float(weight[j]),
                similarity=float(sims[j]),
                lift=None if lift is None else float(lift[j]),
            )
            for j in top
        ],
    )


def rank_dense(
    E: npt.NDArray[np.floating[Any]],
    q: npt.NDArray[np.floating[Any]],
    *,
    top_k: int = 20,
    cursor: int = 0,
    doc_ids: DocIds = None,
) -> RankedDocs:
    """Rank documents by cosine between their dense embeddings ``E`` (n x dim) and a query ``q``: the baseline.

    Raises:
        InputError: shapes do not match, or bad paging.
    """
    check_page(top_k, cursor)
    E = np.asarray(E)
    qv = np.asarray(q, dtype=E.dtype if E.dtype in (np.float32, np.float64) else np.float64).ravel()
    if E.ndim != 2 or E.shape[1] != qv.shape[0]:
        raise InputError(f"E {E.shape} and q {qv.shape} do not match")
    n = E.shape[0]
    ids = check_doc_ids(doc_ids, n)
    norms = np.linalg.norm(E, axis=1)
    qn = float(np.linalg.norm(qv))
    scores = (E @ qv).astype(np.float64) / np.where(norms > 0, norms, 1.0) / (qn if qn > 0 else 1.0)
    order = top_order([scores, -np.arange(n, dtype=np.float64)], cursor + top_k)
    page = order[cursor : cursor + top_k]
    return RankedDocs(
        method="cosine over dense embeddings",
        n_docs=n,
        total=n,
        cursor=cursor,
        next_cursor=cursor + top_k if cursor + top_k < n else None,
        docs=[
            RankedDoc(rank=r, row=int(i), doc_id=doc_id(ids, int(i)), score=float(scores[i]), contributions=[])
            for r, i in enumerate(page, start=cursor)
        ],
    )
