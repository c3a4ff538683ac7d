"""match_concepts: the planted concept is found, fidelity is the held-out AUROC, weak matches look weak."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from saescope.analyses.describe import match_concepts
from saescope.errors import InputError

CONCEPTS = ["praise", "criticism", "python code", "politics", "cooking"]


def _probe(n: int = 300, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Latent 0 fires where 'python code' is most similar (top 30%), latent 1 at random (30%), latent 2 where
    'politics' is high but with 20% of its firing flipped, latent 3 never, latent 4 everywhere."""
    rng = np.random.default_rng(seed)
    S = rng.normal(0.2, 0.1, size=(n, len(CONCEPTS)))
    X = np.zeros((n, 5))
    X[:, 0] = np.where(S[:, 2] > np.quantile(S[:, 2], 0.7), 1.5, 0.0)
    X[:, 1] = rng.random(n) < 0.3
    pol = S[:, 3] > np.quantile(S[:, 3], 0.6)
    flip = rng.random(n) < 0.2
    X[:, 2] = pol ^ flip
    X[:, 4] = 0.1
    return sp.csr_matrix(X), S


def _held_out_rows(n: int, held_out: float, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: max(1, round(n * held_out))])


def test_planted_concepts_are_found_with_exact_held_out_auroc() -> None:
    X, S = _probe()
    got = {m.latent: m for m in match_concepts(X, S, CONCEPTS, held_out=0.3, seed=4)}
    assert set(got) <= {0, 1, 2} and {0, 2} <= set(got)  # never-firing and always-firing latents are skipped
    assert got[0].concept == "python code" and got[0].fidelity == pytest.approx(1.0)
    assert got[2].concept == "politics" and 0.65 < got[2].fidelity < 0.95
    test = _held_out_rows(300, 0.3, 4)
    fires = X[test].toarray() > 0
    for latent in (0, 2):
        col = CONCEPTS.index(got[latent].concept)
        assert got[latent].fidelity == pytest.approx(roc_auc_score(fires[:, latent], S[test, col]))
        assert got[latent].n_held_out == int(fires[:, latent].sum())
    if 1 in got:  # a random latent's best concept does not generalise
        assert got[1].fidelity < 0.65


def test_min_fires_and_bad_input() -> None:
    X, S = _probe()
    assert match_concepts(X, S, CONCEPTS, min_fires=200) == []
    with pytest.raises(InputError, match="similarity"):
        match_concepts(X, S[:, :3], CONCEPTS)
    with pytest.raises(InputError, match="at least 20"):
        match_concepts(X[:10], S[:10], CONCEPTS)
    with pytest.raises(InputError, match="held_out"):
        match_concepts(X, S, CONCEPTS, held_out=0.0)


def test_deterministic_given_the_seed() -> None:
    X, S = _probe()
    assert match_concepts(X, S, CONCEPTS, seed=1) == match_concepts(X, S, CONCEPTS, seed=1)


def test_strata_give_no_credit_for_telling_sources_apart() -> None:
    """Two sources; latent 0 fires on all of source B (which is 'politics'-like throughout), latent 1 on the
    'cooking'-like documents within each source. Unstratified, latent 0 looks perfectly described; within
    sources it is not, and latent 1 still is."""
    rng = np.random.default_rng(2)
    n = 400
    source = np.repeat(["a", "b"], n // 2)
    S = rng.normal(0.2, 0.05, size=(n, len(CONCEPTS)))
    S[source == "b", 3] += 0.3  # 'politics' separates the sources
    X = np.zeros((n, 2))
    X[source == "b", 0] = 1.0
    X[:, 1] = S[:, 4] > np.quantile(S[:, 4], 0.7)
    plain = {m.latent: m for m in match_concepts(sp.csr_matrix(X), S, CONCEPTS, seed=0)}
    assert plain[0].concept == "politics" and plain[0].fidelity > 0.99
    within = {m.latent: m for m in match_concepts(sp.csr_matrix(X), S, CONCEPTS, seed=0, strata=source)}
    assert 0 not in within  # it never fires and is silent within one source: nothing to predict
    assert within[1].concept == "cooking" and within[1].fidelity > 0.95
    test = _held_out_rows(n, 0.3, 0)
    fires = X[test, 1] > 0
    u = sum(
        roc_auc_score(fires[source[test] == s], S[test][source[test] == s, 4])
        * fires[source[test] == s].sum()
        * (~fires[source[test] == s]).sum()
        for s in ("a", "b")
    ) / sum(fires[source[test] == s].sum() * (~fires[source[test] == s]).sum() for s in ("a", "b"))
    assert within[1].fidelity == pytest.approx(u)
