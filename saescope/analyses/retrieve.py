"""Property retrieval: rank documents by weighted latents, by dense cosine (the baseline), or by both fused.

Two ways to choose latents for a query: :func:`select_latents_research` (the recipe of arXiv 2512.10092:
the ~100 latents whose labels best match the query, weighted by rank) and :func:`select_property_latents`
(label and activating-context similarity together, refined by positive examples). Documents are scored by
:func:`rank_by_latents`; :func:`fuse_rankings` merges an SAE and a dense ranking by reciprocal rank.

For repeated queries over a large corpus pass ``X`` as CSC: scoring then reads only the chosen
latents' columns. A CSR matrix works too, at the cost of one pass over its stored column indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from saescope.analyses.common import (
    DocIds,
    FloatArray,
    IntArray,
    Labels,
    as_csr,
    as_csr_or_csc,
    check_doc_ids,
    check_labels,
    check_page,
    column_counts,
    column_entries,
    doc_id,
    firing_correlations,
    label_of,
    page_footer,
    render_table,
    top_order,
)
from saescope.errors import InputError

Scoring = Literal["normalized", "p90", "activation", "binary"]
RRF_K = 60
"""The reciprocal-rank-fusion constant: a document at rank r (0-based) adds ``1 / (RRF_K + r + 1)``."""
RESEARCH_LATENTS = 100
"""Latents of the research recipe (arXiv 2512.10092), weighted by rank at temperature 0.2."""
RESEARCH_TEMPERATURE = 0.2
SAE_LATENTS = 100
"""Latents of the ``sae`` method (label and context matching). It, ``SAE_TEMPERATURE`` and ``CONTEXT_WEIGHT``
were chosen on the real-response detectors (evals.real_responses); the planted properties were held out."""
SAE_TEMPERATURE = 1.0
CONTEXT_WEIGHT = 0.3
"""Share of the activating-context similarity in a latent's match with the query (the rest: its label)."""
GUIDED_LATENTS = 100
"""Latents of the ``sae-guided`` method (those whose firing correlates best with a per-document guide of the
query); chosen among 10, 30 and 100 on the real-response detectors, the planted properties held out."""


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
    context_similarity: float | None = Field(
        default=None, description="cosine between the latent's activating contexts (embedded) and the query"
    )
    lift: float | None = Field(description="firing frequency in the positive examples / in the corpus (smoothed)")
    guide_correlation: float | None = Field(
        default=None,
        description="for sae-guided: correlation of the latent's firing with the per-document guide of the query "
        "(dense similarity plus the best-matching latent by description)",
    )


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
                ["latent", "label", "weight", "similarity", "context sim.", "lift", "guide corr."],
                [
                    [p.latent, p.label, p.weight, p.similarity, p.context_similarity, p.lift, p.guide_correlation]
                    for p in self.latents
                ],
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
    corpus, so latents with large raw activations do not drown the others; ``p90`` divides it by the
    90th percentile of the latent's non-zero activations (the research recipe: one outlier document
    does not flatten the rest); ``activation`` uses raw activations; ``binary`` counts firing (weight
    when it fires). Only documents with a positive score are ranked (``total``); ties go to the lower row.

    Raises:
        InputError: no latents, a latent out of range, a non-finite weight, or bad paging.
    """
    check_page(top_k, cursor)
    parts = _latent_contributions(X, latent_weights, scoring)
    ids = check_doc_ids(doc_ids, parts.n)
    cand = np.flatnonzero(parts.scores > 0)
    order = cand[top_order([parts.scores[cand], -cand.astype(np.float64)], cursor + top_k)]
    return RankedDocs(
        method=f"weighted latents ({scoring}): "
        + ", ".join(f"{int(k)}x{v:.2g}" for k, v in zip(parts.latents, parts.weights, strict=True)),
        n_docs=parts.n,
        total=len(cand),
        cursor=cursor,
        next_cursor=cursor + top_k if cursor + top_k < len(cand) else None,
        docs=_ranked_page(order[cursor : cursor + top_k], parts.scores, cursor, ids, parts, n_contributions),
    )


def rank_hybrid(
    X: Any,
    latent_weights: Mapping[int, float],
    E: npt.NDArray[np.floating[Any]],
    q: npt.NDArray[np.floating[Any]],
    *,
    top_k: int = 20,
    cursor: int = 0,
    doc_ids: DocIds = None,
    scoring: Scoring = "p90",
    guided_weights: Mapping[int, float] | None = None,
    guided_scoring: Scoring = "normalized",
    k: int = RRF_K,
    n_contributions: int = 5,
) -> RankedDocs:
    """Reciprocal-rank fusion of the SAE ranking (:func:`rank_by_latents`), optionally a second SAE ranking
    by ``guided_weights`` (e.g. :func:`select_latents_guided`'s), and the dense ranking (:func:`rank_dense`)
    of the same documents: score = the sum of ``1/(k + r + 1)`` over the rankings, a document a ranking does
    not score adding nothing from it. Every document is ranked (``total``); ties go to the lower row.
    Contributions are the first SAE ranking's latents' (weight x normalised activation).

    Raises:
        InputError: no latents, a latent out of range, a non-finite weight, ``E`` rows or width not
            matching, ``k`` < 1, or bad paging.
    """
    check_page(top_k, cursor)
    parts = _latent_contributions(X, latent_weights, scoring)
    dense = dense_scores(E, q)
    if dense.shape[0] != parts.n:
        raise InputError(f"E has {dense.shape[0]} rows but X has {parts.n}")
    ids = check_doc_ids(doc_ids, parts.n)
    rows = np.arange(parts.n, dtype=np.float64)

    def order_of(scores: FloatArray) -> IntArray:
        cand = np.flatnonzero(scores > 0)
        return cand[top_order([scores[cand], -cand.astype(np.float64)], len(cand))]

    orders = [order_of(parts.scores)]
    if guided_weights:
        orders.append(order_of(_latent_contributions(X, guided_weights, guided_scoring).scores))
    orders.append(top_order([dense, -rows], parts.n))
    fused = fuse_rankings(orders, parts.n, k=k)
    order = top_order([fused, -rows], cursor + top_k)
    guided = f", guided latents ({guided_scoring}, {len(guided_weights)} latents)" if guided_weights else ""
    return RankedDocs(
        method=f"reciprocal-rank fusion (k={k}) of SAE latents ({scoring}, {len(parts.latents)} latents){guided} "
        "and dense cosine",
        n_docs=parts.n,
        total=parts.n,
        cursor=cursor,
        next_cursor=cursor + top_k if cursor + top_k < parts.n else None,
        docs=_ranked_page(order[cursor : cursor + top_k], fused, cursor, ids, parts, n_contributions),
    )


def fuse_rankings(orders: Sequence[npt.ArrayLike], n: int, *, k: int = RRF_K) -> FloatArray:
    """Reciprocal-rank fusion: for each of ``n`` rows, the sum over ``orders`` (row indices, best first,
    each possibly partial) of ``1 / (k + rank + 1)``, rank 0-based; rows absent from an order get nothing
    from it.

    Raises:
        InputError: ``k`` < 1, a row out of range, or a row twice in one order.
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    out = np.zeros(n, dtype=np.float64)
    for order in orders:
        o = np.asarray(order, dtype=np.int64).ravel()
        if o.size and (o.min() < 0 or o.max() >= n):
            raise InputError(f"rankings must hold rows in 0..{n - 1}")
        if np.unique(o).size != o.size:
            raise InputError("a ranking holds a row twice")
        out[o] += 1.0 / (k + np.arange(o.size, dtype=np.float64) + 1.0)
    return out


def group_percentile(groups: IntArray, values: FloatArray, n_groups: int, q: float) -> FloatArray:
    """Per group ``0..n_groups-1``, the ``q``-th percentile of its ``values`` (linear interpolation, as
    ``numpy.percentile``); 1.0 for an empty group or a non-positive percentile, so dividing by it is safe."""
    out = np.ones(n_groups, dtype=np.float64)
    if values.size == 0:
        return out
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = np.flatnonzero(counts > 0)
    at = (counts[has] - 1) * (q / 100.0)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has] - 1)
    vlo, vhi = v[starts[has] + lo], v[starts[has] + hi]
    pct = vlo + (vhi - vlo) * (at - lo)
    out[has] = np.where(pct > 0, pct, 1.0)
    return out


