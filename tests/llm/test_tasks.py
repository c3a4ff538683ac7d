"""Autointerp, hypotheses and verification called directly, with a scripted provider and real embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from saescope.errors import InputError
from saescope.llm.autointerp import LatentExamples, score_detection
from saescope.llm.hypotheses import parse_hypotheses
from saescope.llm.providers import ChatReply, ChatRequest
from saescope.ops.analyses import run_diff
from saescope.ops.docsets import resolve_sides
from saescope.ops.llm_steps import collect_examples, label_latents, verify_hypothesis
from saescope.ops.requests import DiffSpec, LabelRequest, VerifyRequest
from tests.server.shared import Data

pytestmark = pytest.mark.anyio


class Scripted:
    """Answers every prompt with ``answer(request)``, and keeps the prompts."""

    name = "scripted"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[ChatRequest] = []

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        self.seen.extend(requests)
        return [
            ChatReply(text=self.answer, model="script", provider=self.name, prompt_tokens=1, completion_tokens=1)
            for _ in requests
        ]


def test_examples_come_from_the_matrix(data: Data) -> None:
    latent = next(iter(data.labelled))
    ex = collect_examples(data.ws, "reviews", latent, n_examples=3, n_negative=2, n_held_out=6, token_evidence=False)
    _, matrix = data.ws.matrix("reviews")
    ids = data.ws.dataset("reviews").metadata()["doc_id"].tolist()
    col = matrix[:, latent].toarray().ravel()
    fires = {ids[i] for i in np.flatnonzero(col > 0)}
    top = [ids[i] for i in np.argsort(-col, kind="stable")[:3]]
    assert [d for d, _ in ex.examples] == top and ex.n_firing == len(fires)
    assert all(d not in fires for d, _ in ex.negatives)
    assert all((d in fires) == is_pos for d, _, is_pos in ex.held_out)
    assert sum(p for _, _, p in ex.held_out) == 3 and len(ex.held_out) == 6
    assert not {d for d, _, _ in ex.held_out} & ({d for d, _ in ex.examples} | {d for d, _ in ex.negatives})
    again = collect_examples(data.ws, "reviews", latent, n_examples=3, n_negative=2, n_held_out=6, token_evidence=False)
    assert again == ex, "the same call picks the same documents (needed for resumable sampling rounds)"


def test_detection_score_is_balanced_accuracy() -> None:
    ex = LatentExamples(
        latent=0,
        previous_label="",
        n_firing=5,
        examples=[],
        negatives=[],
        held_out=[("a", "", True), ("b", "", False), ("c", "", True), ("d", "", False)],
    )
    s = score_detection('{"matches": [1, 2, 9]}', ex)
    assert (s.true_positive, s.false_positive, s.balanced_accuracy) == (1, 1, 0.5)
    assert score_detection('{"matches": [1, 3]}', ex).balanced_accuracy == 1.0
    assert score_detection("nonsense", ex).balanced_accuracy == 0.5


async def test_label_latents_skips_silent_latents_and_quotes_documents(data: Data) -> None:
    _, matrix = data.ws.matrix("reviews")
    counts = (matrix > 0).sum(axis=0).A1
    live = next(iter(data.labelled))
    provider = Scripted('{"label": "a label", "matches": [1]}')
    silent = [int(i) for i in np.flatnonzero(counts < 2)[:1]]
    req = LabelRequest(
        dataset="reviews", latents=[live, *silent], token_evidence=False, save=False, n_examples=2, n_held_out=2
    )
    out = await label_latents(data.ws, req, provider)
    assert out.results[0].label == "a label" and out.results[0].score is not None
    if silent:
        assert out.results[1].label is None and "too few" in (out.results[1].note or "")
    assert len(provider.seen) == 2 and "<document id=" in provider.seen[0].user
    with pytest.raises(InputError, match="at most 20"):
        await label_latents(data.ws, LabelRequest.build(dataset="reviews", latents=list(range(21))), provider)


def test_hypotheses_keep_only_known_citations() -> None:
    text = (
        'x {"hypotheses": [{"text": "one", "latents": [1, 2, 7]}, {"text": "", "latents": [1]}, '
        '{"text": "two", "latents": [9]}, {"text": "three", "latents": ["2"]}, "junk"]}'
    )
    kept, dropped = parse_hypotheses(text, {1, 2}, limit=5)
    assert kept == [("one", [1, 2]), ("three", [2])] and dropped == [7, 9]
    assert parse_hypotheses(text, {1, 2}, limit=1)[0] == [("one", [1, 2])]
    assert parse_hypotheses("no json", {1}, limit=3) == ([], [])


async def test_sides_match_the_diffs_they_explain(data: Data) -> None:
    paired = DiffSpec(
        mode="paired", dataset_a="reviews", where_a="half == 'first'", where_b="half == 'second'", pair_key="pair"
    )
    sides = resolve_sides(data.ws, paired)
    diff = run_diff(data.ws, paired, top_k=3, min_support=1)
    assert sides.a.X.shape[0] == sides.b.X.shape[0] == diff.n_pairs == 24  # type: ignore[union-attr]
    row = diff.rows[0]
    assert sides.a.X[:, row.latent].getnnz() / 24 == pytest.approx(row.freq_a)
    one = {"mode": "one_vs_many", "dataset_a": "reviews", "column": "category", "target": "plot"}
    ver = await verify_hypothesis(data.ws, VerifyRequest(**one, latents=[row.latent]))
    assert (ver.n_a, ver.n_b) == (16, 32) and ver.name_a == "plot"
    with pytest.raises(InputError, match="outside the SAE"):
        await verify_hypothesis(data.ws, VerifyRequest(**one, latents=[10**6]))
    with pytest.raises(InputError, match="needs the hypothesis"):
        await verify_hypothesis(data.ws, VerifyRequest(**one, latents=[row.latent], judge=True), Scripted("{}"))
    with pytest.raises(InputError, match="pair_key"):
        DiffSpec(mode="paired", dataset_a="reviews")
