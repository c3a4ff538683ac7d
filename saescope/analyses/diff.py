"""Dataset diffing: which latents fire more often in one set of documents than in another.

A latent "fires" in a document when its pooled activation is > 0. Frequencies come from column
counts of the CSR matrices (no densifying); tests, intervals and q-values are vectorised over all
latents; example documents are looked up only for the rows of the returned page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from saescope.analyses import stats
from saescope.analyses.common import (
    DocIds,
    FloatArray,
    IntArray,
    Labels,
    as_csr,
    check_doc_ids,
    check_labels,
    check_page,
    column_counts,
    column_entries,
    doc_id,
    fmt,
    label_of,
    page_footer,
    render_table,
    top_order,
    top_rows_from_entries,
    top_rows_per_column,
)
from saescope.errors import InputError

RankBy = Literal["effect", "z", "diff", "ratio", "p"]
Direction = Literal["both", "a", "b"]

Examples = Callable[[list[int], int], dict[int, list[int]]]
"""``(latents, n)`` -> for each latent, up to ``n`` rows of one side where it fires, strongest first (ties: lower row)."""

_RANK_HELP = (
    "effect: the end of the difference's 95% interval nearest zero (large and well supported first), "
    "then |z|; z: |z statistic|; diff: |freq_a - freq_b|; ratio: |log ratio|; p: smallest p first"
)


class DiffRow(BaseModel):
    """One latent compared between two independent sets of documents."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    count_a: int = Field(description="documents of A in which the latent fires")
    count_b: int = Field(description="documents of B in which the latent fires")
    freq_a: float = Field(description="count_a / n_a")
    freq_b: float = Field(description="count_b / n_b")
    diff: float = Field(description="freq_a - freq_b")
    ci_low: float = Field(description="lower end of the Newcombe (hybrid Wilson) interval of diff")
    ci_high: float = Field(description="upper end of the Newcombe (hybrid Wilson) interval of diff")
    ratio: float = Field(description="smoothed freq_a / freq_b: (count_a+0.5)/(n_a+1) over (count_b+0.5)/(n_b+1)")
    z: float = Field(description="pooled two-proportion z statistic (positive: more frequent in A)")
    p: float = Field(description="two-sided p-value (z-test, or Fisher's exact test when an expected cell < 5)")
    q: float = Field(description="Benjamini-Hochberg adjusted p-value over all tested latents")
    test: Literal["z", "fisher"] = Field(description="which test gave p")
    examples_a: list[str] = Field(description="ids of documents in A where it fires, strongest activation first")
    examples_b: list[str] = Field(description="ids of documents in B where it fires, strongest activation first")


class SetDiff(BaseModel):
    """Latents whose firing frequency differs between document sets A and B, one page of them."""

    name_a: str = Field(description="name of set A")
    name_b: str = Field(description="name of set B")
    n_a: int = Field(description="documents in A")
    n_b: int = Field(description="documents in B")
    n_tested: int = Field(description="latents firing in at least min_support documents of A and B together")
    n_significant: int = Field(description="latents among `total` with q <= alpha")
    alpha: float = Field(description="false discovery rate used for n_significant")
    min_support: int = Field(description="minimum documents (A and B together) a latent must fire in to be tested")
    rank_by: str = Field(description=_RANK_HELP)
    direction: Direction = Field(description="both, or only latents more frequent in a / in b")
    total: int = Field(description="rows available across all pages")
    cursor: int = Field(description="index of the first row of this page")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    rows: list[DiffRow]

    def to_text(self) -> str:
        head = (
            f"diff {self.name_a} (n={self.n_a}) vs {self.name_b} (n={self.n_b}): {self.n_tested} latents tested, "
            f"{self.n_significant} with q<={self.alpha} (direction={self.direction}, rank_by={self.rank_by})"
        )
        table = render_table(
            ["latent", "label", "freq_a", "freq_b", "diff", "ci", "ratio", "q", "ex_a", "ex_b"],
            [
                [
                    r.latent,
                    r.label,
                    r.freq_a,
                    r.freq_b,
                    r.diff,
                    f"[{fmt(r.ci_low)},{fmt(r.ci_high)}]",
                    r.ratio,
                    r.q,
                    r.examples_a,
                    r.examples_b,
                ]
                for r in self.rows
            ],
            max_cell=48,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.rows), self.next_cursor)])


