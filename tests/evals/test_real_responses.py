"""The real-response evals: case building and scoring on small synthetic inputs (no embedding), and one
slow end-to-end run on the shared AlpacaEval answers through the real reader and SAE."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from evals import real_responses as rr
from evals.detectors import NAMES, detect_all
from evals.methods import Cost
from evals.metrics import firing_match
from evals.real_records import (
    DetectorTrend,
    RealCaseResult,
    RealEnvironment,
    RealRun,
    RealSettings,
    RetrievalRecord,
    TopLatent,
    TrendResultRecord,
)
from evals.real_report import recovery_counts, render, write_report

N_INSTR = 10
CONCISE = "Paris."
VERBOSE = "Certainly! Here is **the answer**:\n\n- Paris is the capital\n- of France\n\nLet me know if you need more."


def _write(folder: Path, model: str, outputs: dict[str, str]) -> None:
    with gzip.open(folder / f"{model}.jsonl.gz", "wt", encoding="utf-8") as f:
        for ins, out in outputs.items():
            f.write(json.dumps({"instruction": ins, "output": out, "generator": model, "subset": "koala"}) + "\n")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Four models answering N_INSTR instructions; 'q3' is empty for 'other2', 'q9' missing from 'other1'."""
    folder = tmp_path / "alpaca"
    folder.mkdir()
    ins = [f"q{i}" for i in range(N_INSTR)]
    _write(folder, "m_concise", {q: f"{CONCISE} ({q})" for q in ins})
    _write(folder, "m_verbose", {q: f"{VERBOSE} ({q})" for q in ins})
    _write(folder, "other1", {q: f"Sure, {q} is answered." for q in ins if q != "q9"})
    _write(folder, "other2", {q: "" if q == "q3" else f"## Title\n\nAnswer to {q}." for q in ins})
    return folder


def _config(seed: int = 0, max_chars: int = 1500, tail_chars: int = 400) -> rr.RealConfig:
    cases = (
        rr.CaseSpec("cv", "concise_verbose", "m_concise", ("m_verbose",)),
        rr.CaseSpec("ovm", "one_vs_many", "m_verbose", ("other1", "other2")),
        rr.CaseSpec("null_v", "null", "m_verbose"),
    )
    return rr.RealConfig(
        n_instructions=6,
        seed=seed,
        max_chars=max_chars,
        tail_chars=tail_chars,
        cases=cases,
        trend=("m_concise", "m_verbose"),
    )


# --- shortening -----------------------------------------------------------------------------------------


def test_shorten_keeps_short_answers_whole() -> None:
    assert rr.shorten("  short answer \n", 100, 30) == "short answer"


def test_shorten_keeps_start_and_end() -> None:
    body = " ".join(f"word{i}" for i in range(400))
    text = f"Certainly! {body}\nLet me know if you need anything else."
    out = rr.shorten(text, 300, 80)
    assert len(out) <= 300 and out.startswith("Certainly! word0")
    assert rr.MARK in out and out.endswith("Let me know if you need anything else.")
    tail = out.split(rr.MARK)[1]
    assert tail.startswith("word") and f" {tail.split()[0]} " in f" {body} "  # a whole word, not a piece
    paragraphs = f"Start.\n\n{body}\n\n{'Closing line. ' * 3}"
    assert rr.shorten(paragraphs, 300, 80).split(rr.MARK)[1] == "Closing line. " * 2 + "Closing line."


def test_shorten_without_tail_ends_with_an_ellipsis_at_a_word() -> None:
    text = "alpha beta gamma delta " * 50
    out = rr.shorten(text, 120, 0)
    assert len(out) <= 120 and out.endswith("…") and rr.MARK not in out
    assert out[:-1].split(" ")[-1] in {"alpha", "beta", "gamma", "delta"}


