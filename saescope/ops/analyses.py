"""The analysis operations: diff, correlations, clustering and property retrieval over stored embeddings.

Each operation resolves its document sets once (:mod:`saescope.ops.docsets`), runs the pure functions
of :mod:`saescope.analyses` and returns a result model with ``to_text()``. The functions with plain
arguments (:func:`run_diff`, :func:`rank_by_property`, :func:`cluster_resolved`) serve library callers
that need more than one page, such as the evals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, Field

from saescope import analyses as an
from saescope.errors import InputError, clip
from saescope.ops import streamed
from saescope.ops.docsets import (
    DocSet,
    Resolved,
    check_latents,
    key_text,
    labels_for,
    resolve,
    resolve_rows,
    resolve_sides,
)
from saescope.ops.encoder import axis_scores, context_embeddings, dataset_vectors, encode, label_embeddings
from saescope.ops.requests import (
    ClassGuide,
    ClusterRequest,
    CorrelationsRequest,
    DiffRequest,
    DiffSpec,
    RetrievalMethod,
    RetrieveRequest,
    TrendRequest,
)
from saescope.workspace import Workspace

AnyDiff = an.SetDiff | an.PairedDiff | an.OneVsMany
IntArray = npt.NDArray[np.int64]


class DiffResult(BaseModel):
    """A diff of two document sets; exactly one of sets / paired / one_vs_many is filled, per mode."""

    mode: Literal["sets", "paired", "one_vs_many"]
    sets: an.SetDiff | None = Field(default=None, description="mode sets: two independent document sets")
    paired: an.PairedDiff | None = Field(default=None, description="mode paired: documents matched by pair_key")
    one_vs_many: an.OneVsMany | None = Field(default=None, description="mode one_vs_many: a column value vs the rest")

    @property
    def diff(self) -> AnyDiff:
        inner = self.sets or self.paired or self.one_vs_many
        assert inner is not None, "a DiffResult holds one diff"
        return inner

    def to_text(self) -> str:
        return self.diff.to_text()


class CorrelationResult(BaseModel):
    """Latent co-occurrence (no column given) or latents that track a metadata column."""

    kind: Literal["cooccurrence", "metadata", "cross"]
    cooccurrence: an.Cooccurrence | None = None
    metadata: an.MetadataAssociation | None = None
    cross: an.CrossCooccurrence | None = Field(
        default=None, description="with against: pairs (latent of the dataset, latent of the against dataset)"
    )

    def to_text(self) -> str:
        inner = self.cooccurrence or self.metadata or self.cross
        return inner.to_text() if inner is not None else "(empty)"


class Retrieval(BaseModel):
    """Documents ranked for a property by one method, with (optionally) the dense ranking beside it."""

    query: str
    method: RetrievalMethod = Field(description="how the documents were ranked")
    latents: an.PropertyLatents = Field(description="latents chosen for the property, with weights (none for dense)")
    guided_latents: an.PropertyLatents | None = Field(
        default=None, description="for hybrid: the sae-guided latents of its second SAE ranking"
    )
    ranking: an.RankedDocs = Field(description="the documents, best first")
    dense_ranking: an.RankedDocs | None = Field(
        default=None, description="with dense: the dense ranking of the same documents, for comparison"
    )

    def to_text(self) -> str:
        parts = [f"Property: {self.query!r} (method: {self.method})"]
        if self.latents.latents:
            parts.append(self.latents.to_text())
        if self.guided_latents is not None and self.guided_latents.latents:
            parts += ["Guided by how documents look like the query:", self.guided_latents.to_text()]
        parts += ["Ranking:", self.ranking.to_text()]
        if self.dense_ranking is not None:
            parts += ["Dense baseline (MiniLM cosine):", self.dense_ranking.to_text()]
        return "\n".join(parts)


# --- diff -------------------------------------------------------------------------------------------
def run_diff(ws: Workspace, spec: DiffSpec, **options: Any) -> AnyDiff:
    """The diff of ``spec``'s sides with ``options`` for the analysis (``top_k``, ``rank_by``, ...). A sets or
    one-vs-many diff of embeddings too big for the memory budget is counted shard by shard
    (:mod:`saescope.ops.streamed`); a paired diff then reads its pairs a chunk at a time.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter, column or key, or an empty side.
    """
    sides = resolve_sides(ws, spec)
    stream = not streamed.fits_in_memory(sides.a.source.embedding, sides.b.source.embedding)
    if spec.mode == "sets" and stream:
        return streamed.diff_sets(sides, **options)
    if spec.mode == "one_vs_many":
        one = {k: v for k, v in options.items() if k != "direction"}
        if one.get("rank_by") not in (None, "effect", "p"):
            one["rank_by"] = "score"
        if stream:
            return streamed.diff_one_vs_many(sides, **one)
        names = list(sides.groups)
        return an.diff_one_vs_many(
            sides.a.X,
            [g.X for g in sides.groups.values()],
            sides.labels,
            names,
            target_name=sides.a.name,
            doc_ids_target=sides.a.doc_ids,
            **one,
        )
    if spec.mode == "paired":
        if stream:
            return streamed.diff_paired(sides, **options)
        return an.diff_paired(
            sides.a.X,
            sides.b.X,
            sides.labels,
            doc_ids=sides.a.keys,
            name_a=sides.a.name,
            name_b=sides.b.name,
            **options,
        )
    return an.diff_sets(
        sides.a.X,
        sides.b.X,
        sides.labels,
        doc_ids_a=sides.a.doc_ids,
        doc_ids_b=sides.b.doc_ids,
        name_a=sides.a.name,
        name_b=sides.b.name,
        **options,
    )


def diff(ws: Workspace, req: DiffRequest) -> DiffResult:
    """Which latents fire in a larger fraction of A's documents than B's, or the reverse.

    Raises:
        InputError, NotFoundError: as :func:`run_diff`.
    """
    options = req.model_dump(include={"rank_by", "direction", "min_support", "alpha", "top_k", "cursor"})
    result = run_diff(ws, req.spec, **options)
    return DiffResult(
        mode=req.mode,
        sets=result if isinstance(result, an.SetDiff) else None,
        paired=result if isinstance(result, an.PairedDiff) else None,
        one_vs_many=result if isinstance(result, an.OneVsMany) else None,
    )


# --- trends -----------------------------------------------------------------------------------------
class TrendResult(BaseModel):
    """Latents that rise or fall along the ordered values of a metadata column."""

    dataset: str
    column: str
    pair_key: str | None = Field(description="the column documents were stratified by, if any")
    n_left_out: int = Field(description="documents with no value in the column, or a value not in the order")
    trend: an.Trend

    def to_text(self) -> str:
        pair = f", paired by {self.pair_key}" if self.pair_key else ""
        left = (
            f"; {self.n_left_out} documents left out (no value, or a value not in the order)" if self.n_left_out else ""
        )
        return f"{self.dataset}: latents along {self.column}{pair}{left}\n{self.trend.to_text()}"


def ordered_groups(column: pd.Series, order: Sequence[str] | None, n_bins: int) -> tuple[IntArray, list[str]]:
    """Each document's group index (-1: left out) and the group names, in order.

    Raises:
        InputError: an order with repeated or absent values, or a text column without an order.
    """
    present = column.notna().to_numpy()
    index = np.full(len(column), -1, dtype=np.int64)
    if order is not None:
        names = [str(v) for v in order]
        if len(set(names)) != len(names):
            raise InputError(f"order repeats a value: {names}")
        values = key_text(column[present])
        found = set(values)
        absent = [v for v in names if v not in found]
        if absent:
            raise InputError(f"order names values that no document has: {absent[:10]}; values: {sorted(found)[:30]}")
        index[present] = pd.Index(names).get_indexer(values)
        return index, names
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
        values = sorted(set(key_text(column[present])))
        raise InputError(
            f"{column.name!r} holds text, so its order is not known: give order=[...] with its values in order "
            f"(values: {values[:30]})"
        )
    distinct = np.sort(column[present].unique())
    if len(distinct) <= n_bins:
        index[present] = np.searchsorted(distinct, column[present].to_numpy())
        return index, key_text(pd.Series(distinct)).tolist()
    bins = pd.qcut(column[present], n_bins, duplicates="drop")
    index[present] = bins.cat.codes.to_numpy()
    return index, [str(c) for c in bins.cat.categories]


def trend(ws: Workspace, req: TrendRequest) -> TrendResult:
    """Latents whose firing frequency rises or falls along the ordered values of ``req.column`` (counted shard by
    shard when the embedding is too big for the memory budget).

    Raises:
        InputError, NotFoundError: unknown dataset or column, a bad order or filter, or fewer than two groups.
    """
    r = resolve_rows(ws, DocSet(req.dataset, req.where, req.sae))
    groups, names = ordered_groups(r.column(req.column), req.order, req.n_bins)
    strata = None
    if req.pair_key:
        keys = r.column(req.pair_key)
        strata = np.full(len(keys), -1, dtype=np.int64)
        present = keys.notna().to_numpy()
        strata[present] = pd.factorize(key_text(keys[present]))[0]
    options = req.model_dump(include={"min_support", "top_k", "cursor", "alpha", "direction", "rank_by"})
    labels = labels_for(ws, r.embedding)
    if streamed.fits_in_memory(r.embedding):
        result = an.latent_trends(r.X, groups, names, labels, strata=strata, doc_ids=r.doc_ids, **options)
    else:
        result = streamed.latent_trends(r, groups, names, labels, strata, **options)
    return TrendResult(
        dataset=req.dataset,
        column=req.column,
        pair_key=req.pair_key,
        n_left_out=int((groups < 0).sum()),
        trend=result,
    )


# --- correlations -----------------------------------------------------------------------------------
def correlations(ws: Workspace, req: CorrelationsRequest) -> CorrelationResult:
    """Latent pairs that co-occur more than chance (NPMI), or with a column, the latents that track it.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter or column, or too few documents.
    """
    docset = DocSet(req.dataset, req.where, req.sae)
    if req.column:
        r = resolve(ws, docset, min_docs=3)
        r.column(req.column)  # an unknown column is refused before the SAE loads for its labels
        assoc = an.latent_metadata_association(
            r.X, r.meta.reset_index(drop=True), req.column, labels_for(ws, r.embedding), top_k=req.top_k
        )
        return CorrelationResult(kind="metadata", metadata=assoc)
    if req.against is not None:
        return CorrelationResult(kind="cross", cross=cross_correlations(ws, req))
    r = resolve_rows(ws, docset, min_docs=2)
    if req.latent is not None:
        an.common.check_latent(req.latent, r.embedding.manifest.d_sae)  # before the SAE loads for its labels
    similar = None if req.dissimilar_labels is None else label_embeddings(ws, r.embedding)
    options: dict[str, Any] = {
        "label_embeddings": similar,
        "max_label_similarity": req.dissimilar_labels,
        "latent": req.latent,
        "min_cooc": req.min_cooc,
        "top_k": req.top_k,
        "cursor": req.cursor,
    }
    if streamed.fits_in_memory(r.embedding):
        cooc = an.latent_cooccurrence(r.X, labels_for(ws, r.embedding), **options)
    else:
        cooc = streamed.latent_cooccurrence(r, labels_for(ws, r.embedding), **options)
    return CorrelationResult(kind="cooccurrence", cooccurrence=cooc)


def aligned_rows(ws: Workspace, req: CorrelationsRequest) -> tuple[Resolved, Resolved, IntArray, IntArray]:
    """The documents of ``req.dataset`` and of ``req.against`` matched through ``req.join_on``: row ``i`` pairs
    ``x.X[ix[i]]`` with ``y.X[iy[i]]``, one row per document of the against side that has a match.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter or column, a key repeated in ``req.dataset``,
            or no key in common.
    """
    key = str(req.join_on)
    x = resolve(ws, DocSet(req.dataset, req.where, req.sae), min_docs=2)
    y = resolve(ws, DocSet(str(req.against), req.where_against, req.sae), min_docs=2)
    kx = key_text(x.column(key))
    ky = key_text(y.column(key))
    present_x, present_y = x.column(key).notna().to_numpy(), y.column(key).notna().to_numpy()
    if kx[present_x].duplicated().any():
        raise InputError(
            f"{x.docset.name}: {clip(key)!r} repeats, so a document of {req.against} would match several; the first "
            "dataset must hold one document per key (e.g. the prompts), the against dataset may hold several "
            "(e.g. responses). Swap them, or filter with where"
        )
    index = pd.Series(np.flatnonzero(present_x).astype(np.int64), index=kx[present_x].to_numpy())
    ky_present = ky[present_y]
    hit = ky_present.isin(index.index).to_numpy()
    if not hit.any():
        raise InputError(f"no {clip(key)!r} value is shared by {x.docset.name} and {y.docset.name}; nothing to match")
    iy = np.flatnonzero(present_y)[hit].astype(np.int64)
    ix = index[ky_present[hit].to_numpy()].to_numpy().astype(np.int64)
    return x, y, ix, iy


def cross_correlations(ws: Workspace, req: CorrelationsRequest) -> an.CrossCooccurrence:
    """Pairs (latent of ``req.dataset``, latent of ``req.against``) that fire together on matched rows.

    Raises:
        InputError, NotFoundError: see :func:`aligned_rows`, or a latent out of range.
    """
    x, y, ix, iy = aligned_rows(ws, req)
    if req.latent is not None:
        an.common.check_latent(req.latent, x.X.shape[1])
    return an.cross_cooccurrence(
        x.X[ix],
        y.X[iy],
        labels_for(ws, x.embedding),
        labels_for(ws, y.embedding),
        min_cooc=req.min_cooc,
        top_k=req.top_k,
        cursor=req.cursor,
        latent_x=req.latent,
        x_groups=ix,
        skip_same=req.skip_echoes,
    )


# --- clustering -------------------------------------------------------------------------------------
def cluster_resolved(
    ws: Workspace,
    r: Resolved,
    *,
    axis: str | None = None,
    latents: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    guide: ClassGuide = "both",
    dense: bool = False,
    k: int | None = None,
    seed: int = 0,
) -> an.Clustering:
    """Cluster resolved documents along an axis: its classes in words (guided by :func:`class_guide`,
    :func:`saescope.analyses.cluster_guided`), an axis name and/or latent ids (latents matched by label), or
    on dense sentence embeddings.

    Raises:
        InputError: neither classes, an axis nor latents for SAE clustering, or too few documents.
    """
    if dense:
        return an.cluster_dense(dataset_vectors(ws, r.docset.dataset)[r.rows], doc_ids=r.doc_ids, k=k, seed=seed)
    if classes:
        return an.cluster_guided(
            r.X,
            class_guide(ws, r, classes, guide),
            labels_for(ws, r.embedding),
            class_names=list(classes),
            doc_ids=r.doc_ids,
            k=k,
            seed=seed,
        )
    check_latents(latents or (), r.X.shape[1])
    scores = axis_scores(ws, r.embedding, axis) if axis else None
    return an.cluster_documents(
        r.X,
        labels_for(ws, r.embedding),
        doc_ids=r.doc_ids,
        axis_latents=list(latents) if latents else None,
        axis_scores=scores,
        k=k,
        seed=seed,
    )


def cluster(ws: Workspace, req: ClusterRequest) -> an.Clustering:
    """Group documents along an axis of interest; see :func:`cluster_resolved`.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter, fewer than 4 documents, or no axis latent.
    """
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae), min_docs=4)
    return cluster_resolved(
        ws,
        r,
        axis=req.axis,
        latents=req.latents,
        classes=req.classes,
        guide=req.guide,
        dense=req.dense,
        k=req.k,
        seed=req.seed,
    )


def class_guide(
    ws: Workspace, r: Resolved, classes: Sequence[str], guide: ClassGuide = "both"
) -> npt.NDArray[np.float64]:
    """How much each resolved document looks like each class (``n_docs x n_classes``): :func:`words_guide`
    of the class descriptions."""
    return words_guide(ws, r, encode(list(classes)), guide)


def words_guide(
    ws: Workspace,
    r: Resolved,
    queries: npt.NDArray[np.float32],
    guide: ClassGuide = "both",
    vectors: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float64]:
    """How much each resolved document looks like each of some words (``queries``: their sentence
    embeddings, one row each), to guide the choice of latents; ``n_docs x len(queries)``.

    ``dense``: the cosine of the document's sentence embedding with the words (it knows what the words mean,
    but barely sees formatting). ``labels``: the :data:`~saescope.analyses.GUIDE_LABEL_LATENTS` latents whose
    descriptions and activating contexts match the words best, and per document the best match among those
    that fire in it (:func:`saescope.analyses.latent_guide`; surface-form descriptions such as "bulleted list
    item marker" let it see layout). ``both``: the two, each standardised, added (one alone is returned as
    it is). ``vectors``: the documents' sentence embeddings, when the caller already holds them."""
    parts = []
    if guide in ("dense", "both"):
        dense = vectors if vectors is not None else dataset_vectors(ws, r.docset.dataset)[r.rows]
        parts.append(dense @ queries.T)
    if guide in ("labels", "both"):
        lv, cv = label_embeddings(ws, r.embedding), context_embeddings(ws, r.embedding)
        cols = []
        for v in queries:
            matched = an.select_property_latents(
                lv, v, context_embeddings=cv, context_weight=an.CONTEXT_WEIGHT, top_n=an.GUIDE_LABEL_LATENTS
            )
            cols.append(an.latent_guide(r.X, matched.weights()))
        parts.append(np.stack(cols, axis=1))
    return np.asarray(parts[0], dtype=np.float64) if len(parts) == 1 else an.combine_guides(*parts)


