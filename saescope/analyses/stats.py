"""Vectorised statistics used by the analyses: proportions, their tests and intervals, FDR control.

Every function takes arrays (one entry per latent) and returns arrays; none loops over latents in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# A 2x2 table whose smallest expected cell is below this is tested with Fisher's exact test.
FISHER_MIN_EXPECTED = 5.0
# McNemar uses the exact binomial test when there are fewer discordant pairs than this.
MCNEMAR_EXACT_BELOW = 25


def benjamini_hochberg(p: ArrayLike) -> FloatArray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN entries stay NaN and are not counted."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(scaled, 1.0)
    q[ok] = out
    return q


def wilson_interval(k: ArrayLike, n: ArrayLike, alpha: float = 0.05) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a proportion ``k / n``."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = sps.norm.isf(alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def newcombe_interval(
    k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Newcombe's hybrid score interval (method 10) for ``k1/n1 - k2/n2`` from two independent samples."""
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.float64) for a in (k1, n1, k2, n2))
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, alpha)
    l2, u2 = wilson_interval(k2, n2, alpha)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def two_proportion_z(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Pooled two-proportion z statistic and its two-sided p-value (z = 0, p = 1 when both rates are 0 or 1)."""
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.float64) for a in (k1, n1, k2, n2))
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (k1 / n1 - k2 / n2) / se, 0.0)
    return z, 2 * sps.norm.sf(np.abs(z))


def _log_comb(n: FloatArray, k: FloatArray) -> FloatArray:
    return np.asarray(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1), dtype=np.float64)


def fisher_exact_two_sided(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike) -> FloatArray:
    """Two-sided Fisher exact p-values for many 2x2 tables ``[[k1, n1-k1], [k2, n2-k2]]`` at once.

    Same definition as ``scipy.stats.fisher_exact``: the sum of the hypergeometric probabilities of
    all tables with the same margins that are no more likely than the observed one. The supports of
    all tables are laid end to end so the whole batch is a handful of array operations.
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.int64).ravel() for a in (k1, n1, k2, n2))
    if k1.size == 0:
        return np.zeros(0)
    total = k1 + k2
    lo = np.maximum(0, total - n2)
    hi = np.minimum(total, n1)
    sizes = hi - lo + 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner = np.repeat(np.arange(k1.size), sizes)
    x = (np.arange(int(sizes.sum())) - starts[owner] + lo[owner]).astype(np.float64)
    N = (n1 + n2).astype(np.float64)
    tf, n1f, n2f = total.astype(np.float64), n1.astype(np.float64), n2.astype(np.float64)

    def logpmf(xv: FloatArray, i: npt.NDArray[np.int64] | slice) -> FloatArray:
        return _log_comb(n1f[i], xv) + _log_comb(n2f[i], tf[i] - xv) - _log_comb(N[i], tf[i])

    lp = logpmf(x, owner)
    lp_obs = logpmf(k1.astype(np.float64), slice(None))
    # scipy's relative tolerance for "no more likely than observed"
    keep = lp <= lp_obs[owner] + np.log1p(1e-7)
    probs = np.where(keep, np.exp(lp), 0.0)
    p = np.add.reduceat(probs, starts) if probs.size else np.zeros(k1.size)
    return np.minimum(p, 1.0)


def proportion_test(
    k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Two-sided test of ``k1/n1 == k2/n2``: z statistic, p-value, and which tables used Fisher.

    The pooled two-proportion z-test is used when every expected cell count is at least 5, Fisher's
    exact test otherwise. The z statistic is returned for all tables (it orders effects).
    """
    shape = np.broadcast(np.asarray(k1), np.asarray(n1), np.asarray(k2), np.asarray(n2)).shape
    k1, n1, k2, n2 = (np.broadcast_to(np.asarray(a, dtype=np.int64), shape) for a in (k1, n1, k2, n2))
    z, p = two_proportion_z(k1, n1, k2, n2)
    N = (n1 + n2).astype(np.float64)
    K = (k1 + k2).astype(np.float64)
    expected_min = np.minimum(K, N - K) * np.minimum(n1, n2) / N
    small = expected_min < FISHER_MIN_EXPECTED
    p = np.array(p, dtype=np.float64)
    if small.any():
        p[small] = fisher_exact_two_sided(k1[small], n1[small], k2[small], n2[small])
    return z, p, small


def mcnemar(b: ArrayLike, c: ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """McNemar test p-values from discordant counts ``b`` (only A) and ``c`` (only B), and which were exact.

    Exact two-sided binomial test on ``b`` out of ``b + c`` at 1/2 when ``b + c`` < 25 (identical to
    ``scipy.stats.binomtest``), otherwise the chi-square test with continuity correction.
    """
    b = np.asarray(b, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    n = b + c
    exact = n < MCNEMAR_EXACT_BELOW
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(n > 0, (np.abs(b - c) - 1.0).clip(min=0) ** 2 / n, 0.0)
    p = sps.chi2.sf(chi2, 1)
    p_exact = np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(b, c), n, 0.5))
    return np.where(exact, np.where(n > 0, p_exact, 1.0), p), exact


def paired_difference_interval(
    b: ArrayLike, c: ArrayLike, n: ArrayLike, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Agresti–Min interval for the paired difference ``(b - c) / n``: Wald after adding 1/2 to each cell."""
    b, c, n = (np.asarray(a, dtype=np.float64) for a in (b, c, n))
    z = sps.norm.isf(alpha / 2)
    b2, c2, n2 = b + 0.5, c + 0.5, n + 2.0
    d = (b2 - c2) / n2
    se = np.sqrt(np.maximum((b2 + c2) - (b2 - c2) ** 2 / n2, 0.0)) / n2
    return np.clip(d - z * se, -1, 1), np.clip(d + z * se, -1, 1)


def conservative_effect(low: ArrayLike, high: ArrayLike) -> FloatArray:
    """The end of the interval nearest zero, signed; 0 when the interval contains zero.

    Ranking by this prefers differences that are both large and well supported: a big difference
    seen in three documents has a wide interval and ranks below a smaller one seen in thousands.
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    return np.where(low > 0, low, np.where(high < 0, high, 0.0))


def smoothed_ratio(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike) -> FloatArray:
    """``(k1 + 0.5)/(n1 + 1) / ((k2 + 0.5)/(n2 + 1))``: finite even when a latent never fires on one side."""
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.float64) for a in (k1, n1, k2, n2))
    return ((k1 + 0.5) / (n1 + 1)) / ((k2 + 0.5) / (n2 + 1))