def nonzero_percentile(X: Any, q: float = 90.0) -> FloatArray:
    """Per latent (column), the ``q``-th percentile of its non-zero activations; 1.0 where it never fires."""
    M = as_csr_or_csc(X)
    _, cols, vals = column_entries(M, np.arange(M.shape[1]))
    return group_percentile(cols, vals, M.shape[1], q)


def rank_weights(n: int, temperature: float = 0.2) -> FloatArray:
    """Weights of ``n`` ranked latents, ``exp(-r / (n * temperature))`` for r = 0..n-1, summing to 1.

    Raises:
        InputError: ``n`` < 1 or ``temperature`` <= 0.
    """
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    w = np.exp(-np.arange(n, dtype=np.float64) / (n * temperature))
    return np.asarray(w / w.sum(), dtype=np.float64)


class _Contributions:
    """Firing entries of the chosen latents and each document's total."""

    def __init__(
        self, n: int, latents: IntArray, weights: FloatArray, rows: IntArray, cols: IntArray, contrib: FloatArray
    ) -> None:
        self.n, self.latents, self.weights = n, latents, weights
        self.rows, self.cols, self.contrib = rows, cols, contrib
        self.scores = np.bincount(rows, weights=contrib, minlength=n).astype(np.float64)


def _latent_contributions(X: Any, latent_weights: Mapping[int, float], scoring: Scoring) -> _Contributions:
    M = as_csr_or_csc(X)
    n, d = M.shape
    if not latent_weights:
        raise InputError("give at least one latent with a weight")
    if scoring not in ("normalized", "p90", "activation", "binary"):
        raise InputError(f"unknown scoring {scoring!r}; choose normalized, p90, activation or binary")
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
    elif scoring == "p90" and len(vals):
        vals = vals / group_percentile(pos, vals, len(lats), 90.0)[pos]
    return _Contributions(n, lats, w, rows, cols, w[pos] * vals)


