"""Trends across ordered groups: which latents fire more (or less) often from one group to the next.

The groups are ordered (model releases, dates, length buckets...), and each is scored by its rank
0, 1, ..., G-1. Each latent's firing is tested for a monotone trend with the Cochran-Armitage test in its
permutation (conditional) form. When the groups answer the same prompts, the rows are stratified by
prompt (Mantel's extension): each prompt is compared only with itself across groups, so prompts that
are easy or hard for every group add no noise. Without strata the variance is Cochran-Armitage's times
N / (N - 1).

For one latent with ``x_s`` firing documents among the ``N_s`` of stratum ``s``, ``A_s = sum of scores``
and ``Q_s = sum of squared scores`` over the stratum's documents:

    T   = sum over firing documents of their score  -  sum_s x_s * A_s / N_s
    Var = sum_s x_s (N_s - x_s) (N_s Q_s - A_s^2) / (N_s^2 (N_s - 1))
    z   = T / sqrt(Var)

All of it is vectorised over latents with sparse products; per-group frequencies with Wilson intervals
and example documents are computed only for the rows of the returned page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.stats as sps
from pydantic import BaseModel, Field

from saescope.analyses import stats
from saescope.analyses.common import (
    DocIds,
    FloatArray,
    IntArray,
    Labels,
    as_csr,
    binarize,
    check_doc_ids,
    check_labels,
    check_page,
    doc_id,
    label_of,
    page_footer,
    render_table,
    top_order,
    top_rows_per_column,
)
from saescope.errors import InputError

TrendDirection = Literal["both", "rising", "falling"]
TrendRank = Literal["z", "slope", "p"]


class TrendRow(BaseModel):
    """One latent's firing frequency across the ordered groups, and its trend test."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    counts: list[int] = Field(description="documents of each group in which it fires, in group order")
    freqs: list[float] = Field(description="counts / group sizes")
    ci_low: list[float] = Field(description="Wilson 95% interval of each group's frequency, low end")
    ci_high: list[float] = Field(description="Wilson 95% interval of each group's frequency, high end")
    slope: float = Field(description="least-squares change in frequency per group step")
    z: float = Field(description="Cochran-Armitage trend statistic (positive: rises along the order)")
    p: float = Field(description="two-sided p-value of z (normal approximation)")
    q: float = Field(description="Benjamini-Hochberg adjusted p-value over all tested latents")
    examples_first: list[str] = Field(description="ids of documents of the first group where it fires, strongest first")
    examples_last: list[str] = Field(description="ids of documents of the last group where it fires, strongest first")


class Trend(BaseModel):
    """Latents whose firing frequency rises or falls along ordered groups, one page of them."""

    groups: list[str] = Field(description="the groups, in order")
    n_per_group: list[int] = Field(description="documents in each group")
    stratified: bool = Field(description="whether rows were compared only within their stratum (e.g. prompt)")
    n_strata: int = Field(description="strata with at least two documents (1 when not stratified)")
    n_tested: int = Field(description="latents firing in at least min_support documents")
    n_significant: int = Field(description="tested latents with q <= alpha")
    alpha: float
    min_support: int
    direction: TrendDirection
    rank_by: TrendRank
    total: int = Field(description="rows available across all pages")
    cursor: int
    next_cursor: int | None
    rows: list[TrendRow]

    def to_text(self) -> str:
        strat = f", within {self.n_strata} strata" if self.stratified else ""
        head = (
            f"trend over {len(self.groups)} groups {' < '.join(self.groups[:8])}{' ...' if len(self.groups) > 8 else ''}"
            f" (n={'/'.join(str(n) for n in self.n_per_group[:8])}{strat}): {self.n_tested} latents tested, "
            f"{self.n_significant} with q<={self.alpha} (direction={self.direction}, rank_by={self.rank_by})"
        )
        table = render_table(
            ["latent", "label", "freq by group", "slope", "z", "q", "ex_first", "ex_last"],
            [
                [
                    r.latent,
                    r.label,
                    " ".join(f"{f:.2f}" for f in r.freqs[:10]),
                    r.slope,
                    r.z,
                    r.q,
                    r.examples_first,
                    r.examples_last,
                ]
                for r in self.rows
            ],
            max_cell=48,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.rows), self.next_cursor)])


