"""Describe latents in words without an LLM: match where each latent fires against concept similarities.

The idea is CLIP-Dissect's (Oikarinen & Weng, ICLR 2023), carried to text: over a probe set of documents,
a latent has a firing pattern, and each concept of a vocabulary has a similarity pattern (the cosine between
the document's sentence embedding and the concept's). The latent's description is the concept whose
similarity is highest, on average, where the latent fires, relative to the probe set (the point-biserial
correlation, chosen on one part of the probe set). Its **fidelity** is measured on the held-out part: the
area under the ROC curve of that concept's similarity as a predictor of where the latent fires (0.5:
no better than chance; 1: the concept alone tells where it fires). A weak description is visibly weak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from scipy import stats as sps

from saescope.analyses.common import as_csr, binarize, column_counts
from saescope.errors import InputError

MIN_PROBE_DOCS = 20


class ConceptMatch(BaseModel):
    """The concept that best describes one latent, and how well it predicts held-out firing."""

    latent: int
    concept: str = Field(description="the best-matching description from the vocabulary")
    runner_up: str | None = Field(description="the second-best description, for context")
    correlation: float = Field(description="point-biserial correlation of firing and concept similarity (fit part)")
    fidelity: float = Field(description="held-out AUROC of the concept's similarity for predicting firing")
    n_fit: int = Field(description="fit documents where the latent fires")
    n_held_out: int = Field(description="held-out documents where the latent fires")


def match_concepts(
    X: Any,
    similarity: npt.ArrayLike,
    concepts: Sequence[str],
    *,
    held_out: float = 0.3,
    seed: int = 0,
    min_fires: int = 5,
    min_held_out: int = 5,
    strata: npt.ArrayLike | None = None,
) -> list[ConceptMatch]:
    """For each latent that fires in at least ``min_fires`` fit documents (and not in all but fewer than
    ``min_fires``), its best concept and that concept's held-out fidelity.

    ``X`` is (documents x latents), an entry > 0 where the latent fires; ``similarity`` (documents x concepts)
    the cosine between each document and each concept. A seeded ``held_out`` share of documents is kept
    apart for the fidelity; a latent needs ``min_held_out`` held-out documents where it fires and as many
    where it does not (fewer make the AUROC a coin toss that can read 1.0). Latents whose best correlation is
    not positive get no match.

    With ``strata`` (one label per document, e.g. the source of a mixed probe set), only variation *within*
    a stratum counts: similarities are centred per stratum before the fit, and the fidelity is the
    stratified AUROC (each stratum's Mann-Whitney U over its pairs of firing and silent documents, pooled),
    so a latent that merely fires on one source gets no credit for the concepts that tell sources apart.

    Raises:
        InputError: shapes disagree, fewer than 20 documents, or ``held_out`` outside (0, 0.9].
    """
    M = as_csr(X)
    S = np.asarray(similarity, dtype=np.float64)
    n = M.shape[0]
    if S.ndim != 2 or S.shape[0] != n or S.shape[1] != len(concepts) or not len(concepts):
        raise InputError(f"similarity must be ({n} documents, {len(concepts)} concepts), got {S.shape}")
    if n < MIN_PROBE_DOCS:
        raise InputError(f"describing latents needs at least {MIN_PROBE_DOCS} documents, got {n}")
    if not 0 < held_out <= 0.9:
        raise InputError(f"held_out must be in (0, 0.9], got {held_out}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * held_out))
    test, fit = np.sort(order[:n_test]), np.sort(order[n_test:])
    B = binarize(M)
    Bf, Bt = B[fit], B[test]
    cf, ct = column_counts(Bf), column_counts(Bt)
    nf = len(fit)
    ok = (cf >= min_fires) & (cf <= nf - min_fires) & (ct >= min_held_out) & (ct <= n_test - min_held_out)
    latents = np.flatnonzero(ok)
    if not len(latents):
        return []
    g = np.zeros(n, dtype=np.int64) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    if g.shape != (n,):
        raise InputError(f"strata must have one value per document ({n})")
    Sc = S - _group_means(S, g)[g] if strata is not None else S
    Sf = Sc[fit]
    std = Sf.std(axis=0)
    Z = (Sf - Sf.mean(axis=0)) / np.where(std > 0, std, 1.0)
    mean_z = np.asarray(Bf[:, latents].T @ Z) / cf[latents, None]  # mean standardised similarity where it fires
    top2 = np.argsort(-mean_z, axis=1)[:, :2]
    best = top2[:, 0]
    p = cf[latents] / nf
    corr = mean_z[np.arange(len(latents)), best] * np.sqrt(p / (1 - p))
    used = np.unique(best)
    col = {c: i for i, c in enumerate(used)}
    u_sum = np.zeros((len(latents), len(used)))
    pairs = np.zeros(len(latents))
    gt = g[test]
    for k in np.unique(gt):
        rows = np.flatnonzero(gt == k)
        ranks = sps.rankdata(S[test[rows]][:, used], axis=0)  # ties get average ranks
        fires = np.asarray(column_counts(Bt[rows][:, latents]), dtype=np.float64)
        rank_sums = np.asarray(Bt[rows][:, latents].T @ ranks)
        u_sum += rank_sums - (fires * (fires + 1) / 2)[:, None]  # Mann-Whitney U of the stratum
        pairs += fires * (len(rows) - fires)
    out = []
    for i, j in enumerate(latents):
        if corr[i] <= 0 or pairs[i] == 0:
            continue
        auc = u_sum[i, col[best[i]]] / pairs[i]
        out.append(
            ConceptMatch(
                latent=int(j),
                concept=concepts[int(best[i])],
                runner_up=concepts[int(top2[i, 1])] if top2.shape[1] > 1 else None,
                correlation=float(corr[i]),
                fidelity=float(auc),
                n_fit=int(cf[j]),
                n_held_out=int(ct[j]),
            )
        )
    return out


def _group_means(S: npt.NDArray[np.float64], g: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Per group (row of the result), the column means of the rows of ``S`` in it."""
    sums = np.zeros((int(g.max()) + 1, S.shape[1]))
    np.add.at(sums, g, S)
    counts = np.bincount(g, minlength=sums.shape[0]).astype(np.float64)
    out: npt.NDArray[np.float64] = sums / np.maximum(counts, 1.0)[:, None]
    return out
