"""Which latents fire together, and which latents go with a metadata column.

Co-occurrence never builds a dense latent x latent matrix: it multiplies the binarised matrix with
itself in blocks of latents (sparse x sparse), keeping only pairs seen in at least ``min_cooc``
documents. Metadata association is vectorised over all latents (one sparse product or one sort of
the stored entries), never one latent at a time.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field
from scipy import stats as sps

from saescope.analyses import stats
from saescope.analyses.common import (
    FloatArray,
    IntArray,
    Labels,
    as_csr,
    binarize,
    check_labels,
    check_latent,
    check_page,
    column_counts,
    column_entries,
    label_of,
    page_footer,
    render_table,
    top_order,
)
from saescope.errors import InputError, clip

# Latents per block of the sparse self-product: bounds the memory of one block's pair counts.
COOC_BLOCK = 1024


class CooccurrencePair(BaseModel):
    """Two latents that fire in the same documents more often than chance."""

    latent_a: int = Field(description="first latent (the lower index)")
    label_a: str = Field(description="label of latent_a")
    latent_b: int = Field(description="second latent")
    label_b: str = Field(description="label of latent_b")
    count_ab: int = Field(description="documents where both fire")
    count_a: int = Field(description="documents where latent_a fires")
    count_b: int = Field(description="documents where latent_b fires")
    npmi: float = Field(description="normalised PMI, log(p_ab / (p_a p_b)) / -log p_ab, in [-1, 1]")
    label_similarity: float | None = Field(description="cosine of the two label embeddings, when given")


class Cooccurrence(BaseModel):
    """Latent pairs ranked by NPMI over documents, one page of them."""

    n_docs: int = Field(description="documents in the matrix")
    min_cooc: int = Field(description="pairs seen together in fewer documents are ignored")
    latent: int | None = Field(description="when set, only pairs that include this latent")
    max_label_similarity: float | None = Field(description="pairs whose labels are more similar were dropped")
    total: int = Field(description="pairs with count_ab >= min_cooc (before dropping pairs with similar labels)")
    n_dropped_similar: int = Field(description="pairs dropped for similar labels while filling this page")
    cursor: int = Field(description="index of the first pair of this page in the filtered ranking")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    pairs: list[CooccurrencePair]

    def to_text(self) -> str:
        scope = f" with latent {self.latent}" if self.latent is not None else ""
        head = f"co-occurring latent pairs{scope} over {self.n_docs} docs (count_ab >= {self.min_cooc}), by NPMI"
        if self.max_label_similarity is not None:
            head += f"; {self.n_dropped_similar} pairs with label cosine > {self.max_label_similarity} dropped"
        table = render_table(
            ["npmi", "n_ab", "a", "label_a", "b", "label_b", "n_a", "n_b"],
            [
                [r.npmi, r.count_ab, r.latent_a, r.label_a, r.latent_b, r.label_b, r.count_a, r.count_b]
                for r in self.pairs
            ],
            max_cell=44,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.pairs), self.next_cursor)])


def latent_cooccurrence(
    X: Any,
    labels: Labels,
    *,
    min_cooc: int = 5,
    top_k: int = 50,
    cursor: int = 0,
    latent: int | None = None,
    label_embeddings: npt.NDArray[np.floating[Any]] | None = None,
    max_label_similarity: float | None = None,
) -> Cooccurrence:
    """Latent pairs that fire together, ranked by NPMI over binarised documents.

    ``NPMI = log(p_ab / (p_a p_b)) / -log(p_ab)`` with probabilities over documents (1 when the two
    always fire together). Pairs seen together in fewer than ``min_cooc`` documents are ignored,
    which also keeps chance pairs of rare latents out. With ``label_embeddings`` (d_sae x dim, rows
    L2-normalised) and ``max_label_similarity``, pairs whose labels have a cosine above it are
    skipped (they co-occur because they are near-duplicates). Ties: higher count_ab, then lower ids.

    Raises:
        InputError: min_cooc < 1, bad paging, ``latent`` out of range, or embeddings of the wrong shape,
            or ``max_label_similarity`` without ``label_embeddings``.
    """
    M = as_csr(X)
    n, d = M.shape
    check_page(top_k, cursor)
    check_labels(labels, d)
    if min_cooc < 1:
        raise InputError(f"min_cooc must be >= 1, got {min_cooc}")
    if latent is not None:
        check_latent(latent, d)
    if max_label_similarity is not None and label_embeddings is None:
        raise InputError("max_label_similarity needs label_embeddings (one row per latent)")
    if label_embeddings is not None and (label_embeddings.ndim != 2 or label_embeddings.shape[0] != d):
        raise InputError(f"label_embeddings must have shape ({d}, dim), got {label_embeddings.shape}")

    counts = column_counts(M)
    return cooccurrence_from_counts(
        n,
        counts,
        _pair_counts(binarize(M), counts, min_cooc, latent),
        labels,
        min_cooc=min_cooc,
        top_k=top_k,
        cursor=cursor,
        latent=latent,
        label_embeddings=label_embeddings,
        max_label_similarity=max_label_similarity,
    )


def cooccurrence_pairs(
    C: sp.csr_matrix, latents: IntArray, min_cooc: int, latent: int | None = None
) -> tuple[IntArray, IntArray, IntArray]:
    """The pairs ``a < b`` of ``latents`` that fire together in at least ``min_cooc`` documents, with their counts,
    from the upper-triangular pair counts ``C`` (as :func:`saescope.analyses.streamed.cooccurrence_counts` gives
    them; position ``i`` is ``latents[i]``); with ``latent``, only the pairs it is in."""
    T = sp.triu(C, k=1, format="coo")
    keep = T.data >= min_cooc
    a, b = latents[T.row[keep]].astype(np.int64), latents[T.col[keep]].astype(np.int64)
    c = T.data[keep].astype(np.int64)
    if latent is not None:
        mine = (a == latent) | (b == latent)
        a, b, c = a[mine], b[mine], c[mine]
    return a, b, c


def cooccurrence_from_counts(
    n: int,
    counts: IntArray,
    pair_counts: tuple[IntArray, IntArray, IntArray],
    labels: Labels,
    *,
    min_cooc: int = 5,
    top_k: int = 50,
    cursor: int = 0,
    latent: int | None = None,
    label_embeddings: npt.NDArray[np.floating[Any]] | None = None,
    max_label_similarity: float | None = None,
) -> Cooccurrence:
    """:func:`latent_cooccurrence` from the number of documents, each latent's firing count and the pair counts
    ``(a, b, count_ab)`` with ``a < b`` and ``count_ab >= min_cooc`` (:func:`cooccurrence_pairs`).

    Raises:
        InputError: as :func:`latent_cooccurrence`, or pairs of unequal lengths.
    """
    d = len(counts)
    check_page(top_k, cursor)
    check_labels(labels, d)
    if n < 1:
        raise InputError(f"co-occurrence needs documents, got n={n}")
    if label_embeddings is not None and (label_embeddings.ndim != 2 or label_embeddings.shape[0] != d):
        raise InputError(f"label_embeddings must have shape ({d}, dim), got {label_embeddings.shape}")
    ia, ib, cab = pair_counts
    if not len(ia) == len(ib) == len(cab):
        raise InputError(f"pairs must be three arrays of one length, got {len(ia)}, {len(ib)}, {len(cab)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        p_ab = cab / n
        pmi = np.log(p_ab) - np.log(counts[ia] / n) - np.log(counts[ib] / n)
        npmi = np.where(p_ab < 1, pmi / -np.log(p_ab), 1.0)
    total = len(cab)
    keys = [npmi, cab.astype(np.float64), -ia.astype(np.float64), -ib.astype(np.float64)]

    need = cursor + top_k
    dropped = 0
    if max_label_similarity is None or label_embeddings is None:
        order = top_order(keys, need)
        sel = order[cursor:need]
        nxt = need if need < total else None
    else:
        k = min(total, 2 * need)
        while True:
            order = top_order(keys, k)
            ok = _rowwise_cos(label_embeddings, ia[order], ib[order]) <= max_label_similarity
            if ok.sum() >= need or k >= total:
                break
            k = min(total, 4 * k)
        kept = np.flatnonzero(ok)
        sel = order[kept[cursor:need]]
        last = kept[need - 1] if len(kept) >= need else len(order) - 1
        dropped = int((~ok[: last + 1]).sum())
        nxt = need if len(kept) > need or (k < total and len(kept) >= need) else None
    sims = _rowwise_cos(label_embeddings, ia[sel], ib[sel]) if label_embeddings is not None else None
    pairs = [
        CooccurrencePair(
            latent_a=int(ia[i]),
            label_a=label_of(labels, int(ia[i])),
            latent_b=int(ib[i]),
            label_b=label_of(labels, int(ib[i])),
            count_ab=int(cab[i]),
            count_a=int(counts[ia[i]]),
            count_b=int(counts[ib[i]]),
            npmi=float(npmi[i]),
            label_similarity=None if sims is None else float(sims[r]),
        )
        for r, i in enumerate(sel)
    ]
    return Cooccurrence(
        n_docs=n,
        min_cooc=min_cooc,
        latent=latent,
        max_label_similarity=max_label_similarity,
        total=total,
        n_dropped_similar=dropped,
        cursor=cursor,
        next_cursor=nxt,
        pairs=pairs,
    )


def _rowwise_cos(E: npt.NDArray[np.floating[Any]], ia: IntArray, ib: IntArray) -> FloatArray:
    out = np.empty(len(ia))
    for lo in range(0, len(ia), 65536):
        a, b = E[ia[lo : lo + 65536]], E[ib[lo : lo + 65536]]
        out[lo : lo + 65536] = np.einsum("ij,ij->i", a, b)
    return out


def _pair_counts(
    B: sp.csr_matrix, counts: IntArray, min_cooc: int, latent: int | None
) -> tuple[IntArray, IntArray, IntArray]:
    """Pairs ``a < b`` with their co-occurrence counts ``>= min_cooc`` (sparse self-product, in blocks)."""
    # Latents firing in fewer than min_cooc documents cannot be in a kept pair: drop them up front.
    active = np.flatnonzero(counts >= min_cooc)
    if len(active) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    Ba = B[:, active] if len(active) < B.shape[1] else B
    BT = Ba.T.tocsr()
    parts_a, parts_b, parts_c = [], [], []
    if latent is not None:
        pos = np.searchsorted(active, latent)
        if pos >= len(active) or active[pos] != latent:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        row = (BT[pos] @ Ba).tocoo()
        keep = (row.data >= min_cooc) & (row.col != pos)
        other = active[row.col[keep]]
        a = np.minimum(other, latent)
        b = np.maximum(other, latent)
        return a.astype(np.int64), b.astype(np.int64), row.data[keep].astype(np.int64)
    m = len(active)
    for lo in range(0, m, COOC_BLOCK):
        hi = min(m, lo + COOC_BLOCK)
        # only columns >= lo: the lower triangle is the mirror image
        C = (BT[lo:hi] @ Ba[:, lo:]).tocoo()
        r = C.row.astype(np.int64) + lo
        c = C.col.astype(np.int64) + lo
        keep = (C.data >= min_cooc) & (c > r)
        parts_a.append(active[r[keep]])
        parts_b.append(active[c[keep]])
        parts_c.append(C.data[keep].astype(np.int64))
    return np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_c)


class EnrichmentRow(BaseModel):
    """A latent that fires more often in one category than in the rest."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    count_in: int = Field(description="documents of the category where it fires")
    freq_in: float = Field(description="firing frequency inside the category")
    freq_out: float = Field(description="firing frequency in all other documents with a value")
    diff: float = Field(description="freq_in - freq_out")
    ci_low: float = Field(description="lower end of the Newcombe 95% interval of diff (the ranking key)")
    ratio: float = Field(description="smoothed freq_in / freq_out")
    p: float = Field(description="two-sided p (z-test, or Fisher's exact test when small)")
    q: float = Field(description="Benjamini-Hochberg q over all categories x tested latents")


