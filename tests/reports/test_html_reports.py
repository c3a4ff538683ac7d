"""HTML reports of real results, opened in headless Chromium: what a person sees is checked, not the markup.

One screenshot per report kind is kept as a test artefact (in $SAESCOPE_TEST_ARTIFACTS, or the test's tmp
folder), never in the repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from saescope import ops
from saescope.ops import reports
from saescope.ops.reports import CardDoc, Chart, LatentCard, Report, Segment, SideFrequency
from saescope.ops.requests import (
    ClusterRequest,
    CorrelationsRequest,
    DiffRequest,
    Request,
    RetrieveRequest,
    TrendRequest,
)
from saescope.report import render_html
from saescope.workspace import Workspace
from tests.reports.browser import probe, screenshot
from tests.server.shared import Data

Case = tuple[Request, Callable[[Workspace, Request], BaseModel], str]

CASES: dict[str, Case] = {
    "diff-sets": (
        DiffRequest(dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'", top_k=6),
        ops.diff,  # type: ignore[dict-item]
        "diff_report",
    ),
    "diff-paired": (
        DiffRequest(
            dataset_a="reviews", where_a="half == 'first'", where_b="half == 'second'", mode="paired", pair_key="pair"
        ),
        ops.diff,  # type: ignore[dict-item]
        "diff_report",
    ),
    "diff-one-vs-many": (
        DiffRequest(dataset_a="reviews", mode="one_vs_many", column="category", target="plot", top_k=6),
        ops.diff,  # type: ignore[dict-item]
        "diff_report",
    ),
    "trend": (
        TrendRequest(dataset="reviews", column="category", order=["fresh", "rotten", "plot"], top_k=6),
        ops.trend,  # type: ignore[dict-item]
        "trend_report",
    ),
    "correlations": (
        CorrelationsRequest(dataset="reviews", top_k=5, min_cooc=3),
        ops.correlations,
        "correlations_report",
    ),  # type: ignore[dict-item]
    "correlations-across": (
        CorrelationsRequest(
            dataset="reviews", where="half == 'first'", against="reviews", join_on="pair", top_k=5, min_cooc=3
        ),
        ops.correlations,
        "correlations_report",
    ),  # type: ignore[dict-item]
    "cluster": (ClusterRequest(dataset="reviews", latents=None, axis="praise", k=2), ops.cluster, "cluster_report"),  # type: ignore[dict-item]
    "cluster-classes": (
        ClusterRequest(dataset="reviews", classes=["a plot summary", "an opinion about a film"]),
        ops.cluster,
        "cluster_report",
    ),  # type: ignore[dict-item]
    "retrieval-hybrid": (
        RetrieveRequest(dataset="reviews", query="praise for the acting", method="hybrid", top_k=8),
        ops.retrieve,
        "retrieval_report",
    ),  # type: ignore[dict-item]
    "retrieval": (
        RetrieveRequest(dataset="reviews", query="praise for the acting", top_k=8),
        ops.retrieve,
        "retrieval_report",
    ),  # type: ignore[dict-item]
}


def _artefacts(tmp_path: Path) -> Path:
    return Path(os.environ.get("SAESCOPE_TEST_ARTIFACTS") or tmp_path / "artefacts")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_report_in_a_browser(kind: str, data: Data, tmp_path: Path) -> None:
    req, run, builder = CASES[kind]
    result = run(data.ws, req)
    report: Report = getattr(reports, builder)(data.ws, req, result, command=f"test {kind}")
    page = tmp_path / f"{kind}.html"
    page.write_text(render_html(report), encoding="utf-8")
    seen = probe(page, tmp_path)
    assert seen["errors"] == [] and seen["resources"] == [] and seen["scripts"] == 1, seen
    drawn = [s for s in seen["svgs"] if s["size"][0] > 100 and s["size"][1] > 50 and s["shapes"] > 0]
    assert drawn, f"no chart drawn: {seen['svgs']}"
    assert seen["cards"] == [str(c.latent) for c in report.cards] and report.cards
    guided = getattr(result, "guided_latents", None)
    if guided is not None:  # a hybrid's cards include its guided ranking's latents
        assert {c.latent for c in report.cards} & {p.latent for p in guided.latents}
    texts = dict(
        zip(*[data.ws.dataset("reviews").documents(["text"])[c].astype(str) for c in ("doc_id", "text")], strict=True)
    )
    assert seen["docs"], "the cards show documents"
    for doc in seen["docs"]:
        shown = doc["text"].strip("…")
        assert shown and shown in texts[doc["id"]], (doc["id"], shown[:80])
        assert all(m and m in texts[doc["id"]] for m in doc["marks"])
    assert any(doc["marks"] for doc in seen["docs"]), "firing tokens are highlighted"
    shot = screenshot(page, _artefacts(tmp_path) / f"report-{kind}.png")
    print(f"screenshot: {shot}")


def test_document_text_is_escaped(tmp_path: Path) -> None:
    hostile = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"
    card = LatentCard(
        latent=7,
        label="<b>label</b>",
        frequencies=[SideFrequency(side="<i>A</i>", count=1, n=2, freq=0.5)],
        docs=[
            CardDoc(
                side="A",
                doc_id='d"1',
                activation=2.0,
                segments=[Segment(text="before "), Segment(text=hostile, activation=2.0), Segment(text=" after")],
                cut_before=False,
                cut_after=False,
            )
        ],
    )
    report = Report(
        kind="diff-sets",
        title="<script>x</script>",
        command="saescope diff x",
        dataset="x",
        embedding={"key": "k"},
        summary="s",
        chart=Chart(kind="bars", title="t", axis="a"),
        cards=[card],
    )
    page = tmp_path / "hostile.html"
    page.write_text(render_html(report), encoding="utf-8")
    seen = probe(page, tmp_path)
    assert seen["scripts"] == 1 and seen["errors"] == [] and seen["resources"] == []
    assert seen["docs"] == [{"id": 'd"1', "text": f"before {hostile} after", "marks": [hostile]}]
