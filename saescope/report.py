"""Standalone HTML reports: one self-contained page (inline CSS and SVG, no scripts, no network) per result.

:func:`render_html` draws a :class:`~saescope.ops.reports.Report`: its chart, then a card per latent with
its frequency on each side and the documents where it fires, the firing tokens highlighted by activation.
All document text is escaped: documents are untrusted.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

from saescope.errors import InputError

if TYPE_CHECKING:
    from saescope.ops.reports import CardDoc, Chart, LatentCard, Report, Series

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1180px;color:#1a202c;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}.meta{color:#4a5568;font-size:13px}.meta code{font-size:12px}
svg text{fill:#1a202c}.chart{margin:1em 0 2em}.card{border:1px solid #e2e8f0;border-radius:6px;margin:0 0 10px}
.card>summary{cursor:pointer;padding:8px 12px;font-weight:600;list-style-position:inside}
.card .body{padding:0 12px 10px}.freqs{font-size:13px;color:#2d3748;margin:4px 0 8px}
.doc{font-size:13px;line-height:1.5;border-left:3px solid #cbd5e0;padding:4px 10px;margin:6px 0;white-space:pre-wrap}
.doc .id{display:block;color:#718096;font-size:11px;white-space:normal}
mark{border-radius:2px;padding:0;color:inherit}.multiple{display:inline-block;margin:0 10px 14px 0;vertical-align:top}
figure{display:inline-block;margin:0 12px 14px 0;vertical-align:top}
figcaption{font-size:12px;max-width:260px;height:2.6em;overflow:hidden}
"""


def check_output(path: Path) -> None:
    """Check, before the work, that a report can be written to ``path``.

    Raises:
        InputError: ``path`` is a folder, its folder is missing or read-only, or the system refuses the name
            (too long, a NUL character).
    """
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name, e.g. {path / 'report.html'}")
        folder = path.parent
        if not folder.is_dir():
            raise InputError(f"the folder {folder} does not exist; create it or write the report elsewhere")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise InputError(f"{path} is not writable; write the report elsewhere")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{str(path)[:300]} cannot be a report file ({reason}); give another file name") from None