class CategoryEnrichment(BaseModel):
    """The latents most enriched in one category of the column."""

    category: str = Field(description="the category value")
    n_docs: int = Field(description="documents in the category")
    n_significant: int = Field(description="latents enriched in it with q <= alpha")
    rows: list[EnrichmentRow]


class CorrelationRow(BaseModel):
    """Spearman rank correlation between a latent and a numeric (or date) column."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    rho: float = Field(description="Spearman correlation between the latent's value per document and the column")
    p: float = Field(description="two-sided p-value (t approximation, as scipy.stats.spearmanr)")
    q: float = Field(description="Benjamini-Hochberg q over the tested latents")
    freq: float = Field(description="fraction of documents (with a value) where the latent fires")
    mean_when_firing: float | str = Field(description="column mean over documents where it fires (a date for dates)")
    mean_when_not: float | str = Field(description="column mean over documents where it does not fire")


class TimelineBucket(BaseModel):
    """Firing frequency of the top latents in one period."""

    period: str = Field(description="the period: YYYY, YYYY-MM or YYYY-MM-DD")
    n_docs: int = Field(description="documents in the period")
    freq: dict[int, float] = Field(description="latent -> fraction of the period's documents where it fires")


class MetadataAssociation(BaseModel):
    """How latents relate to one metadata column."""

    column: str = Field(description="the metadata column")
    kind: Literal["categorical", "numeric", "datetime"] = Field(description="how the column was treated")
    n_docs: int = Field(description="documents with a value in the column")
    n_missing: int = Field(description="documents without a value (left out)")
    n_tested: int = Field(description="latents firing in at least min_support of those documents")
    alpha: float = Field(description="false discovery rate used for the n_significant counts")
    value: Literal["activation", "binary"] = Field(description="correlations use the activation or fires/not")
    n_categories_total: int | None = Field(default=None, description="distinct categories in the column")
    categories: list[CategoryEnrichment] | None = Field(default=None, description="per-category enrichment")
    n_significant: int | None = Field(default=None, description="correlated latents with q <= alpha")
    correlations: list[CorrelationRow] | None = Field(default=None, description="top latents by |rho|")
    bucket: str | None = Field(default=None, description="period length of the timeline: day, month or year")
    timeline: list[TimelineBucket] | None = Field(default=None, description="frequency of the top latents over time")

    def to_text(self) -> str:
        head = (
            f"{self.column} ({self.kind}, {self.n_docs} docs, {self.n_missing} missing, {self.n_tested} latents tested)"
        )
        out = [head]
        if self.categories is not None:
            if self.n_categories_total is not None and self.n_categories_total > len(self.categories):
                out.append(f"showing {len(self.categories)} of {self.n_categories_total} categories (largest first)")
            for cat in self.categories:
                out.append(
                    f"\n[{cat.category}] n={cat.n_docs}, {cat.n_significant} enriched latents with q<={self.alpha}"
                )
                out.append(
                    render_table(
                        ["latent", "label", "freq_in", "freq_out", "diff", "ci_low", "ratio", "q"],
                        [[r.latent, r.label, r.freq_in, r.freq_out, r.diff, r.ci_low, r.ratio, r.q] for r in cat.rows],
                    )
                )
        if self.correlations is not None:
            out.append(f"{self.n_significant} latents with q<={self.alpha}; Spearman on {self.value}")
            out.append(
                render_table(
                    ["latent", "label", "rho", "q", "freq", "mean_firing", "mean_not"],
                    [
                        [r.latent, r.label, r.rho, r.q, r.freq, r.mean_when_firing, r.mean_when_not]
                        for r in self.correlations
                    ],
                )
            )
        if self.timeline:
            lats = list(self.timeline[0].freq)
            out.append(f"\nfrequency by {self.bucket}")
            out.append(
                render_table(
                    ["period", "n", *[str(v) for v in lats]],
                    [[b.period, b.n_docs, *[b.freq[v] for v in lats]] for b in self.timeline],
                )
            )
        return "\n".join(out)


def latent_metadata_association(
    X: Any,
    meta: pd.DataFrame,
    column: str,
    labels: Labels,
    *,
    kind: Literal["auto", "categorical", "numeric", "datetime"] = "auto",
    value: Literal["activation", "binary"] = "activation",
    min_support: int = 5,
    top_k: int = 10,
    alpha: float = 0.05,
    max_categories: int = 20,
    bucket: Literal["auto", "day", "month", "year"] = "auto",
    n_timeline_latents: int = 5,
) -> MetadataAssociation:
    """Latents associated with a metadata column.

    * categorical (strings, booleans, categories; ``auto`` picks this for non-numeric columns): for each
      of the ``max_categories`` largest categories, latents whose firing frequency inside the category
      exceeds that in all other documents, tested as in :func:`~saescope.analyses.diff.diff_sets`,
      BH-adjusted jointly over categories x latents, ranked by the Newcombe lower bound of the difference.
    * numeric / datetime: Spearman correlation between each latent's value per document (its activation,
      0 where it does not fire; or fires/not with ``value="binary"``) and the column, BH-adjusted, top
      ``top_k`` by |rho|. For dates, a timeline of the top ``n_timeline_latents`` latents' frequency per
      period; ``bucket="auto"`` uses days for spans under 90 days, months up to 3 years, else years.

    Documents with no value in the column are left out. Latents firing in fewer than ``min_support``
    of the remaining documents are not tested.

    Raises:
        InputError: the column is unknown, ``meta`` and ``X`` differ in length, the column has no
            values, or an argument is out of range.
    """
    M = as_csr(X)
    n, d = M.shape
    check_labels(labels, d)
    if len(meta) != n:
        raise InputError(f"meta has {len(meta)} rows but X has {n}; they must be aligned")
    if column not in meta.columns:
        raise InputError(f"unknown column {clip(column)!r}; columns: {', '.join(map(str, meta.columns))}")
    if not 1 <= top_k <= 1000:
        raise InputError(f"top_k must be between 1 and 1000, got {top_k}")
    if not 0 < alpha < 1 or min_support < 1 or max_categories < 1:
        raise InputError("need 0 < alpha < 1, min_support >= 1 and max_categories >= 1")
    s = meta[column]
    if kind == "auto":
        if pd.api.types.is_datetime64_any_dtype(s):
            kind = "datetime"
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            kind = "numeric"
        else:
            kind = "categorical"
    present = s.notna().to_numpy(dtype=bool)
    rows = np.flatnonzero(present)
    if len(rows) < 3:
        raise InputError(f"column {column!r} has {len(rows)} documents with a value; need at least 3")
    Ms = M if len(rows) == n else M[rows]
    base = MetadataAssociation(
        column=column, kind=kind, n_docs=len(rows), n_missing=n - len(rows), n_tested=0, alpha=alpha, value=value
    )
    if kind == "categorical":
        return _categorical(Ms, s[present], labels, base, min_support, top_k, max_categories)
    if kind == "numeric":
        y = pd.to_numeric(s[present], errors="coerce")
        if y.isna().any():
            raise InputError(f"column {column!r} is not numeric; use kind='categorical'")
        return _numeric(Ms, y.to_numpy(dtype=np.float64), labels, base, min_support, top_k, value, dates=False)
    if kind == "datetime":
        try:
            t = pd.to_datetime(s[present])
        except (ValueError, TypeError) as exc:
            raise InputError(f"column {column!r} does not hold dates: {exc}") from exc
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = t.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        res = _numeric(Ms, ns.astype(np.float64), labels, base, min_support, top_k, value, dates=True)
        return _timeline(Ms, t, res, bucket, n_timeline_latents)
    raise InputError(f"unknown kind {kind!r}; choose auto, categorical, numeric or datetime")


def _categorical(
    M: sp.csr_matrix,
    s: pd.Series,
    labels: Labels,
    base: MetadataAssociation,
    min_support: int,
    top_k: int,
    max_categories: int,
) -> MetadataAssociation:
    n = M.shape[0]
    values = s.astype(str).to_numpy()
    cats, codes, sizes = np.unique(values, return_inverse=True, return_counts=True)
    order = np.lexsort((cats, -sizes))[:max_categories]
    # one row per reported category only, so a high-cardinality column (ids, free text) stays cheap
    slot = np.full(len(cats), -1, dtype=np.int64)
    slot[order] = np.arange(len(order))
    member = np.flatnonzero(slot[codes] >= 0)
    G = sp.csr_matrix((np.ones(len(member), dtype=np.int64), (slot[codes[member]], member)), shape=(len(order), n))
    per_cat = np.asarray((G @ binarize(M)).todense(), dtype=np.int64)
    total = column_counts(M)
    latents = np.flatnonzero(total >= min_support)
    k_in = per_cat[:, latents]
    n_in = sizes[order][:, None]
    k_out = total[latents][None, :] - k_in
    n_out = n - n_in
    _, p, _ = stats.proportion_test(k_in, n_in, k_out, n_out)
    q = stats.benjamini_hochberg(p.ravel()).reshape(p.shape)
    lo, _ = stats.newcombe_interval(k_in, n_in, k_out, n_out)
    f_in, f_out = k_in / n_in, k_out / n_out
    ratio = stats.smoothed_ratio(k_in, n_in, k_out, n_out)
    out: list[CategoryEnrichment] = []
    for r, c in enumerate(order):
        enriched = np.flatnonzero(f_in[r] > f_out[r])
        top = enriched[
            top_order(
                [lo[r, enriched], f_in[r, enriched] - f_out[r, enriched], -latents[enriched].astype(np.float64)], top_k
            )
        ]
        out.append(
            CategoryEnrichment(
                category=str(cats[c]),
                n_docs=int(sizes[c]),
                n_significant=int((q[r, enriched] <= base.alpha).sum()),
                rows=[
                    EnrichmentRow(
                        latent=int(latents[j]),
                        label=label_of(labels, int(latents[j])),
                        count_in=int(k_in[r, j]),
                        freq_in=float(f_in[r, j]),
                        freq_out=float(f_out[r, j]),
                        diff=float(f_in[r, j] - f_out[r, j]),
                        ci_low=float(lo[r, j]),
                        ratio=float(ratio[r, j]),
                        p=float(p[r, j]),
                        q=float(q[r, j]),
                    )
                    for j in top
                ],
            )
        )
    return base.model_copy(update={"n_tested": len(latents), "n_categories_total": len(cats), "categories": out})


def spearman_columns(M: sp.csr_matrix, y: FloatArray, binary: bool = False) -> tuple[FloatArray, FloatArray]:
    """Spearman rho and two-sided p of every column of ``M`` (zeros included) against ``y``.

    Equal to ``scipy.stats.spearmanr(M[:, j].toarray(), y)`` per column, computed for all columns
    from one sort of the stored entries. Constant columns get NaN.
    """
    n, d = M.shape
    ry = sps.rankdata(y)
    ryc = ry - ry.mean()
    syy = float(ryc @ ryc)
    C = M.tocsc()
    cols = np.repeat(np.arange(d), np.diff(C.indptr))
    rows = C.indices.astype(np.int64)
    vals = np.ones(C.nnz) if binary else C.data.astype(np.float64)
    order = np.lexsort((vals, cols))
    cols, rows, vals = cols[order], rows[order], vals[order]
    k = np.diff(C.indptr).astype(np.float64)
    z = n - k
    # 1-based rank of each entry among its column's non-zeros, ties averaged
    pos = np.arange(C.nnz) - C.indptr[cols] + 1.0
    new_run = np.ones(C.nnz, dtype=bool)
    if C.nnz > 1:
        new_run[1:] = (cols[1:] != cols[:-1]) | (vals[1:] != vals[:-1])
    run_id = np.cumsum(new_run) - 1
    run_first = pos[new_run]
    run_len = np.bincount(run_id)
    avg = run_first[run_id] + (run_len[run_id] - 1) / 2.0
    rx = z[cols] + avg
    c0 = (z + 1) / 2.0
    mean_r = (n + 1) / 2.0
    sxy = np.bincount(cols, weights=(rx - c0[cols]) * ryc[rows], minlength=d)
    sxx = z * (c0 - mean_r) ** 2 + np.bincount(cols, weights=(rx - mean_r) ** 2, minlength=d)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where((sxx > 0) & (syy > 0), sxy / np.sqrt(sxx * syy), np.nan)
        rho = np.clip(rho, -1.0, 1.0)
        t = rho * np.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
    p = 2 * sps.t.sf(np.abs(t), n - 2)
    return rho, np.where(np.isnan(rho), np.nan, p)


def _numeric(
    M: sp.csr_matrix,
    y: FloatArray,
    labels: Labels,
    base: MetadataAssociation,
    min_support: int,
    top_k: int,
    value: str,
    dates: bool,
) -> MetadataAssociation:
    if value not in ("activation", "binary"):
        raise InputError(f"unknown value {value!r}; choose activation or binary")
    n = M.shape[0]
    counts = column_counts(M)
    rho, p = spearman_columns(M, y, binary=value == "binary")
    tested = (counts >= min_support) & ~np.isnan(rho)
    latents = np.flatnonzero(tested)
    q = np.full(len(rho), np.nan)
    q[latents] = stats.benjamini_hochberg(p[latents])
    top = latents[top_order([np.abs(rho[latents]), -p[latents], -latents.astype(np.float64)], top_k)]
    # column means over firing / non-firing documents: one sparse product for the sums
    y_shift = y - y.mean() if dates else y
    sum_fire = np.asarray(binarize(M).T @ y_shift, dtype=np.float64)
    total = float(y_shift.sum())

    def mean(v: float) -> float | str:
        if np.isnan(v):
            return float("nan")
        if dates:
            return str(pd.Timestamp(round(v + y.mean())).floor("s").isoformat())
        return float(v)

    rows = []
    for j in top:
        k = counts[j]
        m_fire = sum_fire[j] / k
        m_not = (total - sum_fire[j]) / (n - k) if n > k else float("nan")
        rows.append(
            CorrelationRow(
                latent=int(j),
                label=label_of(labels, int(j)),
                rho=float(rho[j]),
                p=float(p[j]),
                q=float(q[j]),
                freq=float(k / n),
                mean_when_firing=mean(m_fire),
                mean_when_not=mean(m_not),
            )
        )
    return base.model_copy(
        update={
            "n_tested": len(latents),
            "n_significant": int((q[latents] <= base.alpha).sum()),
            "correlations": rows,
        }
    )


def _timeline(
    M: sp.csr_matrix, t: pd.Series, res: MetadataAssociation, bucket: str, n_latents: int
) -> MetadataAssociation:
    if bucket not in ("auto", "day", "month", "year"):
        raise InputError(f"unknown bucket {bucket!r}; choose auto, day, month or year")
    if bucket == "auto":
        span = t.max() - t.min()
        bucket = "day" if span < pd.Timedelta(days=90) else "month" if span < pd.Timedelta(days=3 * 366) else "year"
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[bucket]
    periods = t.dt.strftime(fmt).to_numpy()
    names, codes, sizes = np.unique(periods, return_inverse=True, return_counts=True)
    lats = [r.latent for r in (res.correlations or [])[:n_latents]]
    rows, cols, _ = column_entries(M, lats)
    freq: dict[int, npt.NDArray[np.float64]] = {}
    for lat in lats:
        hits = np.bincount(codes[rows[cols == lat]], minlength=len(names))
        freq[lat] = hits / sizes
    timeline = [
        TimelineBucket(period=str(name), n_docs=int(sizes[b]), freq={lat: float(freq[lat][b]) for lat in lats})
        for b, name in enumerate(names)
    ]
    return res.model_copy(update={"bucket": bucket, "timeline": timeline})
