"""Summarise a diff into a few hypotheses, each citing latents, with frequencies measured by code.

The LLM sees the top latents of a diff (relabelled, optionally, from example documents of each side)
and writes hypotheses that cite latent ids. Only the text is kept from its answer: cited ids are
checked against the diff (others are dropped and listed), and each hypothesis's frequencies are the
fractions of documents of A and B where any cited latent fires, counted on the matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from saescope.llm.ledger import LLMUsage
from saescope.llm.providers import ChatRequest
from saescope.llm.quoting import DATA_RULES, clean_text, parse_int_list, parse_json_object, quote_document
from saescope.llm.quoting import quote_tag as tag

if TYPE_CHECKING:
    from saescope import analyses as an

RELABEL_SYSTEM = (
    "You label features of a sparse autoencoder in the context of a comparison between two sets of documents, "
    "A and B. You see how often a feature fires in each set and documents where it fires. "
    + DATA_RULES
    + ' Answer with JSON only: {"label": "<at most 12 words>"}.'
)
SUMMARY_SYSTEM = (
    "You turn the features that differ between two sets of documents, A and B, into a few hypotheses about how "
    "the sets differ. Each hypothesis is one plain sentence and cites the ids of the features that support it; "
    "cite only ids from the table. "
    + DATA_RULES
    + ' Answer with JSON only: {"hypotheses": [{"text": "<one sentence>", "latents": [<feature ids>]}]}.'
)


class DiffLatent(BaseModel):
    """One latent of the diff, with the diff's numbers."""

    latent: int
    label: str = Field(description="preferred label")
    context_label: str | None = Field(default=None, description="LLM label written for this comparison")
    freq_a: float = Field(description="fraction of A's documents (or pairs) where it fires, from the diff")
    freq_b: float = Field(description="fraction of B's documents where it fires (pooled others in one_vs_many)")
    diff: float = Field(description="freq_a - freq_b")
    q: float = Field(description="BH-adjusted p-value from the diff")
    examples_a: list[str] = Field(default_factory=list, exclude=True)
    examples_b: list[str] = Field(default_factory=list, exclude=True)


class Hypothesis(BaseModel):
    """A difference between A and B in words, the latents that carry it, and how often they fire."""

    text: str = Field(description="the hypothesis, written by the LLM")
    latents: list[int] = Field(description="cited latent ids, all from the diff")
    count_a: int = Field(description="documents of A where any cited latent fires (counted, not from the LLM)")
    count_b: int = Field(description="documents of B where any cited latent fires")
    freq_a: float = Field(description="count_a / n_a")
    freq_b: float = Field(description="count_b / n_b")
    cited: list[DiffLatent] = Field(description="the cited latents' rows of the diff")


class DiffSummary(BaseModel):
    """Hypotheses about how A differs from B, grounded in the latents of a diff."""

    mode: str
    name_a: str
    name_b: str
    n_a: int = Field(description="documents (or pairs) of A")
    n_b: int = Field(description="documents (or pairs) of B")
    latents: list[DiffLatent] = Field(description="the diff's top latents given to the LLM")
    hypotheses: list[Hypothesis]
    dropped_citations: list[int] = Field(description="latent ids the LLM cited that are not among `latents`")
    usage: LLMUsage | None

    def to_text(self) -> str:
        lines = [
            f"{len(self.hypotheses)} hypotheses: {self.name_a} (A, n={self.n_a}) vs {self.name_b} "
            f"(B, n={self.n_b}); frequencies count documents where any cited latent fires"
        ]
        for i, h in enumerate(self.hypotheses, 1):
            lines.append(
                f"{i}. {h.text}\n   latents {h.latents}: A {h.freq_a:.1%} ({h.count_a}/{self.n_a}) vs "
                f"B {h.freq_b:.1%} ({h.count_b}/{self.n_b})"
            )
        if self.dropped_citations:
            lines.append(f"dropped citations of latents not in the diff: {self.dropped_citations}")
        lines.append("latents:")
        for d in self.latents:
            ctx = f" [here: {d.context_label}]" if d.context_label else ""
            lines.append(f"- {d.latent} {d.label}{ctx}: A {d.freq_a:.1%} vs B {d.freq_b:.1%}, q={d.q:.2g}")
        if self.usage:
            lines.append(self.usage.to_text())
        lines.append(
            "Check a hypothesis with verify_hypothesis (its latents, the same sets, judge=true for a "
            "reading of sample documents)."
        )
        return "\n".join(lines)


