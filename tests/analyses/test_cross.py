"""cross_cooccurrence: exact counts, NPMI, lift and hypergeometric p on hand-built aligned matrices."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats as sps

from saescope.analyses.cross import cross_cooccurrence
from saescope.analyses.stats import benjamini_hochberg
from saescope.errors import InputError


def _hand() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    # 12 aligned rows. X latent 0 ("asks for code") fires on rows 0-3; Y latent 1 ("code block") fires on
    # rows 0-3 and 4. X latent 1 fires everywhere; Y latent 0 fires on the even rows; X latent 2 never.
    x = np.zeros((12, 3))
    x[0:4, 0] = 1.5
    x[:, 1] = 0.2
    y = np.zeros((12, 2))
    y[0:5, 1] = 2.0
    y[::2, 0] = 0.7
    return sp.csr_matrix(x), sp.csr_matrix(y)


def test_counts_npmi_lift_and_p_are_exact() -> None:
    X, Y = _hand()
    res = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=1.0, top_k=50)
    got = {(p.latent_x, p.latent_y): p for p in res.pairs}
    # every pair with a joint row is tested: (0,0) 2 rows, (0,1) 4, (1,0) 6, (1,1) 5; X latent 2 never fires
    assert set(got) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert res.tested == 4 and res.n_rows == 12 and res.n_x_texts == 12
    expect = {(0, 0): (2, 4, 6), (0, 1): (4, 4, 5), (1, 0): (6, 12, 6), (1, 1): (5, 12, 5)}
    ps = []
    for key, (nab, na, nb) in expect.items():
        pair = got[key]
        assert (pair.count_xy, pair.count_x, pair.count_y) == (nab, na, nb)
        pab, pa, pb = nab / 12, na / 12, nb / 12
        assert pair.lift == pytest.approx(pab / (pa * pb))
        assert pair.npmi == pytest.approx(math.log(pab / (pa * pb)) / -math.log(pab))
        # Fisher's one-sided exact test on the 2x2 table is the same hypergeometric tail
        table = [[nab, na - nab], [nb - nab, 12 - na - nb + nab]]
        fisher_p = sps.fisher_exact(table, alternative="greater")[1]
        assert pair.p == pytest.approx(fisher_p, rel=1e-9)
        ps.append((key, fisher_p))
    qs = benjamini_hochberg([p for _, p in ps])
    for (key, _), q in zip(ps, qs, strict=True):
        assert got[key].q == pytest.approx(q)
    # ranked by NPMI: the code request -> code block pair first
    assert (res.pairs[0].latent_x, res.pairs[0].latent_y) == (0, 1)
    assert [p.npmi for p in res.pairs] == sorted((p.npmi for p in res.pairs), reverse=True)


def test_counts_match_brute_force_on_random_matrices() -> None:
    rng = np.random.default_rng(3)
    X = sp.random(80, 30, density=0.2, format="csr", random_state=rng)
    Y = sp.random(80, 25, density=0.25, format="csr", random_state=rng)
    res = cross_cooccurrence(X, Y, None, None, min_cooc=3, alpha=1.0, top_k=10_000)
    bx, by = X.toarray() > 0, Y.toarray() > 0
    want = {
        (a, b): int((bx[:, a] & by[:, b]).sum())
        for a, b in product(range(30), range(25))
        if (bx[:, a] & by[:, b]).sum() >= 3
    }
    assert {(p.latent_x, p.latent_y): p.count_xy for p in res.pairs} == want
    assert res.tested == len(want)


def test_alpha_filters_and_paging_is_consistent() -> None:
    X, Y = _hand()
    all_pairs = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=1.0).pairs
    strict = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=0.05)
    assert strict.total == sum(p.q <= 0.05 for p in all_pairs)
    assert all(p.q <= 0.05 for p in strict.pairs)
    first = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=1.0, top_k=2)
    second = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=1.0, top_k=2, cursor=first.next_cursor or 0)
    assert [(p.latent_x, p.latent_y) for p in first.pairs + second.pairs] == [
        (p.latent_x, p.latent_y) for p in all_pairs
    ]
    assert second.next_cursor is None


def test_one_latent_and_groups() -> None:
    X, Y = _hand()
    only = cross_cooccurrence(X, Y, None, None, min_cooc=1, alpha=1.0, latent_y=1)
    assert {p.latent_y for p in only.pairs} == {1} and len(only.pairs) == 2
    grouped = cross_cooccurrence(X, Y, None, None, min_cooc=1, x_groups=[i // 3 for i in range(12)])
    assert grouped.n_x_texts == 4
    assert "optimistic" in grouped.to_text()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"min_cooc": 0}, "min_cooc"),
        ({"alpha": 0.0}, "alpha"),
        ({"latent_x": 3}, "out of range"),
        ({"latent_y": -1}, "out of range"),
        ({"x_groups": [1, 2]}, "x_groups"),
        ({"top_k": 0}, "top_k"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], needle: str) -> None:
    X, Y = _hand()
    with pytest.raises(InputError, match=needle):
        cross_cooccurrence(X, Y, None, None, **kwargs)  # type: ignore[arg-type]


def test_misaligned_rows_are_refused() -> None:
    X, Y = _hand()
    with pytest.raises(InputError, match="one row per aligned pair"):
        cross_cooccurrence(X, Y[:5], None, None)


def test_skip_same_leaves_out_a_latent_paired_with_itself() -> None:
    rng = np.random.default_rng(5)
    X = sp.random(60, 12, density=0.3, format="csr", random_state=rng)
    Y = X.copy()  # the second text echoes the first: every latent pairs with itself
    full = cross_cooccurrence(X, Y, None, None, min_cooc=2, alpha=1.0, top_k=10_000)
    echo_free = cross_cooccurrence(X, Y, None, None, min_cooc=2, alpha=1.0, top_k=10_000, skip_same=True)
    same = {(p.latent_x, p.latent_y) for p in full.pairs if p.latent_x == p.latent_y}
    assert same and echo_free.tested == full.tested - len(same)
    assert {(p.latent_x, p.latent_y) for p in echo_free.pairs} == {
        (p.latent_x, p.latent_y) for p in full.pairs if p.latent_x != p.latent_y
    }
    assert "echoes" in echo_free.to_text()
    with pytest.raises(InputError, match="one SAE"):
        cross_cooccurrence(X, Y[:, :5], None, None, skip_same=True)
