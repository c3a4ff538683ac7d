"""Shared pieces of the analyses: input checks, label lookup, sparse column access, paging, text tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from saescope.errors import InputError
from saescope.labels import LabelBook

Labels: TypeAlias = LabelBook | Mapping[int, str] | None
"""Latent labels: a :class:`LabelBook`, a plain ``{latent: text}`` dict, or None (no labels)."""

DocIds: TypeAlias = Sequence[str] | npt.NDArray[Any] | None
"""Document ids aligned with the rows of a matrix; None shows row numbers instead."""

IntArray: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]

MAX_PAGE = 10_000


def as_csr(X: Any, name: str = "X") -> sp.csr_matrix:
    """``X`` as a CSR matrix with sorted, unique indices and only entries > 0 stored.

    No copy is made when it already is one; otherwise a copy is fixed up, the caller's matrix is left alone.

    Raises:
        InputError: ``X`` is not a 2-D sparse matrix or array.
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise InputError(f"{name} must be 2-D (documents x latents), got shape {X.shape}")
        return _clean(sp.csr_matrix(X))
    if not sp.issparse(X) or X.ndim != 2:
        raise InputError(f"{name} must be a 2-D scipy.sparse matrix (documents x latents), got {type(X).__name__}")
    csr = X if X.format == "csr" else X.tocsr()
    return _clean(csr)


def _clean(X: Any) -> Any:
    """Sum duplicate entries and drop entries that do not fire (<= 0), copying only when needed."""
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if fires_mask(X.data) is not None:
        X = X.copy()
        X.data[~(X.data > 0)] = 0
        X.eliminate_zeros()
    return X


def as_csr_or_csc(X: Any, name: str = "X") -> sp.csr_matrix | sp.csc_matrix:
    """A CSC ``X`` with duplicates summed (non-firing entries are *kept*: callers read columns through
    :func:`column_entries` or :func:`column_counts`, which skip them, so no pass over all values is
    needed); anything else as by :func:`as_csr`.

    Raises:
        InputError: ``X`` is not a 2-D sparse matrix or array.
    """
    if sp.issparse(X) and X.ndim == 2 and X.format == "csc":
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return X
    return as_csr(X, name)


def fires_mask(data: npt.NDArray[Any]) -> npt.NDArray[np.bool_] | None:
    """Mask of stored entries that fire (> 0), or None when all of them do (the common, fast case)."""
    if data.size == 0 or data.min() > 0:
        return None
    return np.asarray(data > 0)


def column_counts(X: sp.csr_matrix | sp.csc_matrix) -> IntArray:
    """Number of rows in which each column fires (value > 0), without densifying."""
    mask = fires_mask(X.data)
    if X.format == "csc":
        if mask is None:
            return np.diff(np.asarray(X.indptr)).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
        counts: IntArray = (cum[X.indptr[1:]] - cum[X.indptr[:-1]]).astype(np.int64)
        return counts
    idx = X.indices if mask is None else X.indices[mask]
    return np.bincount(idx, minlength=X.shape[1]).astype(np.int64)


def binarize(X: sp.csr_matrix) -> sp.csr_matrix:
    """0/1 int32 copy of ``X`` keeping only entries > 0."""
    B = sp.csr_matrix((np.ones(X.nnz, dtype=np.int32), X.indices, X.indptr), shape=X.shape)
    mask = fires_mask(X.data)
    if mask is not None:
        B.data[~mask] = 0
        B.eliminate_zeros()
    return B


