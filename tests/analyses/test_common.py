from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from saescope.analyses.common import (
    as_csr,
    column_counts,
    column_entries,
    render_table,
    top_order,
    top_rows_per_column,
)
from saescope.errors import InputError


def test_as_csr_cleans_duplicates_and_non_firing_entries() -> None:
    coo = sp.coo_matrix(([1.0, 2.0, 0.0, -1.0, 3.0], ([0, 0, 1, 1, 2], [0, 0, 1, 2, 2])), shape=(3, 3))
    X = as_csr(coo)
    assert X.toarray().tolist() == [[3.0, 0, 0], [0, 0, 0], [0, 0, 3.0]]
    assert X.nnz == 2
    assert column_counts(coo.tocsc()).tolist() == [1, 0, 1]  # CSC path skips the zero and the negative
    with pytest.raises(InputError, match="2-D"):
        as_csr(np.ones(3))
    with pytest.raises(InputError, match=r"scipy\.sparse"):
        as_csr([[1, 2]])


def test_column_entries_same_for_csr_and_csc() -> None:
    X = sp.random(50, 30, density=0.2, random_state=0, format="csr")
    for fmt in (X, X.tocsc()):
        rows, cols, vals = column_entries(fmt, [7, 3, 7])
        want = [(r, c) for c in (3, 7) for r in range(50) if X[r, c] > 0]
        assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == want
        assert vals.tolist() == [X[r, c] for r, c in want]


def test_top_rows_ties_go_to_lower_row() -> None:
    M = np.zeros((6, 2))
    M[:, 0] = [1.0, 3.0, 2.0, 3.0, 0.0, 3.0]
    tops = top_rows_per_column(sp.csr_matrix(M), [0, 1], 2)
    assert tops == {0: [1, 3], 1: []}


def test_top_order_matches_full_sort_with_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 1000).astype(float)
    b = rng.normal(size=1000)
    full = np.lexsort((-b, -a))
    assert top_order([a, b], 10).tolist() == full[:10].tolist()
    assert top_order([a, b], 30)[20:].tolist() == full[20:30].tolist()
    assert top_order([a, b], 5000).tolist() == full.tolist()


def test_render_table_aligns_and_cuts() -> None:
    text = render_table(["a", "long header"], [[1, "x" * 100], [0.000012345, None]], max_cell=10)
    lines = text.split("\n")
    assert lines[0].startswith("a") and "long header" in lines[0]
    assert "xxxxxxxxx…" in lines[1]
    assert "1.2e-05" in lines[2] and "-" in lines[2]
