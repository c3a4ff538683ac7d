"""Counts over an embedding read shard by shard, for stores larger than memory.

Diffs, trends and co-occurrence need only how many documents of each set fire each latent (and, for
co-occurrence, each pair of a chosen set of latents), plus a page's example documents. The functions
here take the shards as an iterable of ``(first_row, CSR rows)`` in row order (what
:meth:`saescope.store.dataset.Embedding.iter_shards` yields) and hold one shard plus the count arrays,
never the whole matrix. Rows are named by their index in the whole embedding; a row given twice is
counted twice, as indexing the matrix with it would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from saescope.analyses.common import (
    FloatArray,
    IntArray,
    as_csr,
    binarize,
    column_counts,
    column_entries,
    top_rows_from_entries,
)
from saescope.analyses.trend import TrendCounts, trend_counts
from saescope.errors import InputError

ShardStream = Iterable[tuple[int, sp.csr_matrix]]
"""Shards of one embedding in row order: ``(index of the shard's first row, its rows as CSR)``."""
ShardSource = Callable[[], ShardStream]
"""A fresh pass over an embedding's shards each time it is called (for functions that read it several times)."""


def _shards(shards: ShardStream, d_sae: int) -> Iterator[tuple[int, int, sp.csr_matrix]]:
    """``(lo, hi, rows)`` of each shard, checked to be contiguous from row 0 and ``d_sae`` wide."""
    expected = 0
    for first, part in shards:
        M = as_csr(part, "shard")
        if first != expected:
            raise InputError(f"shards must come in row order without gaps: expected row {expected}, got {first}")
        if M.shape[1] != d_sae:
            raise InputError(f"a shard has {M.shape[1]} latents, expected {d_sae}")
        expected = first + M.shape[0]
        yield first, expected, M


def _check_rows(rows: npt.ArrayLike, name: str) -> IntArray:
    out = np.asarray(rows, dtype=np.int64).ravel()
    if len(out) and out.min() < 0:
        raise InputError(f"{name} has a negative row index ({int(out.min())})")
    return out


def _slices(rows: IntArray) -> tuple[IntArray, IntArray]:
    """``rows`` sorted (stably) and the positions they came from."""
    order = np.argsort(rows, kind="stable")
    return rows[order], order


def _check_covered(rows: IntArray, n_rows: int, name: str) -> None:
    if len(rows) and int(rows.max()) >= n_rows:
        raise InputError(f"{name} names row {int(rows.max())}, but the embedding has {n_rows} rows")


def set_counts(shards: ShardStream, row_sets: Sequence[npt.ArrayLike], d_sae: int) -> tuple[IntArray, IntArray]:
    """``(n, counts)``: the rows of each set, and per set and latent the rows in which it fires (``k x d_sae``).

    Equal to ``len(rows)`` and ``column_counts(X[rows])`` for each set, without holding ``X``.

    Raises:
        InputError: a row index is negative or past the last row, or the shards are out of order or of
            another width.
    """
    sets = [_slices(_check_rows(r, f"row set {i}"))[0] for i, r in enumerate(row_sets)]
    counts = np.zeros((len(sets), d_sae), dtype=np.int64)
    n_rows = 0
    for lo, hi, M in _shards(shards, d_sae):
        n_rows = hi
        for k, rows in enumerate(sets):
            a, b = np.searchsorted(rows, [lo, hi])
            if b > a:
                counts[k] += column_counts(M[rows[a:b] - lo])
    for i, rows in enumerate(sets):
        _check_covered(rows, n_rows, f"row set {i}")
    return np.array([len(r) for r in sets], dtype=np.int64), counts


def top_rows(
    shards: ShardStream, rows: npt.ArrayLike, latents: Sequence[int], n: int, d_sae: int
) -> dict[int, list[int]]:
    """For each latent, up to ``n`` positions in ``rows`` where it fires, highest activation first (ties: lower
    position): ``top_rows_per_column(X[rows], latents, n)`` without holding ``X``.

    Raises:
        InputError: as :func:`set_counts`, or a latent outside ``0..d_sae-1``.
    """
    cols = sorted({int(c) for c in latents})
    if cols and not (cols[0] >= 0 and cols[-1] < d_sae):
        raise InputError(f"latents must be in 0..{d_sae - 1}")
    sorted_rows, order = _slices(_check_rows(rows, "rows"))
    keep_pos, keep_col, keep_val = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    n_rows = 0
    for lo, hi, M in _shards(shards, d_sae):
        n_rows = hi
        a, b = np.searchsorted(sorted_rows, [lo, hi])
        if b == a or n <= 0 or not cols:
            continue
        r, c, v = column_entries(M[sorted_rows[a:b] - lo], cols)
        pos = np.concatenate([keep_pos, order[a:b][r]])
        col = np.concatenate([keep_col, np.asarray(c, dtype=np.int64)])
        val = np.concatenate([keep_val, np.asarray(v, dtype=np.float64)])
        keep_pos, keep_col, keep_val = _best_per_column(pos, col, val, n)
    _check_covered(sorted_rows, n_rows, "rows")
    return top_rows_from_entries(keep_pos, keep_col, keep_val, cols, n)


def _best_per_column(pos: IntArray, col: IntArray, val: FloatArray, n: int) -> tuple[IntArray, IntArray, FloatArray]:
    """The ``n`` entries of each column with the highest value (ties: lower position), grouped by column."""
    order = np.lexsort((pos, -val, col))
    pos, col, val = pos[order], col[order], val[order]
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]]) if len(col) else np.zeros(0, np.int64)
    rank = np.arange(len(col)) - np.repeat(starts, np.diff(np.r_[starts, len(col)]))
    keep = rank < n
    return pos[keep], col[keep], val[keep]


