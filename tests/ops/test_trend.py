"""ops.trend end to end on real embeddings: groups from a column, pairing, and the same numbers through MCP."""

from __future__ import annotations

import numpy as np
import pytest
from mcp import Client

from saescope import ops
from saescope.errors import InputError
from saescope.ops.requests import TrendRequest
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from tests.ops.helpers import matrix, meta
from tests.server.shared import Data

pytestmark = pytest.mark.anyio


def test_two_paired_groups_give_mcnemar_z(data: Data) -> None:
    # Documents i and i + 24 share `pair`; `half` puts them first and second. With two groups and pairs, the
    # stratified trend z is McNemar's (b - c) / sqrt(b + c), counted here from the matrix.
    req = TrendRequest(dataset="reviews", column="half", order=["first", "second"], pair_key="pair", min_support=3)
    res = ops.trend(data.ws, req)
    assert res.trend.stratified and res.trend.n_strata == 24 and res.trend.n_per_group == [24, 24]
    M = (matrix(data) > 0).toarray()
    m = meta(data)
    first = m.index[m["half"] == "first"].to_numpy()
    second = np.array([m.index[(m["half"] == "second") & (m["pair"] == m.loc[i, "pair"])][0] for i in first])
    assert res.trend.rows, res.to_text()
    for row in res.trend.rows:
        b = int((~M[first, row.latent] & M[second, row.latent]).sum())
        c = int((M[first, row.latent] & ~M[second, row.latent]).sum())
        assert row.z == pytest.approx((b - c) / np.sqrt(b + c))
        assert row.counts == [int(M[first, row.latent].sum()), int(M[second, row.latent].sum())]


def test_numeric_column_is_grouped_in_order(data: Data) -> None:
    res = ops.trend(data.ws, TrendRequest(dataset="reviews", column="pair", n_bins=4, min_support=2))
    assert len(res.trend.groups) == 4 and sum(res.trend.n_per_group) == 48 and res.n_left_out == 0
    small = ops.trend(data.ws, TrendRequest(dataset="reviews", column="pair", where="pair < 3", min_support=1))
    assert small.trend.groups == ["0", "1", "2"] and small.trend.n_per_group == [2, 2, 2]


def test_text_columns_need_an_order_and_other_values_are_left_out(data: Data) -> None:
    with pytest.raises(InputError, match="give order="):
        ops.trend(data.ws, TrendRequest(dataset="reviews", column="category"))
    with pytest.raises(InputError, match="no document has"):
        ops.trend(data.ws, TrendRequest(dataset="reviews", column="category", order=["fresh", "sour"]))
    res = ops.trend(data.ws, TrendRequest(dataset="reviews", column="category", order=["rotten", "fresh"]))
    assert res.n_left_out == 16 and res.trend.n_per_group == [16, 16]


async def test_find_trends_over_mcp_matches_the_operation(data: Data) -> None:
    req = TrendRequest(dataset="reviews", column="category", order=["fresh", "rotten", "plot"], top_k=5)
    direct = ops.trend(data.ws, req)
    server = build_server(ServerConfig(home=data.root, roots=[data.files], device="cpu"), workspace=data.ws)
    async with Client(server) as client:
        out = await client.call_tool("find_trends", req.model_dump(exclude_defaults=True))
    assert not out.is_error and out.structured_content == direct.model_dump(mode="json")


def test_trend_report_draws_one_panel_per_row_and_escapes_text(data: Data) -> None:
    from saescope.ops.reports import trend_report
    from saescope.report import render_html

    req = TrendRequest(dataset="reviews", column="pair", n_bins=3, min_support=2, top_k=4)
    res = ops.trend(data.ws, req)
    report = trend_report(data.ws, req, res, command="saescope trend reviews --column pair")
    assert len(report.chart.series) == len(res.trend.rows) > 0 and report.cards
    hostile = report.model_copy(
        update={
            "title": "t <b>",
            "chart": report.chart.model_copy(
                update={"groups": ["<script>alert(1)</script>", *report.chart.groups[1:]]}
            ),
        }
    )
    page = render_html(hostile)
    assert page.count('class="multiple"') == len(res.trend.rows)
    assert "<script>" not in page and "&lt;script&gt;" in page and "t &lt;b&gt;" in page