def _indicator(index: IntArray, n_cols: int, n_rows: int) -> sp.csr_matrix:
    """An n_rows x n_cols matrix with a 1 at (index[j], j) for every j with index[j] >= 0."""
    keep = np.flatnonzero(index >= 0)
    data = np.ones(len(keep), dtype=np.float64)
    return sp.csr_matrix((data, (index[keep], keep)), shape=(n_rows, n_cols))


@dataclass(frozen=True)
class TrendCounts:
    """Per-latent counts a trend test needs. Counts of disjoint blocks of rows add up (``a + b``), so they can
    be taken shard by shard (:func:`saescope.analyses.streamed.group_trend_counts`)."""

    group: IntArray
    """groups x latents: rows of each group in which the latent fires."""
    stratum: sp.csr_matrix
    """strata x latents (int64, canonical): rows of each stratum in which the latent fires."""
    weighted: FloatArray
    """Per latent, the sum of the scores of the rows in a stratum where it fires."""

    @classmethod
    def empty(cls, n_groups: int, n_strata: int, d: int) -> TrendCounts:
        return cls(np.zeros((n_groups, d), dtype=np.int64), sp.csr_matrix((n_strata, d), dtype=np.int64), np.zeros(d))

    def __add__(self, other: TrendCounts) -> TrendCounts:
        stratum = (self.stratum + other.stratum).tocsr()
        stratum.sum_duplicates()
        return TrendCounts(self.group + other.group, stratum, self.weighted + other.weighted)


def trend_counts(
    B: sp.csr_matrix, groups: IntArray, n_groups: int, strata: IntArray, n_strata: int, scores: FloatArray | None = None
) -> TrendCounts:
    """:class:`TrendCounts` of the binary rows ``B``: row ``i`` is in group ``groups[i]`` and stratum ``strata[i]``
    (-1: in none) and has score ``scores[i]`` (by default its group index)."""
    if scores is None:
        scores = np.where(groups >= 0, groups, 0).astype(np.float64)
    use = strata >= 0
    group = np.asarray((_indicator(groups, B.shape[0], n_groups) @ B).todense(), dtype=np.int64)
    stratum = sp.csr_matrix(_indicator(np.where(use, strata, -1), B.shape[0], n_strata) @ B, dtype=np.int64)
    stratum.sum_duplicates()
    weighted = np.asarray(B.T @ (scores * use), dtype=np.float64).ravel()
    return TrendCounts(group, stratum, weighted)


