"""Autointerp: an LLM labels a latent from documents where it fires and where it does not, and the label
is scored by detection on held-out documents (balanced accuracy of the LLM's yes/no calls).

Examples come from the stored embedding; the firing tokens of the top documents are recomputed by the
reader and marked «like this». Labels are saved beside the shipped ones, with source ``llm``, the
model that wrote them and their score.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import numpy as np
from pydantic import BaseModel, Field

from saescope.errors import InputError
from saescope.llm.ledger import LLMUsage, MeteredProvider
from saescope.llm.providers import ChatRequest, LLMProvider
from saescope.llm.quoting import DATA_RULES, clean_text, parse_int_list, parse_json_object, quote_document, quote_tag

if TYPE_CHECKING:
    from saescope.workspace import Workspace

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


def collect_examples(
    ws: Workspace,
    dataset: str,
    latent: int,
    *,
    sae: str | None = None,
    n_examples: int = 5,
    n_negative: int = 3,
    n_held_out: int = 6,
    token_evidence: bool = True,
    seed: int = 0,
) -> LatentExamples:
    """Top documents of ``latent`` (firing tokens marked), random silent ones, and a held-out mix.

    Raises:
        InputError: the latent is outside the SAE.
        NotFoundError: unknown dataset or no embedding.
    """
    from saescope import queries

    emb, M = ws.matrix(dataset, sae)
    n, d = M.shape
    if not 0 <= latent < d:
        raise InputError(f"latent {latent} is outside the SAE (0..{d - 1})")
    col = M.getcol(latent).tocoo()
    keep = col.data > 0
    rows, vals = col.row[keep].astype(np.int64), col.data[keep]
    rows = rows[np.lexsort((rows, -vals))]
    frame = ws.dataset(dataset).documents(["text"])
    ids = frame["doc_id"].astype(str).to_numpy()
    texts = frame["text"].astype(str).to_numpy()
    top = rows[:n_examples]
    if token_evidence and len(top):
        details = queries.feature_details(ws, dataset, latent, n_top=n_examples, evidence=True, sae=sae)
        examples = [(ev.doc_id, ev.text) for ev in details.evidence]
    else:
        examples = [(ids[r], texts[r]) for r in top]
    rng = np.random.default_rng([seed, latent])
    rest = rows[n_examples:]
    n_pos = min((n_held_out + 1) // 2, len(rest))
    pos = rng.choice(rest, n_pos, replace=False) if n_pos else np.zeros(0, np.int64)
    silent = np.setdiff1d(np.arange(n), rows)
    picked = rng.choice(silent, min(len(silent), n_negative + n_held_out // 2), replace=False)
    held = [(ids[r], texts[r], True) for r in pos] + [(ids[r], texts[r], False) for r in picked[n_negative:]]
    held = [held[i] for i in rng.permutation(len(held))]
    return LatentExamples(
        latent=latent,
        previous_label=queries.labels_for(ws, emb).text(latent),
        n_firing=len(rows),
        examples=examples,
        negatives=[(ids[r], texts[r]) for r in picked[:n_negative]],
        held_out=held,
    )


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


async def label_latents(
    ws: Workspace,
    dataset: str,
    latents: list[int],
    provider: LLMProvider,
    *,
    sae: str | None = None,
    n_examples: int = 5,
    n_negative: int = 3,
    n_held_out: int = 6,
    token_evidence: bool = True,
    save: bool = True,
    seed: int = 0,
    run_sync: RunSync[Any] = run_in_thread,
) -> LabelingResult:
    """Label ``latents`` from their documents in ``dataset`` and score each label on held-out documents.

    Two batches of prompts: one label per latent, then one detection test per label. Latents firing in
    fewer than 2 documents are skipped. With ``save``, labels go to the data root's label file for the
    SAE (``source="llm"``, the model and the score), next to the shipped labels.

    Raises:
        InputError: no latents, too many, or one outside the SAE.
        LLMUnavailableError, LLMError: no LLM, or it failed.
    """
    if not latents:
        raise InputError("give at least one latent id to label (from diff_datasets, search_features, ...)")
    if len(latents) > MAX_LATENTS:
        raise InputError(f"label at most {MAX_LATENTS} latents per call (got {len(latents)}); split the list")
    unique = list(dict.fromkeys(int(i) for i in latents))
    metered = provider if isinstance(provider, MeteredProvider) else MeteredProvider(provider)

    def collect() -> tuple[str, list[LatentExamples]]:
        emb = ws.embedding(dataset, sae)
        exs = [
            collect_examples(
                ws,
                dataset,
                i,
                sae=sae,
                n_examples=n_examples,
                n_negative=n_negative,
                n_held_out=n_held_out,
                token_evidence=token_evidence,
                seed=seed,
            )
            for i in unique
        ]
        return str(emb.manifest.spec.sae.get("id")), exs

    sae_id, examples = await run_sync(collect)
    usable = [ex for ex in examples if ex.n_firing >= 2]
    label_replies = await metered.complete([label_request(ex) for ex in usable]) if usable else []
    labels = {ex.latent: parse_label(r.text) for ex, r in zip(usable, label_replies, strict=True)}
    models = {ex.latent: r.model for ex, r in zip(usable, label_replies, strict=True)}
    testable = [ex for ex in usable if labels[ex.latent] and ex.held_out]
    det_replies = (
        await metered.complete([detection_request(str(labels[ex.latent]), ex) for ex in testable]) if testable else []
    )
    scores = {ex.latent: score_detection(r.text, ex) for ex, r in zip(testable, det_replies, strict=True)}

    results = []
    for ex in examples:
        label = labels.get(ex.latent)
        det = scores.get(ex.latent)
        note = None
        if ex.n_firing < 2:
            note = f"fires in {ex.n_firing} document(s) of {dataset}; too few to label"
        elif label is None:
            note = "the LLM gave no usable label"
        elif det is None or det.balanced_accuracy is None:
            note = "not scored: too few held-out documents of both kinds"
        results.append(
            LatentLabelResult(
                latent=ex.latent,
                label=label,
                score=det.balanced_accuracy if det else None,
                detection=det,
                previous_label=ex.previous_label,
                n_firing=ex.n_firing,
                note=note,
            )
        )
    saved_to = None
    if save and any(r.label for r in results):
        saved_to = await run_sync(lambda: save_labels(ws, dataset, sae, results, models))
    return LabelingResult(dataset=dataset, sae_id=sae_id, saved_to=saved_to, results=results, usage=metered.usage())


def save_labels(
    ws: Workspace, dataset: str, sae: str | None, results: list[LatentLabelResult], models: dict[int, str]
) -> str:
    """Add the labelled results to the SAE's saved labels (through :meth:`Workspace.import_labels`)."""
    from saescope.labels import FeatureLabel, LatentLabels

    sae_obj = ws.sae_of(ws.embedding(dataset, sae))
    records = [
        LatentLabels(
            latent=r.latent,
            labels=[FeatureLabel(source="llm", text=r.label, score=r.score, model=models.get(r.latent))],
        )
        for r in results
        if r.label
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llm-labels.jsonl"
        path.write_text("".join(rec.model_dump_json() + "\n" for rec in records), encoding="utf-8")
        ws.import_labels(sae_obj, path)
    return str(ws.user_labels_path(sae_obj.id))