def write_report(path: Path, text: str) -> None:
    """Write a report to ``path``.

    Raises:
        InputError: the write failed (e.g. a full disk).
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"could not write {path}: {exc.strerror or exc}; write the report elsewhere") from exc


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _bars(chart: Chart, width: int = 1000) -> str:
    bars = chart.bars
    if not bars:
        return "<p>Nothing to plot.</p>"
    row_h, left, right, top = 24, 430, 24, 34
    height = top + row_h * len(bars) + 30
    lows = [b.low if b.low is not None else b.value for b in bars]
    highs = [b.high if b.high is not None else b.value for b in bars]
    lo_v, hi_v = min(0.0, *lows, *[b.value for b in bars]), max(0.0, *highs, *[b.value for b in bars])
    span = (hi_v - lo_v) or 1.0
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v - lo_v) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="12"><title>{_e(chart.title)}</title>',
        f'<text x="{left}" y="16" font-weight="600">{_e(chart.title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 6}" x2="{x(0):.1f}" y2="{height - 24}" stroke="#718096"/>',
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end" fill="#4a5568">{_e(chart.axis if len(chart.axis) <= 150 else chart.axis[:149] + "…")}</text>',
        f'<text x="{x(lo_v):.1f}" y="{height - 20}" text-anchor="start" fill="#4a5568">{lo_v:+.2f}</text>',
        f'<text x="{x(hi_v):.1f}" y="{height - 20}" text-anchor="end" fill="#4a5568">{hi_v:+.2f}</text>',
    ]
    for i, b in enumerate(bars):
        y = top + i * row_h
        x0, x1 = sorted((x(0), x(b.value)))
        color = "#2b6cb0" if b.value >= 0 else "#c05621"
        label = b.label if len(b.label) <= 64 else b.label[:63] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end"><title>{_e(b.label)}</title>{_e(label)}</text>'
        )
        parts.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 9}" '
            f'fill="{color}" opacity="{0.4 if b.faded else 0.9}"><title>{_e(b.label)}: {b.value:+.3f}</title></rect>'
        )
        if b.low is not None and b.high is not None:
            parts.append(
                f'<line x1="{x(b.low):.1f}" y1="{y + row_h / 2}" x2="{x(b.high):.1f}" y2="{y + row_h / 2}" '
                'stroke="#1a202c" stroke-width="1.5"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _multiple(s: Series, groups: list[str], width: int = 260, height: int = 150) -> str:
    left, right, top, bottom = 34, 12, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(groups) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (1 - v) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="multiple" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="10"><title>{_e(s.label)}</title>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">1</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (lo, hi) in enumerate(zip(s.low, s.high, strict=True)):
        parts.append(f'<line x1="{x(i):.1f}" y1="{y(lo):.1f}" x2="{x(i):.1f}" y2="{y(hi):.1f}" stroke="#9bb"/>')
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#2b6cb0" stroke-width="2"/>')
    for i, (name, v) in enumerate(zip(groups, s.values, strict=True)):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="#2b6cb0"><title>{_e(name)}: {v:.1%}</title></circle>'
        )
    shown = range(len(groups)) if len(groups) <= 4 else sorted({0, len(groups) - 1})
    for i in shown:
        anchor = "start" if i == 0 else "end" if i == len(groups) - 1 else "middle"
        name = groups[i][: 24 if len(groups) <= 2 else 12]
        parts.append(f'<text x="{x(i):.1f}" y="{height - 18}" text-anchor="{anchor}">{_e(name)}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}">{_e(s.note)}</text></svg>')
    return "".join(parts)


def render_chart(chart: Chart) -> str:
    """The chart as inline SVG (one figure per latent for small multiples)."""
    if chart.kind == "multiples":
        if not chart.series:
            return "<p>Nothing to plot.</p>"
        figures = "".join(
            f"<figure><figcaption>{_e(s.label[:90])}</figcaption>{_multiple(s, chart.groups)}</figure>"
            for s in chart.series
        )
        return f'<h2>{_e(chart.title)}</h2><div class="chart">{figures}</div>'
    return _bars(chart)


def _mark(text: str, activation: float, peak: float) -> str:
    if activation <= 0:
        return _e(text)
    alpha = 0.15 + 0.75 * min(activation / peak, 1.0) if peak > 0 else 0.5
    return f'<mark data-act="{activation:.3f}" style="background:rgba(237,137,54,{alpha:.2f})" title="{activation:.2f}">{_e(text)}</mark>'


def _doc(d: CardDoc) -> str:
    peak = max((s.activation for s in d.segments), default=0.0)
    body = "".join(_mark(s.text, s.activation, peak) for s in d.segments)
    return (
        f'<div class="doc" data-doc-id="{_e(d.doc_id)}"><span class="id">{_e(d.side)} · {_e(d.doc_id)} · max '
        f"{d.activation:.2f}</span>{'…' if d.cut_before else ''}{body}{'…' if d.cut_after else ''}</div>"
    )


def render_card(card: LatentCard, *, open_: bool = False) -> str:
    """One latent's card: labels, frequency per side, documents with firing tokens marked."""
    freqs = " · ".join(f"{_e(f.side)}: {f.count}/{f.n} ({f.freq:.1%})" for f in card.frequencies)
    others = f'<div class="freqs">also: {_e("; ".join(card.other_labels))}</div>' if card.other_labels else ""
    docs = "".join(_doc(d) for d in card.docs) or "<p>It fires in none of the shown documents.</p>"
    return (
        f'<details class="card" data-latent="{card.latent}"{" open" if open_ else ""}><summary>#{card.latent} '
        f'{_e(card.label)}</summary><div class="body"><div class="freqs">{freqs}</div>{others}{docs}</div></details>'
    )


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    emb = report.embedding
    cards = "".join(render_card(c, open_=i < 2) for i, c in enumerate(report.cards))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(report.title)}</title>
<style>{CSS}</style></head><body>
<h1>{_e(report.title)}</h1>
<p class="meta">{_e(report.summary)}</p>
<p class="meta">Dataset <b>{_e(report.dataset)}</b>, embedding <code>{_e(emb.get("key"))}</code>: SAE
<code>{_e(emb.get("sae"))}</code> on {_e(emb.get("reader"))} block {_e(emb.get("layer"))}, {_e(emb.get("pooling"))} pooling.
Produced by <code>{_e(report.command)}</code>.</p>
{render_chart(report.chart)}
<h2>Latents</h2>
<p class="meta">Each card: how often the latent fires on each side, and documents where it fires, with the tokens
where it fires highlighted (darker: stronger), recomputed by the reader.</p>
{cards or "<p>No latents to show.</p>"}
</body></html>
"""
