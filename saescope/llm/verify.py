"""Verify a hypothesis: how often its latents fire on each side (a two-proportion test, no LLM), and,
optionally, an LLM judge's reading of a sample of documents from each side, with the counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from saescope.errors import InputError
from saescope.llm.autointerp import RunSync, run_in_thread
from saescope.llm.ledger import LLMUsage, MeteredProvider
from saescope.llm.providers import ChatRequest, LLMProvider
from saescope.llm.quoting import DATA_RULES, parse_int_list, parse_json_object, quote_document, quote_tag
from saescope.llm.sides import DiffSpec, Sides, any_fires, resolve_sides, texts_of

if TYPE_CHECKING:
    from saescope.workspace import Workspace

JUDGE_SYSTEM = (
    "You check a hypothesis against documents. For each numbered document, decide whether it shows what the "
    "hypothesis describes. "
    + DATA_RULES
    + ' Answer with JSON only: {"matches": [<numbers of the documents that show it>]}.'
)
JUDGE_BATCH = 10


class DocVerdict(BaseModel):
    side: Literal["a", "b"]
    doc_id: str
    judged: bool = Field(description="the judge says the document shows the hypothesis")
    latents_fire: bool = Field(description="any of the hypothesis's latents fires in the document")


class JudgeResult(BaseModel):
    """An LLM's reading of sample documents from each side (blind to the side and to the latents)."""

    n_a: int = Field(description="documents of A judged")
    yes_a: int = Field(description="of them, judged to show the hypothesis")
    n_b: int
    yes_b: int
    freq_a: float
    freq_b: float
    p: float = Field(description="two-sided p of yes_a/n_a vs yes_b/n_b (z-test, or Fisher when small)")
    agreement: float = Field(description="fraction of judged documents where the judge and the latents agree")
    verdicts: list[DocVerdict]


class Verification(BaseModel):
    """Is the hypothesis's latent signature more frequent in A than in B, and does a reader agree?"""

    hypothesis: str | None
    name_a: str
    name_b: str
    latents: list[int]
    labels: list[str] = Field(description="preferred label of each latent")
    n_a: int = Field(description="documents (or pairs) of A")
    n_b: int
    count_a: int = Field(description="documents of A where any of the latents fires")
    count_b: int
    freq_a: float
    freq_b: float
    diff: float = Field(description="freq_a - freq_b")
    ci_low: float = Field(description="Newcombe 95% interval of diff, low end")
    ci_high: float
    z: float
    p: float = Field(description="two-sided p (pooled z-test, or Fisher's exact test when an expected cell < 5)")
    test: Literal["z", "fisher"]
    judge: JudgeResult | None = Field(description="LLM judge on sample documents; null unless judge=true")
    usage: LLMUsage | None

    def to_text(self) -> str:
        lines = [
            (f"hypothesis: {self.hypothesis}\n" if self.hypothesis else "")
            + f"latents {self.latents} ({'; '.join(lab[:40] for lab in self.labels[:6])})",
            f"any fires in A {self.name_a}: {self.count_a}/{self.n_a} ({self.freq_a:.1%}); B {self.name_b}: "
            f"{self.count_b}/{self.n_b} ({self.freq_b:.1%}); diff {self.diff:+.3f} [{self.ci_low:+.3f}, "
            f"{self.ci_high:+.3f}], p={self.p:.2g} ({self.test})",
        ]
        if self.judge:
            j = self.judge
            lines.append(
                f"LLM judge: A {j.yes_a}/{j.n_a} ({j.freq_a:.0%}) vs B {j.yes_b}/{j.n_b} ({j.freq_b:.0%}), "
                f"p={j.p:.2g}; agrees with the latents on {j.agreement:.0%} of judged documents"
            )
        if self.usage:
            lines.append(self.usage.to_text())
        return "\n".join(lines)


def proportion_stats(ca: int, na: int, cb: int, nb: int) -> dict[str, Any]:
    from saescope.analyses import stats

    z, p, fisher = stats.proportion_test(np.array([ca]), na, np.array([cb]), nb)
    lo, hi = stats.newcombe_interval(np.array([ca]), na, np.array([cb]), nb)
    return {
        "z": float(z[0]),
        "p": float(p[0]),
        "test": "fisher" if bool(fisher[0]) else "z",
        "ci_low": float(lo[0]),
        "ci_high": float(hi[0]),
    }


def judge_requests(hypothesis: str, docs: list[tuple[str, str]]) -> list[ChatRequest]:
    """Prompts that show the hypothesis and up to ``JUDGE_BATCH`` numbered documents each."""
    out = []
    for lo in range(0, len(docs), JUDGE_BATCH):
        chunk = docs[lo : lo + JUDGE_BATCH]
        body = "\n".join(quote_document(text, str(n), 600) for n, (_, text) in enumerate(chunk, 1))
        out.append(
            ChatRequest(
                system=JUDGE_SYSTEM,
                max_tokens=150,
                user=(
                    f"Hypothesis: {quote_tag('description', hypothesis, 500)}\n\nDocuments:\n{body}\n\n"
                    "Which documents show what the hypothesis describes? Answer as JSON."
                ),
            )
        )
    return out


