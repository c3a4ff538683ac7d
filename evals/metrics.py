"""Scores of the benchmark: pure functions of arrays, each with exact hand-checked tests.

- Recovery without an LLM: does a latent's firing set match the documents that have the property
  (:func:`firing_match`), and how far down the diff's ranking is the first latent that does
  (:func:`first_recovered_rank`, :func:`recall_at_k`).
- Retrieval: average precision and nDCG@k of a ranking against binary relevance.
- Clustering: adjusted Rand index, with unassigned documents as one more group.
- Agreement between two binary raters (the LLM judge and the LLM-free match): raw and Cohen's kappa.
- Cost: price of prompt and completion tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Match:
    """A latent's firing set (predicted) against the documents with the property (truth)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    @property
    def mcc(self) -> float:
        """Matthews correlation: 0 for a firing set unrelated to the truth (or constant), 1 for a perfect one."""
        den = (self.tp + self.fp) * (self.tp + self.fn) * (self.tn + self.fp) * (self.tn + self.fn)
        return (self.tp * self.tn - self.fp * self.fn) / math.sqrt(den) if den else 0.0


def firing_match(fires: npt.ArrayLike, truth: npt.ArrayLike) -> Match:
    """Confusion counts of ``fires`` (the latent fires in each document) against ``truth`` (it has the property).

    Raises:
        ValueError: the arrays differ in length.
    """
    f = np.asarray(fires, dtype=bool).ravel()
    t = np.asarray(truth, dtype=bool).ravel()
    if f.shape != t.shape:
        raise ValueError(f"fires has {f.size} documents, truth {t.size}")
    return Match(tp=int((f & t).sum()), fp=int((f & ~t).sum()), fn=int((~f & t).sum()), tn=int((~f & ~t).sum()))


def first_recovered_rank(scores: Sequence[float], threshold: float) -> int | None:
    """0-based position of the first score >= ``threshold`` in a ranked list; None when there is none."""
    for i, s in enumerate(scores):
        if s >= threshold:
            return i
    return None


def recall_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Fraction of cases whose first recovering item is among the top ``k`` (rank < k); nan for no cases."""
    if not ranks:
        return float("nan")
    return sum(1 for r in ranks if r is not None and r < k) / len(ranks)


def average_precision(ranked_relevant: Sequence[bool] | npt.ArrayLike, n_relevant: int | None = None) -> float:
    """Mean of precision@i over the positions i of relevant items, divided by all ``n_relevant`` items
    (those missing from the ranking count as precision 0); nan when nothing is relevant."""
    rel = np.asarray(ranked_relevant, dtype=bool).ravel()
    total = int(rel.sum()) if n_relevant is None else n_relevant
    if total <= 0:
        return float("nan")
    hits = np.cumsum(rel)
    positions = np.flatnonzero(rel)
    return float(np.sum(hits[positions] / (positions + 1)) / total)


def ndcg_at_k(ranked_relevant: Sequence[bool] | npt.ArrayLike, k: int, n_relevant: int | None = None) -> float:
    """Normalised discounted cumulative gain of the top ``k`` with binary gains (1/log2(rank+1));
    nan when nothing is relevant."""
    rel = np.asarray(ranked_relevant, dtype=bool).ravel()[:k]
    total = int(np.asarray(ranked_relevant, dtype=bool).sum()) if n_relevant is None else n_relevant
    if total <= 0:
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(discounts[: len(rel)][rel]))
    ideal = float(np.sum(discounts[: min(k, total)]))
    return dcg / ideal


def adjusted_rand(truth: Sequence[Any] | npt.ArrayLike, predicted: Sequence[int] | npt.ArrayLike) -> float:
    """Adjusted Rand index of ``predicted`` clusters against ``truth``; unassigned documents (-1) form one
    more group, so leaving documents out is penalised rather than ignored."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(truth), np.asarray(predicted)))


def agreement(a: Sequence[bool] | npt.ArrayLike, b: Sequence[bool] | npt.ArrayLike) -> float:
    """Fraction of items on which two binary raters agree; nan for no items."""
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    return float((x == y).mean()) if x.size else float("nan")


def cohen_kappa(a: Sequence[bool] | npt.ArrayLike, b: Sequence[bool] | npt.ArrayLike) -> float:
    """Agreement beyond chance of two binary raters; nan when chance agreement is 1 (both constant and equal)."""
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if not x.size:
        return float("nan")
    po = float((x == y).mean())
    pa, pb = float(x.mean()), float(y.mean())
    pe = pa * pb + (1 - pa) * (1 - pb)
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


def token_cost(prompt_tokens: int, completion_tokens: int, prompt_per_m: float, completion_per_m: float) -> float:
    """Price of the tokens at prices per million prompt and completion tokens."""
    return (prompt_tokens * prompt_per_m + completion_tokens * completion_per_m) / 1e6


def false_differences(q_values: Sequence[float] | npt.ArrayLike, alpha: float = 0.05) -> int:
    """Latents reported as different (q <= alpha): on a null control every one is a false difference."""
    return int((np.asarray(q_values, dtype=float) <= alpha).sum())


def mean(values: Sequence[float | None]) -> float:
    """Mean of the values that are numbers (None and nan are left out); nan when none is."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(xs) / len(xs) if xs else float("nan")
