"""Targeted clustering: group documents along an axis of interest using the latents relevant to it.

The axis is given as latents (and/or a relevance score per latent, usually the similarity of each
latent's label to a description of the axis, computed by the caller). Of those, latents that vary
across the documents are kept, documents become binary vectors over them, and are clustered by
average-linkage on Jaccard distance; k is chosen by silhouette when not given. Documents where
none of the selected latents fire are "unassigned" (cluster -1).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from scipy.cluster import hierarchy
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, silhouette_score

from saescope.analyses.common import (
    DocIds,
    FloatArray,
    IntArray,
    Labels,
    as_csr,
    as_csr_or_csc,
    check_doc_ids,
    check_labels,
    column_counts,
    column_entries,
    doc_id,
    firing_correlations,
    label_of,
    render_table,
    top_order,
)
from saescope.errors import InputError


class SelectedLatent(BaseModel):
    """A latent used as a clustering feature."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    doc_freq: float = Field(description="fraction of the clustered documents where it fires")
    relevance: float | None = Field(description="the caller's relevance score of the latent to the axis, if given")


class ClusterLatent(BaseModel):
    """A latent that characterises a cluster."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    freq_in: float = Field(description="fraction of the cluster's documents where it fires")
    freq_out: float = Field(description="fraction of the other assigned documents where it fires")


class Cluster(BaseModel):
    """One group of documents."""

    cluster: int = Field(description="cluster number: 0 is the largest")
    size: int = Field(description="documents in the cluster")
    share: float = Field(description="size / all clustered documents (unassigned included)")
    top_latents: list[ClusterLatent] = Field(description="most distinctive latents: largest freq_in - freq_out")
    examples: list[str] = Field(description="ids of the documents nearest the cluster's centre")
    axis_class: str | None = Field(
        default=None,
        description="for a guided clustering: the class of the axis the cluster is matched to (one class per "
        "cluster when there are as many clusters as classes, the matching with the largest total mean "
        "standardised margin; otherwise the class of its highest mean margin)",
    )


class Clustering(BaseModel):
    """Documents grouped into clusters, each described by its latents and example documents."""

    method: str = Field(description="how documents were compared and grouped")
    n_docs: int = Field(description="documents clustered (unassigned included)")
    k: int = Field(description="number of clusters")
    k_chosen_by: Literal["given", "silhouette", "single"] = Field(description="how k was set")
    silhouette: float | None = Field(description="mean silhouette of the chosen clustering (fitted documents)")
    silhouette_by_k: dict[int, float] = Field(description="mean silhouette of each k tried")
    selected_latents: list[SelectedLatent] = Field(description="latents used as features (empty for dense)")
    n_unassigned: int = Field(description="documents where none of the selected latents fire (cluster -1)")
    unassigned_examples: list[str] = Field(description="a few unassigned document ids")
    clusters: list[Cluster]
    assignment: list[int] = Field(
        exclude=True, description="cluster of each clustered document, in row order; -1 = unassigned"
    )
    placed: list[int] = Field(
        default_factory=list,
        exclude=True,
        description="like assignment, but each unassigned document is placed in the cluster whose centre is "
        "nearest in the full latent space (cosine of binarised vectors); for scoring against a truth that "
        "must not count 'no axis latent fires' as a cluster of its own",
    )

    def to_text(self) -> str:
        sil = "-" if self.silhouette is None else f"{self.silhouette:.3f}"
        out = [
            f"{self.k} clusters of {self.n_docs} docs ({self.method}; k by {self.k_chosen_by}, silhouette {sil}; "
            f"{self.n_unassigned} unassigned)"
        ]
        if self.selected_latents:
            out.append(
                "features: "
                + "; ".join(f"{s.latent} {s.label[:40]}" for s in self.selected_latents[:12])
                + (f"; ... ({len(self.selected_latents)} in all)" if len(self.selected_latents) > 12 else "")
            )
        for c in self.clusters:
            lean = f" — matched to {c.axis_class!r}" if c.axis_class else ""
            out.append(
                f"\n[cluster {c.cluster}]{lean} {c.size} docs ({c.share:.1%}); examples: {', '.join(c.examples)}"
            )
            if c.top_latents:
                out.append(
                    render_table(
                        ["latent", "label", "freq_in", "freq_out"],
                        [[t.latent, t.label, t.freq_in, t.freq_out] for t in c.top_latents],
                    )
                )
        return "\n".join(out)


def _row_indices(rows: Sequence[int] | npt.NDArray[np.integer[Any]], n_all: int) -> IntArray:
    """``rows`` as row indices of a matrix of ``n_all`` rows.

    Raises:
        InputError: a boolean mask (ambiguous: it would read as rows 0 and 1), or an index out of range.
    """
    arr = np.asarray(rows)
    if arr.dtype == np.bool_:
        raise InputError("rows must be row indices, not a boolean mask; pass numpy.flatnonzero(mask)")
    row_idx = arr.astype(np.int64)
    if row_idx.size and (row_idx.min() < 0 or row_idx.max() >= n_all):
        raise InputError(f"rows must be in 0..{n_all - 1}")
    return row_idx


def _check_k(k: int | None, k_range: tuple[int, int]) -> None:
    if k is not None and k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if not 2 <= k_range[0] <= k_range[1]:
        raise InputError(f"k_range must be (low, high) with 2 <= low <= high, got {k_range}")


def _select_latents(
    counts: IntArray,
    n: int,
    axis_latents: Sequence[int] | None,
    axis_scores: FloatArray | None,
    n_latents: int,
    min_doc_freq: float,
    max_doc_freq: float,
) -> IntArray:
    d = len(counts)
    freq = counts / max(n, 1)
    if axis_latents is not None:
        cand = np.array(list(dict.fromkeys(int(v) for v in axis_latents)), dtype=np.int64)
        if cand.size and (cand.min() < 0 or cand.max() >= d):
            raise InputError(f"axis_latents must be in 0..{d - 1}")
        if axis_scores is not None:
            cand = cand[np.argsort(-axis_scores[cand], kind="stable")]
    elif axis_scores is not None:
        ok = np.flatnonzero(np.isfinite(axis_scores))
        cand = ok[np.argsort(-axis_scores[ok], kind="stable")]
    else:
        var = freq * (1 - freq)
        cand = np.argsort(-var, kind="stable")
    in_band = (freq[cand] >= min_doc_freq) & (freq[cand] <= max_doc_freq)
    return cand[in_band][:n_latents]


def cluster_documents(
    X: Any,
    labels: Labels,
    *,
    rows: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
    doc_ids: DocIds = None,
    axis_latents: Sequence[int] | None = None,
    axis_scores: npt.NDArray[np.floating[Any]] | None = None,
    n_latents: int = 40,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    min_doc_freq: float = 0.02,
    max_doc_freq: float = 0.8,
    max_fit_docs: int = 3000,
    n_describe: int = 5,
    n_examples: int = 3,
    seed: int = 0,
) -> Clustering:
    """Cluster documents by the latents relevant to an axis.

    Latent selection: candidates are ``axis_latents`` (ordered by ``axis_scores`` when both are
    given), else all latents ordered by ``axis_scores``, else all latents ordered by variance
    ``p(1-p)``; of these, the first ``n_latents`` whose document frequency among the clustered
    documents lies in ``[min_doc_freq, max_doc_freq]`` are used. Documents become binary vectors
    over them and are grouped by average-linkage hierarchical clustering on Jaccard distance; with
    ``k=None`` the k in ``k_range`` with the best mean silhouette wins (ties: smaller k). At most
    ``max_fit_docs`` documents (a seeded sample) are used to build the tree; the rest join the
    cluster whose centre is nearest by weighted Jaccard similarity. Clusters are numbered by size,
    and described by their latents with the largest ``freq_in - freq_out`` and the documents
    nearest their centre.

    Args:
        rows: cluster only these rows of ``X`` (e.g. from ``select_rows``); ``doc_ids`` stay aligned with ``X``.

    Raises:
        InputError: bad ``rows``, ``doc_ids``, ``axis_latents``, ``axis_scores`` shape, k settings, or
            fewer than 1 latent passes the frequency band (the message says how to widen it).
    """
    M = as_csr(X)
    n_all, d = M.shape
    check_labels(labels, d)
    _check_k(k, k_range)
    ids = check_doc_ids(doc_ids, n_all)
    if rows is not None:
        row_idx = _row_indices(rows, n_all)
        M = M[row_idx]
    else:
        row_idx = np.arange(n_all, dtype=np.int64)
    n = M.shape[0]
    if n < 2:
        raise InputError(f"need at least 2 documents to cluster, got {n}")
    scores: FloatArray | None = None
    if axis_scores is not None:
        scores = np.asarray(axis_scores, dtype=np.float64)
        if scores.shape != (d,):
            raise InputError(f"axis_scores must have one score per latent, shape ({d},); got {scores.shape}")
    if not 0 <= min_doc_freq <= max_doc_freq <= 1:
        raise InputError("need 0 <= min_doc_freq <= max_doc_freq <= 1")

    counts = column_counts(M)
    sel = _select_latents(counts, n, axis_latents, scores, n_latents, min_doc_freq, max_doc_freq)
    if len(sel) == 0:
        raise InputError(
            f"none of the candidate latents fires in between {min_doc_freq:.0%} and {max_doc_freq:.0%} of the "
            f"{n} documents; widen min_doc_freq/max_doc_freq or give more axis latents"
        )
    B = np.asarray(M[:, sel].toarray() > 0, dtype=np.float32)
    assigned = np.flatnonzero(B.sum(axis=1) > 0)
    unassigned = np.flatnonzero(B.sum(axis=1) == 0)
    assignment = np.full(n, -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sil_by_k: dict[int, float] = {}
    chosen_by: Literal["given", "silhouette", "single"]
    if len(assigned) == 0:
        labels_a = np.zeros(0, dtype=np.int64)
        chosen_by = "single"
    else:
        Ba = B[assigned]
        fit = assigned if len(assigned) <= max_fit_docs else np.sort(rng.choice(assigned, max_fit_docs, replace=False))
        Bf = B[fit]
        D = _jaccard_distances(Bf)
        labels_f, sil_by_k, chosen_by = _choose_tree_cut(D, k, k_range)
        centres = np.vstack([Bf[labels_f == c].mean(axis=0) for c in range(labels_f.max() + 1)])
        labels_a = np.argmax(_weighted_jaccard(Ba, centres), axis=1)
        labels_a[np.searchsorted(assigned, fit)] = labels_f
        labels_a = _renumber_by_size(labels_a)
    assignment[assigned] = labels_a
    n_clusters = int(labels_a.max()) + 1 if labels_a.size else 0
    placed = place_unassigned(M, assignment, n_clusters)

    clusters = _describe_clusters(B, sel, assignment, n_clusters, labels, ids, row_idx, n_describe, n_examples)
    sil = sil_by_k.get(n_clusters)
    return Clustering(
        method="average-linkage on Jaccard distance over binary latent vectors",
        n_docs=n,
        k=n_clusters,
        k_chosen_by=chosen_by,
        silhouette=sil,
        silhouette_by_k=sil_by_k,
        selected_latents=[
            SelectedLatent(
                latent=int(j),
                label=label_of(labels, int(j)),
                doc_freq=float(counts[j] / n),
                relevance=None if scores is None else float(scores[j]),
            )
            for j in sel
        ],
        n_unassigned=len(unassigned),
        unassigned_examples=[doc_id(ids, int(row_idx[r])) for r in unassigned[:n_examples]],
        clusters=clusters,
        assignment=[int(v) for v in assignment],
        placed=[int(v) for v in placed],
    )


def class_margins(scores: npt.ArrayLike) -> FloatArray:
    """Standardised margins of per-class scores (``n_docs x k``, e.g. the cosine of each document with each
    class description): each score minus the document's mean over the classes, then centred and scaled per
    class over the documents (a constant column stays 0). A document's margin for a class says how much more
    it leans to that class than to the others, relative to the corpus.

    Raises:
        InputError: ``scores`` is not 2-D with at least 2 rows and 2 columns, or holds a non-finite value.
    """
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] < 2 or S.shape[1] < 2:
        raise InputError(f"class scores must be (n_docs >= 2, n_classes >= 2), got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise InputError("class scores must be finite numbers")
    M = S - S.mean(axis=1, keepdims=True)
    M -= M.mean(axis=0)
    sd = M.std(axis=0)
    return np.asarray(M / np.where(sd > 1e-12, sd, 1.0), dtype=np.float64)


GUIDE_LABEL_LATENTS = 30
"""Latents matched by description per class in the label guide (:func:`latent_guide`)."""


def latent_guide(X: Any, latent_weights: Mapping[int, float]) -> FloatArray:
    """Per document, the largest weight among the given latents that fire in it (0 where none fires).

    With the weights a class description's similarity to each latent's description, this says how much a
    document looks like the class through its best-matching latent. The maximum, not the sum: one latent
    that is the class (a bulleted-list marker for "a bulleted list") is not drowned by the many weak
    look-alikes that any description also matches.

    Raises:
        InputError: a latent out of range or a non-finite weight.
    """
    M = as_csr_or_csc(X)
    n, d = M.shape
    lats = np.array(sorted(int(j) for j in latent_weights), dtype=np.int64)
    if len(lats) and (lats[0] < 0 or lats[-1] >= d):
        bad = int(lats[0]) if lats[0] < 0 else int(lats[-1])
        raise InputError(f"latent {bad} is out of range (0..{d - 1})")
    w = np.array([float(latent_weights[int(j)]) for j in lats])
    if not np.all(np.isfinite(w)):
        raise InputError(f"latent {int(lats[~np.isfinite(w)][0])} has a non-finite weight")
    out = np.zeros(n, dtype=np.float64)
    rows, cols, vals = column_entries(M, lats)
    fires = vals > 0
    np.maximum.at(out, rows[fires], w[np.searchsorted(lats, cols[fires])])
    return out


def combine_guides(*scores: npt.ArrayLike) -> FloatArray:
    """The sum of per-class score matrices (each ``n_docs x n_classes``), each column centred and scaled
    first (a constant column adds 0), so that guides on different scales count alike.

    Raises:
        InputError: no matrix, shapes differ, or a value is not finite.
    """
    if not scores:
        raise InputError("give at least one guide")
    mats = [np.asarray(S, dtype=np.float64) for S in scores]
    if any(S.ndim != 2 or S.shape != mats[0].shape for S in mats):
        raise InputError(f"guides must share one 2-D shape, got {[S.shape for S in mats]}")
    total = np.zeros_like(mats[0])
    for S in mats:
        if not np.all(np.isfinite(S)):
            raise InputError("guide scores must be finite numbers")
        C = S - S.mean(axis=0)
        sd = C.std(axis=0)
        total += C / np.where(sd > 1e-12, sd, 1.0)
    return total


def cluster_guided(
    X: Any,
    class_scores: npt.ArrayLike,
    labels: Labels,
    *,
    class_names: Sequence[str] | None = None,
    rows: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
    doc_ids: DocIds = None,
    per_class: int = 40,
    k: int | None = None,
    min_count: int = 2,
    max_fit_docs: int = 20_000,
    n_describe: int = 5,
    n_examples: int = 3,
    seed: int = 0,
) -> Clustering:
    """Cluster documents along an axis given as classes, guided by a weak per-class score.

    ``class_scores`` (``n_docs x n_classes``, rows aligned with ``X``) says, noisily, how much each document
    looks like each class — usually the cosine of its dense sentence embedding with each class description,
    which knows what the words mean but is dominated by whatever varies most in the corpus. The SAE's
    latents are crisp but do not know the words. So: each class's standardised margin
    (:func:`class_margins`) is correlated with every latent's firing (:func:`firing_correlations`); the
    ``per_class`` latents most positively correlated with each class (firing in at least ``min_count``
    documents) become the features, each weighted by its strongest correlation; documents are grouped by
    k-means on those weighted binary vectors, ``k`` defaulting to the number of classes. Documents where no
    feature fires are unassigned (-1) and placed by their full vectors (:attr:`Clustering.placed`). k-means is
    fitted on at most ``max_fit_docs`` of them (a seeded sample); the rest join the nearest centre. Each
    cluster is described by its latents with the largest ``freq_in - freq_out`` and named after the class
    its documents lean to (``axis_class``: with as many clusters as classes, each class once, the naming with
    the largest total mean margin; otherwise each cluster's highest mean margin).

    Raises:
        InputError: bad shapes, ``rows``, ``doc_ids``, ``class_names`` length, fewer than 2 classes, ``k`` < 2,
            ``per_class`` < 1, no latent correlates positively with any class, or fewer documents fire a chosen
            latent than there are clusters.
    """
    M = as_csr(X)
    n_all, d = M.shape
    check_labels(labels, d)
    ids = check_doc_ids(doc_ids, n_all)
    S = np.asarray(class_scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != n_all:
        raise InputError(f"class_scores must have one row per document ({n_all}), got shape {S.shape}")
    n_classes = S.shape[1]
    names = list(class_names) if class_names is not None else [f"class {c}" for c in range(n_classes)]
    if len(names) != n_classes:
        raise InputError(f"{len(names)} class names for {n_classes} columns of class_scores")
    if per_class < 1:
        raise InputError(f"per_class must be >= 1, got {per_class}")
    if n_classes < 2:
        raise InputError(f"give at least 2 classes to cluster along, got {n_classes}")
    n_clusters = n_classes if k is None else k
    if n_clusters < 2:
        raise InputError(f"k must be >= 2, got {n_clusters}")
    if rows is not None:
        row_idx = _row_indices(rows, n_all)
        M, S = M[row_idx], S[row_idx]
    else:
        row_idx = np.arange(n_all, dtype=np.int64)
    n = M.shape[0]
    if n < max(n_clusters, 2):
        raise InputError(f"need at least {max(n_clusters, 2)} documents to make {n_clusters} clusters, got {n}")
    margins = class_margins(S)
    corr = firing_correlations(M, margins)
    counts = column_counts(M)
    corr[counts < min(min_count, n), :] = 0.0
    chosen: dict[int, int] = {}
    for c in range(n_classes):
        order = np.argsort(-corr[:, c], kind="stable")[:per_class]
        for j in order[corr[order, c] > 0]:
            if int(j) not in chosen or corr[j, c] > corr[j, chosen[int(j)]]:
                chosen[int(j)] = c
    if not chosen:
        raise InputError(
            "no latent's firing follows the documents' similarity to the classes; try more distinct class "
            "descriptions, more documents, or cluster by axis or dense embeddings instead"
        )
    sel = np.array(sorted(chosen), dtype=np.int64)
    weight = corr[sel].max(axis=1).astype(np.float32)
    B = np.asarray(M[:, sel].toarray() > 0, dtype=np.float32)
    assigned = np.flatnonzero(B.sum(axis=1) > 0)
    unassigned = np.flatnonzero(B.sum(axis=1) == 0)
    if len(assigned) < n_clusters:
        raise InputError(
            f"only {len(assigned)} documents fire a latent that follows the classes, fewer than the {n_clusters} "
            "clusters asked for; give more documents, fewer clusters or more distinct classes"
        )
    assignment = np.full(n, -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fit = assigned if len(assigned) <= max_fit_docs else np.sort(rng.choice(assigned, max_fit_docs, replace=False))
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    with warnings.catch_warnings():  # duplicate points: fewer distinct clusters, reported in the method below
        warnings.simplefilter("ignore", ConvergenceWarning)
        km.fit(B[fit] * weight)
    assignment[assigned] = _renumber_by_size(km.predict(B[assigned] * weight).astype(np.int64))
    n_found = int(assignment.max()) + 1
    placed = place_unassigned(M, assignment, n_found)
    lean = np.vstack([margins[assignment == c].mean(axis=0) for c in range(n_found)]) if n_found else margins[:0]
    if n_found == n_classes:  # one class per cluster: the assignment of classes with the largest total lean
        named = dict(zip(*linear_sum_assignment(-lean), strict=True))
    else:
        named = {c: int(np.argmax(lean[c])) for c in range(n_found)}
    clusters = _describe_clusters(
        B,
        sel,
        assignment,
        n_found,
        labels,
        ids,
        row_idx,
        n_describe,
        n_examples,
        [names[int(named[c])] for c in range(n_found)],
    )
    fewer = f"; only {n_found} distinct clusters of the {n_clusters} asked for" if n_found < n_clusters else ""
    return Clustering(
        method=f"k-means over binary latents correlated with the classes' margins ({per_class} per class: "
        + ", ".join(names)
        + ")"
        + fewer,
        n_docs=n,
        k=n_found,
        k_chosen_by="given",
        silhouette=None,
        silhouette_by_k={},
        selected_latents=[
            SelectedLatent(
                latent=int(j),
                label=label_of(labels, int(j)),
                doc_freq=float(counts[j] / n),
                relevance=float(w),
            )
            for j, w in zip(sel, weight, strict=True)
        ],
        n_unassigned=len(unassigned),
        unassigned_examples=[doc_id(ids, int(row_idx[r])) for r in unassigned[:n_examples]],
        clusters=clusters,
        assignment=[int(v) for v in assignment],
        placed=[int(v) for v in placed],
    )


def _describe_clusters(
    B: npt.NDArray[np.float32],
    sel: IntArray,
    assignment: IntArray,
    n_clusters: int,
    labels: Labels,
    ids: DocIds,
    row_idx: IntArray,
    n_describe: int,
    n_examples: int,
    axis_classes: Sequence[str] | None = None,
) -> list[Cluster]:
    """Each cluster of ``assignment`` (-1: unassigned, left out) described by its feature latents (``sel``,
    the columns of the binary ``B``) with the largest ``freq_in - freq_out`` among the assigned documents, and
    by the documents nearest its centre (weighted Jaccard)."""
    n = len(assignment)
    clusters = []
    for c in range(n_clusters):
        members = np.flatnonzero(assignment == c)
        others = np.flatnonzero((assignment >= 0) & (assignment != c))
        f_in = B[members].mean(axis=0)
        f_out = B[others].mean(axis=0) if len(others) else np.zeros(len(sel))
        top = top_order([f_in - f_out, f_in], n_describe)
        top = top[(f_in - f_out)[top] > 0]
        centre = B[members].mean(axis=0, keepdims=True)
        close = _weighted_jaccard(B[members], centre)[:, 0]
        ex = members[np.lexsort((members, -close))[:n_examples]]
        clusters.append(
            Cluster(
                cluster=c,
                size=len(members),
                share=len(members) / n,
                top_latents=[
                    ClusterLatent(
                        latent=int(sel[j]),
                        label=label_of(labels, int(sel[j])),
                        freq_in=float(f_in[j]),
                        freq_out=float(f_out[j]),
                    )
                    for j in top
                ],
                examples=[doc_id(ids, int(row_idx[r])) for r in ex],
                axis_class=None if axis_classes is None else axis_classes[c],
            )
        )
    return clusters


def place_unassigned(M: Any, assignment: IntArray, n_clusters: int) -> IntArray:
    """``assignment`` with each -1 replaced by the cluster whose mean binarised full vector is nearest by
    cosine (ties: the lower cluster number); unchanged when there are no clusters or no -1."""
    out = assignment.copy()
    todo = np.flatnonzero(out < 0)
    if n_clusters == 0 or len(todo) == 0:
        return out
    B = as_csr(M).copy()
    B.data = (B.data > 0).astype(np.float64)
    centres = np.vstack([np.asarray(B[np.flatnonzero(out == c)].mean(axis=0)).ravel() for c in range(n_clusters)])
    norms = np.linalg.norm(centres, axis=1)
    sims = np.asarray(B[todo] @ centres.T) / np.where(norms > 0, norms, 1.0)  # row norms do not change argmax
    out[todo] = np.argmax(sims, axis=1)
    return out


def _jaccard_distances(B: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    inter = (B @ B.T).astype(np.float64)
    size = np.diag(inter)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        D = np.where(union > 0, 1.0 - inter / union, 0.0)
    np.fill_diagonal(D, 0.0)
    return np.clip(D, 0.0, 1.0)


def _weighted_jaccard(B: npt.NDArray[np.float32], centres: npt.NDArray[Any]) -> FloatArray:
    """Weighted Jaccard similarity sum(min)/sum(max) of each binary row with each centre (frequencies)."""
    out = np.empty((B.shape[0], centres.shape[0]))
    for c, f in enumerate(centres):
        mn = B @ np.minimum(f, 1.0)  # min(x, f) = x * f for binary x
        mx = B.sum(axis=1) + f.sum() - mn
        out[:, c] = np.where(mx > 0, mn / np.maximum(mx, 1e-12), 0.0)
    return out


def _choose_tree_cut(
    D: npt.NDArray[np.float64], k: int | None, k_range: tuple[int, int]
) -> tuple[IntArray, dict[int, float], Literal["given", "silhouette", "single"]]:
    """Cut an average-linkage tree of distance matrix ``D``: at ``k`` clusters, or at the best silhouette."""
    n = D.shape[0]
    if n < 3 or np.all(D == 0):
        return np.zeros(n, dtype=np.int64), {}, "single"
    Z = hierarchy.linkage(squareform(D, checks=False), method="average")
    sil: dict[int, float] = {}
    cuts: dict[int, IntArray] = {}
    ks = [k] if k is not None else list(range(k_range[0], k_range[1] + 1))
    ks = [min(kk, n) for kk in ks]
    # cut_tree follows the merge order, so it gives exactly k clusters even when merge heights tie
    all_cuts = hierarchy.cut_tree(Z, n_clusters=sorted(set(ks)))
    for col, kk in enumerate(sorted(set(ks))):
        lab = all_cuts[:, col].astype(np.int64)
        cuts[kk] = lab
        if 2 <= kk <= n - 1:
            sil[kk] = float(silhouette_score(D, lab, metric="precomputed"))
    if k is not None:
        return cuts[min(k, n)], sil, "given"
    if not sil:
        return np.zeros(n, dtype=np.int64), {}, "single"
    best = max(sil, key=lambda kk: (round(sil[kk], 12), -kk))
    return cuts[best], sil, "silhouette"


def _renumber_by_size(lab: IntArray) -> IntArray:
    sizes = np.bincount(lab)
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    new = np.empty_like(order)
    new[order] = np.arange(len(order))
    return new[lab].astype(np.int64)


def cluster_dense(
    E: npt.NDArray[np.floating[Any]],
    *,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    doc_ids: DocIds = None,
    method: Literal["kmeans", "agglomerative"] = "kmeans",
    max_fit_docs: int = 3000,
    n_examples: int = 3,
    seed: int = 0,
) -> Clustering:
    """Cluster dense document embeddings by cosine, for comparison with :func:`cluster_documents`.

    ``kmeans``: k-means on L2-normalised rows (spherical-like), silhouette (cosine) on at most
    ``max_fit_docs`` documents to choose k. ``agglomerative``: average linkage on cosine distance
    over at most ``max_fit_docs`` sampled documents, the rest joining the nearest cluster centre.
    Returns the same :class:`Clustering` as the sparse method, without latents.

    Raises:
        InputError: ``E`` is not 2-D with at least 2 rows, doc ids do not match, or bad k settings.
    """
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2 or E.shape[0] < 2:
        raise InputError(f"E must be a 2-D array with at least 2 rows, got shape {E.shape}")
    _check_k(k, k_range)
    if method not in ("kmeans", "agglomerative"):
        raise InputError(f"unknown method {method!r}; choose kmeans or agglomerative")
    n = E.shape[0]
    ids = check_doc_ids(doc_ids, n)
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    U = E / np.where(norms > 0, norms, 1.0)
    rng = np.random.default_rng(seed)
    fit = np.arange(n) if n <= max_fit_docs else np.sort(rng.choice(n, max_fit_docs, replace=False))
    sil: dict[int, float] = {}
    chosen_by: Literal["given", "silhouette", "single"]
    if method == "kmeans":
        ks = [k] if k is not None else [kk for kk in range(k_range[0], k_range[1] + 1) if kk < n]
        runs: dict[int, IntArray] = {}
        for kk in ks:
            lab = KMeans(n_clusters=min(kk, n), n_init=4, random_state=seed).fit_predict(U).astype(np.int64)
            runs[kk] = lab
            if 2 <= len(np.unique(lab[fit])) <= len(fit) - 1:
                sil[kk] = float(silhouette_score(U[fit], lab[fit], metric="cosine"))
        if k is not None:
            lab, chosen_by = runs[k], "given"
        elif sil:
            best = max(sil, key=lambda kk: (round(sil[kk], 12), -kk))
            lab, chosen_by = runs[best], "silhouette"
        else:
            lab, chosen_by = np.zeros(n, dtype=np.int64), "single"
    else:
        Uf = U[fit]
        D = np.clip(1.0 - Uf @ Uf.T, 0.0, 2.0)
        np.fill_diagonal(D, 0.0)
        lab_f, sil, chosen_by = _choose_tree_cut(D, k, k_range)
        centres = np.vstack([Uf[lab_f == c].mean(axis=0) for c in range(lab_f.max() + 1)])
        lab = np.argmax(U @ centres.T, axis=1).astype(np.int64)
        lab[fit] = lab_f
    lab = _renumber_by_size(lab)
    n_clusters = int(lab.max()) + 1
    clusters = []
    for c in range(n_clusters):
        members = np.flatnonzero(lab == c)
        centre = U[members].mean(axis=0)
        close = U[members] @ centre
        ex = members[np.lexsort((members, -close))[:n_examples]]
        clusters.append(
            Cluster(
                cluster=c,
                size=len(members),
                share=len(members) / n,
                top_latents=[],
                examples=[doc_id(ids, int(r)) for r in ex],
            )
        )
    return Clustering(
        method=f"{method} on cosine over dense embeddings",
        n_docs=n,
        k=n_clusters,
        k_chosen_by=chosen_by,
        silhouette=sil.get(n_clusters),
        silhouette_by_k=sil,
        selected_latents=[],
        n_unassigned=0,
        unassigned_examples=[],
        clusters=clusters,
        assignment=[int(v) for v in lab],
        placed=[int(v) for v in lab],
    )


def adjusted_rand(
    labels_true: Sequence[Any] | npt.NDArray[Any], labels_pred: Sequence[Any] | npt.NDArray[Any]
) -> float:
    """Adjusted Rand index between two labelings (unassigned -1 counts as one more group).

    Raises:
        InputError: the labelings differ in length.
    """
    if len(labels_true) != len(labels_pred):
        raise InputError(f"labelings differ in length: {len(labels_true)} vs {len(labels_pred)}")
    return float(adjusted_rand_score(np.asarray(labels_true), np.asarray(labels_pred)))
