"""The report from hand-made results: tables, headline numbers, plots and results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.methods import Cost, LatentScore
from evals.records import CaseResult, Environment, RunResults, Settings
from evals.report import cost_ratio, recall_rows, render, write_report
from evals.retrieval import ClusterScore, RetrievalScore
from saescope.llm.ledger import ModelPrice

PRICE = ModelPrice(prompt=1.0, completion=2.0)


def latent(f1: float, diff: float = -0.2, q: float = 0.01, mcc: float = 0.5) -> LatentScore:
    return LatentScore(
        latent=7, label="questions to the reader", diff=diff, q=q, precision=f1, recall=f1, f1=f1, mcc=mcc
    )


def case(
    case_id: str,
    group: str,
    fraction: float | None,
    first: int | None,
    *,
    sae_calls: int = 2,
    judged: list[bool] | None = None,
) -> CaseResult:
    return CaseResult(
        case_id=case_id,
        column="c000",
        group=group,
        corpus="reviews",
        prop="question" if group == "planted" else None,
        kind="style" if group == "planted" else group,
        fraction=fraction,
        paired=False,
        n_a=10,
        n_b=10,
        n_positive=2,
        tokens=400,
        embed_seconds=2.0,
        diff_seconds=0.1,
        n_tested=50,
        n_significant=0 if group == "null" else 3,
        top=[latent(0.2), latent(0.8)],
        first_recovered=first,
        first_significant=first,
        sae_cost=Cost(calls=sae_calls, prompt_tokens=1000 * sae_calls, completion_tokens=100 * sae_calls),
        baseline_cost=Cost(calls=4, prompt_tokens=8000, completion_tokens=800),
        sae_judged=judged,
        baseline_judged=[True] if judged is not None else None,
    )


def results(judged: bool = False) -> RunResults:
    flags = [False, True] if judged else None
    cases = [
        case("rv_question_f10", "planted", 0.1, None, judged=flags),
        case("rv_question_f50", "planted", 0.5, 1, judged=flags),
        case("real_sentiment", "real", None, 0, judged=flags),
        case("null_reviews", "null", None, None, sae_calls=0),
    ]
    settings = Settings(
        top_k=20,
        alpha=0.05,
        f1_min=0.5,
        mcc_min=0.3,
        n_latents=10,
        n_hypotheses=5,
        baseline_docs=10,
        batch_docs=5,
        pairs_per_call=1,
        price_model="m",
        llm="openai (m)" if judged else "none (dry run)",
        tokenizer="characters/4",
    )
    env = Environment(
        command="python -m evals.run --quick",
        started="2025-01-01T00:00:00+00:00",
        wall_seconds=60,
        python="3.11",
        platform="linux",
        cpus=2,
        versions={"saescope": "0.1.0"},
        dataset="evals-x",
        home="/tmp",
        n_docs=40,
        reader={"id": "r"},
        sae={"id": "s"},
        embed_config={"pooling": "max"},
        embed_seconds=10,
        embed_seconds_per_1k_tokens=5.0,
        tokens_total=2000,
        price_table_date="2025-06-01",
        price=PRICE.model_dump(),
    )
    retrieval = [
        RetrievalScore(
            case_id="rv_question_f10",
            prop="question",
            kind="style",
            query="a question",
            n_docs=20,
            n_relevant=2,
            random_ap=0.1,
            sae_ap=0.5,
            sae_ndcg10=0.6,
            dense_ap=0.7,
            dense_ndcg10=0.8,
            research_ap=0.4,
            hybrid_ap=0.84,
            sae_ranked=5,
            sae_latents=["questions"],
            sae_seconds=0.1,
            dense_seconds=0.2,
        )
    ]
    clustering = [
        ClusterScore(
            case_id="real_sentiment",
            axis="opinion",
            n_docs=20,
            sae_ari=0.4,
            dense_ari=0.1,
            sae_unassigned=3,
            seconds=0.5,
        )
    ]
    return RunResults(
        benchmark={"n_per_side": 10},
        settings=settings,
        environment=env,
        cases=cases,
        retrieval=retrieval,
        clustering=clustering,
    )


def test_recall_rows_and_cost_ratio() -> None:
    run = results()
    planted = [c for c in run.cases if c.group == "planted"]
    rows = recall_rows(planted)
    assert rows[0][:6] == ["10%", 1, 0.0, 0.0, 0.0, 0.0]
    assert rows[1][:6] == ["50%", 1, 0.0, 1.0, 1.0, 1.0]
    ratio = cost_ratio(run.cases, PRICE)
    # 3 cases with a difference: baseline 3 x (8000 + 800) tokens, SAE 3 x (2000 + 200).
    assert ratio["tokens"] == pytest.approx(4.0)
    assert ratio["usd"] == pytest.approx(3 * (8000 + 1600) / (3 * (2000 + 400)))
    assert ratio["cases"] == 3


def test_render_has_headline_tables_and_command() -> None:
    text = render(results(), ["recall_vs_fraction.png"])
    assert "recall@5 0.50 over 2 cases" in text
    assert "1/1 recovered" in text
    assert "4.0× the tokens" in text and "dry run" in text
    assert "sae-research 0.40 (0.57× dense, above dense on 0/1); sae 0.50 (0.71× dense, above dense on 0/1)" in text
    assert "hybrid 0.84 (1.20× dense, above dense on 1/1); dense MiniLM 0.70" in text
    assert "SAE 0.40 vs dense 0.10" in text
    assert "python -m evals.run --quick" in text
    assert "![recall_vs_fraction.png](recall_vs_fraction.png)" in text
    assert "With an LLM" not in text


def test_judged_results_report_recall_and_agreement(tmp_path: Path) -> None:
    out = write_report(results(judged=True), tmp_path / "r")
    text = out.read_text()
    assert "## With an LLM" in text
    assert "| planted | SAE + LLM | 0.00 | 1.00 | 1.00 |" in text
    assert "| planted | LLM-only | 1.00 | 1.00 | 1.00 |" in text
    # LLM-free says recovered on both planted cases (a significant latent with F1 0.8); the judge agrees.
    assert "agreement 1.00" in text
    for name in ("report.md", "results.json", "recall_vs_fraction.png", "cost_vs_recall.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert len(data["cases"]) == 4 and data["settings"]["f1_min"] == 0.5
