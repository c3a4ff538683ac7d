"""Which latents of one matrix fire together with which latents of another, over aligned rows.

Row ``i`` of ``X`` and row ``i`` of ``Y`` describe two texts that belong together: a prompt and its
response, a question and its answer, a document before and after an edit. A pair (latent ``a`` of X,
latent ``b`` of Y) is associated when ``b`` fires on the rows where ``a`` fires more often than chance,
the research's way of tracing a model's habit back to what its prompts ask for. Counts come from one
sparse product of the binarised matrices (in blocks of X's latents), never a dense latent x latent array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
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
    label_of,
    page_footer,
    render_table,
    top_order,
)
from saescope.errors import InputError

# X latents per block of the product: bounds the memory of one block's pair counts.
CROSS_BLOCK = 1024


class CrossPair(BaseModel):
    """A latent of the first matrix and a latent of the second that fire together on aligned rows."""

    latent_x: int = Field(description="latent of the first side (e.g. the prompt)")
    label_x: str = Field(description="label of latent_x")
    latent_y: int = Field(description="latent of the second side (e.g. the response)")
    label_y: str = Field(description="label of latent_y")
    count_xy: int = Field(description="aligned rows where both fire")
    count_x: int = Field(description="rows where latent_x fires")
    count_y: int = Field(description="rows where latent_y fires")
    npmi: float = Field(description="normalised PMI over rows, log(p_xy / (p_x p_y)) / -log p_xy, in [-1, 1]")
    lift: float = Field(description="p_xy / (p_x p_y): how many times more often than chance they fire together")
    p: float = Field(description="one-sided p of at least count_xy joint rows (hypergeometric: Fisher's exact test)")
    q: float = Field(description="Benjamini-Hochberg q over all tested pairs")


class CrossCooccurrence(BaseModel):
    """Pairs (latent of side X, latent of side Y) ranked by NPMI over aligned rows."""

    n_rows: int = Field(description="aligned rows (pairs of texts)")
    n_x_texts: int = Field(description="distinct texts on side X (fewer than n_rows when one X text has many Ys)")
    min_cooc: int = Field(description="pairs seen together in fewer rows are not tested")
    alpha: float = Field(description="only pairs with q <= alpha are ranked")
    latent_x: int | None = Field(description="when set, only pairs with this X latent")
    latent_y: int | None = Field(description="when set, only pairs with this Y latent")
    skip_same: bool = Field(default=False, description="pairs of a latent with itself were left out (echoes)")
    tested: int = Field(description="pairs with count_xy >= min_cooc (the BH family)")
    total: int = Field(description="tested pairs with q <= alpha (the ranking)")
    cursor: int = Field(description="index of the first pair of this page in the ranking")
    next_cursor: int | None = Field(description="cursor of the next page; null on the last page")
    pairs: list[CrossPair]

    def to_text(self) -> str:
        scope = ""
        if self.latent_x is not None:
            scope += f" with X latent {self.latent_x}"
        if self.latent_y is not None:
            scope += f" with Y latent {self.latent_y}"
        head = (
            f"X -> Y latent pairs{scope} over {self.n_rows} aligned rows ({self.n_x_texts} distinct X texts), "
            f"by NPMI; {self.total} of {self.tested} tested pairs (n_xy >= {self.min_cooc}) have q <= {self.alpha}"
        )
        if self.skip_same:
            head += "; pairs of a latent with itself (echoes) left out"
        if self.n_x_texts < self.n_rows:
            head += "\n(rows sharing an X text are counted as independent: p and q are optimistic)"
        table = render_table(
            ["npmi", "lift", "n_xy", "x", "label_x", "y", "label_y", "n_x", "n_y", "q"],
            [
                [r.npmi, r.lift, r.count_xy, r.latent_x, r.label_x, r.latent_y, r.label_y, r.count_x, r.count_y, r.q]
                for r in self.pairs
            ],
            max_cell=40,
        )
        return "\n".join([head, table, page_footer(self.total, self.cursor, len(self.pairs), self.next_cursor)])


def cross_cooccurrence(
    X: Any,
    Y: Any,
    labels_x: Labels,
    labels_y: Labels,
    *,
    min_cooc: int = 5,
    alpha: float = 0.05,
    top_k: int = 50,
    cursor: int = 0,
    latent_x: int | None = None,
    latent_y: int | None = None,
    x_groups: Any = None,
    skip_same: bool = False,
) -> CrossCooccurrence:
    """Pairs (latent ``a`` of ``X``, latent ``b`` of ``Y``) that fire together on aligned rows.

    ``X`` (n x d_x) and ``Y`` (n x d_y) have one row per aligned pair of texts; an entry > 0 means the
    latent fires. For every pair seen together in at least ``min_cooc`` rows: NPMI, lift, and the
    one-sided hypergeometric p of at least that many joint rows given the two marginal counts (Fisher's
    exact test), with Benjamini-Hochberg q over all tested pairs. Pairs with ``q <= alpha`` are ranked by
    NPMI (ties: higher count, then lower ids). ``x_groups`` (one id per row) says which rows share one X
    text (a prompt with several responses); it is only reported, since the test counts rows as independent.
    With ``skip_same`` (both sides embedded with one SAE), a latent is never paired with itself: such pairs
    are mostly the second text repeating the first's words, and they are left out of the tested family.

    Raises:
        InputError: row counts differ, min_cooc < 1, alpha outside (0, 1], bad paging, a latent out of
            range, or ``x_groups`` of the wrong length.
    """
    Mx, My = as_csr(X, "X"), as_csr(Y, "Y")
    n, dx = Mx.shape
    if My.shape[0] != n:
        raise InputError(f"X and Y must have one row per aligned pair: X has {n} rows, Y has {My.shape[0]}")
    dy = My.shape[1]
    check_page(top_k, cursor)
    check_labels(labels_x, dx)
    check_labels(labels_y, dy)
    if min_cooc < 1:
        raise InputError(f"min_cooc must be >= 1, got {min_cooc}")
    if not 0 < alpha <= 1:
        raise InputError(f"alpha must be in (0, 1], got {alpha}")
    if latent_x is not None:
        check_latent(latent_x, dx)
    if latent_y is not None:
        check_latent(latent_y, dy)
    n_x_texts = n
    if x_groups is not None:
        g = np.asarray(x_groups)
        if g.shape != (n,):
            raise InputError(f"x_groups must have one entry per row ({n}), got shape {g.shape}")
        n_x_texts = len(np.unique(g))

    if skip_same and dx != dy:
        raise InputError(f"skip_same needs one SAE on both sides; X has {dx} latents and Y {dy}")
    st = cross_pair_stats(Mx, My, min_cooc=min_cooc, latent_x=latent_x, latent_y=latent_y, skip_same=skip_same)
    ia, ib, cab, cx, cy, npmi, lift, p, q = (
        st.ia,
        st.ib,
        st.count_xy,
        st.count_x,
        st.count_y,
        st.npmi,
        st.lift,
        st.p,
        st.q,
    )
    keep = np.flatnonzero(q <= alpha)
    total = len(keep)
    keys = [npmi[keep], cab[keep].astype(np.float64), -ia[keep].astype(np.float64), -ib[keep].astype(np.float64)]
    need = cursor + top_k
    sel = keep[top_order(keys, need)[cursor:need]]
    pairs = [
        CrossPair(
            latent_x=int(ia[i]),
            label_x=label_of(labels_x, int(ia[i])),
            latent_y=int(ib[i]),
            label_y=label_of(labels_y, int(ib[i])),
            count_xy=int(cab[i]),
            count_x=int(cx[ia[i]]),
            count_y=int(cy[ib[i]]),
            npmi=float(npmi[i]),
            lift=float(lift[i]),
            p=float(p[i]),
            q=float(q[i]),
        )
        for i in sel
    ]
    return CrossCooccurrence(
        n_rows=n,
        n_x_texts=n_x_texts,
        min_cooc=min_cooc,
        alpha=alpha,
        latent_x=latent_x,
        latent_y=latent_y,
        skip_same=skip_same,
        tested=len(cab),
        total=total,
        cursor=cursor,
        next_cursor=need if need < total else None,
        pairs=pairs,
    )


@dataclass(frozen=True)
class CrossStats:
    """Every tested pair (``count_xy >= min_cooc``) as arrays, in no particular order."""

    n_rows: int
    ia: IntArray
    """latent of X of each pair"""
    ib: IntArray
    """latent of Y of each pair"""
    count_xy: IntArray
    count_x: IntArray
    """rows where each latent of X fires (indexed by latent, not by pair)"""
    count_y: IntArray
    """rows where each latent of Y fires (indexed by latent)"""
    npmi: FloatArray
    lift: FloatArray
    p: FloatArray
    q: FloatArray


def cross_pair_stats(
    X: Any,
    Y: Any,
    *,
    min_cooc: int = 5,
    latent_x: int | None = None,
    latent_y: int | None = None,
    skip_same: bool = False,
) -> CrossStats:
    """The statistics of :func:`cross_cooccurrence` for every tested pair, unranked (for callers that score
    the whole family, such as the evals). Inputs are not checked here: see :func:`cross_cooccurrence`."""
    Mx, My = as_csr(X, "X"), as_csr(Y, "Y")
    n = Mx.shape[0]
    cx, cy = column_counts(Mx), column_counts(My)
    ia, ib, cab = _cross_counts(binarize(Mx), binarize(My), cx, cy, min_cooc, latent_x, latent_y)
    if skip_same:
        other = ia != ib
        ia, ib, cab = ia[other], ib[other], cab[other]
    npmi, lift = _npmi_lift(cab, cx[ia], cy[ib], n)
    # P(joint >= cab) for a hypergeometric draw of cx rows out of n, cy of them marked
    p = np.asarray(sps.hypergeom.sf(cab - 1, n, cy[ib], cx[ia]), dtype=np.float64) if len(cab) else np.zeros(0)
    q = stats.benjamini_hochberg(p)
    return CrossStats(n, ia, ib, cab, cx, cy, npmi, lift, p, q)


def _npmi_lift(cab: IntArray, ca: IntArray, cb: IntArray, n: int) -> tuple[FloatArray, FloatArray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        p_ab = cab / n
        lift = p_ab / ((ca / n) * (cb / n))
        npmi = np.where(p_ab < 1, np.log(lift) / -np.log(p_ab), 1.0)
    return np.asarray(npmi, dtype=np.float64), np.asarray(lift, dtype=np.float64)


def _cross_counts(
    Bx: sp.csr_matrix,
    By: sp.csr_matrix,
    cx: IntArray,
    cy: IntArray,
    min_cooc: int,
    latent_x: int | None,
    latent_y: int | None,
) -> tuple[IntArray, IntArray, IntArray]:
    """(X latent, Y latent, joint rows) for every pair with joint rows ``>= min_cooc``."""
    empty = np.zeros(0, np.int64)
    ax = np.flatnonzero(cx >= min_cooc)
    ay = np.flatnonzero(cy >= min_cooc)
    if latent_x is not None:
        ax = ax[ax == latent_x]
    if latent_y is not None:
        ay = ay[ay == latent_y]
    if len(ax) == 0 or len(ay) == 0:
        return empty, empty, empty
    BxT = Bx[:, ax].T.tocsr()
    Bya = By[:, ay].tocsr()
    parts_a, parts_b, parts_c = [], [], []
    for lo in range(0, len(ax), CROSS_BLOCK):
        C = (BxT[lo : lo + CROSS_BLOCK] @ Bya).tocoo()
        keep = C.data >= min_cooc
        parts_a.append(ax[C.row[keep].astype(np.int64) + lo])
        parts_b.append(ay[C.col[keep].astype(np.int64)])
        parts_c.append(C.data[keep].astype(np.int64))
    return np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_c)
