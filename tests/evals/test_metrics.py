"""Every metric on hand examples with exact answers."""

from __future__ import annotations

import math

import pytest

from evals import metrics as m


def test_firing_match_counts_and_scores() -> None:
    match = m.firing_match([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert (match.tp, match.fp, match.fn, match.tn) == (2, 1, 1, 1)
    assert match.precision == pytest.approx(2 / 3)
    assert match.recall == pytest.approx(2 / 3)
    assert match.f1 == pytest.approx(2 / 3)
    assert match.mcc == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))


def test_firing_match_edge_cases() -> None:
    silent = m.firing_match([0, 0, 0], [1, 0, 0])
    assert (silent.precision, silent.recall, silent.f1, silent.mcc) == (0.0, 0.0, 0.0, 0.0)
    everywhere = m.firing_match([1, 1, 1, 1], [1, 0, 0, 0])
    assert everywhere.f1 == pytest.approx(2 / 5)
    assert everywhere.mcc == 0.0
    perfect = m.firing_match([1, 0, 1], [1, 0, 1])
    assert perfect.f1 == 1.0 and perfect.mcc == 1.0
    with pytest.raises(ValueError, match="fires has 2"):
        m.firing_match([1, 0], [1, 0, 1])


def test_first_recovered_rank_and_recall_at_k() -> None:
    assert m.first_recovered_rank([0.1, 0.6, 0.9], 0.5) == 1
    assert m.first_recovered_rank([0.1, 0.5], 0.5) == 1
    assert m.first_recovered_rank([0.1, 0.2], 0.5) is None
    assert m.recall_at_k([0, 3, None, 1], 2) == 0.5
    assert m.recall_at_k([0, 3, None, 1], 4) == 0.75
    assert m.recall_at_k([0, 3, None, 1], 1) == 0.25
    assert math.isnan(m.recall_at_k([], 5))


def test_average_precision() -> None:
    assert m.average_precision([1, 0, 1, 0]) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert m.average_precision([1, 0, 1, 0], n_relevant=3) == pytest.approx((1 + 2 / 3) / 3)
    assert m.average_precision([0, 0, 1]) == pytest.approx(1 / 3)
    assert m.average_precision([1, 1, 0]) == 1.0
    assert math.isnan(m.average_precision([0, 0]))


def test_ndcg_at_k() -> None:
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m.ndcg_at_k([0, 1, 1, 0], 3) == pytest.approx(expected)
    assert m.ndcg_at_k([1, 1, 0, 0], 10) == 1.0
    # Relevant items beyond the cut still raise the ideal: 1 hit at rank 1 of 3 relevant, k=2.
    assert m.ndcg_at_k([1, 0, 1, 1], 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m.ndcg_at_k([0, 0], 2, n_relevant=1) == 0.0
    assert math.isnan(m.ndcg_at_k([0, 0], 2))


def test_adjusted_rand() -> None:
    assert m.adjusted_rand(["a", "a", "b", "b"], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert m.adjusted_rand([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    # Unassigned (-1) documents form their own group.
    assert m.adjusted_rand(["a", "a", "b", "b"], [0, 0, -1, -1]) == pytest.approx(1.0)
    assert m.adjusted_rand(["a", "a", "b", "b"], [-1, -1, -1, -1]) == pytest.approx(0.0)


def test_agreement_and_kappa() -> None:
    a, b = [True, True, False, False], [True, False, False, False]
    assert m.agreement(a, b) == 0.75
    # po = 0.75; pe = 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa = 0.25 / 0.5
    assert m.cohen_kappa(a, b) == pytest.approx(0.5)
    assert m.cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)
    assert math.isnan(m.cohen_kappa([True, True], [True, True]))
    assert math.isnan(m.agreement([], []))


def test_cost_false_differences_and_mean() -> None:
    assert m.token_cost(1000, 500, 0.15, 0.6) == pytest.approx(0.00045)
    assert m.false_differences([0.01, 0.05, 0.2], 0.05) == 2
    assert m.mean([1.0, None, float("nan"), 3.0]) == 2.0
    assert math.isnan(m.mean([None]))
