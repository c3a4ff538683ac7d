from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats as sps

from saescope.analyses import diff_one_vs_many, diff_paired, diff_sets, stats
from saescope.errors import InputError


def _matrix(n: int, d: int, entries: dict[int, dict[int, float]]) -> sp.csr_matrix:
    """``entries[latent][row] = activation``."""
    M = np.zeros((n, d), dtype=np.float32)
    for lat, rows in entries.items():
        for r, v in rows.items():
            M[r, lat] = v
    return sp.csr_matrix(M)


A_ACT0 = [0.5, 0.9, 0.3, 2.0, 1.0, 0.1, 1.5, 0.7]
XA = _matrix(10, 4, {0: dict(enumerate(A_ACT0)), 1: {r: 1.0 for r in range(5)}, 2: {9: 1.0}})
XB = _matrix(10, 4, {0: {0: 1.0, 1: 3.0}, 1: {r: 1.0 for r in range(5, 10)}, 3: {0: 1.0}})
IDS_A = [f"a{i}" for i in range(10)]
IDS_B = [f"b{i}" for i in range(10)]
LABELS = {0: "zero", 1: "one"}


def test_diff_sets_statistics_are_exact() -> None:
    res = diff_sets(XA, XB, LABELS, doc_ids_a=IDS_A, doc_ids_b=IDS_B, min_support=2)
    assert (res.n_a, res.n_b, res.n_tested, res.total) == (10, 10, 2, 2)
    top, flat = res.rows
    assert (top.latent, top.label, top.count_a, top.count_b) == (0, "zero", 8, 2)
    assert (top.freq_a, top.freq_b) == (0.8, 0.2)
    assert top.diff == pytest.approx(0.6)
    assert top.ratio == pytest.approx((8.5 / 11) / (2.5 / 11))
    # min expected cell = 10 * 10 / 20 = 5, so the z-test applies: pooled 0.5, se = sqrt(0.25 * 0.2)
    z = 0.6 / np.sqrt(0.25 * 0.2)
    assert top.test == "z"
    assert top.z == pytest.approx(z)
    assert top.p == pytest.approx(2 * sps.norm.sf(z))
    lo, hi = stats.newcombe_interval([8], [10], [2], [10])
    assert (top.ci_low, top.ci_high) == pytest.approx((lo[0], hi[0]))
    # BH over the two tested latents: p_0 * 2 / 1 and 1.0
    assert top.q == pytest.approx(2 * top.p)
    assert (flat.latent, flat.diff, flat.p, flat.q) == (1, 0.0, 1.0, 1.0)
    assert flat.label == "one"
    assert res.n_significant == 1
    # examples: firing docs by activation, strongest first
    assert top.examples_a == ["a3", "a6", "a4"]
    assert top.examples_b == ["b1", "b0"]


def test_diff_sets_paging_and_direction() -> None:
    first = diff_sets(XA, XB, None, min_support=2, top_k=1)
    assert [r.latent for r in first.rows] == [0]
    assert (first.total, first.cursor, first.next_cursor) == (2, 0, 1)
    second = diff_sets(XA, XB, None, min_support=2, top_k=1, cursor=1)
    assert [r.latent for r in second.rows] == [1]
    assert second.next_cursor is None
    past = diff_sets(XA, XB, None, min_support=2, top_k=5, cursor=5)
    assert past.rows == [] and past.next_cursor is None
    assert diff_sets(XA, XB, None, min_support=2, direction="b").total == 0
    assert [r.latent for r in diff_sets(XA, XB, None, min_support=2, direction="a").rows] == [0]
    # min_support=1 brings in latents 2 (A only) and 3 (B only), tested with Fisher
    res = diff_sets(XA, XB, None, min_support=1, rank_by="diff")
    assert res.n_tested == 4
    rare = {r.latent: r for r in res.rows}[2]
    assert rare.test == "fisher"
    assert rare.p == pytest.approx(sps.fisher_exact([[1, 9], [0, 10]]).pvalue)
    assert "latent 2 (unlabelled)" in res.to_text()


def test_diff_sets_ignores_non_firing_stored_entries() -> None:
    dirty = XA.copy()
    dirty.data[dirty.data == 0.3] = 0.0  # row 2 of latent 0 stored as an explicit zero
    dirty.data[dirty.data == 0.1] = -1.0  # row 5 of latent 0 negative
    res = diff_sets(dirty, XB, None, min_support=2)
    assert {r.latent: r.count_a for r in res.rows}[0] == 6