async def verify_hypothesis(
    ws: Workspace,
    spec: DiffSpec,
    latents: list[int],
    *,
    hypothesis: str | None = None,
    provider: LLMProvider | None = None,
    n_judge: int = 8,
    seed: int = 0,
    run_sync: RunSync[Any] = run_in_thread,
) -> Verification:
    """Fraction of A's and B's documents where any of ``latents`` fires, with a two-proportion test; with a
    ``provider``, also an LLM judge on ``n_judge`` random documents per side (shuffled together).

    Raises:
        InputError: no latents, one outside the SAE, a judge without a hypothesis, or bad n_judge.
        LLMUnavailableError, LLMError: the judge was asked for but no LLM is available, or it failed.
    """
    ids = list(dict.fromkeys(int(i) for i in latents))
    if provider is not None and not (hypothesis and hypothesis.strip()):
        raise InputError("the LLM judge needs the hypothesis in words (hypothesis=...)")
    if provider is not None and not 1 <= n_judge <= 50:
        raise InputError(f"n_judge must be in 1..50 documents per side, got {n_judge}")

    def measure() -> tuple[Sides, np.ndarray, np.ndarray]:
        sides = resolve_sides(ws, spec)
        sides.check_latents(ids)
        return sides, any_fires(sides.a.X, ids), any_fires(sides.b.X, ids)

    sides, fa, fb = await run_sync(measure)
    na, nb, ca, cb = len(fa), len(fb), int(fa.sum()), int(fb.sum())
    st = proportion_stats(ca, na, cb, nb)
    judge = None
    usage = None
    if provider is not None:
        metered = provider if isinstance(provider, MeteredProvider) else MeteredProvider(provider)
        rng = np.random.default_rng(seed)
        pick_a = rng.choice(na, min(n_judge, na), replace=False)
        pick_b = rng.choice(nb, min(n_judge, nb), replace=False)
        picked: list[tuple[Literal["a", "b"], int]] = [("a", int(i)) for i in pick_a] + [("b", int(i)) for i in pick_b]
        picked = [picked[i] for i in rng.permutation(len(picked))]

        def fetch() -> list[tuple[str, str]]:
            out = []
            by_side = {"a": sides.a, "b": sides.b}
            cache = {
                s: texts_of(ws, by_side[s].dataset, [str(by_side[s].doc_ids[i]) for t, i in picked if t == s])
                for s in ("a", "b")
            }
            for s, i in picked:
                doc = str(by_side[s].doc_ids[i])
                out.append((doc, cache[s].get(doc, "")))
            return out

        docs = await run_sync(fetch)
        replies = await metered.complete(judge_requests(str(hypothesis), docs))
        said: set[int] = set()
        for k, reply in enumerate(replies):
            size = min(JUDGE_BATCH, len(docs) - k * JUDGE_BATCH)
            obj = parse_json_object(reply.text) or {}
            said |= {k * JUDGE_BATCH + n - 1 for n in parse_int_list(obj.get("matches"), 1, size)}
        verdicts = [
            DocVerdict(side=s, doc_id=doc, judged=j in said, latents_fire=bool((fa if s == "a" else fb)[i]))
            for j, ((s, i), (doc, _)) in enumerate(zip(picked, docs, strict=True))
        ]
        ja = [v for v in verdicts if v.side == "a"]
        jb = [v for v in verdicts if v.side == "b"]
        ya, yb = sum(v.judged for v in ja), sum(v.judged for v in jb)
        jst = proportion_stats(ya, len(ja), yb, len(jb)) if ja and jb else {"p": 1.0}
        judge = JudgeResult(
            n_a=len(ja),
            yes_a=ya,
            n_b=len(jb),
            yes_b=yb,
            freq_a=ya / max(len(ja), 1),
            freq_b=yb / max(len(jb), 1),
            p=jst["p"],
            agreement=sum(v.judged == v.latents_fire for v in verdicts) / max(len(verdicts), 1),
            verdicts=verdicts,
        )
        usage = metered.usage()
    labels = [sides.labels.text(i) if hasattr(sides.labels, "text") else str(i) for i in ids]
    return Verification(
        hypothesis=hypothesis,
        name_a=sides.a.name,
        name_b=sides.b.name,
        latents=ids,
        labels=labels,
        n_a=na,
        n_b=nb,
        count_a=ca,
        count_b=cb,
        freq_a=ca / na,
        freq_b=cb / nb,
        diff=ca / na - cb / nb,
        judge=judge,
        usage=usage,
        **st,
    )