def column_entries(X: sp.csr_matrix | sp.csc_matrix, columns: npt.ArrayLike) -> tuple[IntArray, IntArray, FloatArray]:
    """Firing entries of the given columns as ``(rows, columns, values)``, grouped by column (ascending).

    On CSC this reads only those columns; on CSR it makes one pass over the stored column indices
    (a table lookup, no densifying, no per-row Python) and groups the hits with a radix sort.
    """
    cols = np.unique(np.asarray(columns, dtype=np.int64))
    if X.format == "csc":
        if cols.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        parts_r, parts_c, parts_v = [], [], []
        for c in cols:
            lo, hi = X.indptr[c], X.indptr[c + 1]
            parts_r.append(X.indices[lo:hi])
            parts_v.append(X.data[lo:hi])
            parts_c.append(np.full(hi - lo, c, dtype=np.int64))
        rows = np.concatenate(parts_r).astype(np.int64)
        colv = np.concatenate(parts_c)
        vals = np.concatenate(parts_v).astype(np.float64)
    else:
        table = np.zeros(X.shape[1], dtype=bool)
        table[cols] = True
        pos = np.flatnonzero(table[X.indices])
        slot_of = np.zeros(X.shape[1], dtype=np.uint16 if len(cols) < 2**16 else np.int64)
        slot_of[cols] = np.arange(len(cols))
        slot = slot_of[X.indices[pos]]
        order = np.argsort(slot, kind="stable")  # radix sort for 16-bit keys; keeps rows ascending
        pos = pos[order]
        rows = np.searchsorted(X.indptr, pos, side="right").astype(np.int64) - 1
        colv = cols[slot[order]]
        vals = X.data[pos].astype(np.float64)
    keep = vals > 0
    return rows[keep], colv[keep], vals[keep]


def top_rows_from_entries(
    rows: IntArray, cols: IntArray, vals: FloatArray, columns: Sequence[int], n: int
) -> dict[int, list[int]]:
    """From entries grouped by column (as :func:`column_entries` returns them), each column's ``n`` rows
    with the highest values, highest first (ties: lower row). Linear time: a partial sort per column."""
    out: dict[int, list[int]] = {int(c): [] for c in columns}
    if n <= 0 or not out:
        return out
    keys = np.asarray(sorted(out), dtype=np.int64)
    starts = np.searchsorted(cols, keys, side="left")
    ends = np.searchsorted(cols, keys, side="right")
    for c, lo, hi in zip(keys, starts, ends, strict=True):
        r, v = rows[lo:hi], vals[lo:hi]
        if len(v) > n:
            kth = -np.partition(-v, n - 1)[n - 1]
            cand = np.flatnonzero(v >= kth)
            r, v = r[cand], v[cand]
        order = np.lexsort((r, -v))[:n]
        out[int(c)] = [int(x) for x in r[order]]
    return out


def top_rows_per_column(X: sp.csr_matrix | sp.csc_matrix, columns: Sequence[int], n: int) -> dict[int, list[int]]:
    """For each column, up to ``n`` rows where it fires, highest activation first (ties: lower row)."""
    if n <= 0 or len(columns) == 0:
        return {int(c): [] for c in columns}
    rows, cols, vals = column_entries(X, list(columns))
    return top_rows_from_entries(rows, cols, vals, columns, n)


def check_doc_ids(doc_ids: DocIds, n_rows: int, name: str = "doc_ids") -> DocIds:
    """``doc_ids`` unchanged (no copy: it may hold millions of ids), checked against the number of rows.

    Raises:
        InputError: the length differs from the number of rows.
    """
    if doc_ids is None:
        return None
    if len(doc_ids) != n_rows:
        raise InputError(f"{name} has {len(doc_ids)} entries but the matrix has {n_rows} rows")
    return doc_ids


def doc_id(doc_ids: Sequence[str] | npt.NDArray[Any] | None, row: int) -> str:
    """The id of ``row``; ``"#<row>"`` when no ids were given."""
    return f"#{row}" if doc_ids is None else str(doc_ids[row])


def label_of(labels: Labels, latent: int) -> str:
    """Preferred label text of ``latent`` (a placeholder when it has none)."""
    if labels is None:
        return f"latent {latent} (unlabelled)"
    if isinstance(labels, LabelBook):
        return labels.text(latent)
    text = labels.get(latent)
    return text if text else f"latent {latent} (unlabelled)"


def label_texts(labels: Labels) -> dict[int, str]:
    """All labelled latents as ``{latent: text}``."""
    if labels is None:
        return {}
    if isinstance(labels, LabelBook):
        return labels.texts()
    return {int(k): v for k, v in labels.items()}


