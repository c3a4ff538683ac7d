"""The latent operations: find latents by label, show one latent with its evidence, explain one document.

"Top latents of a document" has one ranking, :func:`saescope.analyses.explain_document` (activation x idf),
whether it is asked for by ``explain_document`` over MCP, ``saescope explain`` or ``saescope top-features``
(:func:`top_features`, which adds the tokens that fire the first latents).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from saescope import analyses as an
from saescope.analyses.common import check_latent, render_table
from saescope.labels import LabelBook
from saescope.ops.analyses import words_guide
from saescope.ops.docsets import DocSet, labels_for, resolve
from saescope.ops.encoder import encode, label_embeddings
from saescope.ops.requests import ExplainRequest, FeatureRequest, SearchFeaturesRequest, TopFeaturesRequest
from saescope.store.dataset import Embedding
from saescope.workspace import Workspace

EXPLAIN_TEXT_CHARS = 1500


class FeatureEvidence(BaseModel):
    """The tokens of one document that fire a latent, recomputed by the reader."""

    doc_id: str
    activation: float
    tokens: list[tuple[int, str, float]] = Field(description="(position, token, activation), strongest first")
    text: str = Field(description="the document with firing tokens marked «like this», trimmed around them")


class FeatureDetails(BaseModel):
    """One latent in one dataset: labels, how often it fires, where, and on which tokens."""

    summary: an.LatentSummary
    labels: list[dict[str, Any]]
    top_tokens: list[tuple[str, int]] = Field(default_factory=list, description="tokens it fired on in training")
    evidence: list[FeatureEvidence] = Field(default_factory=list)

    def to_text(self) -> str:
        lines = [self.summary.to_text()]
        if self.top_tokens:
            lines.append("fires in training on: " + ", ".join(f"{t!r}x{n}" for t, n in self.top_tokens[:6]))
        for ev in self.evidence:
            toks = ", ".join(f"{t!r}={a:.1f}" for _, t, a in ev.tokens[:5])
            lines.append(f"- {ev.doc_id} (max {ev.activation:.2f}): {toks}\n    {ev.text}")
        return "\n".join(lines)


class ExplainResult(BaseModel):
    """A document's most distinctive latents, with the start of its text."""

    explanation: an.DocumentExplanation
    text: str = Field(description="the document's text, cut to 1,500 characters")
    truncated: bool

    def to_text(self) -> str:
        return f"{self.explanation.to_text()}\ntext: {self.text!r}"


class DocumentFeatures(BaseModel):
    """A document's top latents (ranked as by explain_document), with the tokens that fire the first ones."""

    dataset: str
    doc_id: str
    n_active: int = Field(description="latents firing in the document")
    text: str = Field(description="the start of the document's text")
    features: list[an.ExplainedLatent]
    evidence: dict[str, list[tuple[str, float]]] = Field(
        default_factory=dict, description="latent id -> its firing tokens (token, activation), strongest first"
    )

    def to_text(self) -> str:
        head = f"{self.dataset}/{self.doc_id}: {self.n_active} active latents. Text: {self.text[:200]!r}"
        rows = [
            [
                f.latent,
                f"{f.activation:.2f}",
                f"{f.doc_freq:.1%}",
                f.label,
                " ".join(repr(t) for t, _ in self.evidence.get(str(f.latent), [])[:3]),
            ]
            for f in self.features
        ]
        return head + "\n" + render_table(["latent", "act", "in docs", "label", "firing tokens"], rows, max_cell=70)


def search_features(ws: Workspace, req: SearchFeaturesRequest) -> an.LatentMatches:
    """Latents whose labels match the query (words, and label-embedding similarity when ``semantic``).

    With ``guided``, the latents instead come from :func:`saescope.analyses.select_latents_guided`: those whose
    firing over the dataset correlates best with how much each document looks like the query
    (:func:`saescope.ops.analyses.words_guide`: its dense similarity plus the best-matching latent by
    description that fires in it).

    Raises:
        InputError: guided, and no latent's firing follows the query.
        NotFoundError: unknown dataset or no embedding.
    """
    emb = ws.embedding(req.dataset, req.sae)
    book = labels_for(ws, emb)
    if req.guided:
        return _guided_search(ws, req, emb, book)
    if req.semantic:
        return an.search_latents(
            book,
            req.query,
            label_embeddings=label_embeddings(ws, emb),
            query_embedding=encode([req.query])[0],
            top_k=req.top_k,
        )
    return an.search_latents(book, req.query, top_k=req.top_k)