# --- retrieval --------------------------------------------------------------------------------------
def rank_by_property(
    ws: Workspace,
    r: Resolved,
    query: str,
    *,
    method: RetrievalMethod = "sae",
    positives: Sequence[str] = (),
    latents: Sequence[int] = (),
    n_latents: int | None = None,
    dense: bool = False,
    top_k: int = 10,
    cursor: int = 0,
) -> Retrieval:
    """Rank resolved documents by a property in words (and/or example documents, and/or latent ids).

    ``sae-research``: the ``n_latents`` (default 100) latents whose labels best match the query, weighted by
    rank, activations divided by each latent's 90th percentile (arXiv 2512.10092). ``sae``: latents matched on
    their labels and activating contexts, plus (given ``positives``) the latents most enriched in the examples,
    each side weighing half; with no query, the examples' latents alone. ``sae-guided``: the ``n_latents``
    (default 100) latents whose firing correlates best with :func:`words_guide` of the query, each
    weighted by its correlation (plus, given ``positives``, the examples' latents). ``hybrid``: the ``sae`` and
    ``sae-guided`` rankings and the dense ranking fused by reciprocal rank (``positives`` refine the ``sae``
    ranking only). ``dense``: MiniLM cosine of each document with the query (the dataset's cached vectors).

    Raises:
        InputError: positive doc ids not in the set, nothing to rank by (no query, positives or latents;
            dense, hybrid, sae-research and sae-guided need a query), or no latent matches.
    """
    check_latents(latents, r.X.shape[1])
    pos_rows = _positive_rows(r, positives)
    q = encode([query])[0] if query.strip() else None
    if method in ("dense", "hybrid", "sae-research", "sae-guided") and q is None:
        raise InputError(f"method {method} needs a query in words")
    if q is None and pos_rows is None and not latents:
        raise InputError("give a property in words, positive example documents, or latent ids")
    needs_vectors = dense or method in ("dense", "hybrid", "sae-guided")
    vectors = dataset_vectors(ws, r.docset.dataset)[r.rows] if needs_vectors else None
    dense_ranked = None
    if vectors is not None and q is not None and (dense or method in ("dense", "hybrid")):
        dense_ranked = an.rank_dense(vectors, q, top_k=top_k, cursor=cursor, doc_ids=r.doc_ids)
    if method == "dense":
        assert dense_ranked is not None  # vectors and q are set for dense
        return Retrieval(
            query=query, method=method, latents=an.PropertyLatents(n_positives=0, latents=[]), ranking=dense_ranked
        )
    guided: an.PropertyLatents | None = None
    if method in ("sae-guided", "hybrid"):
        assert vectors is not None and q is not None
        try:
            guided = an.select_latents_guided(
                r.X,
                words_guide(ws, r, q[None, :], vectors=vectors)[:, 0],
                top_n=n_latents or an.GUIDED_LATENTS,
                labels=labels_for(ws, r.embedding),
            )
        except InputError:
            if method == "sae-guided":
                raise
            guided = None  # hybrid goes on with the sae and dense rankings
    if method == "sae-guided":
        assert guided is not None
        chosen = guided
        if pos_rows is not None:
            examples = an.select_latents_by_examples(
                r.X, pos_rows, top_n=n_latents or an.GUIDED_LATENTS, labels=labels_for(ws, r.embedding)
            )
            chosen = an.combine_property_latents(guided, examples)
    else:
        chosen = _property_latents(ws, r, q, method, pos_rows, n_latents)
    weights = chosen.weights()
    top_weight = max(weights.values(), default=1.0)
    book = labels_for(ws, r.embedding)
    for i in latents:
        if int(i) not in weights:
            chosen.latents.append(
                an.PropertyLatent(latent=int(i), label=book.text(int(i)), similarity=1.0, weight=top_weight, lift=None)
            )
        weights[int(i)] = max(weights.get(int(i), 0.0), top_weight)
    if not weights:
        raise InputError(f"no latent matches {query!r}; try other words or give latent ids")
    X = r.X.tocsc()
    if method == "hybrid":
        assert vectors is not None and q is not None
        ranked = an.rank_hybrid(
            X,
            weights,
            vectors,
            q,
            guided_weights=guided.weights() if guided is not None else None,
            top_k=top_k,
            cursor=cursor,
            doc_ids=r.doc_ids,
        )
    else:
        scoring: Literal["normalized", "p90"] = "normalized" if method == "sae-guided" else "p90"
        ranked = an.rank_by_latents(X, weights, top_k=top_k, cursor=cursor, doc_ids=r.doc_ids, scoring=scoring)
    return Retrieval(
        query=query,
        method=method,
        latents=chosen,
        guided_latents=guided if method == "hybrid" else None,
        ranking=ranked,
        dense_ranking=dense_ranked,
    )


