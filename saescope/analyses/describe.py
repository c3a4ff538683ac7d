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
) -> list[ConceptMatch]:
    """For each latent that fires in at least ``min_fires`` fit documents (and not in all but fewer than
    ``min_fires``), its best concept and that concept's held-out fidelity.

    ``X`` is (documents x latents), an entry > 0 where the latent fires; ``similarity`` (documents x concepts)
    the cosine between each document and each concept. A seeded ``held_out`` share of documents is kept
    apart for the fidelity; a latent needs ``min_held_out`` held-out documents where it fires and as many
    where it does not (fewer make the AUROC a coin toss that can read 1.0). Latents whose best correlation is
    not positive get no match.

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
    Sf = S[fit]
    std = Sf.std(axis=0)
    Z = (Sf - Sf.mean(axis=0)) / np.where(std > 0, std, 1.0)
    mean_z = np.asarray(Bf[:, latents].T @ Z) / cf[latents, None]  # mean standardised similarity where it fires
    top2 = np.argsort(-mean_z, axis=1)[:, :2]
    best = top2[:, 0]
    p = cf[latents] / nf
    corr = mean_z[np.arange(len(latents)), best] * np.sqrt(p / (1 - p))
    ranks = sps.rankdata(S[test][:, np.unique(best)], axis=0)  # ties get average ranks
    col = {c: i for i, c in enumerate(np.unique(best))}
    rank_sums = np.asarray(Bt[:, latents].T @ ranks)  # (latents, used concepts)
    out = []
    for i, j in enumerate(latents):
        if corr[i] <= 0:
            continue
        n1, n0 = int(ct[j]), n_test - int(ct[j])
        auc = (rank_sums[i, col[best[i]]] - n1 * (n1 + 1) / 2) / (n1 * n0)
        out.append(
            ConceptMatch(
                latent=int(j),
                concept=concepts[int(best[i])],
                runner_up=concepts[int(top2[i, 1])] if top2.shape[1] > 1 else None,
                correlation=float(corr[i]),
                fidelity=float(auc),
                n_fit=int(cf[j]),
                n_held_out=n1,
            )
        )
    return out
