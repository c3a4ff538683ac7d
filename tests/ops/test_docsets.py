"""The one resolver: filters, pairs and one-vs-many groups resolved against the stored metadata."""

from __future__ import annotations

import numpy as np
import pytest

from saescope.errors import InputError, NotFoundError
from saescope.ops.docsets import DocSet, any_fires, resolve, resolve_sides
from saescope.ops.requests import DiffSpec
from tests.ops.helpers import matrix, meta
from tests.server.shared import Data


def test_resolve_with_a_filter_gives_the_rows_the_metadata_says(data: Data) -> None:
    m = meta(data)
    where = "category == 'rotten' and length > 100"
    expected = np.flatnonzero(((m["category"] == "rotten") & (m["length"] > 100)).to_numpy())
    assert 0 < len(expected) < 16
    r = resolve(data.ws, DocSet("reviews", where))
    assert r.rows.tolist() == expected.tolist()
    assert r.doc_ids.tolist() == m["doc_id"].to_numpy()[expected].tolist()
    assert set(r.column("category")) == {"rotten"}
    M = matrix(data)
    assert r.X.shape == (len(expected), M.shape[1])
    assert (r.X - M[expected]).count_nonzero() == 0
    everything = resolve(data.ws, DocSet("reviews"))
    assert everything.rows.tolist() == list(range(48)) and everything.X.shape[0] == 48


def test_resolve_refuses_too_few_rows_bad_columns_and_unknown_datasets(data: Data) -> None:
    with pytest.raises(InputError, match="selects 0 document"):
        resolve(data.ws, DocSet("reviews", "category == 'nonexistent'"))
    with pytest.raises(InputError, match="at least 5"):
        resolve(data.ws, DocSet("reviews", "pair == 3"), min_docs=5)
    with pytest.raises(InputError, match="colour"):
        resolve(data.ws, DocSet("reviews", "colour == 'red'"))
    r = resolve(data.ws, DocSet("reviews", "pair == 3"))
    with pytest.raises(InputError, match="no column 'colour'"):
        r.column("colour")
    with pytest.raises(NotFoundError):
        resolve(data.ws, DocSet("no-such-dataset"))


def test_paired_sides_match_rows_by_key(data: Data) -> None:
    spec = DiffSpec(
        mode="paired",
        dataset_a="reviews",
        where_a="half == 'first' and pair >= 10",
        where_b="half == 'second'",
        pair_key="pair",
    )
    sides = resolve_sides(data.ws, spec)
    m = meta(data)
    assert sides.a.rows.tolist() == list(range(10, 24))
    assert sides.b.rows.tolist() == list(range(34, 48)), "B's rows are those with A's keys, not B's first rows"
    assert sides.a.keys is not None and sides.b.keys is not None
    assert [str(k) for k in sides.a.keys] == [str(p) for p in m["pair"].to_numpy()[sides.a.rows]]
    assert list(sides.a.keys) == list(sides.b.keys)
    for ra, rb in zip(sides.a.rows, sides.b.rows, strict=True):
        assert m["pair"].iloc[ra] == m["pair"].iloc[rb]
        assert (m["half"].iloc[ra], m["half"].iloc[rb]) == ("first", "second")
    assert sides.a.X.shape[0] == sides.b.X.shape[0] == 14
    # example names of a paired diff are keys; they map back to each side's own doc ids
    assert sides.b.doc_ids_for(["12"]) == [m["doc_id"].iloc[36]]


def test_paired_refuses_a_repeated_key_and_disjoint_keys(data: Data) -> None:
    repeated = DiffSpec(
        mode="paired", dataset_a="reviews", where_a="half == 'first'", where_b="half == 'second'", pair_key="category"
    )
    with pytest.raises(InputError, match="repeats"):
        resolve_sides(data.ws, repeated)
    disjoint = DiffSpec(
        mode="paired",
        dataset_a="reviews",
        where_a="half == 'first' and pair < 5",
        where_b="half == 'second' and pair >= 10",
        pair_key="pair",
    )
    with pytest.raises(InputError, match="nothing to pair"):
        resolve_sides(data.ws, disjoint)
    with pytest.raises(InputError, match="no column 'prompt'"):
        resolve_sides(data.ws, disjoint.model_copy(update={"pair_key": "prompt"}))


def test_one_vs_many_sides_and_groups_partition_the_documents(data: Data) -> None:
    spec = DiffSpec(mode="one_vs_many", dataset_a="reviews", column="category", target="plot")
    sides = resolve_sides(data.ws, spec)
    m = meta(data)
    cat = m["category"].to_numpy()
    assert (len(sides.a.rows), len(sides.b.rows)) == (16, 32)
    assert sides.a.name == "plot" and set(cat[sides.a.rows]) == {"plot"}
    assert "plot" not in set(cat[sides.b.rows])
    assert list(sides.groups) == ["fresh", "rotten"]
    for name, side in sides.groups.items():
        assert len(side.rows) == 16 and set(cat[side.rows]) == {name}
    parts = [sides.a.rows, *(g.rows for g in sides.groups.values())]
    together = np.concatenate(parts)
    assert sorted(together.tolist()) == list(range(48)), "target and groups cover every document once"
    assert sorted(sides.b.rows.tolist()) == sorted(np.concatenate(parts[1:]).tolist())
    with pytest.raises(InputError, match="no value 'poem'"):
        resolve_sides(data.ws, spec.model_copy(update={"target": "poem"}))
    narrowed = spec.model_copy(update={"where_a": "category == 'plot'"})
    with pytest.raises(InputError, match="only the value"):
        resolve_sides(data.ws, narrowed)


def test_sets_sides_and_any_fires(data: Data) -> None:
    spec = DiffSpec(dataset_a="reviews", where_a="category == 'fresh'", where_b="category != 'fresh'")
    sides = resolve_sides(data.ws, spec)
    assert (len(sides.a.rows), len(sides.b.rows)) == (16, 32)
    assert sides.a.keys is None and sides.a.doc_ids_for(["x"]) == ["x"]
    assert sides.d_sae == matrix(data).shape[1]
    with pytest.raises(InputError, match="outside the SAE"):
        sides.check_latents([0, sides.d_sae])
    M = matrix(data)
    latents = [0, 1, 2]
    dense = M[sides.a.rows][:, latents].toarray()
    assert any_fires(sides.a.X, latents).tolist() == (dense > 0).any(axis=1).tolist()
