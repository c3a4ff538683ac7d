"""What a report shows, gathered from an analysis result: a chart, and a card per top latent with the
documents where it fires and their firing tokens (recomputed by the reader, as ``feature_details`` does).

The :class:`Report` is plain data; :mod:`saescope.report` renders it as one self-contained HTML page and
the MCP app views render the same data in the chat. Only the top rows and a few documents per side are
gathered, so a report of a 500k-document diff costs no more than one of 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field

from saescope.analyses import Clustering, CrossCooccurrence
from saescope.analyses.common import top_rows_per_column
from saescope.ops.analyses import CorrelationResult, DiffResult, Retrieval, TrendResult
from saescope.ops.docsets import DocSet, Resolved, Side, labels_for, resolve, resolve_sides
from saescope.ops.requests import ClusterRequest, CorrelationsRequest, DiffRequest, RetrieveRequest, TrendRequest
from saescope.store.dataset import Embedding
from saescope.workspace import Workspace

WINDOW_CHARS = 900
"""Characters of a document shown on a card, around its strongest firing token."""


class Segment(BaseModel):
    """A piece of a document's text; ``activation`` > 0 where the latent fires on it."""

    text: str
    activation: float = 0.0


class CardDoc(BaseModel):
    """One document on a latent's card, its text split at the tokens where the latent fires."""

    side: str
    doc_id: str
    activation: float = Field(description="the latent's pooled activation in the document")
    segments: list[Segment]
    cut_before: bool = Field(description="text before the shown window was left out")
    cut_after: bool = Field(description="text after the shown window was left out")


class SideFrequency(BaseModel):
    side: str
    count: int
    n: int
    freq: float


class LatentCard(BaseModel):
    """One latent: its labels, how often it fires on each side, and documents where it fires."""

    latent: int
    label: str
    other_labels: list[str] = Field(default_factory=list, description="labels from other sources")
    frequencies: list[SideFrequency]
    docs: list[CardDoc]


class Bar(BaseModel):
    """One bar (or point with an interval) of a report's chart."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    faded: bool = Field(default=False, description="not significant at the report's alpha")


class Series(BaseModel):
    """One latent's values across ordered groups (trend reports)."""

    label: str
    values: list[float]
    low: list[float]
    high: list[float]
    note: str = ""


class Chart(BaseModel):
    kind: Literal["bars", "multiples"]
    title: str
    axis: str = Field(description="what the values are")
    bars: list[Bar] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list, description="multiples: the ordered groups")
    series: list[Series] = Field(default_factory=list)


class Report(BaseModel):
    """Everything one HTML report (or app view) shows."""

    kind: str
    title: str
    command: str = Field(description="the command or call that produced the result")
    dataset: str
    embedding: dict[str, str | int | None] = Field(description="embedding key, SAE id, reader and layer")
    summary: str = Field(description="the result's own first line")
    chart: Chart
    cards: list[LatentCard]


@dataclass
class _Group:
    """Documents whose cards show frequencies (and, with ``show``, example documents)."""

    name: str
    dataset: str
    rows: np.ndarray
    doc_ids: np.ndarray
    X: sp.csr_matrix
    show: bool = True


def _group(side: Side, show: bool = True) -> _Group:
    return _Group(side.name, side.dataset, side.rows, side.doc_ids, side.X, show)


def _whole(r: Resolved, name: str) -> _Group:
    return _Group(name, r.docset.dataset, r.rows, r.doc_ids, r.X)


