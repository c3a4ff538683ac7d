"""The retrieval eval's bookkeeping: full orders, per-method AP, the headline and the markdown report."""

from __future__ import annotations

import numpy as np

from evals.retrieval import (
    PositivesScore,
    RetrievalScore,
    full_order,
    method_aps,
    positives_markdown,
    retrieval_headline,
    retrieval_markdown,
)


def _score(prop: str, research: float | None, sae: float, hybrid: float | None, dense: float) -> RetrievalScore:
    return RetrievalScore(
        case_id=f"rv_{prop}_f25",
        prop=prop,
        kind="style",
        query=f"a {prop}",
        n_docs=40,
        n_relevant=10,
        random_ap=0.25,
        sae_ap=sae,
        sae_ndcg10=0.5,
        dense_ap=dense,
        dense_ndcg10=0.5,
        research_ap=research,
        research_ndcg10=None,
        hybrid_ap=hybrid,
        hybrid_ndcg10=None,
        sae_ranked=12,
        sae_latents=["a | b", "c"],
        sae_seconds=0.1,
        dense_seconds=0.1,
    )


def test_full_order_appends_the_rest_in_seeded_random_order() -> None:
    ids = [f"d{i}" for i in range(6)]
    a = full_order(["d4", "d1"], ids, np.random.default_rng(3))
    assert a[:2] == ["d4", "d1"] and sorted(a) == ids
    assert a == full_order(["d4", "d1"], ids, np.random.default_rng(3))


def test_headline_gives_each_method_its_ratio_to_dense_and_wins() -> None:
    rows = [_score("apology", 0.2, 0.6, 0.5, 0.4), _score("question", 0.4, 0.2, 0.7, 0.4)]
    assert method_aps(rows) == {
        "sae-research": [0.2, 0.4],
        "sae": [0.6, 0.2],
        "hybrid": [0.5, 0.7],
        "dense": [0.4, 0.4],
    }
    text = retrieval_headline(rows)
    assert text.startswith("mean AP over 2 properties: sae-research 0.30 (0.75× dense, above dense on 0/2)")
    assert "sae 0.40 (1.00× dense, above dense on 1/2)" in text
    assert "hybrid 0.60 (1.50× dense, above dense on 2/2); dense MiniLM 0.40; random 0.25" in text


def test_records_without_the_new_methods_show_only_sae_and_dense() -> None:
    rows = [_score("apology", None, 0.6, None, 0.4)]
    assert set(method_aps(rows)) == {"sae", "dense"}
    assert "sae-research" not in retrieval_headline(rows)


def test_markdown_report_has_the_command_and_a_row_per_property() -> None:
    rows = [_score("apology", 0.2, 0.6, None, 0.4)]
    md = retrieval_markdown(rows, "python -m evals.retrieval --home H --out O")
    assert "`python -m evals.retrieval --home H --out O`" in md
    assert "| apology | style | a apology | 10/40 | 0.200 | 0.600 | – | – | 0.400 | a / b; c |" in md
    guided = rows[0].model_copy(update={"guided_ap": 0.9, "hybrid_ap": 0.7})
    md = retrieval_markdown([guided], "cmd")
    assert "| 0.200 | 0.600 | 0.900 | 0.700 | 0.400 |" in md
    assert "sae-guided 0.90 (2.25× dense, above dense on 1/1)" in retrieval_headline([guided])


def test_positives_markdown_has_the_means_and_a_row_per_case() -> None:
    rows = [
        PositivesScore(
            case_id="rv_url_f25",
            n_positives=5,
            sae_ap=0.25,
            sae_positives_ap=1.0,
            examples_only_ap=0.5,
            dense_ap=0.2,
            dense_examples_ap=0.3,
        )
    ]
    md = positives_markdown(rows, "python -m evals.retrieval --positives 5")
    assert "given 5 positive examples" in md
    assert "Mean: sae 0.250, sae_positives 1.000, examples_only 0.500, dense 0.200, dense_examples 0.300." in md
    assert "| rv_url_f25 | 0.250 | 1.000 | 0.500 | 0.200 | 0.300 |" in md