@pytest.mark.parametrize("length", [101, 150, 999, 5000])
def test_shorten_never_exceeds_max_chars(length: int) -> None:
    text = ("x" * 37 + " ") * (length // 38 + 1)
    for tail in (0, 20, 50):
        assert len(rr.shorten(text[:length], 100, tail)) <= 100


# --- cases --------------------------------------------------------------------------------------------


def test_case_spec_checks_its_shape() -> None:
    with pytest.raises(ValueError, match="needs"):
        rr.CaseSpec("x", "concise_verbose", "a", ("b", "c"))
    with pytest.raises(ValueError, match="needs"):
        rr.CaseSpec("x", "null", "a", ("b",))
    with pytest.raises(ValueError, match="needs"):
        rr.CaseSpec("x", "one_vs_many", "a", ("a",))
    assert rr.CaseSpec("x", "versions", "a", ("b",)).mode == "paired"
    assert rr.CaseSpec("x", "null", "a").mode == "sets"
    with pytest.raises(ValueError, match="repeat"):
        rr.RealConfig(cases=(rr.CaseSpec("x", "null", "a"), rr.CaseSpec("x", "null", "b")))


def test_default_cases_cover_every_group_and_the_trend_is_in_release_order() -> None:
    groups = {c.group for c in rr.DEFAULT_CASES}
    assert groups == {"concise_verbose", "versions", "one_vs_many", "null"}
    assert sum(c.group == "concise_verbose" for c in rr.DEFAULT_CASES) == 4
    assert rr.TREND_ORDER[0] == "text_davinci_001" and rr.TREND_ORDER[-1] == "gpt-4o-2024-05-13"
    models = rr.RealConfig().models()
    assert len(models) == len(set(models)) == 21


def test_sampling_is_seeded_and_uses_only_instructions_every_model_answered(data_dir: Path) -> None:
    answers = {m: rr.load_answers(data_dir, m) for m in ("m_concise", "other1", "other2")}
    chosen, n_common = rr.sample_instructions(answers, 5, seed=0)
    assert n_common == N_INSTR - 2 and len(chosen) == 5
    assert "q3" not in chosen and "q9" not in chosen
    assert chosen == rr.sample_instructions(answers, 5, seed=0)[0]
    assert chosen != rr.sample_instructions(answers, 5, seed=1)[0] or n_common <= 5
    assert rr.sample_instructions(answers, 50, seed=0)[0] == [f"q{i}" for i in range(N_INSTR) if i not in (3, 9)]
    assert set(rr.sample_instructions(answers, 3, seed=0)[0]) < set(chosen)  # nested: smaller runs share instructions
    with pytest.raises(FileNotFoundError, match="nope"):
        rr.load_answers(data_dir, "nope")


def test_build_corpus_lays_out_documents_flags_and_cases(data_dir: Path) -> None:
    corpus = rr.build_corpus(_config(), data_dir)
    docs = corpus.documents
    assert len(docs) == 6 * 4 and docs["doc_id"].is_unique
    assert corpus.fingerprint() == rr.build_corpus(_config(), data_dir).fingerprint()
    assert corpus.fingerprint() != rr.build_corpus(_config(seed=3), data_dir).fingerprint()
    assert (corpus.flags() == detect_all(docs["text"].tolist())).all()
    cv, ovm, null = corpus.cases
    ids = docs.set_index("doc_id")
    # paired: same instructions, in the same order, on both sides
    assert ids.loc[list(cv.docs_a), "instruction_id"].tolist() == ids.loc[list(cv.docs_b), "instruction_id"].tolist()
    assert set(ids.loc[list(cv.docs_a), "model"]) == {"m_concise"} and set(docs[cv.column]) == {"a", "b", ""}
    # one-vs-many: the target and each other model under its own opaque value
    assert [m for m, _ in ovm.others] == ["other1", "other2"] and len(ovm.docs_b) == 12
    assert sorted(set(docs[ovm.column]) - {""}) == ["a", "o1", "o2"]
    assert ids.loc[list(ovm.others[1][1]), ovm.column].eq("o2").all()
    # null: disjoint halves of one model's answers
    assert len(null.docs_a) == len(null.docs_b) == 3 and not set(null.docs_a) & set(null.docs_b)
    assert set(ids.loc[[*null.docs_a, *null.docs_b], "model"]) == {"m_verbose"}
    # the documents the diff will compare are exactly the case's
    for case in corpus.cases:
        side_a = docs.loc[docs[case.column] == "a", "doc_id"].tolist()
        assert sorted(side_a) == sorted(case.docs_a)


def test_diff_specs_and_baseline_cases(data_dir: Path) -> None:
    cv, ovm, null = rr.build_corpus(_config(), data_dir).cases
    spec = cv.diff_spec("ds", "key")
    assert (spec.mode, spec.where_a, spec.where_b, spec.pair_key) == ("paired", "c01 == 'a'", "c01 == 'b'", rr.PAIR_KEY)
    spec = ovm.diff_spec("ds", None)
    assert (spec.mode, spec.where_a, spec.column, spec.target) == ("one_vs_many", "c02 != ''", "c02", "a")
    assert null.diff_spec("ds", None).mode == "sets"
    case = cv.as_case()
    assert case.paired and case.where_a == "c01 in ['a', 'ab']" and case.docs_b == cv.docs_b
    assert ovm.as_case().docs_b == ovm.docs_b and not ovm.as_case().paired
    assert null.as_case().group == "null"


def test_shortening_is_recorded(data_dir: Path) -> None:
    corpus = rr.build_corpus(_config(max_chars=100, tail_chars=20), data_dir)
    docs = corpus.documents
    long = docs[docs["model"] == "m_verbose"]
    assert long["truncated"].eq(1).all() and (long["n_chars"] > 100).all()
    assert docs["text"].str.len().max() <= 100
    assert docs.loc[docs["model"] == "m_concise", "truncated"].eq(0).all()


def test_select_cases_by_id_or_group() -> None:
    cases = rr.DEFAULT_CASES
    assert [c.case_id for c in rr.select_cases(cases, "cv_gpt4,null")] == [
        "cv_gpt4",
        "null_gpt4",
        "null_claude2",
        "null_gpt4o",
    ]
    assert len(rr.select_cases(cases, "cv_*")) == 4 and rr.select_cases(cases, None) == cases
    with pytest.raises(ValueError, match="no case matches"):
        rr.select_cases(cases, "nothing_*")


def test_config_from_args() -> None:
    args = rr.build_parser().parse_args(["--instructions", "12", "--cases", "cv_gpt4", "--skip", "trend,retrieval"])
    cfg = rr.config_from_args(args)
    assert cfg.n_instructions == 12 and cfg.trend == () and [c.case_id for c in cfg.cases] == ["cv_gpt4"]
    assert cfg.models() == ["gpt4_0613_concise", "gpt4_0613_verbose"]
    assert rr.config_from_args(rr.build_parser().parse_args([])).trend == rr.TREND_ORDER
    with pytest.raises(SystemExit):
        rr.main(["--skip", "clustering"])


# --- scoring ------------------------------------------------------------------------------------------


def test_mcc_columns_matches_firing_match() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((40, 6)) * (rng.random((40, 6)) < 0.4)
    dense[:, 5] = 0.0  # a column that never fires: MCC 0
    X = sp.csr_matrix(dense)
    truth = rng.random(40) < 0.3
    got = rr.mcc_columns(X, truth)
    for j in range(6):
        assert got[j] == pytest.approx(firing_match(X[:, j].toarray().ravel() > 0, truth).mcc)
    assert got[5] == 0.0
    with pytest.raises(ValueError, match="rows"):
        rr.mcc_columns(X, truth[:5])


def _flags(*cols: list[int]) -> np.ndarray:
    return np.array(cols, dtype=bool).T


def test_detector_diffs_paired_sets_and_one_vs_many() -> None:
    a = _flags([1] * 8 + [0] * 2, [1] * 5 + [0] * 5)
    b = _flags([0] * 10, [1] * 5 + [0] * 5)
    names = ("x", "y")
    paired = rr.detector_diffs(a, b, mode="paired", min_diff=0.1, names=names)
    assert [d.known for d in paired] == [True, False]
    assert paired[0].diff == pytest.approx(0.8) and paired[0].p == pytest.approx(2 * 0.5**8)  # exact McNemar 8 vs 0
    assert paired[1].p == 1.0
    sets = rr.detector_diffs(a, b[:7], mode="sets", min_diff=0.1, names=names)
    assert sets[0].known and sets[0].p < 0.01 and sets[1].freq_b == pytest.approx(5 / 7)
    # exactly min_diff apart counts (no float surprise)
    edge = rr.detector_diffs(_flags([1] + [0] * 9), _flags([0] * 10), mode="paired", min_diff=0.1, names=("z",))
    assert edge[0].known
    # one-vs-many: against the largest other frequency, and only when the target is higher
    o1, o2 = _flags([0] * 10, [1] * 10), _flags([1] * 7 + [0] * 3, [1] * 10)
    ovm = rr.detector_diffs(a, np.vstack([o1, o2]), mode="one_vs_many", min_diff=0.1, others=[o1, o2], names=names)
    assert ovm[0].freq_b == pytest.approx(0.7) and ovm[0].known
    assert ovm[1].diff == pytest.approx(-0.5) and not ovm[1].known
    with pytest.raises(ValueError, match="paired"):
        rr.detector_diffs(a, b[:3], mode="paired", min_diff=0.1, names=names)
    with pytest.raises(ValueError, match="other sets"):
        rr.detector_diffs(a, b, mode="one_vs_many", min_diff=0.1, names=names)


def _top(*rows: tuple[int, float, float]) -> list[TopLatent]:
    return [TopLatent(latent=lat, label=f"L{lat}", diff=diff, q=q) for lat, diff, q in rows]


def test_recover_needs_the_same_direction_and_mcc() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    X = np.zeros((8, 4))
    X[:3, 2] = 1.0  # latent 2 fires exactly on the detector
    X[:, 1] = 1.0  # latent 1 fires everywhere (MCC 0)
    X[[0, 5], 3] = 1.0  # latent 3 weakly related
    labels = {0: "zero", 1: "one", 2: "two", 3: "three"}.__getitem__
    top = _top((1, -0.4, 0.01), (3, -0.2, 0.2), (2, -0.3, 0.001))
    got = rr.recover(sp.csr_matrix(X), truth, -0.5, top, detector="d", diff=-0.5, mcc_min=0.3, labels=labels)
    assert got.recovered and got.rank == 2 and got.latent == 2 and got.mcc == pytest.approx(1.0) and got.q == 0.001
    assert got.best_any == pytest.approx(1.0) and got.best_any_latent == 2 and got.best_any_label == "two"
    wrong_way = rr.recover(sp.csr_matrix(X), truth, +0.5, top, detector="d", diff=0.5, mcc_min=0.3, labels=labels)
    assert not wrong_way.recovered and wrong_way.rank is None and wrong_way.latent == 2  # best MCC among the top
    absent = rr.recover(sp.csr_matrix(X), truth, -0.5, top[:2], detector="d", diff=-0.5, mcc_min=0.3, labels=labels)
    assert not absent.recovered and absent.best_any_latent == 2
    empty = rr.recover(sp.csr_matrix(X), truth, -0.5, [], detector="d", diff=-0.5, mcc_min=0.3, labels=labels)
    assert not empty.recovered and empty.latent is None and empty.chance == 0.0


def test_recover_reports_how_often_luck_recovers() -> None:
    """One positive among 12 documents: a latent firing on one random document matches it perfectly 1 time in
    12, and 40 such latents make the best of them look perfect more often than not."""
    rng = np.random.default_rng(0)
    n, d = 12, 40
    X = np.zeros((n, d))
    X[rng.integers(0, n, d), np.arange(d)] = 1.0
    truth = np.zeros(n, dtype=bool)
    truth[0] = True
    top = _top((5, 0.3, 0.5))
    got = rr.recover(
        sp.csr_matrix(X), truth, 0.3, top, detector="d", diff=0.3, mcc_min=0.3, labels=str, rng=rng, n_shuffles=2000
    )
    assert got.chance == pytest.approx(1 / n, abs=0.02)
    assert got.best_any_chance > 0.5
    common = (
        np.arange(n) < 6
    )  # half the documents: a shuffle overlaps the latent in >= 4 of 6 (MCC 0.33) 28% of the time
    X[:, 5] = common
    got = rr.recover(sp.csr_matrix(X), common, 0.3, top, detector="d", diff=0.3, mcc_min=0.3, labels=str, rng=rng)
    assert got.recovered and got.mcc == pytest.approx(1.0) and 0.15 < got.chance < 0.45  # hypergeometric: 0.28


def test_mark_specific_says_when_a_latent_tracks_another_detector_better() -> None:
    long = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    bold = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    X = np.zeros((8, 3))
    X[:4, 0] = 1.0  # fires on the long answers
    X[:2, 1] = 1.0  # fires on the bold ones
    flags = np.column_stack([long, bold])
    top = _top((0, -0.5, 0.01), (1, -0.2, 0.02))
    kw = {"mcc_min": 0.3, "labels": str, "n_shuffles": 0}
    via_long = rr.recover(sp.csr_matrix(X), bold, -0.2, top, detector="bold", diff=-0.2, **kw)  # type: ignore[arg-type]
    own = rr.recover(sp.csr_matrix(X), bold, -0.2, top[1:], detector="bold", diff=-0.2, **kw)  # type: ignore[arg-type]
    missed = rr.recover(sp.csr_matrix(X), bold, +0.2, top, detector="bold", diff=0.2, **kw)  # type: ignore[arg-type]
    assert via_long.latent == 0 and own.latent == 1 and not missed.recovered
    got = rr.mark_specific([via_long, own, missed], sp.csr_matrix(X), flags, mcc_min=0.3, names=("long", "bold"))
    assert (got[0].specific, got[0].also) == (False, ["long"])
    assert (got[1].specific, got[1].also) == (True, ["long"])  # MCC 0.58 with long, 1.0 with bold
    assert got[2] == missed and got[2].specific is None
    with pytest.raises(ValueError, match="names"):
        rr.mark_specific([own], sp.csr_matrix(X), flags, mcc_min=0.3)


def test_top_latents_reads_every_kind_of_row() -> None:
    rows = [
        SimpleNamespace(latent=1, label="a", diff=-0.2, q=0.01),
        SimpleNamespace(latent=2, label="b", score=0.3, q=0.02),
        SimpleNamespace(latent=3, label="c", z=-4.0, q=0.03),
    ]
    assert [(t.latent, t.diff) for t in rr.top_latents(rows)] == [(1, -0.2), (2, 0.3), (3, -4.0)]


def test_detector_trends_finds_a_rising_detector() -> None:
    n_strata, groups = 30, 4
    g = np.repeat(np.arange(groups), n_strata)
    strata = np.tile(np.arange(n_strata), groups)
    rng = np.random.default_rng(1)
    rising = rng.random(len(g)) < 0.1 + 0.25 * g
    flat = rng.random(len(g)) < 0.4
    rare = np.zeros(len(g), dtype=bool)
    rare[:2] = True
    flags = np.column_stack([rising, flat, rare])
    got = rr.detector_trends(flags, g, ["g0", "g1", "g2", "g3"], strata, alpha=0.05, detectors=("up", "flat", "rare"))
    by = {d.detector: d for d in got}
    assert by["up"].trending and by["up"].z > 0 and by["up"].freqs[3] > by["up"].freqs[0]
    assert not by["flat"].trending
    assert not by["rare"].trending and by["rare"].q == 1.0  # fewer than 5 documents: not tested
    with pytest.raises(ValueError, match="names"):
        rr.detector_trends(flags, g, ["g0", "g1", "g2", "g3"], strata, alpha=0.05, detectors=("up",))


# --- report -------------------------------------------------------------------------------------------


def _run() -> RealRun:
    from evals.real_records import DetectorDiff, Recovery

    rec = Recovery(
        detector="bold",
        diff=-0.5,
        recovered=True,
        rank=0,
        latent=7,
        label="'**'",
        mcc=0.8,
        q=0.001,
        best_any=0.8,
        best_any_latent=7,
        best_any_label="'**'",
        chance=0.01,
        best_any_chance=0.2,
    )
    miss = rec.model_copy(update={"detector": "offer_help", "recovered": False, "rank": None, "best_any": 0.1})
    dets = [
        DetectorDiff(detector=n, freq_a=0.1, freq_b=0.6, diff=-0.5, p=0.001, known=n in ("bold", "offer_help"))
        for n in NAMES
    ]
    case = RealCaseResult(
        case_id="cv_x",
        group="concise_verbose",
        mode="paired",
        name_a="x_concise",
        name_b="x_verbose",
        column="c01",
        n_a=10,
        n_b=10,
        detectors=dets,
        recoveries=[rec, miss],
        n_tested=100,
        n_significant=3,
        top=_top((7, -0.5, 0.001)),
        tokens=1000,
        embed_seconds=0.4,
        diff_seconds=0.01,
        sae_cost=Cost(calls=4, prompt_tokens=2000, completion_tokens=500),
        baseline_cost=Cost(calls=11, prompt_tokens=20000, completion_tokens=3300),
    )
    null = case.model_copy(
        update={
            "case_id": "null_x",
            "group": "null",
            "mode": "sets",
            "recoveries": [],
            "n_significant": 0,
            "detectors": [d.model_copy(update={"known": False}) for d in dets],
        }
    )
    settings = RealSettings(
        data_dir="data",
        n_instructions=10,
        n_common=800,
        seed=0,
        max_chars=1500,
        tail_chars=400,
        models=["x"],
        top_k=20,
        alpha=0.05,
        mcc_min=0.3,
        min_diff=0.1,
        chat_template=True,
        baseline_docs=10,
        batch_docs=10,
        pairs_per_call=1,
        n_latents=10,
        n_hypotheses=5,
        price_model="gpt-4o-mini",
        tokenizer="test tokenizer",
    )
    env = RealEnvironment(
        command="python -m evals.real_responses --home H",
        started="2026-12-02T00:00:00+00:00",
        wall_seconds=60,
        python="3.11",
        platform="linux",
        cpus=2,
        versions={"saescope": "0"},
        dataset="real-x",
        home="H",
        n_docs=20,
        reader={"id": "reader", "layer": 15},
        sae={"id": "sae", "d_sae": 100},
        embed_config={"pooling": "max"},
        embed_seconds=5,
        embed_seconds_per_1k_tokens=0.4,
        tokens_total=1000,
        truncated_docs=3,
        price_table_date="2025-06-01",
        price={"prompt": 0.15, "completion": 0.6},
        dense_seconds=1.0,
    )
    trend = TrendResultRecord(
        models=["x", "y"],
        n_docs=20,
        n_tested=50,
        n_significant=2,
        detectors=[DetectorTrend(detector="bold", freqs=[0.1, 0.6], slope=0.5, z=4.0, q=0.001, trending=True)],
        recoveries=[rec.model_copy(update={"diff": 0.5})],
        top=_top((7, 4.0, 0.001)),
        seconds=0.1,
    )
    retrieval = [
        RetrievalRecord(
            detector="bold",
            query="uses bold text",
            n_docs=20,
            n_relevant=5,
            random_ap=0.25,
            sae_ap=0.5,
            dense_ap=0.7,
            research_ap=0.3,
            hybrid_ap=0.9,
            sae_ranked=8,
            sae_latents=["'**'"],
        ),
    ]
    return RealRun(
        settings=settings,
        environment=env,
        detector_rates={"x": {**dict.fromkeys(NAMES, 0.5), "chars_full": 900.0}},
        cases=[case, null],
        trend=trend,
        retrieval=retrieval,
    )


def test_report_has_every_section_and_the_numbers(tmp_path: Path) -> None:
    run = _run()
    text = render(run)
    for heading in (
        "## Headline",
        "## Data",
        "## Known differences",
        "(a) Concise vs verbose",
        "## (d) Null controls",
        "## (e) Trend",
        "## (f) Property retrieval",
        "## (g) Cost",
        "## How this was run",
    ):
        assert heading in text, heading
    assert "**1/2**" in text and "python -m evals.real_responses --home H" in text
    assert "mean AP SAE 0.50 vs dense MiniLM 0.70" in text and "SAE higher on 0/1" in text
    assert "sae-research 0.30 (0.43× dense, above dense on 0/1)" in text and "hybrid 0.90 (1.29× dense" in text
    assert "yes (#1)" in text and "1/1 tracked" in text
    counts = recovery_counts(run.cases, 0.05, 0.3)
    assert counts == {"known": 2, "recovered": 1, "significant": 1, "possible": 1, "specific": 0}
    assert "Never recovered: offer_help (1 case)" in text and "not tracked: none" in text
    assert "Expected by luck (the same rule on shuffled detector labels): 0.0" in text
    path = write_report(run, tmp_path / "out")
    assert path.read_text() == text
    assert RealRun.model_validate_json((tmp_path / "out" / "results.json").read_text()) == run


# --- end to end ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not rr.DATA_DIR.is_dir(), reason=f"the shared AlpacaEval answers are not at {rr.DATA_DIR}")
def test_end_to_end_on_a_tiny_sample(tmp_path: Path) -> None:
    """12 instructions x the two models of one concise/verbose case (answers cut to 400 characters): the paired
    case and a null through the real reader, SAE, diff, cost counting and retrieval; structure only."""
    out = tmp_path / "out"
    argv = [
        "--home",
        str(tmp_path / "home"),
        "--out",
        str(out),
        "--instructions",
        "12",
        "--max-chars",
        "400",
        "--tail-chars",
        "100",
        "--cases",
        "cv_gpt4",
        "--skip",
        "trend",
        "--device",
        "cpu",
    ]
    cases = (*rr.select_cases(rr.DEFAULT_CASES, "cv_gpt4"), rr.CaseSpec("null_verbose", "null", "gpt4_0613_verbose"))
    assert rr.main(argv, cases=cases) == 0  # the null halves one of the case's models: two models embedded
    data = json.loads((out / "results.json").read_text())
    assert data["environment"]["n_docs"] == 24 and data["environment"]["tokens_total"] > 0
    assert data["settings"]["models"] == ["gpt4_0613_concise", "gpt4_0613_verbose"]
    by = {c["case_id"]: c for c in data["cases"]}
    assert set(by) == {"cv_gpt4", "null_verbose"}
    cv, null = by["cv_gpt4"], by["null_verbose"]
    assert cv["mode"] == "paired" and cv["n_a"] == cv["n_b"] == 12 and cv["n_tested"] > 0 and cv["top"]
    assert null["mode"] == "sets" and null["n_a"] == null["n_b"] == 6 and null["recoveries"] == []
    assert len(cv["detectors"]) == len(NAMES)
    assert len(cv["recoveries"]) == sum(d["known"] for d in cv["detectors"])
    for r in cv["recoveries"]:
        assert -1 <= r["mcc"] <= 1 and 0 <= r["best_any"] <= 1
    assert cv["baseline_cost"]["calls"] == 12 + 1 and cv["baseline_cost"]["prompt_tokens"] > 0
    assert {r["detector"] for r in data["retrieval"]} <= set(NAMES) and data["retrieval"]
    for r in data["retrieval"]:
        assert 0 <= r["sae_ap"] <= 1 and 0 <= r["dense_ap"] <= 1
    text = (out / "report.md").read_text()
    assert "## Headline" in text and "cv_gpt4" in text and "--instructions 12" in text
