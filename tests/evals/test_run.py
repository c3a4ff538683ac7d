"""End to end on the embedded default: a tiny ``--quick`` run embeds its cases and writes the full report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.run import main


@pytest.mark.slow
def test_quick_run_writes_report_plots_and_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cases = "rv_code_f50,null_reviews,real_sentiment,rs_apology_f50"
    rc = main(
        [
            "--quick",
            "--n",
            "24",
            "--cases",
            cases,
            "--home",
            str(tmp_path / "home"),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    by_id = {c["case_id"]: c for c in data["cases"]}
    assert set(by_id) == set(cases.split(","))
    assert by_id["rs_apology_f50"]["paired"] and by_id["rs_apology_f50"]["n_a"] == 24
    for c in by_id.values():
        assert c["tokens"] > 0 and c["embed_seconds"] > 0 and c["top"], c["case_id"]
        assert c["baseline_cost"]["calls"] > 1 and c["baseline_cost"]["prompt_tokens"] > 0
        assert c["baseline_cost"]["completion_is_cap"]
    assert by_id["rs_apology_f50"]["baseline_cost"]["calls"] == 24 + 1
    assert by_id["null_reviews"]["sae_cost"]["calls"] == 0 or by_id["null_reviews"]["n_significant"] > 0
    assert [r["case_id"] for r in data["retrieval"]] == ["rv_code_f50"]
    assert {k["case_id"] for k in data["clustering"]} == {"real_sentiment", "rv_code_f50"}
    assert data["environment"]["sae"]["id"] and data["environment"]["tokens_total"] > 0
    text = (out / "report.md").read_text()
    assert "## Headline" in text and "## Cost per case" in text and "--quick" in text
    assert (out / "recall_vs_fraction.png").stat().st_size > 0 and (out / "cost_vs_recall.png").stat().st_size > 0