def _segments(
    text: str, offsets: Sequence[tuple[int, int]], acts: dict[int, float]
) -> tuple[list[Segment], bool, bool]:
    """``text`` cut to a window around the strongest firing token and split at the firing tokens."""
    strongest = max(acts, key=lambda p: acts[p], default=None)
    centre = offsets[strongest][0] if strongest is not None and strongest < len(offsets) else 0
    lo = max(0, min(centre - WINDOW_CHARS // 3, len(text) - WINDOW_CHARS))
    hi = min(len(text), lo + WINDOW_CHARS)
    out: list[Segment] = []
    cursor = lo
    for pos in sorted(acts):
        if pos >= len(offsets):
            continue
        start, end = offsets[pos]
        start, end = max(start, cursor), min(end, hi)
        if start >= end:
            continue
        if start > cursor:
            out.append(Segment(text=text[cursor:start]))
        out.append(Segment(text=text[start:end], activation=round(acts[pos], 3)))
        cursor = end
    if cursor < hi:
        out.append(Segment(text=text[cursor:hi]))
    return out, lo > 0, hi < len(text)


def _cards(
    ws: Workspace, emb: Embedding, latents: Sequence[int], groups: Sequence[_Group], n_docs: int
) -> list[LatentCard]:
    book = labels_for(ws, emb)
    embedder = ws.embedder_of(emb)
    texts: dict[tuple[str, str], str] = {}
    wanted: dict[tuple[str, str], set[int]] = {}
    picks: dict[int, list[tuple[_Group, str, float]]] = {int(i): [] for i in latents}
    for g in groups:
        if not g.show:
            continue
        top = top_rows_per_column(g.X, list(latents), n_docs)
        col = g.X.tocsc()
        for lat, rows in top.items():
            for r in rows:
                doc = str(g.doc_ids[r])
                picks[lat].append((g, doc, float(col[r, lat])))
                wanted.setdefault((g.dataset, doc), set()).add(lat)
    for dataset in {d for d, _ in wanted}:
        frame = ws.dataset(dataset).documents(["text"])
        ids = set(doc for d, doc in wanted if d == dataset)
        sub = frame[frame["doc_id"].astype(str).isin(ids)]
        texts.update({(dataset, str(i)): str(t) for i, t in zip(sub["doc_id"], sub["text"], strict=True)})
    tokenizer = embedder.reader.tokenizer
    evidence: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
    offsets: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for key, lats in wanted.items():
        text = texts.get(key, "")
        found = embedder.token_evidence(text, sorted(lats))
        evidence[key] = {lat: {e.position: e.activation for e in ev} for lat, ev in found.items()}
        offsets[key] = list(tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
    cards = []
    for lat in latents:
        rec = book.get(int(lat))
        freqs = []
        for g in groups:
            n = int(g.X.shape[0])
            count = int((g.X[:, [int(lat)]] > 0).sum())
            freqs.append(SideFrequency(side=g.name, count=count, n=n, freq=count / n if n else 0.0))
        docs = []
        for g, doc, act in picks[int(lat)]:
            key = (g.dataset, doc)
            segs, before, after = _segments(texts.get(key, ""), offsets[key], evidence[key].get(int(lat), {}))
            docs.append(
                CardDoc(side=g.name, doc_id=doc, activation=act, segments=segs, cut_before=before, cut_after=after)
            )
        others = [f"{lab.text} [{lab.source}]" for lab in rec.labels[1:4]] if rec.labels else []
        cards.append(
            LatentCard(latent=int(lat), label=book.text(int(lat)), other_labels=others, frequencies=freqs, docs=docs)
        )
    return cards


def _embedding_info(emb: Embedding) -> dict[str, str | int | None]:
    spec = emb.manifest.spec
    return {
        "key": emb.key,
        "sae": spec.sae.get("id"),
        "reader": spec.reader.get("id"),
        "layer": spec.reader.get("layer"),
        "pooling": spec.config.get("pooling"),
    }


def _report(
    ws: Workspace,
    kind: str,
    title: str,
    command: str,
    r_emb: Embedding,
    dataset: str,
    summary: str,
    chart: Chart,
    latents: Sequence[int],
    groups: Sequence[_Group],
    n_docs: int,
) -> Report:
    return Report(
        kind=kind,
        title=title,
        command=command,
        dataset=dataset,
        embedding=_embedding_info(r_emb),
        summary=summary.splitlines()[0] if summary else "",
        chart=chart,
        cards=_cards(ws, r_emb, latents, groups, n_docs),
    )


def diff_report(
    ws: Workspace, req: DiffRequest, result: DiffResult, *, command: str, n_cards: int = 8, n_docs: int = 2
) -> Report:
    """A diff's chart (differences with 95% intervals) and cards for its top latents, documents from each side.

    Raises:
        InputError, NotFoundError: the sides can no longer be resolved (the data changed).
    """
    sides = resolve_sides(ws, req.spec)
    inner = result.diff
    if result.one_vs_many is not None:
        rows = result.one_vs_many.rows
        bars = [
            Bar(
                label=f"#{r.latent} {r.label}",
                value=r.score,
                low=r.score_ci_low,
                high=r.score,
                faded=r.q > result.one_vs_many.alpha,
            )
            for r in rows
        ]
        axis = f"frequency in {sides.a.name} minus the highest other value"
        groups = [_group(sides.a), *[_group(g, show=False) for g in sides.groups.values()], _group(sides.b)]
    else:
        alpha = result.sets.alpha if result.sets is not None else result.paired.alpha  # type: ignore[union-attr]
        rows2 = result.sets.rows if result.sets is not None else result.paired.rows  # type: ignore[union-attr]
        bars = [
            Bar(label=f"#{r.latent} {r.label}", value=r.diff, low=r.ci_low, high=r.ci_high, faded=r.q > alpha)
            for r in rows2
        ]
        axis = f"frequency in {sides.a.name} minus frequency in {sides.b.name}"
        groups = [_group(sides.a), _group(sides.b)]
    latents = [r.latent for r in inner.rows][:n_cards]
    chart = Chart(kind="bars", title="Latents that differ most, with 95% intervals", axis=axis, bars=bars)
    emb = ws.embedding(req.dataset_a, req.sae)
    return _report(
        ws,
        f"diff-{result.mode}",
        f"{sides.a.name} vs {sides.b.name}",
        command,
        emb,
        req.dataset_a,
        inner.to_text(),
        chart,
        latents,
        groups,
        n_docs,
    )


def trend_report(
    ws: Workspace, req: TrendRequest, result: TrendResult, *, command: str, n_cards: int = 8, n_docs: int = 2
) -> Report:
    """A trend's small multiples and cards with documents from the first and last groups."""
    from saescope.ops.analyses import ordered_groups

    r = resolve(ws, DocSet(req.dataset, req.where, req.sae))
    index, names = ordered_groups(r.column(req.column), req.order, req.n_bins)
    t = result.trend
    groups = []
    present = [g for g, n in enumerate(t.n_per_group) if n]
    for g, name in enumerate(names):
        rows = np.flatnonzero(index == g)
        show = g in (present[0], present[-1])
        groups.append(_Group(name, req.dataset, r.rows[rows], r.doc_ids[rows], r.X[rows], show))
    series = [
        Series(
            label=f"#{row.latent} {row.label}",
            values=row.freqs,
            low=row.ci_low,
            high=row.ci_high,
            note=f"z {row.z:+.2f}, q {row.q:.2g}",
        )
        for row in t.rows
    ]
    chart = Chart(
        kind="multiples",
        title=f"Firing frequency along {req.column}",
        axis="fraction of documents",
        groups=t.groups,
        series=series,
    )
    return _report(
        ws,
        "trend",
        f"{req.dataset}: latents along {req.column}",
        command,
        r.embedding,
        req.dataset,
        t.to_text(),
        chart,
        [row.latent for row in t.rows][:n_cards],
        groups,
        n_docs,
    )


def correlations_report(
    ws: Workspace,
    req: CorrelationsRequest,
    result: CorrelationResult,
    *,
    command: str,
    n_cards: int = 8,
    n_docs: int = 3,
) -> Report:
    """Co-occurring pairs (NPMI bars) or latents tracking a column, with cards for the latents involved.
    Across two datasets (``against``), the cards show the second dataset's latents in its own documents."""
    if result.cross is not None:
        return _cross_report(ws, req, result.cross, command=command, n_cards=n_cards, n_docs=n_docs)
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae))
    latents: list[int] = []
    if result.cooccurrence is not None:
        bars = [
            Bar(label=f"#{p.latent_a} {p.label_a[:30]} × #{p.latent_b} {p.label_b[:30]}", value=p.npmi)
            for p in result.cooccurrence.pairs
        ]
        for p in result.cooccurrence.pairs:
            latents += [p.latent_a, p.latent_b]
        axis, summary = "normalised PMI", result.cooccurrence.to_text()
    else:
        meta = result.metadata
        assert meta is not None
        if meta.categories:
            bars = [
                Bar(
                    label=f"{c.category}: #{row.latent} {row.label}",
                    value=row.diff,
                    low=row.ci_low,
                    faded=row.q > meta.alpha,
                )
                for c in meta.categories
                for row in c.rows[:3]
            ]
            latents = [row.latent for c in meta.categories for row in c.rows[:3]]
            axis = "frequency in the category minus elsewhere"
        else:
            rows = meta.correlations or []
            bars = [Bar(label=f"#{c.latent} {c.label}", value=c.rho, faded=c.q > meta.alpha) for c in rows]
            latents = [c.latent for c in rows]
            axis = f"Spearman correlation with {meta.column}"
        summary = meta.to_text()
    chart = Chart(kind="bars", title="Correlations", axis=axis, bars=bars)
    unique = list(dict.fromkeys(latents))[:n_cards]
    return _report(
        ws,
        "correlations",
        f"{req.dataset}: concept correlations",
        command,
        r.embedding,
        req.dataset,
        summary,
        chart,
        unique,
        [_whole(r, req.dataset)],
        n_docs,
    )


def _cross_report(
    ws: Workspace, req: CorrelationsRequest, cross: CrossCooccurrence, *, command: str, n_cards: int, n_docs: int
) -> Report:
    y = resolve(ws, DocSet(str(req.against), req.where_against, req.sae))
    bars = [
        Bar(label=f"#{p.latent_x} {p.label_x[:30]} → #{p.latent_y} {p.label_y[:30]}", value=p.npmi) for p in cross.pairs
    ]
    chart = Chart(kind="bars", title="Latent pairs across the matched rows", axis="normalised PMI", bars=bars)
    latents = list(dict.fromkeys(p.latent_y for p in cross.pairs))[:n_cards]
    return _report(
        ws,
        "correlations",
        f"{req.dataset} → {req.against}: concept correlations across matched rows",
        command,
        y.embedding,
        str(req.against),
        cross.to_text(),
        chart,
        latents,
        [_whole(y, str(req.against))],
        n_docs,
    )


def cluster_report(
    ws: Workspace, req: ClusterRequest, result: Clustering, *, command: str, n_cards: int = 8, n_docs: int = 2
) -> Report:
    """Cluster sizes, and a card per cluster's most distinctive latent with documents from that cluster."""
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae), min_docs=4)
    assign = np.asarray(result.assignment)
    groups = [
        _Group(
            f"cluster {c.cluster}" + (f" ({c.axis_class})" if c.axis_class else ""),
            req.dataset,
            r.rows[assign == c.cluster],
            r.doc_ids[assign == c.cluster],
            r.X[np.flatnonzero(assign == c.cluster)],
        )
        for c in result.clusters
    ]
    bars = [
        Bar(
            label=f"cluster {c.cluster}"
            + (f" ({c.axis_class[:30]})" if c.axis_class else "")
            + ": "
            + ", ".join(f"#{t.latent} {t.label[:24]}" for t in c.top_latents[:2]),
            value=c.share,
        )
        for c in result.clusters
    ]
    chart = Chart(kind="bars", title="Cluster sizes", axis="share of documents", bars=bars)
    latents = list(dict.fromkeys(c.top_latents[0].latent for c in result.clusters if c.top_latents))[:n_cards]
    return _report(
        ws,
        "cluster",
        f"{req.dataset}: clusters",
        command,
        r.embedding,
        req.dataset,
        result.to_text(),
        chart,
        latents,
        groups,
        n_docs,
    )


def retrieval_report(
    ws: Workspace, req: RetrieveRequest, result: Retrieval, *, command: str, n_cards: int = 8, n_docs: int = 3
) -> Report:
    """The ranked documents' scores, and a card per chosen latent with its strongest documents."""
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae))
    bars = [Bar(label=f"{d.rank + 1}. {d.doc_id}", value=d.score) for d in result.ranking.docs]
    chart = Chart(kind="bars", title=f"Documents ranked for {req.query!r} ({result.method})", axis="score", bars=bars)
    latents = [p.latent for p in result.latents.latents]
    if result.guided_latents is not None:  # hybrid: cards for both SAE rankings' strongest latents
        guided = [p.latent for p in result.guided_latents.latents]
        latents = list(dict.fromkeys(latents[: n_cards // 2] + guided[: n_cards // 2] + latents + guided))
    latents = latents[:n_cards]
    return _report(
        ws,
        "retrieval",
        f"{req.dataset}: {req.query}",
        command,
        r.embedding,
        req.dataset,
        result.to_text(),
        chart,
        latents,
        [_whole(r, req.dataset)],
        n_docs,
    )
