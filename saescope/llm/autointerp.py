"""Autointerp: an LLM labels a latent from documents where it fires and where it does not, and the label
is scored by detection on held-out documents (balanced accuracy of the LLM's yes/no calls).

Examples come from the stored embedding; the firing tokens of the top documents are recomputed by the
reader and marked «like this». Labels are saved beside the shipped ones, with source ``llm``, the
model that wrote them and their score.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread
from pydantic import BaseModel, Field

from saescope.llm.ledger import LLMUsage
from saescope.llm.providers import ChatRequest
from saescope.llm.quoting import DATA_RULES, clean_text, parse_int_list, parse_json_object, quote_document, quote_tag

if TYPE_CHECKING:
    pass

T = TypeVar("T")
RunSync = Callable[[Callable[[], T]], Awaitable[T]]
"""Runs blocking library work (matrix reads, the reader) off the event loop, e.g. in a worker thread."""

MAX_LATENTS = 20

LABEL_SYSTEM = (
    "You explain what one feature of a sparse autoencoder detects in text. You are shown documents where the "
    "feature fires, with the tokens where it fires most strongly marked «like this» when known, and documents "
    "where it does not fire. " + DATA_RULES + ' Answer with JSON only: {"label": "<at most 12 words>"}.'
)
DETECT_SYSTEM = (
    "You test a description of a text feature. For each numbered document, decide whether it contains what "
    "the description describes. "
    + DATA_RULES
    + ' Answer with JSON only: {"matches": [<numbers of the matching documents>]}.'
)


async def run_in_thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


class DetectionScore(BaseModel):
    """How well the label picks out held-out documents where the latent fires."""

    n_positive: int = Field(description="held-out documents where the latent fires")
    n_negative: int = Field(description="held-out documents where it does not fire")
    true_positive: int
    false_positive: int
    balanced_accuracy: float | None = Field(description="(TPR + TNR) / 2; null without both kinds of document")


class LatentLabelResult(BaseModel):
    """The new label of one latent, or why it got none."""

    latent: int
    label: str | None = Field(description="the LLM's label; null when skipped")
    score: float | None = Field(description="detection balanced accuracy on held-out documents (0.5 = chance)")
    detection: DetectionScore | None = None
    previous_label: str = Field(description="the preferred label before this call")
    n_firing: int = Field(description="documents of the dataset where the latent fires")
    note: str | None = Field(default=None, description="why the latent was skipped or not scored")


class LabelingResult(BaseModel):
    """LLM labels for latents of one dataset's SAE, scored and (optionally) saved."""

    dataset: str
    sae_id: str
    saved_to: str | None = Field(description="file the labels were added to; null when not saved")
    results: list[LatentLabelResult]
    usage: LLMUsage | None = Field(description="tokens and price of the LLM calls")

    def to_text(self) -> str:
        lines = [
            f"LLM labels for {len(self.results)} latent(s) of {self.sae_id} on {self.dataset}"
            + (f" (saved to {self.saved_to})" if self.saved_to else " (not saved)")
        ]
        for r in self.results:
            if r.label is None:
                lines.append(f"- {r.latent}: skipped: {r.note}")
                continue
            score = "unscored" if r.score is None else f"detection {r.score:.2f}"
            lines.append(f"- {r.latent}: {r.label!r} ({score}; fires in {r.n_firing} docs; was {r.previous_label!r})")
        if self.usage:
            lines.append(self.usage.to_text())
        return "\n".join(lines)


@dataclass
class LatentExamples:
    """Documents that show a latent, and held-out ones to test a label with."""

    latent: int
    previous_label: str
    n_firing: int
    examples: list[tuple[str, str]]
    negatives: list[tuple[str, str]]
    held_out: list[tuple[str, str, bool]]


def label_request(ex: LatentExamples) -> ChatRequest:
    firing = "\n".join(quote_document(t, i, 500) for i, t in ex.examples)
    silent = "\n".join(quote_document(t, i, 300) for i, t in ex.negatives) or "(none)"
    return ChatRequest(
        system=LABEL_SYSTEM,
        max_tokens=120,
        user=(
            f"Documents where the feature fires:\n{firing}\n\nDocuments where it does not fire:\n{silent}\n\n"
            "What does the feature detect? Give a short, specific label (at most 12 words) as JSON."
        ),
    )


def detection_request(label: str, ex: LatentExamples) -> ChatRequest:
    docs = "\n".join(quote_document(t, str(n), 300) for n, (_, t, _) in enumerate(ex.held_out, 1))
    return ChatRequest(
        system=DETECT_SYSTEM,
        max_tokens=120,
        user=(
            f"Description of the feature: {quote_tag('description', label)}\n\nDocuments:\n{docs}\n\n"
            "Which documents contain what the description describes? Answer as JSON."
        ),
    )


def parse_label(text: str) -> str | None:
    """The label in a model's answer: the JSON ``label`` field, else the first line."""
    obj = parse_json_object(text)
    raw = obj.get("label") if obj is not None else (text.strip().splitlines() or [""])[0]
    label = clean_text(raw or "", 120)
    return label or None


def score_detection(answer: str, ex: LatentExamples) -> DetectionScore:
    obj = parse_json_object(answer) or {}
    said = set(parse_int_list(obj.get("matches"), 1, len(ex.held_out)))
    truth = [is_pos for _, _, is_pos in ex.held_out]
    n_pos, n_neg = sum(truth), len(truth) - sum(truth)
    tp = sum(1 for n, t in enumerate(truth, 1) if t and n in said)
    fp = sum(1 for n, t in enumerate(truth, 1) if not t and n in said)
    bacc = (tp / n_pos + (n_neg - fp) / n_neg) / 2 if n_pos and n_neg else None
    return DetectionScore(
        n_positive=n_pos,
        n_negative=n_neg,
        true_positive=tp,
        false_positive=fp,
        balanced_accuracy=None if bacc is None else round(bacc, 4),
    )