def trend_statistics(
    B: sp.csr_matrix, scores: FloatArray, strata: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(T, Var, x)`` per latent for a binary matrix ``B`` whose rows have ``scores`` and belong to ``strata``
    (every row in one stratum; rows with a stratum < 0 are left out). See the module docstring."""
    n_strata = int(strata.max()) + 1 if len(strata) else 0
    counts = trend_counts(B, np.full(B.shape[0], -1), 0, strata, n_strata, scores)
    return trend_statistics_from_counts(counts, scores, strata)


def trend_statistics_from_counts(
    counts: TrendCounts, scores: FloatArray, strata: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(T, Var, x)`` per latent from the counts of rows with ``scores`` in ``strata`` (see the module docstring)."""
    use = strata >= 0
    n_strata = counts.stratum.shape[0]
    n_s = np.bincount(strata[use], minlength=n_strata).astype(np.float64)
    a_s = np.bincount(strata[use], weights=scores[use], minlength=n_strata)
    q_s = np.bincount(strata[use], weights=scores[use] ** 2, minlength=n_strata)
    Xs = counts.stratum
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_s = np.where(n_s > 0, a_s / n_s, 0.0)
        w_s = np.where(n_s > 1, (n_s * q_s - a_s**2) / (n_s**2 * (n_s - 1)), 0.0)
    t = counts.weighted - np.asarray(Xs.T @ mean_s).ravel()
    var = np.asarray(Xs.T @ (w_s * n_s)).ravel() - np.asarray(Xs.multiply(Xs).T @ w_s).ravel()
    x = np.asarray(Xs.sum(axis=0)).ravel().astype(np.float64)
    return t, np.maximum(var, 0.0), x


def _slopes(freqs: FloatArray) -> FloatArray:
    """Least-squares slope of each column of ``freqs`` (groups x latents) against 0..G-1."""
    g = np.arange(freqs.shape[0], dtype=np.float64)
    centred = g - g.mean()
    denom = float((centred**2).sum()) or 1.0
    out: FloatArray = centred @ (freqs - freqs.mean(axis=0)) / denom
    return out


RowExamples = Callable[[IntArray, list[int], int], dict[int, list[int]]]
"""``(rows, latents, n)`` -> for each latent, up to ``n`` indices into ``rows`` (rows of the analysed set)
where it fires, strongest activation first (ties: lower index)."""


def latent_trends(
    X: Any,
    groups: npt.ArrayLike,
    group_names: Sequence[str],
    labels: Labels,
    *,
    strata: npt.ArrayLike | None = None,
    doc_ids: DocIds = None,
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    direction: TrendDirection = "both",
    rank_by: TrendRank = "z",
    n_examples: int = 3,
) -> Trend:
    """Test every latent firing in at least ``min_support`` documents for a monotone trend across the
    ordered groups (row ``i`` is in group ``groups[i]``, an index into ``group_names``; -1 leaves it out).

    With ``strata`` (a stratum index per row, e.g. the prompt the row answers; -1 leaves it out), rows are
    compared only within their stratum. p-values are adjusted with Benjamini-Hochberg over the tested
    latents; rows are ranked by ``|z|`` (or ``|slope|``, or ``p``) within the requested direction.

    Raises:
        InputError: fewer than two non-empty groups, group or stratum indices that do not fit, doc ids that
            do not match the rows, or an argument out of range.
    """
    M = as_csr(X)
    g_idx, s_idx = trend_rows(M.shape[0], groups, len(group_names), strata)
    counts = trend_counts(binarize(M), g_idx, len(group_names), s_idx, int(s_idx.max()) + 1 if len(s_idx) else 0)

    def examples(rows: IntArray, latents: list[int], n: int) -> dict[int, list[int]]:
        return top_rows_per_column(M[rows], latents, n)

    return latent_trends_from_counts(
        counts,
        g_idx,
        group_names,
        labels,
        examples=examples,
        strata=s_idx if strata is not None else None,
        doc_ids=doc_ids,
        min_support=min_support,
        top_k=top_k,
        cursor=cursor,
        alpha=alpha,
        direction=direction,
        rank_by=rank_by,
        n_examples=n_examples,
    )


def trend_rows(n: int, groups: npt.ArrayLike, n_groups: int, strata: npt.ArrayLike | None) -> tuple[IntArray, IntArray]:
    """Each row's group and stratum as :func:`latent_trends` uses them (no strata: one stratum of the rows in a
    group; a row in no group is in no stratum).

    Raises:
        InputError: group or stratum indices that do not give one value per row or do not fit.
    """
    g_idx = np.asarray(groups, dtype=np.int64)
    if g_idx.shape != (n,):
        raise InputError(f"groups must give one group per row ({n}), got shape {g_idx.shape}")
    if len(g_idx) and (g_idx.max() >= n_groups or g_idx.min() < -1):
        raise InputError(f"group indices must be -1 (left out) or 0..{n_groups - 1}")
    if strata is None:
        return g_idx, np.where(g_idx >= 0, 0, -1)
    s_idx = np.asarray(strata, dtype=np.int64)
    if s_idx.shape != (n,):
        raise InputError(f"strata must give one stratum per row ({n}), got shape {s_idx.shape}")
    if len(s_idx) and s_idx.min() < -1:
        raise InputError("stratum indices must be -1 (left out) or >= 0")
    return g_idx, np.where(g_idx >= 0, s_idx, -1)


def latent_trends_from_counts(
    counts: TrendCounts,
    groups: IntArray,
    group_names: Sequence[str],
    labels: Labels,
    *,
    examples: RowExamples,
    strata: IntArray | None = None,
    doc_ids: DocIds = None,
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    direction: TrendDirection = "both",
    rank_by: TrendRank = "z",
    n_examples: int = 3,
) -> Trend:
    """:func:`latent_trends` from the counts of its rows (:func:`trend_counts`, or taken shard by shard), with
    ``groups`` and ``strata`` as :func:`trend_rows` gives them and ``examples`` finding a page's documents.

    Raises:
        InputError: as :func:`latent_trends`, or counts that do not match the groups and strata.
    """
    names = [str(name) for name in group_names]
    g_idx, s_idx = trend_rows(len(groups), groups, len(names), strata)
    n = len(g_idx)
    d = counts.group.shape[1]
    n_strata_all = int(s_idx.max()) + 1 if len(s_idx) else 0
    if (
        counts.group.shape[0] != len(names)
        or counts.stratum.shape != (n_strata_all, d)
        or counts.weighted.shape != (d,)
    ):
        raise InputError(
            f"trend counts of shape {counts.group.shape} / {counts.stratum.shape} do not match {len(names)} groups "
            f"and {n_strata_all} strata"
        )
    n_g = np.bincount(g_idx[g_idx >= 0], minlength=len(names))
    if (n_g > 0).sum() < 2:
        raise InputError(
            f"a trend needs at least two non-empty groups; sizes: {dict(zip(names, n_g.tolist(), strict=True))}"
        )
    check_page(top_k, cursor)
    if not 0 < alpha < 1 or min_support < 1:
        raise InputError("alpha must be in (0, 1) and min_support >= 1")
    if direction not in ("both", "rising", "falling") or rank_by not in ("z", "slope", "p"):
        raise InputError("direction is both, rising or falling; rank_by is z, slope or p")
    check_labels(labels, d)
    ids = check_doc_ids(doc_ids, n)

    scores = np.where(g_idx >= 0, g_idx, 0).astype(np.float64)
    t_stat, var, x = trend_statistics_from_counts(counts, scores, s_idx)
    group_counts = counts.group  # groups x latents
    with np.errstate(divide="ignore", invalid="ignore"):
        freqs = group_counts / np.maximum(n_g, 1)[:, None]
        z_all = np.where(var > 0, t_stat / np.sqrt(var), 0.0)
    latents = np.flatnonzero(x >= min_support)
    z = z_all[latents]
    p = 2 * sps.norm.sf(np.abs(z))
    q = stats.benjamini_hochberg(p) if len(p) else p
    slope = _slopes(freqs[:, latents])

    keep = np.arange(len(latents)) if direction == "both" else np.flatnonzero(z > 0 if direction == "rising" else z < 0)
    key = {"z": np.abs(z), "slope": np.abs(slope), "p": -p}[rank_by][keep]
    order = top_order([key, -latents[keep].astype(np.float64)], cursor + top_k)[cursor:]
    idx = keep[order]
    nxt = cursor + top_k if cursor + top_k < len(keep) else None
    page = [int(v) for v in latents[idx]]
    present = [i for i, size in enumerate(n_g) if size > 0]
    first, last = present[0], present[-1]
    rows_first, rows_last = np.flatnonzero(g_idx == first), np.flatnonzero(g_idx == last)
    ex_first = examples(rows_first, page, n_examples)
    ex_last = examples(rows_last, page, n_examples)
    rows = []
    for lat, i in zip(page, idx, strict=True):
        lo, hi = stats.wilson_interval(group_counts[:, lat], n_g)
        rows.append(
            TrendRow(
                latent=lat,
                label=label_of(labels, lat),
                counts=[int(c) for c in group_counts[:, lat]],
                freqs=[float(f) for f in freqs[:, lat]],
                ci_low=[float(v) for v in np.nan_to_num(lo)],
                ci_high=[float(v) for v in np.nan_to_num(hi)],
                slope=float(slope[i]),
                z=float(z[i]),
                p=float(p[i]),
                q=float(q[i]),
                examples_first=[doc_id(ids, int(rows_first[r])) for r in ex_first[lat]],
                examples_last=[doc_id(ids, int(rows_last[r])) for r in ex_last[lat]],
            )
        )
    n_strata = int((np.bincount(s_idx[s_idx >= 0]) >= 2).sum()) if (s_idx >= 0).any() else 0
    return Trend(
        groups=names,
        n_per_group=[int(v) for v in n_g],
        stratified=strata is not None,
        n_strata=n_strata,
        n_tested=len(latents),
        n_significant=int((q[keep] <= alpha).sum()),
        alpha=alpha,
        min_support=min_support,
        direction=direction,
        rank_by=rank_by,
        total=len(keep),
        cursor=cursor,
        next_cursor=nxt,
        rows=rows,
    )