def check_page(top_k: int, cursor: int) -> None:
    """Validate paging arguments.

    Raises:
        InputError: ``top_k`` is not in 1..10000 or ``cursor`` is negative.
    """
    if not 1 <= top_k <= MAX_PAGE:
        raise InputError(f"top_k must be between 1 and {MAX_PAGE}, got {top_k}")
    if cursor < 0:
        raise InputError(f"cursor must be >= 0, got {cursor}")


def top_order(keys: Sequence[FloatArray | IntArray], k: int) -> IntArray:
    """Indices of the ``k`` best items sorted by ``keys`` (first key most important, all descending).

    Uses a partial sort on the first key so a page out of millions of items stays cheap; ties at the
    partition boundary are kept so that the order is exactly that of a full sort.
    """
    primary = keys[0]
    m = len(primary)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    if k < m // 4:
        kth = np.partition(-primary, k - 1)[k - 1]
        cand = np.flatnonzero(-primary <= kth)
    else:
        cand = np.arange(m)
    sub = np.lexsort(tuple(-np.asarray(key)[cand] for key in reversed(keys)))
    return cand[sub][:k].astype(np.int64)


def check_latent(latent: int, d_sae: int) -> None:
    """Raises:
    InputError: ``latent`` is outside ``0..d_sae-1``.
    """
    if not 0 <= latent < d_sae:
        raise InputError(f"latent {latent} is out of range (0..{d_sae - 1})")


def fmt(value: object) -> str:
    """Compact cell text: 3 significant digits for floats, scientific for tiny p-values."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ",".join(fmt(v) for v in value)
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], max_cell: int = 60) -> str:
    """Plain-text table with aligned columns; long cells are cut with an ellipsis."""
    cells = [[_cut(fmt(v), max_cell) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cut(text: str, n: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def page_footer(total: int, cursor: int, shown: int, next_cursor: int | None) -> str:
    """One line saying which items of how many are shown and how to get more."""
    if total == 0:
        return "(no rows)"
    more = f"; next page: cursor={next_cursor}" if next_cursor is not None else ""
    return f"rows {cursor + 1}-{cursor + shown} of {total}{more}"


def check_labels(labels: Labels, d_sae: int) -> None:
    """Raises:
    InputError: a :class:`LabelBook` belongs to an SAE of another width than the matrix.
    """
    if isinstance(labels, LabelBook) and labels.d_sae != d_sae:
        raise InputError(
            f"labels are for {labels.sae_id} with {labels.d_sae} latents but the matrix has {d_sae} columns; "
            "use the labels of the SAE that made the embedding"
        )


def firing_correlations(X: Any, guide: npt.ArrayLike) -> FloatArray:
    """Pearson correlation between each latent's firing (binary, over the rows of ``X``) and each column of
    ``guide`` (``n_docs x k``): a ``d x k`` matrix, 0 for a latent that fires everywhere or nowhere and for a
    constant guide column. Sparse-friendly: ``X`` is never densified.

    Raises:
        InputError: ``guide`` does not have one row per row of ``X``, or holds a non-finite value.
    """
    M = as_csr(X)
    n = M.shape[0]
    G = np.asarray(guide, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != n:
        raise InputError(f"guide must have one row per document ({n}), got shape {G.shape}")
    if not np.all(np.isfinite(G)):
        raise InputError("the guide must hold finite numbers")
    B = sp.csr_matrix(((M.data > 0).astype(np.float64), M.indices, M.indptr), shape=M.shape)  # shares the index
    p = column_counts(B) / max(n, 1)
    Gc = G - G.mean(axis=0)
    g_sd = Gc.std(axis=0)
    cov = np.asarray(B.T @ Gc) / max(n, 1)  # E[b * g_centred] = cov(b, g)
    b_sd = np.sqrt(p * (1 - p))
    den = b_sd[:, None] * g_sd[None, :]
    return np.asarray(np.where(den > 1e-12, cov / np.where(den > 1e-12, den, 1.0), 0.0), dtype=np.float64)
