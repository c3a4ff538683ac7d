"""Verify a hypothesis: how often its latents fire on each side (a two-proportion test, no LLM), and,
optionally, an LLM judge's reading of a sample of documents from each side, with the counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from saescope.llm.ledger import LLMUsage
from saescope.llm.providers import ChatRequest
from saescope.llm.quoting import DATA_RULES, quote_document, quote_tag

if TYPE_CHECKING:
    pass

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
