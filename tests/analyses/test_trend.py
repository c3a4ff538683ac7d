"""The trend test's statistics checked exactly: against hand arithmetic and against the exact permutation
distribution of T, enumerated (the variance the test uses is that distribution's variance)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as sps

from saescope.analyses.trend import latent_trends, trend_statistics
from saescope.errors import InputError


def _column(fires: list[int]) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray(fires, dtype=np.float32).reshape(-1, 1))


def _exact_moments(groups: np.ndarray, strata: np.ndarray, fires: np.ndarray) -> tuple[float, float]:
    """Mean and variance of T = sum of the scores of firing rows, over every placement of each stratum's
    firing rows among that stratum's rows (each placement equally likely)."""
    per_stratum = []
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        k = int(fires[rows].sum())
        sums = [float(groups[list(c)].sum()) for c in itertools.combinations(rows, k)]
        per_stratum.append(np.asarray(sums))
    totals = np.zeros(1)
    for sums in per_stratum:
        totals = (totals[:, None] + sums[None, :]).ravel()
    return float(totals.mean()), float(totals.var())


def test_hand_computed_cochran_armitage() -> None:
    # Three groups of four documents; the latent fires in 0, 2 and 4 of them.
    groups = np.repeat([0, 1, 2], 4)
    fires = [0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1]
    res = latent_trends(_column(fires), groups, ["a", "b", "c"], None, min_support=1)
    row = res.rows[0]
    # T = 0*0 + 1*2 + 2*4 - 6 * 12 / 12 = 4; Var = 6*6/(144*11) * (12*20 - 12^2) = 24/11.
    assert row.z == pytest.approx(4 / np.sqrt(24 / 11))
    assert row.p == pytest.approx(2 * sps.norm.sf(4 / np.sqrt(24 / 11)))
    assert row.counts == [0, 2, 4] and row.freqs == [0.0, 0.5, 1.0]
    assert row.slope == pytest.approx(0.5)
    # Classic Cochran-Armitage's variance is p(1-p)(sum n t^2 - (sum n t)^2 / N) = 2: ours is N/(N-1) times it.
    assert (4 / row.z) ** 2 == pytest.approx(2 * 12 / 11)


@pytest.mark.parametrize("seed", range(5))
def test_variance_is_the_exact_permutation_variance(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, 12).astype(np.int64)
    fires = (rng.random(12) < 0.45).astype(np.int64)
    t, var, x = trend_statistics(sp.csr_matrix(fires.reshape(-1, 1)), groups.astype(np.float64), np.zeros(12, np.int64))
    mean, exact_var = _exact_moments(groups.astype(np.float64), np.zeros(12, np.int64), fires)
    observed = float(groups[fires == 1].sum())
    assert t[0] == pytest.approx(observed - mean)
    assert var[0] == pytest.approx(exact_var)
    assert x[0] == fires.sum()


@pytest.mark.parametrize("seed", range(5))
def test_stratified_variance_is_the_exact_within_stratum_permutation_variance(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    # Five prompts, each answered once by each of four ordered models, plus a prompt answered twice.
    strata = np.concatenate([np.repeat(np.arange(5), 4), [5, 5]]).astype(np.int64)
    groups = np.concatenate([np.tile(np.arange(4), 5), [0, 3]]).astype(np.int64)
    fires = (rng.random(len(groups)) < 0.5).astype(np.int64)
    t, var, _ = trend_statistics(sp.csr_matrix(fires.reshape(-1, 1)), groups.astype(np.float64), strata)
    mean, exact_var = _exact_moments(groups.astype(np.float64), strata, fires)
    assert t[0] == pytest.approx(float(groups[fires == 1].sum()) - mean)
    assert var[0] == pytest.approx(exact_var)


def test_pairing_removes_prompt_to_prompt_noise() -> None:
    # Ten prompts; each of three versions answers each; the latent fires on "hard" prompts in every version
    # and rises with the version on the others. Stratified by prompt, only the rise counts.
    prompts = np.repeat(np.arange(10), 3)
    version = np.tile(np.arange(3), 10)
    hard = prompts < 4
    fires = (hard | ((~hard) & (version >= 1 + (prompts % 2)))).astype(np.float32)
    X = sp.csr_matrix(fires.reshape(-1, 1))
    plain = latent_trends(X, version, ["v1", "v2", "v3"], None, min_support=1)
    paired = latent_trends(X, version, ["v1", "v2", "v3"], None, strata=prompts, min_support=1)
    assert paired.stratified and paired.n_strata == 10 and not plain.stratified
    assert paired.rows[0].z > plain.rows[0].z > 0


def test_directions_support_paging_and_examples() -> None:
    groups = np.repeat([0, 1, 2], 5)
    rising = np.repeat([0, 0.5, 1.0], 5) * (np.arange(15) % 5 < np.repeat([0, 3, 5], 5))
    falling = (np.arange(15) < 6).astype(float)
    flat = np.tile([1.0, 0, 0, 0, 0], 3)
    rare = np.zeros(15)
    rare[14] = 1
    X = sp.csr_matrix(np.column_stack([rising, falling, flat, rare]).astype(np.float32))
    ids = [f"d{i}" for i in range(15)]
    res = latent_trends(X, groups, ["a", "b", "c"], None, doc_ids=ids, min_support=2)
    assert res.n_tested == 3 and [r.latent for r in res.rows][:2] in ([0, 1], [1, 0])
    up = latent_trends(X, groups, ["a", "b", "c"], None, doc_ids=ids, min_support=2, direction="rising")
    assert [r.latent for r in up.rows] == [0]
    assert up.rows[0].examples_first == [] and set(up.rows[0].examples_last) <= {f"d{i}" for i in range(10, 15)}
    down = latent_trends(X, groups, ["a", "b", "c"], None, min_support=2, direction="falling")
    assert [r.latent for r in down.rows] == [1]
    page = latent_trends(X, groups, ["a", "b", "c"], None, min_support=2, top_k=1)
    rest = latent_trends(X, groups, ["a", "b", "c"], None, min_support=2, top_k=1, cursor=1)
    assert page.next_cursor == 1 and rest.rows[0].latent != page.rows[0].latent
    flat_row = next(r for r in res.rows if r.latent == 2)
    assert flat_row.z == pytest.approx(0.0) and flat_row.p == pytest.approx(1.0)
    assert res.rows[0].q >= res.rows[0].p


def test_rows_left_out_and_bad_input() -> None:
    X = sp.csr_matrix(np.eye(6, 2, dtype=np.float32))
    res = latent_trends(X, [0, 0, 1, 1, -1, -1], ["a", "b"], None, min_support=1)
    assert res.n_per_group == [2, 2]
    with pytest.raises(InputError, match="two non-empty groups"):
        latent_trends(X, [0] * 6, ["a", "b"], None)
    with pytest.raises(InputError, match="one group per row"):
        latent_trends(X, [0, 1], ["a", "b"], None)
    with pytest.raises(InputError, match="group indices"):
        latent_trends(X, [0, 1, 2, 0, 1, 0], ["a", "b"], None)
    with pytest.raises(InputError, match="top_k"):
        latent_trends(X, [0, 1, 0, 1, 0, 1], ["a", "b"], None, top_k=0)