def diff_latents(diff: an.SetDiff | an.PairedDiff | an.OneVsMany) -> tuple[list[DiffLatent], str, str, int, int]:
    """The diff's rows in one shape, with the names and sizes of A and B."""
    from saescope import analyses as an

    if isinstance(diff, an.SetDiff):
        rows = [
            DiffLatent(
                latent=r.latent,
                label=r.label,
                freq_a=r.freq_a,
                freq_b=r.freq_b,
                diff=r.diff,
                q=r.q,
                examples_a=r.examples_a,
                examples_b=r.examples_b,
            )
            for r in diff.rows
        ]
        return rows, diff.name_a, diff.name_b, diff.n_a, diff.n_b
    if isinstance(diff, an.PairedDiff):
        rows = [
            DiffLatent(
                latent=r.latent,
                label=r.label,
                freq_a=r.freq_a,
                freq_b=r.freq_b,
                diff=r.diff,
                q=r.q,
                examples_a=r.examples_only_a,
                examples_b=r.examples_only_b,
            )
            for r in diff.rows
        ]
        return rows, diff.name_a, diff.name_b, diff.n_pairs, diff.n_pairs
    rows = [
        DiffLatent(
            latent=r.latent,
            label=r.label,
            freq_a=r.freq_target,
            freq_b=r.freq_pooled_others,
            diff=r.freq_target - r.freq_pooled_others,
            q=r.q,
            examples_a=r.examples_target,
        )
        for r in diff.rows
    ]
    return rows, diff.target, f"not {diff.target}", diff.n_target, sum(diff.n_others.values())


def relabel_request(
    row: DiffLatent, texts_a: dict[str, str], texts_b: dict[str, str], name_a: str, name_b: str
) -> ChatRequest:
    docs_a = "\n".join(quote_document(texts_a[i], i, 400) for i in row.examples_a if i in texts_a) or "(none shown)"
    docs_b = "\n".join(quote_document(texts_b[i], i, 400) for i in row.examples_b if i in texts_b) or "(none shown)"
    side = "A" if row.diff >= 0 else "B"
    return ChatRequest(
        system=RELABEL_SYSTEM,
        max_tokens=120,
        user=(
            f"A: {tag('label', name_a)}. B: {tag('label', name_b)}.\n"
            f"Feature {row.latent} fires in {row.freq_a:.1%} of A and {row.freq_b:.1%} of B. "
            f"Its current label: {tag('label', row.label)}\n\n"
            f"Documents of A where it fires:\n{docs_a}\n\nDocuments of B where it fires:\n{docs_b}\n\n"
            f"In at most 12 words, what does the feature detect that makes it more frequent in {side}? Answer as JSON."
        ),
    )


def summary_request(rows: list[DiffLatent], name_a: str, name_b: str, n_hypotheses: int) -> ChatRequest:
    table = "\n".join(
        f"- feature {r.latent}: {tag('label', r.context_label or r.label)} fires in {r.freq_a:.1%} of A vs "
        f"{r.freq_b:.1%} of B (q={r.q:.2g})"
        for r in rows
    )
    return ChatRequest(
        system=SUMMARY_SYSTEM,
        max_tokens=700,
        user=(
            f"A: {tag('label', name_a)}. B: {tag('label', name_b)}.\nFeatures that differ most between A and B:\n"
            f"{table}\n\nWrite at most {n_hypotheses} hypotheses about how the documents of A differ from those of B. "
            "Group features that express the same difference; cite their ids. Answer as JSON."
        ),
    )


def parse_hypotheses(text: str, known: set[int], limit: int) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """(text, cited ids) pairs from the model's answer, citing only ``known`` ids; and the dropped ids."""
    obj = parse_json_object(text) or {}
    items = obj.get("hypotheses")
    out: list[tuple[str, list[int]]] = []
    dropped: list[int] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        cited = parse_int_list(item.get("latents"), -(2**62), 2**62)
        dropped += [c for c in cited if c not in known and c not in dropped]
        valid = [c for c in cited if c in known]
        body = clean_text(item.get("text") or "", 400)
        if body and valid and len(out) < limit:
            out.append((body, valid))
    return out, dropped
