from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from saescope.analyses import stats


def test_benjamini_hochberg_hand_computed() -> None:
    # sorted p: 0.005, 0.01, 0.03, 0.04 -> p*m/rank: 0.02, 0.02, 0.04, 0.04 (already monotone)
    q = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])
    # p*m/rank = 0.12, 0.0675, 0.05 -> running minimum from the largest p gives 0.05 everywhere
    np.testing.assert_allclose(stats.benjamini_hochberg([0.04, 0.045, 0.05]), [0.05, 0.05, 0.05])
    # capped at 1, NaN ignored and kept
    q = stats.benjamini_hochberg([0.9, np.nan, 0.8])
    assert math.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.9, 0.9])


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(0).uniform(size=200) ** 3
    np.testing.assert_allclose(stats.benjamini_hochberg(p), sps.false_discovery_control(p), rtol=1e-12)


def test_wilson_interval_five_of_ten() -> None:
    lo, hi = stats.wilson_interval([5], [10])
    np.testing.assert_allclose([lo[0], hi[0]], [0.236593, 0.763407], atol=1e-6)


def test_newcombe_interval_matches_newcombe_1998_example() -> None:
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 - 48/80, method 10 -> 0.0524 to 0.3339
    lo, hi = stats.newcombe_interval([56], [70], [48], [80])
    np.testing.assert_allclose([lo[0], hi[0]], [0.0524, 0.3339], atol=5e-5)


def test_two_proportion_z_hand_computed() -> None:
    z, p = stats.two_proportion_z([30], [100], [20], [100])
    # pooled 0.25, se = sqrt(0.25 * 0.75 * (1/100 + 1/100)) = 0.0612372
    assert z[0] == pytest.approx(0.1 / math.sqrt(0.25 * 0.75 * 0.02))
    assert p[0] == pytest.approx(0.1024704, abs=1e-6)
    z, p = stats.two_proportion_z([0], [10], [0], [20])
    assert z[0] == 0 and p[0] == 1


def test_fisher_batch_matches_scipy() -> None:
    tables = [(0, 10, 3, 10), (7, 9, 1, 12), (2, 5, 2, 5), (0, 4, 0, 7), (12, 40, 1, 300), (5, 5, 0, 3)]
    k1, n1, k2, n2 = (np.array(v) for v in zip(*tables, strict=True))
    got = stats.fisher_exact_two_sided(k1, n1, k2, n2)
    want = [sps.fisher_exact([[a, b - a], [c, d - c]]).pvalue for a, b, c, d in tables]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_proportion_test_uses_fisher_only_for_small_expected_counts() -> None:
    # expected cells: table 0 has min expected 3 * 10 / 20 = 1.5 -> Fisher; table 1: 50 * 100 / 200 = 25 -> z
    _, p, fisher = stats.proportion_test([3, 30], [10, 100], [0, 20], [10, 100])
    assert fisher.tolist() == [True, False]
    assert p[0] == pytest.approx(sps.fisher_exact([[3, 7], [0, 10]]).pvalue)
    assert p[1] == pytest.approx(stats.two_proportion_z([30], [100], [20], [100])[1][0])


def test_mcnemar_exact_and_chi_square() -> None:
    p, exact = stats.mcnemar([8, 3, 30, 0], [1, 3, 10, 0])
    assert exact.tolist() == [True, True, False, True]
    assert p[0] == pytest.approx(sps.binomtest(8, 9, 0.5).pvalue, rel=1e-12)
    assert p[1] == 1.0
    assert p[2] == pytest.approx(sps.chi2.sf((20 - 1) ** 2 / 40, 1))
    assert p[3] == 1.0


def test_paired_difference_interval_agresti_min() -> None:
    lo, hi = stats.paired_difference_interval([10], [2], [50])
    # add 1/2 per cell: b=10.5, c=2.5, n=52; d = 8/52; se = sqrt(13 - 64/52) / 52
    d, se = 8 / 52, math.sqrt(13 - 64 / 52) / 52
    z = sps.norm.isf(0.025)
    assert lo[0] == pytest.approx(d - z * se)
    assert hi[0] == pytest.approx(d + z * se)


def test_conservative_effect_and_ratio() -> None:
    np.testing.assert_allclose(stats.conservative_effect([0.1, -0.3, -0.1], [0.4, -0.2, 0.2]), [0.1, -0.2, 0.0])
    assert stats.smoothed_ratio([8], [10], [2], [10])[0] == pytest.approx((8.5 / 11) / (2.5 / 11))