def gather_rows(shards: ShardStream, rows: npt.ArrayLike, d_sae: int) -> sp.csr_matrix:
    """``X[rows]`` (in the order given; a row given twice comes twice) in one pass, holding only those rows.

    Raises:
        InputError: as :func:`set_counts`.
    """
    sorted_rows, order = _slices(_check_rows(rows, "rows"))
    parts: list[sp.csr_matrix] = []
    n_rows = 0
    for lo, hi, M in _shards(shards, d_sae):
        n_rows = hi
        a, b = np.searchsorted(sorted_rows, [lo, hi])
        if b > a:
            parts.append(M[sorted_rows[a:b] - lo])
    _check_covered(sorted_rows, n_rows, "rows")
    stacked = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, d_sae), dtype=np.float32)
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    return stacked[back]


def _pair_chunks(
    shards_a: ShardSource, shards_b: ShardSource, rows_a: IntArray, rows_b: IntArray, d_sae: int, chunk: int, same: bool
) -> Iterator[tuple[int, sp.csr_matrix, sp.csr_matrix]]:
    """``(first pair, A rows, B rows)`` of each chunk of pairs; with ``same`` (both sides rows of one
    embedding), one pass gathers both sides."""
    if len(rows_a) != len(rows_b):
        raise InputError(f"paired rows must have one B row per A row; got {len(rows_a)} and {len(rows_b)}")
    if chunk < 1:
        raise InputError(f"chunk must be >= 1 pair, got {chunk}")
    for start in range(0, len(rows_a), chunk):
        a, b = rows_a[start : start + chunk], rows_b[start : start + chunk]
        if same:
            both = gather_rows(shards_a(), np.concatenate([a, b]), d_sae)
            yield start, both[: len(a)], both[len(a) :]
        else:
            yield start, gather_rows(shards_a(), a, d_sae), gather_rows(shards_b(), b, d_sae)


def paired_counts(
    shards_a: ShardSource,
    shards_b: ShardSource,
    rows_a: npt.ArrayLike,
    rows_b: npt.ArrayLike,
    d_sae: int,
    chunk: int,
    *,
    same: bool = False,
) -> tuple[IntArray, IntArray, IntArray]:
    """Per latent, the pairs ``(rows_a[i], rows_b[i])`` where it fires in A, in B and in both: what
    :func:`saescope.analyses.diff_paired` counts, holding ``chunk`` pairs' rows at a time (a pass over each
    side's shards per chunk, one in all with ``same``: both sides rows of one embedding; otherwise A and B may
    be two embeddings of one SAE).

    Raises:
        InputError: the row lists differ in length, ``chunk`` < 1, or as :func:`gather_rows`.
    """
    ra, rb = _check_rows(rows_a, "rows_a"), _check_rows(rows_b, "rows_b")
    ca, cb, both = (np.zeros(d_sae, dtype=np.int64) for _ in range(3))
    for _, A_rows, B_rows in _pair_chunks(shards_a, shards_b, ra, rb, d_sae, chunk, same):
        A, B = binarize(A_rows), binarize(B_rows)
        ca += column_counts(A)
        cb += column_counts(B)
        both += column_counts(A.multiply(B).tocsr())
    return ca, cb, both


