"""The LLM steps with a scripted provider: counts come from the matrix, never from the model's answer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from saescope import ops
from saescope.errors import InputError
from saescope.llm.hypotheses import RELABEL_SYSTEM, SUMMARY_SYSTEM
from saescope.llm.providers import ChatReply, ChatRequest
from saescope.ops.requests import DiffRequest, LabelRequest, SummariseRequest, VerifyRequest
from tests.ops.helpers import any_fire_count, matrix, rows_where
from tests.server.shared import Data

pytestmark = pytest.mark.anyio


class Scripted:
    """Answers each prompt with ``answer(request)`` and keeps the prompts."""

    name = "scripted"

    def __init__(self, answer: Callable[[ChatRequest], str]) -> None:
        self.answer = answer
        self.seen: list[ChatRequest] = []

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        self.seen.extend(requests)
        return [
            ChatReply(text=self.answer(r), model="script", provider=self.name, prompt_tokens=3, completion_tokens=2)
            for r in requests
        ]


def summariser(req: ChatRequest) -> str:
    """A model that relabels every latent and writes two hypotheses: one citing the first two features of the
    table, one citing the third and an id that is not in the table; it also claims frequencies of its own."""
    if req.system == RELABEL_SYSTEM:
        latent = re.search(r"Feature (\d+) fires", req.user)
        return json.dumps({"label": f"context label {latent.group(1) if latent else '?'}"})
    if req.system == SUMMARY_SYSTEM:
        ids = [int(i) for i in re.findall(r"feature (\d+):", req.user)]
        return "Here you go: " + json.dumps(
            {
                "hypotheses": [
                    {"text": "A uses more review wording", "latents": ids[:2], "freq_a": 1.0, "freq_b": 0.0},
                    {"text": "B is about plots", "latents": [*ids[2:3], 999999]},
                ]
            }
        )
    return "{}"


FRESH_VS_PLOT = {"dataset_a": "reviews", "where_a": "category == 'fresh'", "where_b": "category == 'plot'"}
PAIRED = {
    "dataset_a": "reviews",
    "where_a": "half == 'first'",
    "where_b": "half == 'second'",
    "mode": "paired",
    "pair_key": "pair",
}


async def test_verify_counts_are_any_fires_counts(data: Data) -> None:
    M = matrix(data)
    latents = list(data.labelled)[:3]
    fresh, plot = rows_where(data, "category", "fresh"), rows_where(data, "category", "plot")
    ver = await ops.verify_hypothesis(data.ws, VerifyRequest.build(**FRESH_VS_PLOT, latents=latents))
    assert (ver.n_a, ver.n_b) == (16, 16)
    assert ver.count_a == any_fire_count(M, fresh, latents) and ver.count_b == any_fire_count(M, plot, latents)
    assert ver.freq_a == pytest.approx(ver.count_a / 16) and ver.diff == pytest.approx(ver.freq_a - ver.freq_b)
    assert ver.latents == latents and ver.labels == [data.labelled[i] for i in latents]
    assert ver.judge is None and ver.usage is None and 0 <= ver.p <= 1

    repeated = await ops.verify_hypothesis(
        data.ws, VerifyRequest.build(**FRESH_VS_PLOT, latents=[latents[0], latents[0]])
    )
    assert repeated.latents == [latents[0]] and repeated.count_a == any_fire_count(M, fresh, [latents[0]])

    paired = await ops.verify_hypothesis(data.ws, VerifyRequest.build(**PAIRED, latents=latents))
    assert (paired.n_a, paired.n_b) == (24, 24)
    assert paired.count_a == any_fire_count(M, np.arange(24), latents)
    assert paired.count_b == any_fire_count(M, np.arange(24, 48), latents)

    one = {"dataset_a": "reviews", "mode": "one_vs_many", "column": "category", "target": "plot"}
    ovm = await ops.verify_hypothesis(data.ws, VerifyRequest.build(**one, latents=latents))
    assert (ovm.n_a, ovm.n_b) == (16, 32) and ovm.count_b == any_fire_count(M, np.arange(32), latents)


async def test_verify_refusals(data: Data) -> None:
    with pytest.raises(InputError, match="outside the SAE"):
        await ops.verify_hypothesis(data.ws, VerifyRequest.build(**FRESH_VS_PLOT, latents=[10**6]))
    judged = VerifyRequest.build(**FRESH_VS_PLOT, latents=[1], judge=True, hypothesis="fresh reviews praise")
    with pytest.raises(InputError, match="needs an LLM"):
        await ops.verify_hypothesis(data.ws, judged)


async def test_verify_with_a_judge_counts_its_verdicts(data: Data) -> None:
    M = matrix(data)
    latents = list(data.labelled)[:2]
    provider = Scripted(lambda r: '{"matches": [1, 2, 99]}')
    req = VerifyRequest.build(**FRESH_VS_PLOT, latents=latents, judge=True, hypothesis="A praises", n_judge=4)
    ver = await ops.verify_hypothesis(data.ws, req, provider)
    judge = ver.judge
    assert judge is not None and (judge.n_a, judge.n_b) == (4, 4)
    assert judge.yes_a + judge.yes_b == 2 * len(provider.seen), "matches 1 and 2 of each batch; 99 is ignored"
    ids = data.ws.dataset("reviews").metadata()["doc_id"].tolist()
    for v in judge.verdicts:
        assert v.latents_fire == bool(any_fire_count(M, [ids.index(v.doc_id)], latents))
    assert "A praises" in provider.seen[0].user
    assert ver.usage is not None and ver.count_a == any_fire_count(M, rows_where(data, "category", "fresh"), latents)


async def test_summarise_recounts_frequencies_from_the_matrix(data: Data) -> None:
    provider = Scripted(summariser)
    req = SummariseRequest.build(**FRESH_VS_PLOT, n_latents=5, min_support=2)
    out = await ops.summarise_diff(data.ws, req, provider)
    assert out.mode == "sets" and (out.n_a, out.n_b) == (16, 16)
    table = [r.latent for r in out.latents]
    diff = ops.diff(data.ws, DiffRequest.build(**FRESH_VS_PLOT, min_support=2, top_k=5))
    assert diff.sets is not None and table == [r.latent for r in diff.sets.rows], "the diff's own top latents"
    assert len(table) >= 3
    assert [r.context_label for r in out.latents] == [f"context label {i}" for i in table]
    assert len(provider.seen) == len(table) + 1
    assert "<document id=" in provider.seen[0].user
    assert [h.latents for h in out.hypotheses] == [table[:2], table[2:3]]
    assert out.dropped_citations == [999999]
    M = matrix(data)
    fresh, plot = rows_where(data, "category", "fresh"), rows_where(data, "category", "plot")
    for h in out.hypotheses:
        assert h.count_a == any_fire_count(M, fresh, h.latents)
        assert h.count_b == any_fire_count(M, plot, h.latents)
        assert h.freq_a == pytest.approx(h.count_a / 16) and h.freq_b == pytest.approx(h.count_b / 16)
        assert [c.latent for c in h.cited] == h.latents
    first = out.hypotheses[0]
    verified = await ops.verify_hypothesis(data.ws, VerifyRequest.build(**FRESH_VS_PLOT, latents=first.latents))
    assert (verified.count_a, verified.count_b) == (first.count_a, first.count_b), "one resolver, one count"
    assert out.usage is not None and out.usage.calls == len(provider.seen)


async def test_summarise_a_paired_diff_without_relabelling(data: Data) -> None:
    provider = Scripted(summariser)
    out = await ops.summarise_diff(
        data.ws, SummariseRequest.build(**PAIRED, n_latents=4, min_support=1, relabel=False), provider
    )
    assert out.mode == "paired" and (out.n_a, out.n_b) == (24, 24)
    assert len(provider.seen) == 1 and provider.seen[0].system == SUMMARY_SYSTEM
    assert all(r.context_label is None for r in out.latents)
    M = matrix(data)
    assert out.hypotheses
    for h in out.hypotheses:
        assert h.count_a == any_fire_count(M, np.arange(24), h.latents)
        assert h.count_b == any_fire_count(M, np.arange(24, 48), h.latents)


async def test_summarise_refuses_an_empty_diff(data: Data) -> None:
    req = SummariseRequest.build(**FRESH_VS_PLOT, min_support=10**6)
    provider = Scripted(summariser)
    with pytest.raises(InputError, match="no latents to summarise"):
        await ops.summarise_diff(data.ws, req, provider)
    assert provider.seen == []


async def test_label_latents_with_a_scripted_model(data: Data) -> None:
    live = list(data.labelled)[:2]
    provider = Scripted(lambda r: '{"label": "scripted label", "matches": [1]}')
    req = LabelRequest.build(dataset="reviews", latents=[*live, live[0]], token_evidence=False, save=False)
    out = await ops.label_latents(data.ws, req, provider)
    assert [r.latent for r in out.results] == live
    M = matrix(data)
    for r in out.results:
        assert r.label == "scripted label" and r.n_firing == int((M[:, r.latent].toarray() > 0).sum())
        assert r.previous_label == data.labelled[r.latent] and r.score is not None
    assert out.saved_to is None and len(provider.seen) == 4