class PairedDiffRow(BaseModel):
    """One latent compared between two responses to the same prompts (row i of A pairs with row i of B)."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    only_a: int = Field(description="pairs where it fires in A but not in B (McNemar b)")
    only_b: int = Field(description="pairs where it fires in B but not in A (McNemar c)")
    both: int = Field(description="pairs where it fires on both sides")
    neither: int = Field(description="pairs where it fires on neither side")
    freq_a: float = Field(description="fraction of pairs where it fires in A")
    freq_b: float = Field(description="fraction of pairs where it fires in B")
    diff: float = Field(description="freq_a - freq_b = (only_a - only_b) / n_pairs")
    ci_low: float = Field(description="lower end of the Agresti-Min interval of diff")
    ci_high: float = Field(description="upper end of the Agresti-Min interval of diff")
    p: float = Field(description="McNemar p-value: exact binomial when only_a + only_b < 25, else chi-square (cc)")
    q: float = Field(description="Benjamini-Hochberg adjusted p-value over all tested latents")
    test: Literal["exact", "chi2"] = Field(description="which McNemar variant gave p")
    examples_only_a: list[str] = Field(description="pair ids where it fires only in A, strongest first")
    examples_only_b: list[str] = Field(description="pair ids where it fires only in B, strongest first")


class PairedDiff(BaseModel):
    """Latents that fire more often on one side of paired documents, one page of them."""

    name_a: str = Field(description="name of side A")
    name_b: str = Field(description="name of side B")
    n_pairs: int = Field(description="number of pairs (rows of A and of B)")
    n_tested: int = Field(description="latents firing in at least min_support pairs on either side")
    n_significant: int = Field(description="latents among `total` with q <= alpha")
    alpha: float = Field(description="false discovery rate used for n_significant")
    min_support: int = Field(description="minimum pairs a latent must fire in (either side) to be tested")
    rank_by: str = Field(description=_RANK_HELP)
    direction: Direction = Field(description="both, or only latents more frequent in a / in b")
    total: int = Field(description="rows available across all pages")
    cursor: int = Field(description="index of the first row of this page")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    rows: list[PairedDiffRow]

    def to_text(self) -> str:
        head = (
            f"paired diff {self.name_a} vs {self.name_b} ({self.n_pairs} pairs): {self.n_tested} latents tested, "
            f"{self.n_significant} with q<={self.alpha} (direction={self.direction}, rank_by={self.rank_by})"
        )
        table = render_table(
            ["latent", "label", "only_a", "only_b", "both", "diff", "ci", "q", "ex_only_a", "ex_only_b"],
            [
                [
                    r.latent,
                    r.label,
                    r.only_a,
                    r.only_b,
                    r.both,
                    r.diff,
                    f"[{fmt(r.ci_low)},{fmt(r.ci_high)}]",
                    r.q,
                    r.examples_only_a,
                    r.examples_only_b,
                ]
                for r in self.rows
            ],
            max_cell=48,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.rows), self.next_cursor)])


class OneVsManyRow(BaseModel):
    """One latent: how much more often it fires in the target set than in the others."""

    latent: int = Field(description="latent index in the SAE")
    label: str = Field(description="preferred label of the latent")
    count_target: int = Field(description="target documents in which it fires")
    freq_target: float = Field(description="count_target / n_target")
    freq_others: dict[str, float] = Field(description="firing frequency in each other set")
    baseline: float = Field(description="max (or mean) of freq_others, per the result's `baseline`")
    score: float = Field(description="freq_target - baseline")
    score_ci_low: float = Field(
        description="conservative lower bound of score: smallest Newcombe 95% lower bound of freq_target - freq_other "
        "over the other sets (baseline=max), or of freq_target - pooled others (baseline=mean)"
    )
    freq_pooled_others: float = Field(description="frequency in all other documents pooled")
    p: float = Field(description="two-sided p-value, target vs pooled others (z-test, or Fisher when small)")
    q: float = Field(description="Benjamini-Hochberg adjusted p-value over all tested latents")
    examples_target: list[str] = Field(description="ids of target documents where it fires, strongest first")


class OneVsMany(BaseModel):
    """Latents distinctive of one set of documents against several others, one page of them."""

    target: str = Field(description="name of the target set")
    others: list[str] = Field(description="names of the other sets")
    n_target: int = Field(description="documents in the target set")
    n_others: dict[str, int] = Field(description="documents in each other set")
    baseline: Literal["max", "mean"] = Field(description="how the others' frequencies are combined")
    n_tested: int = Field(description="latents firing in at least min_support documents over all sets")
    n_significant: int = Field(description="latents among `total` with q <= alpha")
    alpha: float = Field(description="false discovery rate used for n_significant")
    min_support: int = Field(description="minimum documents (all sets together) a latent must fire in to be tested")
    rank_by: str = Field(description="effect: score_ci_low first; score: raw score; p: smallest p first")
    total: int = Field(description="rows available across all pages: tested latents with score > 0")
    cursor: int = Field(description="index of the first row of this page")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    rows: list[OneVsManyRow]

    def to_text(self) -> str:
        head = (
            f"{self.target} (n={self.n_target}) vs {', '.join(f'{k} (n={v})' for k, v in self.n_others.items())}: "
            f"score = freq_target - {self.baseline}(others); {self.n_tested} tested, {self.n_significant} with "
            f"q<={self.alpha}, rank_by={self.rank_by}"
        )
        table = render_table(
            ["latent", "label", "freq_target", *self.others, "score", "score_low", "q", "examples"],
            [
                [
                    r.latent,
                    r.label,
                    r.freq_target,
                    *[r.freq_others[o] for o in self.others],
                    r.score,
                    r.score_ci_low,
                    r.q,
                    r.examples_target,
                ]
                for r in self.rows
            ],
            max_cell=48,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.rows), self.next_cursor)])


def _check_common(top_k: int, cursor: int, alpha: float, min_support: int) -> None:
    check_page(top_k, cursor)
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    if min_support < 1:
        raise InputError(f"min_support must be >= 1, got {min_support}")


def _rank_keys(
    rank_by: str, effect: FloatArray, z: FloatArray, diff: FloatArray, ratio: FloatArray, p: FloatArray
) -> list[FloatArray]:
    if rank_by == "effect":
        return [np.abs(effect), np.abs(z), np.abs(diff)]
    if rank_by == "z":
        return [np.abs(z), np.abs(diff)]
    if rank_by == "diff":
        return [np.abs(diff), np.abs(z)]
    if rank_by == "ratio":
        return [np.abs(np.log(ratio)), np.abs(z)]
    if rank_by == "p":
        return [-p, np.abs(diff)]
    raise InputError(f"unknown rank_by {rank_by!r}; choose effect, z, diff, ratio or p")


def _direction_mask(direction: str, diff: FloatArray) -> npt.NDArray[np.bool_]:
    if direction == "both":
        return np.ones(diff.shape, dtype=bool)
    if direction == "a":
        return diff > 0
    if direction == "b":
        return diff < 0
    raise InputError(f"unknown direction {direction!r}; choose both, a or b")


def _page_order(keys: list[FloatArray], latents: IntArray, top_k: int, cursor: int) -> tuple[IntArray, int | None]:
    """Positions (into ``latents``) of this page, sorted by keys, ties broken by the lower latent id."""
    sel = top_order([*keys, -latents.astype(np.float64)], cursor + top_k)[cursor:]
    nxt = cursor + top_k
    return sel, (nxt if nxt < len(latents) else None)


def diff_sets(
    XA: Any,
    XB: Any,
    labels: Labels,
    *,
    doc_ids_a: DocIds = None,
    doc_ids_b: DocIds = None,
    name_a: str = "A",
    name_b: str = "B",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: RankBy = "effect",
    direction: Direction = "both",
    n_examples: int = 3,
) -> SetDiff:
    """Compare latent firing frequencies between two independent document sets.

    Each latent firing in at least ``min_support`` documents (A and B together) is tested with a
    two-proportion z-test (Fisher's exact test when an expected count is below 5); p-values are
    adjusted with Benjamini-Hochberg over the tested latents. The default ranking, ``effect``, sorts by
    the end of the Newcombe 95% interval of ``freq_a - freq_b`` nearest zero, so large differences
    with strong support come first and differences resting on a handful of documents sink.

    Raises:
        InputError: the matrices differ in width, a set is empty, doc ids do not match the rows, or an
            argument (top_k, cursor, alpha, min_support, rank_by, direction) is out of range.
    """
    A = as_csr(XA, "XA")
    B = as_csr(XB, "XB")
    _check_common(top_k, cursor, alpha, min_support)
    if A.shape[1] != B.shape[1]:
        raise InputError(f"XA has {A.shape[1]} latents but XB has {B.shape[1]}; both must come from the same SAE")
    return diff_sets_from_counts(
        column_counts(A),
        A.shape[0],
        column_counts(B),
        B.shape[0],
        labels,
        examples_a=partial(top_rows_per_column, A),
        examples_b=partial(top_rows_per_column, B),
        doc_ids_a=doc_ids_a,
        doc_ids_b=doc_ids_b,
        name_a=name_a,
        name_b=name_b,
        min_support=min_support,
        top_k=top_k,
        cursor=cursor,
        alpha=alpha,
        rank_by=rank_by,
        direction=direction,
        n_examples=n_examples,
    )


def diff_sets_from_counts(
    counts_a: IntArray,
    n_a: int,
    counts_b: IntArray,
    n_b: int,
    labels: Labels,
    *,
    examples_a: Examples,
    examples_b: Examples,
    doc_ids_a: DocIds = None,
    doc_ids_b: DocIds = None,
    name_a: str = "A",
    name_b: str = "B",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: RankBy = "effect",
    direction: Direction = "both",
    n_examples: int = 3,
) -> SetDiff:
    """:func:`diff_sets` from each side's size and per-latent firing counts (``column_counts``, or taken shard by
    shard by :func:`saescope.analyses.streamed.set_counts`); ``examples_a``/``_b`` find a page's documents.

    Raises:
        InputError: as :func:`diff_sets`, or counts of different lengths or above the side's size.
    """
    _check_common(top_k, cursor, alpha, min_support)
    ca_all, cb_all = np.asarray(counts_a, dtype=np.int64), np.asarray(counts_b, dtype=np.int64)
    if ca_all.ndim != 1 or ca_all.shape != cb_all.shape:
        raise InputError(f"counts must be 1-D with one entry per latent; got {ca_all.shape} and {cb_all.shape}")
    if n_a == 0 or n_b == 0:
        raise InputError(f"both sets need documents; got {n_a} in {name_a} and {n_b} in {name_b}")
    if len(ca_all) and (ca_all.min() < 0 or cb_all.min() < 0 or ca_all.max() > n_a or cb_all.max() > n_b):
        raise InputError(f"counts must be within 0..n: {name_a} has {n_a} documents and {name_b} {n_b}")
    check_labels(labels, len(ca_all))
    ids_a = check_doc_ids(doc_ids_a, n_a, "doc_ids_a")
    ids_b = check_doc_ids(doc_ids_b, n_b, "doc_ids_b")

    latents = np.flatnonzero(ca_all + cb_all >= min_support)
    ca, cb = ca_all[latents], cb_all[latents]
    z, p, fisher = stats.proportion_test(ca, n_a, cb, n_b)
    q = stats.benjamini_hochberg(p)
    fa, fb = ca / n_a, cb / n_b
    diff = fa - fb
    lo, hi = stats.newcombe_interval(ca, n_a, cb, n_b)
    ratio = stats.smoothed_ratio(ca, n_a, cb, n_b)
    effect = stats.conservative_effect(lo, hi)

    keep = np.flatnonzero(_direction_mask(direction, diff))
    keys = [k[keep] for k in _rank_keys(rank_by, effect, z, diff, ratio, p)]
    sel, nxt = _page_order(keys, latents[keep], top_k, cursor)
    idx = keep[sel]
    page_latents = [int(v) for v in latents[idx]]
    ex_a = examples_a(page_latents, n_examples)
    ex_b = examples_b(page_latents, n_examples)
    rows = [
        DiffRow(
            latent=lat,
            label=label_of(labels, lat),
            count_a=int(ca[i]),
            count_b=int(cb[i]),
            freq_a=float(fa[i]),
            freq_b=float(fb[i]),
            diff=float(diff[i]),
            ci_low=float(lo[i]),
            ci_high=float(hi[i]),
            ratio=float(ratio[i]),
            z=float(z[i]),
            p=float(p[i]),
            q=float(q[i]),
            test="fisher" if fisher[i] else "z",
            examples_a=[doc_id(ids_a, r) for r in ex_a[lat]],
            examples_b=[doc_id(ids_b, r) for r in ex_b[lat]],
        )
        for lat, i in zip(page_latents, idx, strict=True)
    ]
    return SetDiff(
        name_a=name_a,
        name_b=name_b,
        n_a=n_a,
        n_b=n_b,
        n_tested=len(latents),
        n_significant=int((q[keep] <= alpha).sum()),
        alpha=alpha,
        min_support=min_support,
        rank_by=rank_by,
        direction=direction,
        total=len(keep),
        cursor=cursor,
        next_cursor=nxt,
        rows=rows,
    )


def diff_paired(
    XA: Any,
    XB: Any,
    labels: Labels,
    *,
    doc_ids: DocIds = None,
    name_a: str = "A",
    name_b: str = "B",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: RankBy = "effect",
    direction: Direction = "both",
    n_examples: int = 3,
) -> PairedDiff:
    """Compare latents between paired documents: row i of ``XA`` and row i of ``XB`` answer the same prompt.

    Per latent, pairs are counted as only-A (b), only-B (c), both and neither; McNemar's test is
    applied (exact binomial when b + c < 25, chi-square with continuity correction otherwise) and
    p-values are BH-adjusted. The interval of the paired difference is Agresti-Min's. ``rank_by``
    ``effect`` (default) sorts by the interval end nearest zero; ``ratio`` uses (b+0.5)/(c+0.5).

    Raises:
        InputError: the matrices differ in shape, there are no pairs, doc ids do not match, or an
            argument is out of range.
    """
    A = as_csr(XA, "XA")
    B = as_csr(XB, "XB")
    _check_common(top_k, cursor, alpha, min_support)
    if A.shape != B.shape:
        raise InputError(f"paired diff needs matrices of the same shape; got {A.shape} and {B.shape}")
    return diff_paired_from_counts(
        A.shape[0],
        column_counts(A),
        column_counts(B),
        column_counts(A.multiply(B).tocsr()),
        labels,
        examples_only_a=partial(_examples_only, A, B),
        examples_only_b=partial(_examples_only, B, A),
        doc_ids=doc_ids,
        name_a=name_a,
        name_b=name_b,
        min_support=min_support,
        top_k=top_k,
        cursor=cursor,
        alpha=alpha,
        rank_by=rank_by,
        direction=direction,
        n_examples=n_examples,
    )


def diff_paired_from_counts(
    n: int,
    counts_a: IntArray,
    counts_b: IntArray,
    counts_both: IntArray,
    labels: Labels,
    *,
    examples_only_a: Examples,
    examples_only_b: Examples,
    doc_ids: DocIds = None,
    name_a: str = "A",
    name_b: str = "B",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: RankBy = "effect",
    direction: Direction = "both",
    n_examples: int = 3,
) -> PairedDiff:
    """:func:`diff_paired` from the number of pairs and, per latent, the pairs where it fires in A, in B and in
    both (counted in memory, or chunk by chunk by :func:`saescope.analyses.streamed.paired_counts`);
    ``examples_only_a``/``_b`` find a page's pairs where a latent fires on one side only (pair positions).

    Raises:
        InputError: as :func:`diff_paired`, or counts of different lengths, or not consistent with ``n``.
    """
    _check_common(top_k, cursor, alpha, min_support)
    if n == 0:
        raise InputError("paired diff needs at least one pair of documents")
    ca_all, cb_all, both_all = (np.asarray(c, dtype=np.int64) for c in (counts_a, counts_b, counts_both))
    if ca_all.ndim != 1 or ca_all.shape != cb_all.shape or ca_all.shape != both_all.shape:
        raise InputError("counts must be 1-D with one entry per latent, all of one length")
    if (both_all < 0).any() or (both_all > np.minimum(ca_all, cb_all)).any() or (np.maximum(ca_all, cb_all) > n).any():
        raise InputError(f"counts are not consistent with {n} pairs")
    check_labels(labels, len(ca_all))
    ids = check_doc_ids(doc_ids, n)

    latents = np.flatnonzero(ca_all + cb_all - both_all >= min_support)
    ca, cb, both = ca_all[latents], cb_all[latents], both_all[latents]
    b, c = ca - both, cb - both
    neither = n - ca - cb + both
    p, exact = stats.mcnemar(b, c)
    q = stats.benjamini_hochberg(p)
    diff = (b - c) / n
    lo, hi = stats.paired_difference_interval(b, c, n)
    effect = stats.conservative_effect(lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(b + c > 0, (b - c) / np.sqrt(np.maximum(b + c, 1)), 0.0)
    ratio = (b + 0.5) / (c + 0.5)

    keep = np.flatnonzero(_direction_mask(direction, diff))
    keys = [k[keep] for k in _rank_keys(rank_by, effect, z, diff, ratio, p)]
    sel, nxt = _page_order(keys, latents[keep], top_k, cursor)
    idx = keep[sel]
    page_latents = [int(v) for v in latents[idx]]
    only_a_ex = examples_only_a(page_latents, n_examples)
    only_b_ex = examples_only_b(page_latents, n_examples)
    rows = [
        PairedDiffRow(
            latent=lat,
            label=label_of(labels, lat),
            only_a=int(b[i]),
            only_b=int(c[i]),
            both=int(both[i]),
            neither=int(neither[i]),
            freq_a=float(ca[i] / n),
            freq_b=float(cb[i] / n),
            diff=float(diff[i]),
            ci_low=float(lo[i]),
            ci_high=float(hi[i]),
            p=float(p[i]),
            q=float(q[i]),
            test="exact" if exact[i] else "chi2",
            examples_only_a=[doc_id(ids, r) for r in only_a_ex[lat]],
            examples_only_b=[doc_id(ids, r) for r in only_b_ex[lat]],
        )
        for lat, i in zip(page_latents, idx, strict=True)
    ]
    return PairedDiff(
        name_a=name_a,
        name_b=name_b,
        n_pairs=n,
        n_tested=len(latents),
        n_significant=int((q[keep] <= alpha).sum()),
        alpha=alpha,
        min_support=min_support,
        rank_by=rank_by,
        direction=direction,
        total=len(keep),
        cursor=cursor,
        next_cursor=nxt,
        rows=rows,
    )


def _examples_only(X: Any, other: Any, latents: list[int], n: int) -> dict[int, list[int]]:
    """Rows where each latent fires in ``X`` but not in ``other``, strongest activation in ``X`` first."""
    if not latents or n <= 0:
        return {lat: [] for lat in latents}
    rows, cols, vals = column_entries(X, latents)
    orows, ocols, _ = column_entries(other, latents)
    width = X.shape[1]
    keep = ~np.isin(rows * width + cols, orows * width + ocols)
    return top_rows_from_entries(rows[keep], cols[keep], vals[keep], latents, n)


def diff_one_vs_many(
    X_target: Any,
    X_others: Sequence[Any],
    labels: Labels,
    names: Sequence[str],
    *,
    target_name: str = "target",
    doc_ids_target: DocIds = None,
    baseline: Literal["max", "mean"] = "max",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: Literal["effect", "score", "p"] = "effect",
    n_examples: int = 3,
) -> OneVsMany:
    """Latents distinctive of a target set: target frequency minus the max (or mean) frequency of the others.

    ``baseline="max"`` (default) asks for latents more frequent in the target than in *every* other
    set, which is what "distinctive of the target" usually means; ``"mean"`` averages the other sets'
    frequencies. Significance is a two-proportion z-test (Fisher when small) of target against all
    other documents pooled, BH-adjusted over the tested latents. Only latents with score > 0 are
    listed. The default ranking, ``effect``, sorts by ``score_ci_low``: with ``max`` the smallest Newcombe
    lower bound of target-minus-other over the other sets, with ``mean`` the bound against pooled others.

    Raises:
        InputError: no other sets, names do not match the sets, widths differ, a set is empty, or an
            argument is out of range.
    """
    T = as_csr(X_target, "X_target")
    others = [as_csr(X, f"X_others[{i}]") for i, X in enumerate(X_others)]
    _check_common(top_k, cursor, alpha, min_support)
    _check_one_vs_many(len(others), names, target_name, baseline, rank_by)
    width = T.shape[1]
    for name, other in zip(names, others, strict=True):
        if other.shape[1] != width:
            raise InputError(f"set {name!r} has {other.shape[1]} latents but the target has {width}")
    return diff_one_vs_many_from_counts(
        column_counts(T),
        T.shape[0],
        np.vstack([column_counts(other) for other in others]),
        np.array([other.shape[0] for other in others], dtype=np.int64),
        labels,
        names,
        examples=partial(top_rows_per_column, T),
        target_name=target_name,
        doc_ids_target=doc_ids_target,
        baseline=baseline,
        min_support=min_support,
        top_k=top_k,
        cursor=cursor,
        alpha=alpha,
        rank_by=rank_by,
        n_examples=n_examples,
    )


def _check_one_vs_many(n_others: int, names: Sequence[str], target_name: str, baseline: str, rank_by: str) -> None:
    if not n_others:
        raise InputError("diff_one_vs_many needs at least one other set")
    if len(names) != n_others:
        raise InputError(f"got {n_others} other sets but {len(names)} names")
    if len(set(names)) != len(names) or target_name in names:
        raise InputError("set names must be unique and differ from target_name")
    if baseline not in ("max", "mean"):
        raise InputError(f"unknown baseline {baseline!r}; choose max or mean")
    if rank_by not in ("effect", "score", "p"):
        raise InputError(f"unknown rank_by {rank_by!r}; choose effect, score or p")


def diff_one_vs_many_from_counts(
    counts_target: IntArray,
    n_target: int,
    counts_others: IntArray,
    n_others: IntArray,
    labels: Labels,
    names: Sequence[str],
    *,
    examples: Examples,
    target_name: str = "target",
    doc_ids_target: DocIds = None,
    baseline: Literal["max", "mean"] = "max",
    min_support: int = 5,
    top_k: int = 20,
    cursor: int = 0,
    alpha: float = 0.05,
    rank_by: Literal["effect", "score", "p"] = "effect",
    n_examples: int = 3,
) -> OneVsMany:
    """:func:`diff_one_vs_many` from the target's size and per-latent firing counts, and each other set's
    (``counts_others``: sets x latents; taken shard by shard by :func:`saescope.analyses.streamed.set_counts`);
    ``examples`` finds a page's target documents.

    Raises:
        InputError: as :func:`diff_one_vs_many`, or counts whose shapes do not match or exceed a set's size.
    """
    _check_common(top_k, cursor, alpha, min_support)
    ct_all = np.asarray(counts_target, dtype=np.int64)
    co_all = np.asarray(counts_others, dtype=np.int64)
    n_o = np.asarray(n_others, dtype=np.int64)
    _check_one_vs_many(len(n_o), names, target_name, baseline, rank_by)
    if ct_all.ndim != 1 or co_all.shape != (len(n_o), len(ct_all)):
        raise InputError(f"counts of shape {ct_all.shape} and {co_all.shape} do not match {len(n_o)} other sets")
    for name, size in zip(names, n_o, strict=True):
        if size == 0:
            raise InputError(f"set {name!r} has no documents")
    n_t = int(n_target)
    if n_t == 0:
        raise InputError("the target set has no documents")
    if len(ct_all) and (ct_all.min() < 0 or ct_all.max() > n_t or co_all.min() < 0 or (co_all > n_o[:, None]).any()):
        raise InputError("counts must be within 0..n of their set")
    check_labels(labels, len(ct_all))
    ids_t = check_doc_ids(doc_ids_target, n_t, "doc_ids_target")

    latents = np.flatnonzero(ct_all + co_all.sum(axis=0) >= min_support)
    ct, co = ct_all[latents], co_all[:, latents]
    ft = ct / n_t
    fo = co / n_o[:, None]
    n_pool = int(n_o.sum())
    cpool = co.sum(axis=0)
    _, p, _ = stats.proportion_test(ct, n_t, cpool, n_pool)
    q = stats.benjamini_hochberg(p)
    if baseline == "max":
        base = fo.max(axis=0)
        lows = np.vstack([stats.newcombe_interval(ct, n_t, co[j], n_o[j])[0] for j in range(len(n_o))])
        low = lows.min(axis=0)
    else:
        base = fo.mean(axis=0)
        low = stats.newcombe_interval(ct, n_t, cpool, n_pool)[0]
    score = ft - base

    keep = np.flatnonzero(score > 0)
    if rank_by == "effect":
        keys = [low[keep], score[keep]]
    elif rank_by == "score":
        keys = [score[keep], low[keep]]
    else:
        keys = [-p[keep], score[keep]]
    sel, nxt = _page_order(keys, latents[keep], top_k, cursor)
    idx = keep[sel]
    page_latents = [int(v) for v in latents[idx]]
    ex = examples(page_latents, n_examples)
    rows = [
        OneVsManyRow(
            latent=lat,
            label=label_of(labels, lat),
            count_target=int(ct[i]),
            freq_target=float(ft[i]),
            freq_others={name: float(fo[j, i]) for j, name in enumerate(names)},
            baseline=float(base[i]),
            score=float(score[i]),
            score_ci_low=float(low[i]),
            freq_pooled_others=float(cpool[i] / n_pool),
            p=float(p[i]),
            q=float(q[i]),
            examples_target=[doc_id(ids_t, r) for r in ex[lat]],
        )
        for lat, i in zip(page_latents, idx, strict=True)
    ]
    return OneVsMany(
        target=target_name,
        others=list(names),
        n_target=n_t,
        n_others={name: int(v) for name, v in zip(names, n_o, strict=True)},
        baseline=baseline,
        n_tested=len(latents),
        n_significant=int((q[keep] <= alpha).sum()),
        alpha=alpha,
        min_support=min_support,
        rank_by=rank_by,
        total=len(keep),
        cursor=cursor,
        next_cursor=nxt,
        rows=rows,
    )
