"""Prompt -> response links: the rules, the scoring on hand-built matrices, the frames, and one tiny real run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats as sps

from evals import prompt_response as pr
from evals.detectors import (
    LINKS,
    asks_for_code,
    asks_for_list,
    asks_for_poem,
    asks_for_translation,
    has_list,
    has_non_english,
    has_verse,
)
from evals.prompt_response_report import recall, render
from saescope.analyses.cross import cross_pair_stats


def test_request_rules() -> None:
    assert asks_for_code("Write a Python function that reverses a list")
    assert asks_for_code("can you fix this code for me?")
    assert not asks_for_code("Write a script for the opening scene of a movie")
    assert asks_for_list("Give me five reasons to learn piano") and asks_for_list("List the planets")
    assert not asks_for_list("Why is the sky blue?")
    assert asks_for_poem("Write a haiku about autumn") and asks_for_poem("compose a song about the sea")
    assert not asks_for_poem("What does this song mean?")
    assert asks_for_translation("Translate 'good morning' into French")
    assert asks_for_translation('How do you say "thank you" in Japanese?')
    assert not asks_for_translation("Translate this idea into practice")


def test_answer_rules() -> None:
    assert has_list("Options:\n- one\n- two") and has_list("1. first\n2. second")
    assert not has_list("Just a sentence.")
    poem = "Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you."
    assert has_verse(poem)
    assert not has_verse("- a\n- b\n- c\n- d") and not has_verse("one line\n\ntwo lines")
    assert has_non_english("In French: Je suis très content de vous voir aujourd'hui.")
    assert has_non_english("Japanese: おはよう ござい ます")
    assert not has_non_english("This is an English sentence. Another one follows here.")
    assert [ln.name for ln in LINKS] == ["code", "list", "poem", "translation"]


def test_check_link_is_fishers_one_sided_test() -> None:
    request = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    prop = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    c = pr.check_link("code", "asks", "answers", request, prop, 4)
    assert c.freq_after == pytest.approx(0.75) and c.freq_otherwise == pytest.approx(1 / 6)
    assert c.p == pytest.approx(sps.fisher_exact([[3, 1], [1, 5]], alternative="greater")[1])
    assert c.verified == (c.p < 0.01)
    strong = pr.check_link("x", "a", "b", np.r_[np.ones(20), np.zeros(40)], np.r_[np.ones(18), np.zeros(42)], 20)
    assert strong.verified


def _planted(n: int = 200, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """Instruction latent 0 fires on the requests; answer latent 2 on the answers that follow them (90%);
    the other latents are noise."""
    rng = np.random.default_rng(seed)
    request = rng.random(n) < 0.2
    prop = np.where(request, rng.random(n) < 0.9, rng.random(n) < 0.05)
    X = (rng.random((n, 6)) < 0.3).astype(float)
    X[:, 0] = request
    Y = (rng.random((n, 5)) < 0.3).astype(float)
    Y[:, 2] = prop
    return sp.csr_matrix(X), sp.csr_matrix(Y), request[:, None], prop[:, None]


def test_score_links_finds_the_planted_pair_first_and_shuffling_loses_it() -> None:
    X, Y, req, prop = _planted()
    st = cross_pair_stats(X, Y, min_cooc=5)
    checks = [pr.check_link("code", "asks", "answers", req[:, 0], prop[:, 0], int(req.sum()))]
    order = pr.score_links(checks, st, X, Y, req, prop, alpha=0.05, mcc_min=0.3, ks=(1, 5))
    c = checks[0]
    assert c.verified and c.n_x_latents == 1 and c.n_y_latents == 1 and c.matching == 1
    assert c.first_rank == 1 and c.hits == {1: True, 5: True}
    sig = int((st.q <= 0.05).sum())
    assert c.chance[1] == pytest.approx(1 / sig)
    assert (int(st.ia[order[0]]), int(st.ib[order[0]])) == (0, 2)
    # answers matched to other instructions: the planted pair is no longer significant
    perm = np.random.default_rng(1).permutation(X.shape[0])
    Xs, reqs = X[perm], req[perm]
    sts = cross_pair_stats(Xs, Y, min_cooc=5)
    shuffled = [pr.check_link("code", "asks", "answers", reqs[:, 0], prop[:, 0], int(req.sum()))]
    pr.score_links(shuffled, sts, Xs, Y, reqs, prop, alpha=0.05, mcc_min=0.3, ks=(1, 5))
    assert shuffled[0].first_rank is None and not shuffled[0].verified


def _write(folder: Path, model: str, outputs: dict[str, str]) -> None:
    with gzip.open(folder / f"{model}.jsonl.gz", "wt", encoding="utf-8") as f:
        for ins, out in outputs.items():
            f.write(json.dumps({"instruction": ins, "output": out, "generator": model}) + "\n")


def test_build_frames_aligns_instructions_and_answers(tmp_path: Path) -> None:
    ins = [f"Write a Python function number {i}" if i % 4 == 0 else f"Why is {i} odd?" for i in range(24)]
    _write(tmp_path, "m1", {q: "```python\nprint(1)\n```" if "Python" in q else "Because." for q in ins})
    _write(tmp_path, "m2", {q: "No code." for q in ins})
    prompts, replies = pr.build_frames(pr.PRConfig(n_instructions=20, models=("m1", "m2")), tmp_path)
    assert len(prompts) == 20 and len(replies) == 40
    assert all(sorted(models) == ["m1", "m2"] for models in replies.groupby(pr.KEY)["model"].apply(list))
    merged = replies.merge(prompts, on=pr.KEY, suffixes=("", "_p"))
    code = merged["asks_code"].astype(bool)
    assert (merged.loc[code & (merged["model"] == "m1"), "gets_code"] == 1).all()
    assert (merged.loc[merged["model"] == "m2", "gets_code"] == 0).all()
    assert code.sum() > 0 and prompts["doc_id"].is_unique and replies["doc_id"].is_unique
    with pytest.raises(ValueError, match="distinct"):
        pr.PRConfig(models=("m1", "m1"))


def _result(links: list[dict[str, object]]) -> dict[str, object]:
    run = {"tested": 100, "significant": 10, "seconds": 0.1, "links": links, "top_pairs": []}
    return {
        "command": "python -m evals.prompt_response --home H",
        "started": "2026-12-02T00:00:00",
        "seconds": 1.0,
        "embed_seconds": 0.5,
        "config": {"n_instructions": 20, "models": ["m1"], "seed": 0},
        "n_rows": 20,
        "settings": {"min_cooc": 5, "alpha": 0.05, "mcc_min": 0.3, "ks": [20, 50]},
        "runs": {"real": run, "shuffled": {**run, "significant": 0}},
    }


def test_report_counts_recall_over_verified_links_only() -> None:
    base = {"asks": "a", "answers": "b", "n_instructions": 5, "freq_after": 0.5, "freq_otherwise": 0.1, "p": 0.001}
    links: list[dict[str, object]] = [
        {**base, "name": "code", "verified": True, "first_rank": 3, "first_rank_by_p": 9, "matching": 2}
        | {"n_x_latents": 1, "n_y_latents": 2, "hits": {"20": True, "50": True}, "chance": {"20": 0.1, "50": 0.2}},
        {**base, "name": "poem", "verified": False, "first_rank": None, "first_rank_by_p": None, "matching": 0}
        | {"n_x_latents": 0, "n_y_latents": 0, "hits": {"20": False, "50": False}, "chance": {"20": 0.0, "50": 0.0}},
    ]
    text = render(_result(links))
    assert "**1/1**" in text and "Not scored, because the rules do not confirm them on these rows: poem" in text
    norm = [{**c, "hits": {int(k): v for k, v in c["hits"].items()}} for c in links]  # type: ignore[attr-defined]
    assert recall(norm, 20) == (1, 1)


@pytest.mark.slow
@pytest.mark.skipif(not pr.DATA_DIR.is_dir(), reason=f"the shared AlpacaEval answers are not at {pr.DATA_DIR}")
def test_end_to_end_on_a_tiny_sample(tmp_path: Path) -> None:
    """24 instructions of one model through the real reader and SAE: both datasets, both pairings, the report."""
    out = tmp_path / "out"
    assert pr.main(["--home", str(tmp_path / "home"), "--out", str(out), "--instructions", "24"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["n_rows"] == 24 and set(res["runs"]) == {"real", "real_no_echoes", "shuffled"}
    for run in res["runs"].values():
        assert run["tested"] >= run["significant"] >= 0 and len(run["links"]) == len(LINKS)
    assert "## The links, as the rules see them" in (out / "report.md").read_text()