def _positive_rows(r: Resolved, positives: Sequence[str]) -> npt.NDArray[np.int64] | None:
    if not positives:
        return None
    where = pd.Index(r.doc_ids).get_indexer(list(positives))
    missing = [p for p, w in zip(positives, where, strict=True) if w < 0]
    if missing:
        raise InputError(f"positive examples {missing[:5]} are not in {r.docset.name}")
    return np.asarray(where, dtype=np.int64)


def _property_latents(
    ws: Workspace,
    r: Resolved,
    q: npt.NDArray[np.float32] | None,
    method: RetrievalMethod,
    pos_rows: npt.NDArray[np.int64] | None,
    n_latents: int | None,
) -> an.PropertyLatents:
    """The latents of ``method`` for the query ``q`` and/or the positive rows (none when neither is given)."""
    book = labels_for(ws, r.embedding)
    if method == "sae-research":
        assert q is not None
        return an.select_latents_research(
            label_embeddings(ws, r.embedding), q, n_latents=n_latents or an.RESEARCH_LATENTS, labels=book
        )
    n = n_latents or an.SAE_LATENTS
    if q is None:
        if pos_rows is None:
            return an.PropertyLatents(n_positives=0, latents=[])
        return an.select_latents_by_examples(r.X, pos_rows, top_n=n, labels=book)
    by_query = an.select_property_latents(
        label_embeddings(ws, r.embedding),
        q,
        context_embeddings=context_embeddings(ws, r.embedding),
        context_weight=an.CONTEXT_WEIGHT,
        temperature=an.SAE_TEMPERATURE,
        top_n=n,
        labels=book,
    )
    if pos_rows is None:
        return by_query
    return an.combine_property_latents(by_query, an.select_latents_by_examples(r.X, pos_rows, top_n=n, labels=book))


def retrieve(ws: Workspace, req: RetrieveRequest) -> Retrieval:
    """Documents that have a property described in words; see :func:`rank_by_property`.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter, unknown positives, or no latent matches.
    """
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae))
    return rank_by_property(
        ws,
        r,
        req.query,
        method=req.method,
        positives=req.positives,
        latents=req.latents,
        n_latents=req.n_latents,
        dense=req.dense,
        top_k=req.top_k,
        cursor=req.cursor,
    )
