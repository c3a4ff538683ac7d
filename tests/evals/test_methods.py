"""The methods' prompts, cost accounting, latent scoring and judge parsing, without a model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import scipy.sparse as sp

from evals.benchmark import Case
from evals.methods import (
    MESSAGE_OVERHEAD,
    Cost,
    DryRunProvider,
    TokenCounter,
    baseline_requests,
    judge,
    merge_request,
    parse_list,
    run_baseline,
    score_latents,
)
from saescope.analyses import DiffRow
from saescope.llm.ledger import ModelPrice
from saescope.llm.providers import ChatReply, ChatRequest

pytestmark = pytest.mark.anyio


def make_case(n: int = 20, paired: bool = False, two_sided: bool = False) -> tuple[Case, dict[str, str]]:
    a = tuple(f"a{i}" for i in range(n))
    b = tuple(f"c001-{i}" if i < 4 else f"b{i}" for i in range(n))
    texts = {d: f"text of {d} " + "word " * (i % 5) for i, d in enumerate(a + b)}
    case = Case(
        "rv_x_f20",
        "c001",
        "planted",
        "reviews",
        "A",
        "B",
        a,
        b,
        b[:4],
        "x",
        "style",
        "asks the reader a question",
        "a question",
        0.2,
        paired=paired,
        two_sided=two_sided,
    )
    return case, texts


def test_token_counter_fallback_and_request_overhead() -> None:
    counter = TokenCounter()
    assert counter.name == "characters/4"
    assert counter.count("") == 0 and counter.count("abc") == 1 and counter.count("a" * 40) == 10
    req = ChatRequest(system="s" * 8, user="u" * 12)
    assert counter.request(req) == 2 + 3 + 2 * MESSAGE_OVERHEAD


async def test_dry_run_counts_prompts_and_caps_completions() -> None:
    provider = DryRunProvider(TokenCounter(), "gpt-4o-mini")
    replies = await provider.complete([ChatRequest(system="x" * 40, user="y" * 80, max_tokens=123)])
    assert replies[0].prompt_tokens == 10 + 20 + 2 * MESSAGE_OVERHEAD
    assert replies[0].completion_tokens == 123 and replies[0].model == "gpt-4o-mini"


def test_cost_adds_replies_and_prices_them() -> None:
    cost = Cost()
    reply = ChatReply(text="", model="m", provider="openai", prompt_tokens=1000, completion_tokens=200)
    cost.add([reply, reply], 1.5, extra_prompt_tokens=10)
    assert (cost.calls, cost.prompt_tokens, cost.completion_tokens, cost.llm_seconds) == (2, 2010, 400, 1.5)
    assert not cost.completion_is_cap
    assert cost.dollars(ModelPrice(prompt=0.15, completion=0.6)) == pytest.approx((2010 * 0.15 + 400 * 0.6) / 1e6)
    assert cost.dollars(None) is None


def test_baseline_reads_every_document_in_batches_without_ids() -> None:
    case, texts = make_case(20)
    reqs = baseline_requests(case, texts, docs_per_side=20, batch_docs=10, pairs_per_call=1, seed=0)
    assert len(reqs) == 2
    joined = "\n".join(r.user for r in reqs)
    for d in (*case.docs_a, *case.docs_b):
        assert f"text of {d} " in joined
    assert "c001" not in joined.replace("text of c001", "")
    assert 'id="A10"' in reqs[0].user and 'id="B10"' in reqs[0].user and 'id="A11"' not in reqs[0].user
    fewer = baseline_requests(case, texts, docs_per_side=5, batch_docs=10, pairs_per_call=1, seed=0)
    assert len(fewer) == 1 and fewer[0].user.count("<document") == 10
    assert baseline_requests(case, texts, docs_per_side=20, batch_docs=10, pairs_per_call=1, seed=0) == reqs


def test_paired_baseline_goes_row_by_row() -> None:
    case, texts = make_case(6, paired=True)
    reqs = baseline_requests(case, texts, docs_per_side=6, batch_docs=10, pairs_per_call=1, seed=0)
    assert len(reqs) == 6
    for r in reqs:
        assert r.user.count("<document") == 2 and 'id="A"' in r.user and 'id="B"' in r.user
    assert len(baseline_requests(case, texts, docs_per_side=6, batch_docs=10, pairs_per_call=4, seed=0)) == 2


async def test_dry_run_baseline_cost_is_exact() -> None:
    case, texts = make_case(20)
    counter = TokenCounter()
    reqs = baseline_requests(case, texts, docs_per_side=20, batch_docs=10, pairs_per_call=1, seed=3)
    hyps, cost = await run_baseline(
        case,
        texts,
        DryRunProvider(counter, "m"),
        docs_per_side=20,
        batch_docs=10,
        pairs_per_call=1,
        n_hypotheses=5,
        seed=3,
    )
    merge = merge_request([], 5)
    assert hyps == []
    assert cost.calls == len(reqs) + 1
    assert cost.completion_tokens == 300 * len(reqs) + 700
    assert cost.prompt_tokens == sum(counter.request(r) for r in reqs) + counter.request(merge) + 300 * len(reqs)
    assert cost.completion_is_cap


def test_merge_request_counts_repeated_proposals() -> None:
    req = merge_request(["B asks questions.", "b asks questions.", "B is longer."], 3)
    assert "(2x) <description>B asks questions.</description>" in req.user
    assert "(1x) <description>B is longer.</description>" in req.user
    assert "at most 3 hypotheses" in req.user


def test_parse_list_reads_only_strings_from_the_field() -> None:
    text = 'Sure: {"differences": ["B asks questions", 3, "", "B shouts"], "other": ["x"]}'
    assert parse_list(text, "differences", 5) == ["B asks questions", "B shouts"]
    assert parse_list(text, "differences", 1) == ["B asks questions"]
    assert parse_list("no json", "differences", 5) == []


class Scripted:
    name = "scripted"

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[ChatRequest] = []

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        self.seen += requests
        return [
            ChatReply(text=self.text, model="m", provider="openai", prompt_tokens=5, completion_tokens=2)
            for _ in requests
        ]


async def test_judge_marks_the_hypotheses_it_names() -> None:
    case, _ = make_case()
    provider = Scripted('{"matches": [2, 9]}')
    flags, replies = await judge(provider, case, ["B is longer", "B asks the reader questions", "B is sad"])
    assert flags == [False, True, False] and len(replies) == 1
    assert "asks the reader a question" in provider.seen[0].user
    assert await judge(provider, case, []) == ([], [])


def _row(latent: int, diff: float) -> DiffRow:
    return DiffRow(
        latent=latent,
        label=f"l{latent}",
        count_a=0,
        count_b=0,
        freq_a=0,
        freq_b=0,
        diff=diff,
        ci_low=0,
        ci_high=0,
        ratio=1,
        z=0,
        p=1,
        q=0.5,
        test="z",
        examples_a=[],
        examples_b=[],
    )


def test_score_latents_matches_firing_sets_over_both_sides() -> None:
    case, _ = make_case(4)
    ids = [*case.docs_a, *case.docs_b]
    doc_rows = {d: i for i, d in enumerate(ids)}
    # positives: c001-0..3 = rows 4..7 (all of B here, n=4). Latent 0 fires on B's rows 4-6;
    # latent 1 fires everywhere; latent 2 fires on A only.
    dense = np.zeros((8, 3))
    dense[4:7, 0] = 1.0
    dense[:, 1] = 0.5
    dense[:4, 2] = 2.0
    scores = score_latents(sp.csr_matrix(dense), doc_rows, case, [_row(0, -0.75), _row(1, 0.0), _row(2, 1.0)])
    assert scores[0].precision == 1.0 and scores[0].recall == 0.75 and scores[0].f1 == pytest.approx(6 / 7)
    assert scores[1].f1 == pytest.approx(2 / 3) and scores[1].mcc == 0.0
    assert scores[2].f1 == 0.0 and scores[2].mcc == pytest.approx(-1.0)
    two, _ = make_case(4, two_sided=True)
    flipped = score_latents(sp.csr_matrix(dense), doc_rows, two, [_row(2, 1.0)])
    assert flipped[0].f1 == 1.0 and flipped[0].mcc == 1.0
