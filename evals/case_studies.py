"""``python -m evals.case_studies``: what saescope sees in real model outputs, as a short report anyone can rerun.

    python -m evals.case_studies --home DIR                     # 160 instructions per model (as evals.real_responses)
    python -m evals.case_studies --home DIR --instructions 40   # smaller and faster

Two studies on the AlpacaEval answers (``../shared/data/alpaca_eval/``, CC BY-NC: read at run time, never
copied into the package), on the same documents as :mod:`evals.real_responses` (same sample, same
shortening; a dataset embedded by one is reused by the other):

1. **What changed across OpenAI models**: the trend analysis over ten releases in order, paired by instruction.
2. **How Claude, Llama and GPT differ**: one family's answers against the other two (one-vs-many), each in turn.

For each, the top latents with their labels, their firing frequency per model, an example with the firing
tokens marked, the rule-based detector (:mod:`evals.detectors`) each latent matches best (MCC over the
study's answers) and whether that detector is a rule-verified difference (it trends, or differs by >= 0.1).
A latent is flagged as a **length** artefact when its firing correlates with the answer's length (Spearman
|rho| >= 0.3) and as **formatting** when the detector it matches is a markdown or layout rule. Each study also
writes an HTML page (charts: small multiples / differences with intervals; cards with the marked text),
through the library's own report code. The report goes to ``evals/results/<date>-case-studies/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.stats as sps

from evals.detectors import NAMES
from evals.real_responses import (
    FLAG_PREFIX,
    PAIR_KEY,
    TREND_ORDER,
    RealConfig,
    base_parser,
    build_corpus,
    detector_diffs,
    detector_trends,
    mcc_matrix,
    say,
)

if TYPE_CHECKING:
    from saescope.ops.reports import Report
    from saescope.workspace import Workspace

log = logging.getLogger("evals.case_studies")
RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES: tuple[str, ...] = ("gpt4_0613", "claude-2.1", "Meta-Llama-3-70B-Instruct")
"""One model per family, of about the same time (2023-24)."""
FORMAT_DETECTORS = frozenset({"header", "bold", "bullets", "numbered", "code_block", "conclusion"})
LENGTH_DETECTORS = frozenset({"short", "long"})
LENGTH_RHO = 0.3
MCC_MIN = 0.3
POOL = 50
"""latents read per study (the analysis' top page), from which the shown ones are picked"""
COMMAND = "python -m evals.case_studies"


@dataclass
class LatentFinding:
    """One top latent of a study, and what it matches."""

    latent: int
    label: str
    stat: str
    """the analysis' own evidence (z of the trend, or the one-vs-many score), as text"""
    freqs: dict[str, float]
    """model -> share of its answers where the latent fires"""
    detector: str | None
    """the detector it matches best (MCC >= MCC_MIN over the study's answers), if any"""
    mcc: float
    verified: bool
    """the matched detector is a rule-verified difference of this study"""
    length_rho: float
    """Spearman correlation of its firing with the answer's length (characters as embedded)"""
    example: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Study:
    title: str
    question: str
    models: list[str]
    html: str
    verified: list[str]
    """detectors that are rule-verified differences (trend: trending; families: >= 0.1 more frequent)"""
    findings: list[LatentFinding]
    summary: str
    beyond: list[LatentFinding] = field(default_factory=list)
    """the next top latents that are not length artefacts"""


def fires_by_model(
    X: sp.csr_matrix, latents: Sequence[int], models: npt.NDArray[Any], order: Sequence[str]
) -> list[dict[str, float]]:
    """For each latent, the share of each model's rows of ``X`` where it fires."""
    B = (X[:, list(latents)] > 0).toarray()
    return [
        {m: float(B[models == m, j].mean()) if (models == m).any() else 0.0 for m in order} for j in range(B.shape[1])
    ]


def findings_for(
    X: sp.csr_matrix,
    flags: npt.NDArray[np.bool_],
    chars: npt.NDArray[np.int64],
    models: npt.NDArray[Any],
    order: Sequence[str],
    rows: Sequence[tuple[int, str, str]],
    verified: Sequence[str],
) -> list[LatentFinding]:
    """What each top latent (``(latent, label, evidence)``) matches, over the study's rows of ``X``."""
    latents = [r[0] for r in rows]
    if not latents:
        return []
    mcc = mcc_matrix(X[:, latents], flags)
    freqs = fires_by_model(X, latents, models, order)
    out = []
    for j, (latent, label, stat) in enumerate(rows):
        best = int(np.argmax(mcc[j]))
        fires = (X[:, latent] > 0).toarray().ravel()
        rho = float(sps.spearmanr(fires, chars).statistic) if 0 < fires.sum() < len(fires) else 0.0
        det = NAMES[best] if mcc[j, best] >= MCC_MIN else None
        f = LatentFinding(latent, label, stat, freqs[j], det, float(mcc[j, best]), det in verified, rho)
        if abs(rho) >= LENGTH_RHO or det in LENGTH_DETECTORS:
            f.notes.append(f"length artefact (rho {rho:+.2f} with length)")
        if det in FORMAT_DETECTORS:
            f.notes.append(f"formatting ({det})")
        out.append(f)
    return out


def example_text(report: Report, latent: int, width: int = 90) -> str:
    """The first card document of ``latent`` around its first firing token, the firing tokens in «»."""
    card = next((c for c in report.cards if c.latent == latent), None)
    if card is None or not card.docs:
        return ""
    segs = card.docs[0].segments
    first = next((i for i, s in enumerate(segs) if s.activation > 0), None)
    if first is None:
        return ""
    before = "".join(s.text for s in segs[:first])[-width:]
    after = ""
    for s in segs[first + 1 :]:
        after += _mark(s.text) if s.activation > 0 else s.text
        if len(after) > width:
            break
    return " ".join(f"…{before}{_mark(segs[first].text)}{after[:width]}…".split())


def _mark(token: str) -> str:
    """A firing token in «», line breaks shown as ↵ (a token of only spaces as ␣)."""
    shown = token.replace("\n", "↵")
    return f"«{shown if shown.strip() else '␣'}»"


# --- the studies --------------------------------------------------------------------------------------


@dataclass
class Data:
    ws: Workspace
    dataset: str
    X: sp.csr_matrix
    models: npt.NDArray[Any]
    flags: npt.NDArray[np.bool_]
    chars: npt.NDArray[np.int64]
    instruction: npt.NDArray[np.int64]
    out: Path
    top: int


def _html(data: Data, report: Report, name: str) -> str:
    from saescope.report import render_html

    (data.out / name).write_text(render_html(report), encoding="utf-8")
    return name


def pick(found: Sequence[LatentFinding], top: int) -> tuple[list[LatentFinding], list[LatentFinding]]:
    """The first ``top`` findings, and the first ``top`` of the rest that are not length artefacts."""
    first = list(found[:top])
    beyond = [f for f in found[top:] if not any(n.startswith("length") for n in f.notes)][:top]
    return first, beyond


def trend_study(data: Data) -> Study:
    from saescope import ops
    from saescope.ops.reports import trend_report
    from saescope.ops.requests import TrendRequest

    order = list(TREND_ORDER)
    req = TrendRequest.build(dataset=data.dataset, column="model", order=order, pair_key=PAIR_KEY, top_k=POOL)
    res = ops.trend(data.ws, req)
    rows = np.flatnonzero(np.isin(data.models, order))
    group = np.array([order.index(m) for m in data.models[rows]])
    trends = detector_trends(data.flags[rows], group, order, data.instruction[rows], alpha=0.05)
    verified = [t.detector for t in trends if t.trending]
    top = [(r.latent, r.label, f"z {r.z:+.1f}, q {r.q:.1e}") for r in res.trend.rows]
    found = findings_for(data.X[rows], data.flags[rows], data.chars[rows], data.models[rows], order, top, verified)
    first, beyond = pick(found, data.top)
    shown = {f.latent for f in first + beyond}
    kept = res.model_copy(
        update={"trend": res.trend.model_copy(update={"rows": [r for r in res.trend.rows if r.latent in shown]})}
    )
    report = trend_report(data.ws, req, kept, command=COMMAND, n_cards=len(shown), n_docs=1)
    for f in first + beyond:
        f.example = example_text(report, f.latent)
    return Study(
        "What changed across OpenAI models",
        f"Which concepts rise or fall across {len(order)} OpenAI releases, answering the same instructions?",
        order,
        _html(data, report, "openai-trend.html"),
        verified,
        first,
        res.trend.to_text().splitlines()[0],
        beyond,
    )


def family_study(data: Data, target: str) -> Study:
    from saescope import ops
    from saescope.ops.reports import diff_report
    from saescope.ops.requests import DiffRequest

    fams = list(FAMILIES)
    where = "model in [" + ", ".join(f"'{m}'" for m in fams) + "]"
    req = DiffRequest.build(
        dataset_a=data.dataset, mode="one_vs_many", column="model", target=target, where_a=where, top_k=POOL
    )
    res = ops.diff(data.ws, req)
    ovm = res.one_vs_many
    assert ovm is not None
    rows = np.flatnonzero(np.isin(data.models, fams))
    m = data.models[rows]
    others = [data.flags[rows][m == o] for o in fams if o != target]
    diffs = detector_diffs(
        data.flags[rows][m == target], np.vstack(others), mode="one_vs_many", min_diff=0.1, others=others
    )
    verified = [d.detector for d in diffs if d.known]
    top = [(r.latent, r.label, f"score {r.score:+.2f}, q {r.q:.1e}") for r in ovm.rows]
    found = findings_for(data.X[rows], data.flags[rows], data.chars[rows], m, fams, top, verified)
    first, beyond = pick(found, data.top)
    shown = {f.latent for f in first + beyond}
    kept = res.model_copy(
        update={"one_vs_many": ovm.model_copy(update={"rows": [r for r in ovm.rows if r.latent in shown]})}
    )
    report = diff_report(data.ws, req, kept, command=COMMAND, n_cards=len(shown), n_docs=1)
    for f in first + beyond:
        f.example = example_text(report, f.latent)
    return Study(
        f"What sets {target} apart from the other two families",
        f"Which concepts does {target} use more than each of {', '.join(o for o in fams if o != target)}?",
        fams,
        _html(data, report, f"family-{target}.html"),
        verified,
        first,
        ovm.to_text().splitlines()[0],
        beyond,
    )


# --- the report ---------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _latent_table(s: Study, findings: Sequence[LatentFinding]) -> list[str]:
    head = "| latent | label | evidence | " + " | ".join(_short_model(m) for m in s.models) + " | matches | notes |"
    lines = [head, "|" + "---|" * (len(s.models) + 5)]
    for f in findings:
        match = "-" if f.detector is None else f"{f.detector} (MCC {f.mcc:.2f}{', verified' if f.verified else ''})"
        freq = " | ".join(f"{f.freqs[m]:.2f}" for m in s.models)
        notes = "; ".join(f.notes) or "-"
        lines.append(f"| #{f.latent} | {_cell(f.label[:50])} | {f.stat} | {freq} | {match} | {notes} |")
    lines += ["", "Examples (firing tokens in «», ↵ a line break):", ""]
    lines += [f"- #{f.latent}: {_cell(f.example)}" for f in findings if f.example]
    return lines


def render(studies: Sequence[Study], header: Sequence[str]) -> str:
    lines = list(header)
    for s in studies:
        lines += ["", f"## {s.title}", "", s.question, "", f"Plot and cards: [{s.html}]({s.html}). {s.summary}.", ""]
        lines += ["Rule-verified differences: " + (", ".join(s.verified) if s.verified else "none") + ".", ""]
        lines += _latent_table(s, s.findings)
        if s.beyond:
            lines += [
                "",
                f"Beyond length: the next {len(s.beyond)} latents of the top {POOL} that do not track length.",
                "",
            ]
            lines += _latent_table(s, s.beyond)
        lines += ["", *_reading(s)]
    return "\n".join(lines) + "\n"


def _short_model(m: str) -> str:
    return m.replace("gpt-3.5-turbo-", "3.5-").replace("-2024-", "-").replace("Meta-Llama-3-70B-Instruct", "llama3-70b")


def _reading(s: Study) -> list[str]:
    n = len(s.findings)
    matched = [f for f in s.findings if f.detector]
    verified = [f for f in s.findings if f.verified]
    length = [f for f in s.findings if any(n.startswith("length") for n in f.notes)]
    fmt = [f for f in s.findings if any(n.startswith("formatting") for n in f.notes)]
    covered = sorted({f.detector for f in verified if f.detector})
    missed = [d for d in s.verified if d not in covered]
    out = [
        f"Reading it: of the top {n} latents, {len(matched)} match a detector, {len(verified)} a rule-verified "
        f"difference ({', '.join(covered) or 'none'}); {len(length)} track length and {len(fmt)} formatting."
    ]
    if missed:
        out.append(f"Rule-verified differences no top latent matches: {', '.join(missed)}.")
    if n and len(matched) < n:
        out.append(
            f"{n - len(matched)} top latents match no detector: they may be real differences the rules do not "
            "cover, or artefacts; read their examples before trusting them."
        )
    return out


# --- running ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = base_parser("python -m evals.case_studies", __doc__)
    p.add_argument("--instructions", type=int, default=RealConfig.n_instructions, help="instructions per model")
    p.add_argument("--top", type=int, default=8, help="latents per study")
    p.add_argument("--out", help="report folder (default: evals/results/<date>-case-studies)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    from evals.real_responses import _embed
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.requests import IngestRequest
    from saescope.paths import cache_home
    from saescope.workspace import Workspace

    cfg = RealConfig(n_instructions=args.instructions, seed=args.seed)
    corpus = build_corpus(cfg, Path(args.data))
    home = Path(args.home) if args.home else cache_home() / "evals"
    ws = Workspace(home, device=args.device)
    name = f"real-{corpus.fingerprint()}"
    if name not in ws.store.names():
        ingest_documents(
            ws, IngestRequest(name=name, documents=corpus.documents.to_dict("records"), id_column="doc_id")
        )
    manifest, seconds, _, _ = _embed(ws, name, args)
    say(f"{name}: {len(corpus.documents)} answers ({seconds:.0f}s embedding this run)")
    emb, X = ws.matrix(name, manifest.key)
    meta = ws.dataset(name).metadata()
    texts = ws.dataset(name).documents(["text"])["text"]
    out = Path(args.out) if args.out else RESULTS / f"{date.today().isoformat()}-case-studies"
    out.mkdir(parents=True, exist_ok=True)
    data = Data(
        ws,
        name,
        X,
        meta["model"].to_numpy(),
        meta[[FLAG_PREFIX + n for n in NAMES]].to_numpy().astype(bool),
        texts.str.len().to_numpy().astype(np.int64),
        meta[PAIR_KEY].to_numpy().astype(np.int64),
        out,
        args.top,
    )
    studies = [trend_study(data)]
    say("trend study done")
    studies += [family_study(data, t) for t in FAMILIES]
    sae = ws.sae_of(emb)
    header = [
        f"# What saescope sees in real model outputs ({date.today().isoformat()})",
        "",
        f"`python -m evals.case_studies {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"{cfg.n_instructions} AlpacaEval instructions (seed {cfg.seed}) answered by each model, answers shortened "
        f"to {cfg.max_chars} characters (start and end kept) and read as assistant messages; {len(corpus.documents)} "
        f"answers in dataset `{name}`, SAE `{sae.id}` ({sae.d_sae} latents). Latent labels are the SAE's own "
        "(token-level); detectors are the rules of `evals/detectors.py`. No LLM was used.",
    ]
    text = render(studies, header)
    (out / "report.md").write_text(text, encoding="utf-8")
    say(f"wrote {out / 'report.md'} in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