def _ranked_page(
    page: IntArray, scores: FloatArray, cursor: int, ids: DocIds, parts: _Contributions, n_contributions: int
) -> list[RankedDoc]:
    in_page = np.isin(parts.rows, page)
    pr, pc, pv = parts.rows[in_page], parts.cols[in_page], parts.contrib[in_page]
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
    return docs


def cosines(E: npt.ArrayLike, q: npt.ArrayLike, name: str = "E") -> FloatArray:
    """Cosine between each row of ``E`` and ``q`` (0 for an all-zero row or query).

    Raises:
        InputError: ``E`` is not 2-D or its width is not ``q``'s length.
    """
    M = np.asarray(E)
    qv = np.asarray(q, dtype=M.dtype if M.dtype in (np.float32, np.float64) else np.float64).ravel()
    if M.ndim != 2 or M.shape[1] != qv.shape[0]:
        raise InputError(f"{name} {M.shape} and the query {qv.shape} do not match")
    norms = np.linalg.norm(M, axis=1)
    qn = float(np.linalg.norm(qv))
    return np.asarray((M @ qv).astype(np.float64) / np.where(norms > 0, norms, 1.0) / (qn if qn > 0 else 1.0))


def dense_scores(E: npt.NDArray[np.floating[Any]], q: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """Cosine between each document's dense embedding (rows of ``E``) and the query ``q``.

    Raises:
        InputError: shapes do not match.
    """
    return cosines(E, q)


def select_latents_research(
    label_embeddings: npt.NDArray[np.floating[Any]],
    query_embedding: npt.NDArray[np.floating[Any]],
    *,
    n_latents: int = 100,
    temperature: float = 0.2,
    labels: Labels = None,
) -> PropertyLatents:
    """The research recipe (arXiv 2512.10092): the ``n_latents`` latents whose label embeddings are most
    cosine-similar to the query, weighted by rank with :func:`rank_weights`. Score documents with
    :func:`rank_by_latents` and ``scoring="p90"``. Unlabelled latents (zero rows) are never chosen.

    Raises:
        InputError: shapes do not match, ``n_latents`` < 1, ``temperature`` <= 0, or no latent is labelled.
    """
    sims = cosines(label_embeddings, query_embedding, "label_embeddings")
    check_labels(labels, sims.shape[0])
    if n_latents < 1:
        raise InputError(f"n_latents must be >= 1, got {n_latents}")
    labelled = np.flatnonzero(np.linalg.norm(np.asarray(label_embeddings), axis=1) > 0)
    if labelled.size == 0:
        raise InputError("no latent has a label to match the query against")
    top = labelled[top_order([sims[labelled], -labelled.astype(np.float64)], n_latents)]
    w = rank_weights(len(top), temperature)
    return PropertyLatents(
        n_positives=0,
        latents=[
            PropertyLatent(
                latent=int(j), label=label_of(labels, int(j)), weight=float(w[r]), similarity=float(sims[j]), lift=None
            )
            for r, j in enumerate(top)
        ],
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
    context_embeddings: npt.NDArray[np.floating[Any]] | None = None,
    context_weight: float = 0.5,
    temperature: float | None = None,
) -> PropertyLatents:
    """Choose latents (and weights) for a property described by a query embedding.

    Similarity: the cosine between each latent's label embedding and the query; with
    ``context_embeddings`` (one row per latent: its activating contexts, embedded), the mix
    ``(1 - context_weight) * label + context_weight * context``, so a latent whose examples read like the
    query counts even when its label does not. Only latents above ``min_similarity`` are kept. With
    ``positives`` (row indices of example documents that have the property) and ``X``, each score is
    multiplied by ``1 + log2(lift)``, ``lift`` being the latent's firing frequency among the positives over
    that in the corpus (add-one smoothed, clipped to 1..16), so latents that actually fire in the examples
    win over look-alike labels that do not. The ``top_n`` best are kept; their weight is that score, or,
    with ``temperature``, the rank weight of :func:`rank_weights`.

    Raises:
        InputError: shapes do not match, ``positives`` without ``X`` or out of range, ``top_n`` < 1, or
            ``context_weight`` outside 0..1.
    """
    sims = cosines(label_embeddings, query_embedding, "label_embeddings")
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    if not 0.0 <= context_weight <= 1.0:
        raise InputError(f"context_weight must be in 0..1, got {context_weight}")
    d = sims.shape[0]
    check_labels(labels, d)
    label_sims = sims
    if context_embeddings is not None:
        ctx = cosines(context_embeddings, query_embedding, "context_embeddings")
        if ctx.shape[0] != d:
            raise InputError(f"context_embeddings has {ctx.shape[0]} rows but label_embeddings has {d}")
        sims = (1.0 - context_weight) * sims + context_weight * ctx
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
        # smoothing lifts a rare latent that fires in no example: boost only those that fire in some
        fires_in_examples = column_counts(M[pos]) >= min(2, n_pos)
        weight = weight * np.where(fires_in_examples, 1 + np.log2(np.clip(lift, 1.0, 16.0)), 1.0)
    cand = np.flatnonzero(weight > 0)
    top = cand[top_order([weight[cand], -cand.astype(np.float64)], top_n)]
    final = weight[top] if temperature is None or top.size == 0 else rank_weights(len(top), temperature)
    return PropertyLatents(
        n_positives=n_pos,
        latents=[
            PropertyLatent(
                latent=int(j),
                label=label_of(labels, int(j)),
                weight=float(w),
                similarity=float(label_sims[j]),
                context_similarity=None if context_embeddings is None else float(ctx[j]),
                lift=None if lift is None else float(lift[j]),
            )
            for j, w in zip(top, final, strict=True)
        ],
    )


def select_latents_by_examples(
    X: Any,
    positives: npt.ArrayLike,
    *,
    top_n: int = SAE_LATENTS,
    temperature: float = SAE_TEMPERATURE,
    labels: Labels = None,
    min_count: int = 2,
) -> PropertyLatents:
    """Latents enriched in example documents, for a property given by examples only: those firing in at
    least ``min(min_count, len(positives))`` of the positive rows, ordered by ``lift`` (firing frequency
    among the positives over that in ``X``, add-one smoothed), the ``top_n`` with lift > 1 kept and
    weighted by rank (:func:`rank_weights`).

    Raises:
        InputError: ``positives`` empty or out of range, or ``top_n`` < 1.
    """
    M = as_csr(X)
    n, d = M.shape
    check_labels(labels, d)
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    pos = np.unique(np.asarray(positives, dtype=np.int64))
    if pos.size == 0 or pos.min() < 0 or pos.max() >= n:
        raise InputError(f"positives must be row indices in 0..{n - 1}")
    c_pos = column_counts(M[pos])
    lift = ((c_pos + 1) / (len(pos) + 2)) / ((column_counts(M) + 1) / (n + 2))
    cand = np.flatnonzero((c_pos >= min(min_count, len(pos))) & (lift > 1.0))
    top = cand[top_order([lift[cand], c_pos[cand].astype(np.float64), -cand.astype(np.float64)], top_n)]
    w = rank_weights(len(top), temperature) if top.size else np.zeros(0)
    return PropertyLatents(
        n_positives=len(pos),
        latents=[
            PropertyLatent(
                latent=int(j), label=label_of(labels, int(j)), weight=float(w[r]), similarity=0.0, lift=float(lift[j])
            )
            for r, j in enumerate(top)
        ],
    )


def select_latents_guided(
    X: Any,
    guide: npt.ArrayLike,
    *,
    top_n: int = GUIDED_LATENTS,
    labels: Labels = None,
    min_count: int = 2,
) -> PropertyLatents:
    """Latents for a property chosen by a weak per-document guide (usually each document's dense cosine with
    the query): the ``top_n`` latents whose firing correlates best (Pearson, :func:`firing_correlations`) with
    the guide, among those firing in at least ``min_count`` documents, each weighted by its correlation. The
    guide knows what the words mean; the chosen latents are crisp where it is diffuse. Score documents with
    :func:`rank_by_latents` and ``scoring="normalized"``.

    Raises:
        InputError: ``guide`` not one value per row of ``X`` or not finite, ``top_n`` < 1, or no latent
            correlates positively with the guide.
    """
    M = as_csr(X)
    g = np.asarray(guide, dtype=np.float64).ravel()
    check_labels(labels, M.shape[1])
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    if g.shape[0] != M.shape[0] or not np.all(np.isfinite(g)):
        raise InputError(f"the guide must hold one finite number per document ({M.shape[0]})")
    corr = firing_correlations(M, g[:, None])[:, 0]
    corr[column_counts(M) < min(min_count, M.shape[0])] = 0.0
    cand = np.flatnonzero(corr > 0)
    if cand.size == 0:
        raise InputError(
            "no latent's firing follows the documents' similarity to the query; try other words, a broader set of "
            "documents, or method sae or dense"
        )
    top = cand[top_order([corr[cand], -cand.astype(np.float64)], top_n)]
    return PropertyLatents(
        n_positives=0,
        latents=[
            PropertyLatent(
                latent=int(j),
                label=label_of(labels, int(j)),
                weight=float(corr[j]),
                similarity=0.0,
                lift=None,
                guide_correlation=float(corr[j]),
            )
            for j in top
        ],
    )


def combine_property_latents(by_query: PropertyLatents, by_examples: PropertyLatents) -> PropertyLatents:
    """Latents chosen by the query and by example documents together: each side's weights are scaled to sum
    to 1 and a latent on both sides gets the sum, so the examples' latents count as much as the query's."""
    parts: dict[int, PropertyLatent] = {}
    for side in (by_query, by_examples):
        total = sum(p.weight for p in side.latents) or 1.0
        for p in side.latents:
            cur = parts.get(p.latent)
            w = p.weight / total + (cur.weight if cur else 0.0)
            base = cur or p
            parts[p.latent] = base.model_copy(update={"weight": w, "lift": p.lift if p.lift is not None else base.lift})
    ordered = sorted(parts.values(), key=lambda p: (-p.weight, p.latent))
    return PropertyLatents(n_positives=max(by_query.n_positives, by_examples.n_positives), latents=ordered)


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
    scores = dense_scores(E, q)
    n = scores.shape[0]
    ids = check_doc_ids(doc_ids, n)
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