def paired_top_only(
    shards_a: ShardSource,
    shards_b: ShardSource,
    rows_a: npt.ArrayLike,
    rows_b: npt.ArrayLike,
    latents: Sequence[int],
    n: int,
    d_sae: int,
    chunk: int,
    *,
    same: bool = False,
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """For each latent, up to ``n`` pair positions where it fires in A but not in B (highest A activation
    first; ties: lower position), and the same for B over A: a paired diff's examples, ``chunk`` pairs at a
    time (``same``: as in :func:`paired_counts`).

    Raises:
        InputError: as :func:`paired_counts`, or a latent outside ``0..d_sae-1``.
    """
    cols = sorted({int(c) for c in latents})
    if cols and not (cols[0] >= 0 and cols[-1] < d_sae):
        raise InputError(f"latents must be in 0..{d_sae - 1}")
    ra, rb = _check_rows(rows_a, "rows_a"), _check_rows(rows_b, "rows_b")
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    kept = [empty, empty]
    if cols and n > 0:
        for start, A, B in _pair_chunks(shards_a, shards_b, ra, rb, d_sae, chunk, same):
            for side, (X, other) in enumerate(((A, B), (B, A))):
                r, c, v = column_entries(X, cols)
                orow, ocol, _ = column_entries(other, cols)
                only = ~np.isin(r * d_sae + c, orow * d_sae + ocol)
                pos = np.concatenate([kept[side][0], start + r[only]])
                col = np.concatenate([kept[side][1], np.asarray(c[only], dtype=np.int64)])
                val = np.concatenate([kept[side][2], np.asarray(v[only], dtype=np.float64)])
                kept[side] = _best_per_column(pos, col, val, n)
    return (
        top_rows_from_entries(kept[0][0], kept[0][1], kept[0][2], cols, n),
        top_rows_from_entries(kept[1][0], kept[1][1], kept[1][2], cols, n),
    )


def group_trend_counts(
    shards: ShardStream, groups: npt.ArrayLike, n_groups: int, strata: npt.ArrayLike, d_sae: int
) -> TrendCounts:
    """The counts a trend test needs (see :func:`saescope.analyses.trend.trend_counts`), shard by shard.

    ``groups`` and ``strata`` give each row of the embedding its group and stratum (-1: left out).

    Raises:
        InputError: ``groups`` or ``strata`` do not give one entry per row, or the shards are out of order.
    """
    g_idx = np.asarray(groups, dtype=np.int64)
    s_idx = np.asarray(strata, dtype=np.int64)
    if g_idx.shape != s_idx.shape or g_idx.ndim != 1:
        raise InputError(f"groups and strata must be 1-D of one length, got {g_idx.shape} and {s_idx.shape}")
    n_strata = int(s_idx.max()) + 1 if len(s_idx) else 0
    total = TrendCounts.empty(n_groups, n_strata, d_sae)
    n_rows = 0
    for lo, hi, M in _shards(shards, d_sae):
        if hi > len(g_idx):
            raise InputError(f"groups give {len(g_idx)} rows, but the shards have more")
        n_rows = hi
        total = total + trend_counts(binarize(M), g_idx[lo:hi], n_groups, s_idx[lo:hi], n_strata)
    if n_rows != len(g_idx):
        raise InputError(f"groups give {len(g_idx)} rows, but the shards have {n_rows}")
    return total


def cooccurrence_counts(
    shards: ShardStream,
    latents: npt.ArrayLike,
    d_sae: int,
    rows: npt.ArrayLike | None = None,
    *,
    with_latent: int | None = None,
) -> sp.csr_matrix:
    """Documents in which each pair of ``latents`` fires together: an ``m x m`` upper-triangular CSR (int64,
    diagonal = each latent's own count), position ``i`` standing for ``latents[i]`` (ascending, unique), over
    ``rows`` of the embedding (all rows when None). With ``with_latent`` (one of ``latents``), only the pairs it
    is in are counted: its row and column of the matrix, the rest left empty.

    Memory: one shard plus the pair counts (at most ``m * (m + 1) / 2`` entries; ``m`` with ``with_latent``).

    Raises:
        InputError: ``latents`` are not ascending and unique within ``0..d_sae-1``, ``with_latent`` is not one
            of them, or the shards are out of order.
    """
    cols = np.asarray(latents, dtype=np.int64)
    if cols.ndim != 1 or (len(cols) and (cols[0] < 0 or cols[-1] >= d_sae or (np.diff(cols) <= 0).any())):
        raise InputError(f"latents must be ascending, unique and in 0..{d_sae - 1}")
    m = len(cols)
    pos = None
    if with_latent is not None:
        pos = int(np.searchsorted(cols, with_latent))
        if pos >= m or cols[pos] != with_latent:
            raise InputError(f"with_latent {with_latent} is not one of the latents counted")
    chosen = None if rows is None else _slices(_check_rows(rows, "rows"))[0]
    total = sp.csr_matrix((m, m), dtype=np.int64)
    together = np.zeros(m, dtype=np.int64)
    n_rows = 0
    for lo, hi, M in _shards(shards, d_sae):
        n_rows = hi
        if chosen is not None:
            a, b = np.searchsorted(chosen, [lo, hi])
            M = M[chosen[a:b] - lo]
        B = binarize(M)[:, cols].astype(np.int64)
        if pos is None:
            total = total + sp.triu(B.T @ B, format="csr")
        else:
            together += np.asarray(B[B[:, pos].nonzero()[0]].sum(axis=0)).ravel()
    if chosen is not None:
        _check_covered(chosen, n_rows, "rows")
    if pos is not None:  # the latent's row and column, kept upper-triangular
        others = np.flatnonzero(together)
        r = np.where(others <= pos, others, pos)
        c = np.where(others <= pos, pos, others)
        total = sp.csr_matrix((together[others], (r, c)), shape=(m, m), dtype=np.int64)
    total.sum_duplicates()
    return total
