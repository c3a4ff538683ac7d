"""Request types: every default, bound and mode check lives on the request, and bad input is an InputError."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from saescope.errors import InputError
from saescope.ops.requests import (
    ClusterRequest,
    CorrelationsRequest,
    DiffRequest,
    DiffSpec,
    EmbedRequest,
    IngestRequest,
    RetrieveRequest,
    SummariseRequest,
    VerifyRequest,
)


def test_bounds_are_input_errors_naming_the_field() -> None:
    with pytest.raises(InputError, match="top_k") as info:
        DiffRequest.build(dataset_a="x", dataset_b="y", top_k=0)
    assert "DiffRequest" in str(info.value)
    with pytest.raises(InputError, match="top_k"):
        DiffRequest.build(dataset_a="x", dataset_b="y", top_k=51)
    with pytest.raises(InputError, match="alpha"):
        DiffRequest.build(dataset_a="x", dataset_b="y", alpha=1.0)
    with pytest.raises(InputError, match="min_support"):
        DiffRequest.build(dataset_a="x", dataset_b="y", min_support=0)
    with pytest.raises(InputError, match="cursor"):
        DiffRequest.build(dataset_a="x", dataset_b="y", cursor=-1)
    with pytest.raises(InputError, match="dataset_a"):
        DiffRequest.build(dataset_b="y")


def test_defaults_come_from_the_request_fields() -> None:
    req = DiffRequest.build(dataset_a="x", dataset_b="y")
    assert (req.top_k, req.min_support, req.alpha, req.rank_by, req.direction, req.cursor) == (
        20,
        5,
        0.05,
        "effect",
        "both",
        0,
    )
    schema = DiffRequest.model_json_schema()["properties"]["top_k"]
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, 50, 20)
    assert SummariseRequest.model_fields["min_support"].default == DiffRequest.model_fields["min_support"].default
    spec = req.spec
    assert type(spec) is DiffSpec and spec.dataset_a == "x" and spec.b == "y"
    assert not hasattr(spec, "top_k")


def test_blank_filters_and_names_are_none() -> None:
    req = DiffRequest.build(dataset_a="x", dataset_b="y", where_a="", where_b="")
    assert req.where_a is None and req.where_b is None
    req = DiffRequest.build(dataset_a="x", where_a="", where_b="a == 1", pair_key="", column="")
    assert req.where_a is None and req.pair_key is None and req.column is None
    assert CorrelationsRequest.build(dataset="x", where="").where is None
    assert RetrieveRequest.build(dataset="x", query="q", where="").where is None
    # dataset_b="" is no dataset: the same documents on both sides
    with pytest.raises(InputError, match="same documents"):
        DiffRequest.build(dataset_a="x", dataset_b="", where_a="", where_b="")


def test_mode_checks() -> None:
    with pytest.raises(InputError, match="pair_key"):
        DiffRequest.build(dataset_a="x", dataset_b="y", mode="paired")
    paired = DiffRequest.build(dataset_a="x", dataset_b="y", mode="paired", pair_key="k")
    assert paired.pair_key == "k"
    with pytest.raises(InputError, match="column and target"):
        DiffRequest.build(dataset_a="x", mode="one_vs_many", column="c")
    with pytest.raises(InputError, match="leave dataset_b"):
        DiffRequest.build(dataset_a="x", dataset_b="y", mode="one_vs_many", column="c", target="t")
    with pytest.raises(InputError, match="leave dataset_b"):
        DiffRequest.build(dataset_a="x", where_b="c == 't'", mode="one_vs_many", column="c", target="t")
    ok = DiffRequest.build(dataset_a="x", mode="one_vs_many", column="c", target="")
    assert ok.target == ""  # an empty value is a value to compare
    with pytest.raises(InputError, match="only apply to mode 'one_vs_many'"):
        DiffRequest.build(dataset_a="x", dataset_b="y", column="c")
    with pytest.raises(InputError, match="only apply to mode 'one_vs_many'"):
        DiffRequest.build(dataset_a="x", dataset_b="y", mode="paired", pair_key="k", target="t")
    with pytest.raises(InputError, match="mode"):
        DiffRequest.build(dataset_a="x", dataset_b="y", mode="pairs")


def test_same_documents_on_both_sides_are_refused() -> None:
    with pytest.raises(InputError, match="same documents"):
        DiffRequest.build(dataset_a="x")
    with pytest.raises(InputError, match="same documents"):
        DiffRequest.build(dataset_a="x", dataset_b="x", where_a="a == 1", where_b="a == 1")
    with pytest.raises(InputError, match="same documents"):
        VerifyRequest.build(dataset_a="x", latents=[1])
    assert DiffRequest.build(dataset_a="x", where_a="a == 1").where_b is None
    assert DiffRequest.build(dataset_a="x", dataset_b="y").b == "y"


def test_paired_same_documents_on_both_sides_are_refused() -> None:
    with pytest.raises(InputError, match="same documents"):
        DiffRequest.build(dataset_a="x", mode="paired", pair_key="k", where_a="h == 1", where_b="h == 1")


def test_unknown_fields_are_refused_and_requests_are_frozen() -> None:
    with pytest.raises(InputError, match="bogus"):
        DiffRequest.build(dataset_a="x", dataset_b="y", bogus=1)
    with pytest.raises(InputError, match="top-k"):
        DiffRequest.build(dataset_a="x", dataset_b="y", **{"top-k": 3})
    req = DiffRequest.build(dataset_a="x", dataset_b="y")
    with pytest.raises(ValidationError):
        req.top_k = 3
    assert req.top_k == 20


def test_verify_judge_needs_words() -> None:
    base = {"dataset_a": "x", "dataset_b": "y", "latents": [1]}
    with pytest.raises(InputError, match="hypothesis"):
        VerifyRequest.build(**base, judge=True)
    with pytest.raises(InputError, match="hypothesis"):
        VerifyRequest.build(**base, judge=True, hypothesis="   ")
    assert VerifyRequest.build(**base, judge=True, hypothesis="A is kinder").judge
    assert VerifyRequest.build(**base).hypothesis is None
    with pytest.raises(InputError, match="latents"):
        VerifyRequest.build(dataset_a="x", dataset_b="y", latents=[])
    with pytest.raises(InputError, match="latents"):
        VerifyRequest.build(dataset_a="x", dataset_b="y", latents=list(range(21)))


def test_cluster_needs_an_axis() -> None:
    with pytest.raises(InputError, match="axis"):
        ClusterRequest.build(dataset="x")
    with pytest.raises(InputError, match="axis"):
        ClusterRequest.build(dataset="x", latents=[])
    with pytest.raises(InputError, match="latents"):
        ClusterRequest.build(dataset="x", latents=[-1])
    with pytest.raises(InputError, match="k"):
        ClusterRequest.build(dataset="x", dense=True, k=1)
    assert ClusterRequest.build(dataset="x", latents=[3]).latents == [3]
    assert ClusterRequest.build(dataset="x", dense=True).k is None


def test_other_request_checks() -> None:
    with pytest.raises(InputError, match="words"):
        RetrieveRequest.build(dataset="x", query="   ")
    assert RetrieveRequest.build(dataset="x", query="", latents=[2]).latents == [2]
    with pytest.raises(InputError, match="exactly one"):
        IngestRequest.build(name="n")
    with pytest.raises(InputError, match="exactly one"):
        IngestRequest.build(name="n", path="a.jsonl", documents=["x"])
    with pytest.raises(InputError, match="co-occurrence only"):
        CorrelationsRequest.build(dataset="x", column="c", latent=3)
    with pytest.raises(InputError, match="co-occurrence only"):
        CorrelationsRequest.build(dataset="x", column="c", cursor=5)
    with pytest.raises(InputError, match="threshold"):
        EmbedRequest.build(dataset="x", threshold=float("inf"))
    with pytest.raises(InputError, match="window"):
        EmbedRequest.build(dataset="x", window=4)