def test_diff_sets_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="latents"):
        diff_sets(XA, XB[:, :3], None)
    with pytest.raises(InputError, match="top_k"):
        diff_sets(XA, XB, None, top_k=0)
    with pytest.raises(InputError, match="cursor"):
        diff_sets(XA, XB, None, cursor=-1)
    with pytest.raises(InputError, match="doc_ids_a"):
        diff_sets(XA, XB, None, doc_ids_a=["x"])
    with pytest.raises(InputError, match="rank_by"):
        diff_sets(XA, XB, None, rank_by="magic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="documents"):
        diff_sets(XA[:0], XB, None)


def test_diff_paired_counts_and_mcnemar() -> None:
    n = 60
    a = {0: {r: float(r + 1) for r in range(13)}, 1: {r: 1.0 for r in range(30)}}
    b = {0: {r: 1.0 for r in range(8, 14)}, 1: {r: 1.0 for r in range(30, 40)}}
    res = diff_paired(_matrix(n, 3, a), _matrix(n, 3, b), None, doc_ids=[f"p{i}" for i in range(n)], min_support=2)
    rows = {r.latent: r for r in res.rows}
    assert res.n_pairs == n and res.n_tested == 2
    r0 = rows[0]
    assert (r0.only_a, r0.only_b, r0.both, r0.neither) == (8, 1, 5, 46)
    assert r0.test == "exact"
    assert r0.p == pytest.approx(sps.binomtest(8, 9, 0.5).pvalue)
    assert r0.diff == pytest.approx(7 / n)
    lo, hi = stats.paired_difference_interval([8], [1], [n])
    assert (r0.ci_low, r0.ci_high) == pytest.approx((lo[0], hi[0]))
    # rows 8..12 fire on both sides and are stronger, but only-A examples must exclude them
    assert r0.examples_only_a == ["p7", "p6", "p5"]
    assert r0.examples_only_b == ["p13"]
    r1 = rows[1]
    assert (r1.only_a, r1.only_b, r1.both, r1.neither) == (30, 10, 0, 20)
    assert r1.test == "chi2"
    assert r1.p == pytest.approx(sps.chi2.sf((20 - 1) ** 2 / 40, 1))
    assert sorted([r0.q, r1.q]) == pytest.approx(sorted(stats.benjamini_hochberg([r0.p, r1.p])))
    with pytest.raises(InputError, match="same shape"):
        diff_paired(_matrix(n, 3, a), _matrix(n - 1, 3, {}), None)


def test_diff_one_vs_many_score_and_test() -> None:
    target = _matrix(10, 2, {0: {r: 1.0 + r for r in range(6)}})
    o1 = _matrix(10, 2, {0: {0: 1.0, 1: 1.0}, 1: {r: 1.0 for r in range(10)}})
    o2 = _matrix(20, 2, {0: {r: 1.0 for r in range(8)}, 1: {r: 1.0 for r in range(20)}})
    res = diff_one_vs_many(target, [o1, o2], {0: "zero"}, ["o1", "o2"], min_support=1)
    assert res.total == 1  # latent 1 never fires in the target
    row = res.rows[0]
    assert row.freq_others == {"o1": 0.2, "o2": 0.4}
    assert row.baseline == pytest.approx(0.4)
    assert row.score == pytest.approx(0.2)
    lows = [stats.newcombe_interval([6], [10], [2], [10])[0][0], stats.newcombe_interval([6], [10], [8], [20])[0][0]]
    assert row.score_ci_low == pytest.approx(min(lows))
    assert row.freq_pooled_others == pytest.approx(10 / 30)
    _, p, _ = stats.proportion_test([6], [10], [10], [30])
    assert row.p == pytest.approx(p[0])
    assert row.examples_target == ["#5", "#4", "#3"]
    mean = diff_one_vs_many(target, [o1, o2], None, ["o1", "o2"], min_support=1, baseline="mean")
    assert mean.rows[0].score == pytest.approx(0.6 - 0.3)
    assert "o2" in res.to_text()
    with pytest.raises(InputError, match="names"):
        diff_one_vs_many(target, [o1], None, ["o1", "o2"])
