"""The benchmark builder: deterministic for a seed, planted as specified, one table that selects every case."""

from __future__ import annotations

import re

import numpy as np
import pytest

from evals.benchmark import Benchmark, BenchmarkConfig, build, subset, truncate
from evals.properties import PROPERTIES, SIGNATURE, insert_sentence, sentences
from saescope.analyses import select_rows

SMALL = BenchmarkConfig(
    n_per_side=20,
    fractions=(0.1, 0.5),
    properties=("question", "code", "signature"),
    paired_properties=("apology",),
    paired_fractions=(0.5,),
)


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return build(SMALL)


def test_same_seed_gives_identical_cases(bench: Benchmark) -> None:
    again = build(SMALL)
    assert again.documents.equals(bench.documents)
    assert again.cases == bench.cases
    assert again.fingerprint() == bench.fingerprint()


def test_different_seed_gives_different_cases(bench: Benchmark) -> None:
    other = build(BenchmarkConfig(**{**SMALL.__dict__, "seed": 1}))
    assert not other.documents.equals(bench.documents)
    assert other.fingerprint() != bench.fingerprint()
    assert [c.case_id for c in other.cases] == [c.case_id for c in bench.cases]


def test_case_groups_and_sizes(bench: Benchmark) -> None:
    ids = {c.case_id: c for c in bench.cases}
    assert {c.group for c in bench.cases} == {"planted", "paired", "real", "null"}
    assert {
        "rv_question_f10",
        "rv_code_f50",
        "rs_apology_f50",
        "null_reviews",
        "null_speeches",
        "null_responses",
        "real_sentiment",
        "real_plot",
        "real_party",
    } <= set(ids)
    for c in bench.cases:
        if c.group == "planted":
            assert len(c.docs_a) == len(c.docs_b) == 20
            assert len(c.positives) == round(20 * float(c.fraction or 0))
            assert set(c.positives) <= set(c.docs_b)
            assert not set(c.docs_a) & set(c.docs_b)
        if c.group == "null":
            assert not c.positives and not set(c.docs_a) & set(c.docs_b)
    assert len(ids["null_responses"].docs_a) == 10


def test_planted_documents_differ_from_their_base(bench: Benchmark) -> None:
    texts = bench.texts()
    case = bench.case("rv_signature_f50")
    base_b = bench.case("null_reviews").docs_b
    for j, doc in enumerate(case.docs_b):
        if doc in case.positives:
            assert texts[doc].endswith(SIGNATURE)
            assert texts[doc].startswith(texts[base_b[j]].rstrip(".")[:20])
        else:
            assert doc == base_b[j]
    code = bench.case("rv_code_f50")
    assert all("`" in texts[d] for d in code.positives)


def test_membership_columns_select_each_side(bench: Benchmark) -> None:
    meta = bench.documents.drop(columns=["text"])
    ids = meta["doc_id"].to_numpy()
    for c in bench.cases:
        assert set(ids[select_rows(meta, c.where_a)]) == set(c.docs_a), c.case_id
        assert set(ids[select_rows(meta, c.where_b)]) == set(c.docs_b), c.case_id


def test_filters_and_ids_do_not_name_the_property(bench: Benchmark) -> None:
    for c in bench.cases:
        for text in (c.where_a, c.where_b, *c.positives):
            assert not any(p in text for p in PROPERTIES), text
            assert c.case_id not in text


def test_paired_sides_share_prompts(bench: Benchmark) -> None:
    c = bench.case("rs_apology_f50")
    pair = dict(zip(bench.documents["doc_id"], bench.documents["pair"], strict=True))
    assert [pair[d] for d in c.docs_a] == [pair[d] for d in c.docs_b]
    texts = bench.texts()
    changed = [a for a, b in zip(c.docs_a, c.docs_b, strict=True) if a != b]
    assert len(changed) == 10 and all(texts[a] != texts[b] for a, b in zip(c.docs_a, c.docs_b, strict=True) if a != b)


def test_subset_keeps_only_matching_cases_and_their_documents(bench: Benchmark) -> None:
    small = subset(bench, ["rv_code_*", "null"])
    assert [c.case_id for c in small.cases] == [
        "rv_code_f10",
        "rv_code_f50",
        "null_reviews",
        "null_speeches",
        "null_responses",
    ]
    needed = {d for c in small.cases for d in (*c.docs_a, *c.docs_b)}
    assert set(small.documents["doc_id"]) == needed
    assert bench.case("rv_question_f10").column not in small.documents.columns
    with pytest.raises(ValueError, match="no case matches"):
        subset(bench, ["nothing*"])


def test_config_rejects_unknown_properties_and_fractions() -> None:
    with pytest.raises(ValueError, match="unknown properties"):
        BenchmarkConfig(properties=("telepathy",))
    with pytest.raises(ValueError, match="fractions"):
        BenchmarkConfig(fractions=(0.0,))


CHECKS = {
    "food": re.compile(r"popcorn|pizza|noodles|tacos|nachos|pasta|cake|sandwich|dumplings|curry"),
    "family": re.compile(r"\bMy (mother|kids|brother|grandmother|wife|dad|little sister|uncle|teenage son)|my kids"),
    "spanish": re.compile(r"vale la pena|convenció|película|ganas de más|perder el tiempo|volvería|encanto|véanla"),
    "question": re.compile(r"\?"),
    "apology": re.compile(r"[Ss]orry|apolog|Apolog|Forgive|Pardon"),
    "hedging": re.compile(r"might be wrong|Perhaps|seems to me|Arguably|mistaken|maybe|suspect|possible"),
    "shouting": re.compile(r"\b[A-Z]{2,}(\s+[A-Z',]{2,}){3,}"),
    "slang": re.compile(r"ngl|tbh|lowkey|not gonna lie|fr"),
    "signature": re.compile(re.escape(SIGNATURE) + "$"),
    "bullet_list": re.compile(r"\n[-*•] \w+: "),
    "code": re.compile(r"`"),
    "star_rating": re.compile(r"★|/5 stars|of 5"),
    "emoji": re.compile(r"[\U0001F300-\U0001FAFF✨]"),
    "url": re.compile(r"https://www\.\w+\.com/"),
}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_each_property_is_planted_deterministically_and_visibly(name: str) -> None:
    base = "The plot is thin. Still, the lead actor carries every scene with ease."
    prop = PROPERTIES[name]
    outs = [prop.plant(base, np.random.default_rng(s)) for s in range(12)]
    assert outs[0] == prop.plant(base, np.random.default_rng(0))
    for out in outs:
        assert out != base and CHECKS[name].search(out), out
    if name != "signature":
        assert len(set(outs)) >= 3, f"{name} has too few phrasings"
    assert prop.kind in ("content", "style", "format") and prop.query and prop.description


def test_at_least_twelve_properties_over_three_kinds() -> None:
    assert len(PROPERTIES) >= 12
    assert {p.kind for p in PROPERTIES.values()} == {"content", "style", "format"}


def test_text_helpers() -> None:
    assert sentences("One. Two! Three? four") == ["One.", "Two!", "Three? four"]
    assert insert_sentence("One. Two.", "Mid.", "middle") == "One. Mid. Two."
    assert insert_sentence("One", "End.", "end") == "One. End."
    assert insert_sentence("One.", "Start.", "start") == "Start. One."
    assert truncate("Short one. " * 3, 100) == "Short one. Short one. Short one."
    assert truncate("First sentence here. Second sentence is much longer than that.", 40) == "First sentence here."
    assert truncate("a" * 30 + " b", 20).endswith("…")
