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

from collections.abc import Sequence
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


def _indicator(index: IntArray, n_cols: int) -> sp.csr_matrix:
    """A (max(index)+1) x n matrix with a 1 at (index[j], j) for every j with index[j] >= 0."""
    keep = np.flatnonzero(index >= 0)
    n_rows = int(index[keep].max()) + 1 if len(keep) else 0
    data = np.ones(len(keep), dtype=np.float64)
    return sp.csr_matrix((data, (index[keep], keep)), shape=(n_rows, n_cols))


def trend_statistics(
    B: sp.csr_matrix, scores: FloatArray, strata: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(T, Var, x)`` per latent for a binary matrix ``B`` whose rows have ``scores`` and belong to ``strata``
    (every row in one stratum; rows with a stratum < 0 are left out). See the module docstring."""
    use = strata >= 0
    S = _indicator(np.where(use, strata, -1), B.shape[0])
    n_s = np.asarray(S.sum(axis=1)).ravel()
    a_s = S @ scores
    q_s = S @ (scores**2)
    Xs = (S @ B).tocsr()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_s = np.where(n_s > 0, a_s / n_s, 0.0)
        w_s = np.where(n_s > 1, (n_s * q_s - a_s**2) / (n_s**2 * (n_s - 1)), 0.0)
    weighted = B.T @ (scores * use)
    t = np.asarray(weighted).ravel() - np.asarray(Xs.T @ mean_s).ravel()
    var = np.asarray(Xs.T @ (w_s * n_s)).ravel() - np.asarray(Xs.multiply(Xs).T @ w_s).ravel()
    x = np.asarray(Xs.sum(axis=0)).ravel()
    return t, np.maximum(var, 0.0), x


def _slopes(freqs: FloatArray) -> FloatArray:
    """Least-squares slope of each column of ``freqs`` (groups x latents) against 0..G-1."""
    g = np.arange(freqs.shape[0], dtype=np.float64)
    centred = g - g.mean()
    denom = float((centred**2).sum()) or 1.0
    out: FloatArray = centred @ (freqs - freqs.mean(axis=0)) / denom
    return out


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
    n, d = M.shape
    g_idx = np.asarray(groups, dtype=np.int64)
    names = [str(name) for name in group_names]
    if g_idx.shape != (n,):
        raise InputError(f"groups must give one group per row ({n}), got shape {g_idx.shape}")
    if len(g_idx) and (g_idx.max() >= len(names) or g_idx.min() < -1):
        raise InputError(f"group indices must be -1 (left out) or 0..{len(names) - 1}")
    n_g = np.bincount(g_idx[g_idx >= 0], minlength=len(names))
    if (n_g > 0).sum() < 2:
        raise InputError(
            f"a trend needs at least two non-empty groups; sizes: {dict(zip(names, n_g.tolist(), strict=True))}"
        )
    if strata is None:
        s_idx = np.where(g_idx >= 0, 0, -1)
    else:
        s_idx = np.asarray(strata, dtype=np.int64)
        if s_idx.shape != (n,):
            raise InputError(f"strata must give one stratum per row ({n}), got shape {s_idx.shape}")
        s_idx = np.where(g_idx >= 0, s_idx, -1)
    check_page(top_k, cursor)
    if not 0 < alpha < 1 or min_support < 1:
        raise InputError("alpha must be in (0, 1) and min_support >= 1")
    if direction not in ("both", "rising", "falling") or rank_by not in ("z", "slope", "p"):
        raise InputError("direction is both, rising or falling; rank_by is z, slope or p")
    check_labels(labels, d)
    ids = check_doc_ids(doc_ids, n)

    B = binarize(M)
    scores = np.where(g_idx >= 0, g_idx, 0).astype(np.float64)
    t_stat, var, x = trend_statistics(B, scores, s_idx)
    counts = np.asarray((_indicator(g_idx, n) @ B).todense())  # groups x latents
    with np.errstate(divide="ignore", invalid="ignore"):
        freqs = counts / np.maximum(n_g, 1)[:, None]
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
    ex_first = top_rows_per_column(M[np.flatnonzero(g_idx == first)], page, n_examples)
    ex_last = top_rows_per_column(M[np.flatnonzero(g_idx == last)], page, n_examples)
    rows_first, rows_last = np.flatnonzero(g_idx == first), np.flatnonzero(g_idx == last)
    rows = []
    for lat, i in zip(page, idx, strict=True):
        lo, hi = stats.wilson_interval(counts[:, lat], n_g)
        rows.append(
            TrendRow(
                latent=lat,
                label=label_of(labels, lat),
                counts=[int(c) for c in counts[:, lat]],
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