def _guided_search(ws: Workspace, req: SearchFeaturesRequest, emb: Embedding, book: LabelBook) -> an.LatentMatches:
    r = resolve(ws, DocSet(req.dataset, None, req.sae))
    q = encode([req.query])[0]
    chosen = an.select_latents_guided(r.X, words_guide(ws, r, q[None, :])[:, 0], top_n=req.top_k, labels=book)
    lexical = {m.latent: m.lexical for m in an.search_latents(book, req.query, top_k=emb.manifest.d_sae).matches}
    return an.LatentMatches(
        query=req.query,
        n_labels=len(book.latents),
        method="guided",
        matches=[
            an.LatentMatch(
                latent=p.latent,
                label=p.label,
                score=p.weight,
                lexical=lexical.get(p.latent, 0.0),
                similarity=None,
                guide_correlation=p.guide_correlation,
            )
            for p in chosen.latents
        ],
    )


def highlight(text: str, tokens: Sequence[tuple[int, str, float]], tokenizer: Any, width: int = 240) -> str:
    """``text`` with firing tokens wrapped in «», cut to about ``width`` characters around the first."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    firing = {p for p, _, _ in tokens}
    pieces = [f"«{tokenizer.decode([t])}»" if i in firing else tokenizer.decode([t]) for i, t in enumerate(ids)]
    out = "".join(pieces)
    first = out.find("«")
    if len(out) <= width or first < 0:
        return out[:width]
    lo = max(0, first - width // 3)
    return ("..." if lo else "") + out[lo : lo + width] + ("..." if lo + width < len(out) else "")


def feature_details(ws: Workspace, req: FeatureRequest) -> FeatureDetails:
    """One latent: labels, dataset frequency, top documents with firing tokens, non-firing examples.

    Raises:
        InputError: the latent is outside the SAE.
        NotFoundError: unknown dataset or no embedding.
    """
    emb, matrix = ws.matrix(req.dataset, req.sae)
    check_latent(req.latent, matrix.shape[1])  # before the SAE loads for its labels
    ds = ws.dataset(req.dataset)
    doc_ids = ds.documents(["doc_id"])["doc_id"].to_numpy()
    book = labels_for(ws, emb)
    summary = an.latent_summary(matrix, req.latent, book, doc_ids, n_top=req.n_top)
    rec = book.get(req.latent)
    details = FeatureDetails(
        summary=summary, labels=[lab.model_dump() for lab in rec.labels], top_tokens=rec.top_tokens
    )
    if req.token_evidence and summary.top_docs:
        texts = ds.documents(["text"])
        embedder = ws.embedder_of(emb)
        for top in summary.top_docs:
            text = str(texts["text"].iloc[top.row])
            ev = embedder.token_evidence(text, [req.latent])[req.latent]
            toks = sorted(((e.position, e.token, round(e.activation, 3)) for e in ev), key=lambda t: -t[2])
            details.evidence.append(
                FeatureEvidence(
                    doc_id=top.doc_id,
                    activation=top.activation,
                    tokens=toks,
                    text=highlight(text, toks, embedder.reader.tokenizer),
                )
            )
    return details


def _explained(ws: Workspace, req: ExplainRequest) -> tuple[Embedding, an.DocumentExplanation, str]:
    emb, matrix = ws.matrix(req.dataset, req.sae)
    ds = ws.dataset(req.dataset)
    row = int(ds.row_of([req.doc_id])[0])
    frame = ds.documents(["text"])
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    explanation = an.explain_document(
        matrix, row, labels_for(ws, emb), top_k=req.top_k, doc_ids=frame["doc_id"].to_numpy(), doc_counts=counts
    )
    return emb, explanation, str(frame["text"].iloc[row])


def explain_document(ws: Workspace, req: ExplainRequest) -> ExplainResult:
    """A document's most distinctive latents (strong activation, rare in the dataset), with its text.

    Raises:
        NotFoundError: unknown dataset, document or embedding.
    """
    _, explanation, text = _explained(ws, req)
    return ExplainResult(
        explanation=explanation, text=text[:EXPLAIN_TEXT_CHARS], truncated=len(text) > EXPLAIN_TEXT_CHARS
    )


def top_features(ws: Workspace, req: TopFeaturesRequest) -> DocumentFeatures:
    """A document's top latents, ranked as :func:`explain_document` ranks them, with the tokens that fire the
    first ``req.evidence`` of them (recomputed by the reader).

    Raises:
        NotFoundError: unknown dataset, document or embedding.
    """
    emb, explanation, text = _explained(ws, req)
    evidence: dict[str, list[tuple[str, float]]] = {}
    if req.evidence:
        latents = [lat.latent for lat in explanation.latents[: req.evidence]]
        found = ws.embedder_of(emb).token_evidence(text, latents)
        for i in latents:
            strongest = sorted(found[i], key=lambda e: -e.activation)[:5]
            evidence[str(i)] = [(e.token, round(e.activation, 2)) for e in strongest]
    return DocumentFeatures(
        dataset=req.dataset,
        doc_id=req.doc_id,
        n_active=explanation.n_active,
        text=text[:EXPLAIN_TEXT_CHARS],
        features=explanation.latents,
        evidence=evidence,
    )
