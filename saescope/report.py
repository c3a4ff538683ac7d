"""A self-contained HTML report of a dataset diff: a table and an SVG plot of the top differences."""

from __future__ import annotations

import html
import os
from pathlib import Path

from saescope.analyses import SetDiff, Trend, TrendRow
from saescope.errors import InputError


def check_output(path: Path, mode: str = "sets") -> None:
    """Check, before the work, that a report (of a diff in ``mode``) can be written to ``path``.

    Raises:
        InputError: the mode has no HTML report, ``path`` is a folder, or its folder is missing or read-only.
    """
    if mode not in ("sets", "trend"):
        raise InputError("--html writes a report of a two-set diff only (not --paired-by or --by); drop --html")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name, e.g. {path / 'diff.html'}")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"the folder {folder} does not exist; create it or write the report elsewhere")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{path} is not writable; write the report elsewhere")


def write_report(path: Path, text: str) -> None:
    """Write a report to ``path``.

    Raises:
        InputError: the write failed (e.g. a full disk).
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"could not write {path}: {exc.strerror or exc}; write the report elsewhere") from exc


def _bar_chart(result: SetDiff, width: int = 760) -> str:
    rows = result.rows
    if not rows:
        return "<p>No latents to plot.</p>"
    row_h, left, right = 26, 330, 20
    height = row_h * len(rows) + 50
    span = max(max(abs(r.ci_low), abs(r.ci_high), abs(r.diff)) for r in rows) or 1.0
    plot_w = width - left - right
    mid = left + plot_w / 2

    def x(v: float) -> float:
        return mid + v / span * plot_w / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<line x1="{mid}" y1="20" x2="{mid}" y2="{height - 25}" stroke="#888"/>',
        f'<text x="{left}" y="14">more in {html.escape(result.name_b)}</text>',
        f'<text x="{width - right}" y="14" text-anchor="end">more in {html.escape(result.name_a)}</text>',
    ]
    for i, r in enumerate(rows):
        y = 28 + i * row_h
        color = "#2b6cb0" if r.diff > 0 else "#c05621"
        x0, x1 = sorted((x(0), x(r.diff)))
        label = html.escape(f"#{r.latent} {r.label}"[:48])
        parts += [
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{label}</text>',
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 10}" fill="{color}" '
            f'opacity="{1.0 if r.q <= result.alpha else 0.45}"><title>diff {r.diff:+.3f} '
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}], q={r.q:.2g}</title></rect>",
            f'<line x1="{x(r.ci_low):.1f}" y1="{y + row_h / 2 - 1}" x2="{x(r.ci_high):.1f}" '
            f'y2="{y + row_h / 2 - 1}" stroke="#222"/>',
        ]
    parts.append(
        f'<text x="{mid}" y="{height - 8}" text-anchor="middle">difference in firing frequency '
        f"(A - B), bars with 95% CI; faded: q > {result.alpha}</text></svg>"
    )
    return "".join(parts)


def diff_html(result: SetDiff, title: str | None = None) -> str:
    """Render ``result`` as one HTML page with no external resources."""
    head = html.escape(title or f"{result.name_a} vs {result.name_b}")
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in (
                r.latent,
                r.label,
                f"{r.freq_a:.1%}",
                f"{r.freq_b:.1%}",
                f"{r.diff:+.3f}",
                f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
                f"{r.q:.2g}",
                ", ".join(r.examples_a),
                ", ".join(r.examples_b),
            )
        )
        + "</tr>"
        for r in result.rows
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{head}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:4px 6px;text-align:left}}th{{background:#f4f4f4}}</style></head><body>
<h1>{head}</h1>
<p>{result.n_a} documents in A ({html.escape(result.name_a)}), {result.n_b} in B ({html.escape(result.name_b)});
{result.n_tested} latents tested, {result.n_significant} significant at FDR {result.alpha}. Ranked by {html.escape(result.rank_by)}.</p>
{_bar_chart(result)}
<table><tr><th>latent</th><th>label</th><th>freq A</th><th>freq B</th><th>diff</th><th>95% CI</th><th>q</th>
<th>examples A</th><th>examples B</th></tr>{rows}</table></body></html>
"""


def _small_multiple(row: TrendRow, groups: list[str], width: int = 260, height: int = 150) -> str:
    """One latent's frequency by group: points joined by a line, with 95% interval bars; y from 0 to 1."""
    left, right, top, bottom = 34, 10, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(groups) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (1 - v) * plot_h

    points = " ".join(f"{x(i):.1f},{y(f):.1f}" for i, f in enumerate(row.freqs))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="multiple" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="10">',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">1</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (lo, hi) in enumerate(zip(row.ci_low, row.ci_high, strict=True)):
        parts.append(f'<line x1="{x(i):.1f}" y1="{y(lo):.1f}" x2="{x(i):.1f}" y2="{y(hi):.1f}" stroke="#9bb"/>')
    parts.append(f'<polyline points="{points}" fill="none" stroke="#2b6cb0" stroke-width="2"/>')
    for i, (name, f, c) in enumerate(zip(groups, row.freqs, row.counts, strict=True)):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(f):.1f}" r="3" fill="#2b6cb0"><title>{html.escape(name)}: '
            f"{c} documents, {f:.1%}</title></circle>"
        )
    for i in sorted({0, len(groups) - 1}):
        anchor = "start" if i == 0 else "end"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 18}" text-anchor="{anchor}">{html.escape(groups[i][:24])}</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 4}">z {row.z:+.2f}, q {row.q:.2g}</text></svg>')
    return "".join(parts)


def trend_html(trend: Trend, *, title: str, source: str) -> str:
    """A page of small multiples: each top latent's firing frequency across the ordered groups."""
    head = html.escape(title)
    cards = "".join(
        f"<figure><figcaption>#{r.latent} {html.escape(r.label[:80])}</figcaption>"
        f"{_small_multiple(r, trend.groups)}</figure>"
        for r in trend.rows
    )
    sizes = ", ".join(f"{html.escape(g)} ({n})" for g, n in zip(trend.groups, trend.n_per_group, strict=True))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{head}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}figure{{display:inline-block;margin:0 12px 16px 0;
vertical-align:top}}figcaption{{font-size:12px;max-width:260px;height:2.6em;overflow:hidden}}</style></head><body>
<h1>{head}</h1>
<p>Groups in order: {sizes}. {trend.n_tested} latents tested, {trend.n_significant} with q &le; {trend.alpha}
({"stratified by " + str(trend.n_strata) + " strata" if trend.stratified else "not stratified"}).
Each panel: the fraction of each group's documents where the latent fires, with 95% Wilson intervals.</p>
<p><small>{html.escape(source)}</small></p>
{cards}</body></html>"""
