"""``python -m evals.prompt_response``: prompt -> response concept correlations on real answers, scored by rules.

    python -m evals.prompt_response --home DIR                              # all 805 instructions, gpt4_0613
    python -m evals.prompt_response --home DIR --models gpt4_0613,claude-2.1 --instructions 300

The research traced a model's habit to its prompts by correlating prompt concepts with response concepts.
Here the instructions of AlpacaEval and one or more models' answers to them (``../shared/data/alpaca_eval/``,
CC BY-NC: read at run time, never copied into the package) are embedded as two datasets, and saescope's
cross-dataset correlation (``correlations --against --join-on``; :func:`saescope.analyses.cross_cooccurrence`)
ranks the (instruction latent, answer latent) pairs that fire together on matched rows.

The ground truth is rule-based (:data:`evals.detectors.LINKS`): an instruction that asks for code should get
a fenced code block, one asking for a list a list, one asking for a poem short lines, one asking for a
translation a non-English sentence. A link counts only if the rules confirm it on these rows (the answer
property is more frequent after the request, Fisher p < 0.01). A ranked pair *matches* a link when the
instruction latent's firing set has MCC >= ``--mcc-min`` with the request and the answer latent's with the
answer property. Scores: the rank of the first matching pair, recall of the verified links among the top
k pairs, what chance would give, and the same on a shuffled pairing (each answer matched with another
instruction), where every significant pair is a false link.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import scipy.stats as sps

from evals.benchmark import rng_for
from evals.detectors import LINKS
from evals.real_responses import (
    DATA_DIR,
    base_parser,
    load_answers,
    mcc_columns,
    sample_instructions,
    say,
    shorten,
)

if TYPE_CHECKING:
    from saescope.analyses.cross import CrossStats
    from saescope.workspace import Workspace

log = logging.getLogger("evals.prompt_response")
RESULTS = Path(__file__).resolve().parent / "results"
KEY = "instruction_id"
KS = (20, 50, 100)


@dataclass(frozen=True)
class PRConfig:
    """What to sample. The same config always gives the same documents."""

    n_instructions: int = 805
    models: tuple[str, ...] = ("gpt4_0613",)
    seed: int = 0
    max_chars: int = 1500
    tail_chars: int = 400

    def __post_init__(self) -> None:
        if self.n_instructions < 20:
            raise ValueError("n_instructions must be at least 20")
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"give one or more distinct models, got {self.models}")


def build_frames(cfg: PRConfig, data_dir: Path = DATA_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The instructions (one document each) and the answers (one per instruction and model), with the links'
    rule flags (``asks_<link>`` on instructions, ``gets_<link>`` on answers) and the shared ``instruction_id``.

    Raises:
        FileNotFoundError: a model's file is missing.
    """
    answers = {m: load_answers(data_dir, m) for m in cfg.models}
    chosen, _ = sample_instructions(answers, cfg.n_instructions, cfg.seed)
    prompts = pd.DataFrame(
        {
            "doc_id": [f"p{i:04d}" for i in range(len(chosen))],
            "text": [shorten(ins, cfg.max_chars, cfg.tail_chars) for ins in chosen],
            KEY: range(len(chosen)),
        }
    )
    rows = [
        {
            "doc_id": f"a{len(cfg.models) * i + k:05d}",
            "text": shorten(answers[m][ins][0], cfg.max_chars, cfg.tail_chars),
        }
        | {"model": m, KEY: i}
        for i, ins in enumerate(chosen)
        for k, m in enumerate(cfg.models)
    ]
    replies = pd.DataFrame(rows)
    for link in LINKS:
        prompts[f"asks_{link.name}"] = [int(link.instruction_rule(t)) for t in chosen]
        replies[f"gets_{link.name}"] = [int(link.answer_rule(t)) for t in replies["text"]]
    return prompts, replies


# --- scoring (pure) -----------------------------------------------------------------------------------


@dataclass
class LinkCheck:
    """How strongly the rules themselves link a request to its answer property over the matched rows."""

    name: str
    asks: str
    answers: str
    n_instructions: int
    """instructions that make the request"""
    freq_after: float
    """share of answers with the property after the request"""
    freq_otherwise: float
    p: float
    """one-sided Fisher p that the property is more frequent after the request"""
    verified: bool
    n_x_latents: int = 0
    """instruction latents whose firing set has MCC >= mcc_min with the request"""
    n_y_latents: int = 0
    """answer latents whose firing set has MCC >= mcc_min with the property"""
    first_rank: int | None = None
    """1-based rank of the first ranked pair that matches the link (None: no significant pair matches)"""
    matching: int = 0
    """significant pairs that match the link"""
    hits: dict[int, bool] = field(default_factory=dict)
    """k -> whether a pair among the top k matches"""
    chance: dict[int, float] = field(default_factory=dict)
    """k -> probability that k pairs drawn at random from the significant ones include a match"""
    first_rank_by_p: int | None = None
    """the same rank when pairs are ranked by p instead of NPMI"""


def check_link(
    name: str, asks: str, answers: str, request: npt.ArrayLike, prop: npt.ArrayLike, n_instr: int
) -> LinkCheck:
    """The rules' own link over matched rows (``request`` and ``prop`` one flag per row)."""
    r, a = np.asarray(request, dtype=bool), np.asarray(prop, dtype=bool)
    table = [[int((r & a).sum()), int((r & ~a).sum())], [int((~r & a).sum()), int((~r & ~a).sum())]]
    p = float(sps.fisher_exact(table, alternative="greater")[1]) if r.any() and (~r).any() else 1.0
    after = float(a[r].mean()) if r.any() else 0.0
    otherwise = float(a[~r].mean()) if (~r).any() else 0.0
    return LinkCheck(name, asks, answers, n_instr, after, otherwise, p, verified=p < 0.01 and after > otherwise)


def _at_least_one(total: int, good: int, k: int) -> float:
    """P(a draw of k out of total, good of them marked, includes a marked one)."""
    if total == 0 or good == 0:
        return 0.0
    k = min(k, total)
    return float(1.0 - sps.hypergeom.pmf(0, total, good, k))


def score_links(
    checks: Sequence[LinkCheck],
    st: CrossStats,
    X: sp.csr_matrix,
    Y: sp.csr_matrix,
    requests: npt.NDArray[np.bool_],
    props: npt.NDArray[np.bool_],
    *,
    alpha: float,
    mcc_min: float,
    ks: Sequence[int] = KS,
) -> list[int]:
    """Fill each check's latent counts, ranks, hits and chance from the tested pairs ``st`` over aligned rows
    (``X``, ``Y``, ``requests`` and ``props`` one row per matched pair, one column per link). Returns the
    significant pairs' order by NPMI (the library's ranking)."""
    sig = np.flatnonzero(st.q <= alpha)
    keys = (st.ib[sig], st.ia[sig], -st.count_xy[sig], -st.npmi[sig])
    by_npmi = sig[np.lexsort(keys)]
    by_p = sig[np.lexsort((st.ib[sig], st.ia[sig], -st.npmi[sig], st.p[sig]))]
    for j, c in enumerate(checks):
        gx = mcc_columns(X, requests[:, j]) >= mcc_min
        gy = mcc_columns(Y, props[:, j]) >= mcc_min
        c.n_x_latents, c.n_y_latents = int(gx.sum()), int(gy.sum())
        match = gx[st.ia] & gy[st.ib]
        c.matching = int(match[sig].sum())
        ranks = np.flatnonzero(match[by_npmi])
        c.first_rank = int(ranks[0]) + 1 if len(ranks) else None
        ranks_p = np.flatnonzero(match[by_p])
        c.first_rank_by_p = int(ranks_p[0]) + 1 if len(ranks_p) else None
        c.hits = {k: c.first_rank is not None and c.first_rank <= k for k in ks}
        c.chance = {k: _at_least_one(len(sig), c.matching, k) for k in ks}
    return [int(i) for i in by_npmi]


# --- the run ------------------------------------------------------------------------------------------


def _ensure(ws: Workspace, name: str, frame: pd.DataFrame, args: argparse.Namespace, *, chat: bool) -> float:
    """Ingest (once) and embed (or resume) ``frame`` as ``name``; the seconds spent embedding now."""
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.embedding import embed_config, embed_dataset, sae_choice
    from saescope.ops.requests import EmbedRequest, IngestRequest

    if name not in ws.store.names():  # the rule flags stay out of the store: rules may change, embeddings not
        docs = frame.drop(columns=[c for c in frame.columns if c.startswith(("asks_", "gets_"))])
        ingest_documents(ws, IngestRequest(name=name, documents=docs.to_dict("records"), id_column="doc_id"))
    req = EmbedRequest(dataset=name, sae=args.sae, reader=args.reader, chat_template=chat)
    choice = sae_choice(req)
    ws.embedder(choice, embed_config(req), req.reader)
    start = time.perf_counter()
    last = [start]

    def progress(p: Any) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            say(f"{name}: {p.docs_done}/{p.docs_total} documents, {p.tokens_done:,} tokens")

    embed_dataset(ws, req, choice, progress=progress)
    return time.perf_counter() - start


def _pair_rows(
    pairs: Sequence[int], st: CrossStats, labels: tuple[Any, Any], checks: Sequence[LinkCheck], gx: Any, gy: Any
) -> list[dict[str, Any]]:
    out = []
    for rank, i in enumerate(pairs, 1):
        a, b = int(st.ia[i]), int(st.ib[i])
        links = [c.name for j, c in enumerate(checks) if gx[j][a] and gy[j][b]]
        out.append(
            {
                "rank": rank,
                "latent_x": a,
                "label_x": labels[0].text(a),
                "latent_y": b,
                "label_y": labels[1].text(b),
                "count_xy": int(st.count_xy[i]),
                "count_x": int(st.count_x[a]),
                "count_y": int(st.count_y[b]),
                "npmi": float(st.npmi[i]),
                "q": float(st.q[i]),
                "links": links,
            }
        )
    return out


def build_parser() -> argparse.ArgumentParser:
    p = base_parser("python -m evals.prompt_response", __doc__)
    p.add_argument("--instructions", type=int, default=PRConfig.n_instructions, help="instructions sampled")
    p.add_argument("--models", default=",".join(PRConfig.models), help="comma-separated answering models")
    p.add_argument("--min-cooc", type=int, default=5, help="pairs seen together in fewer rows are not tested")
    p.add_argument("--alpha", type=float, default=0.05, help="BH q threshold of a significant pair")
    p.add_argument("--mcc-min", type=float, default=0.3, help="MCC a latent needs with a rule to match it")
    p.add_argument("--out", help="report folder (default: evals/results/<date>-prompt-response)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    from evals.prompt_response_report import render
    from evals.records import package_versions
    from saescope.analyses.cross import cross_pair_stats
    from saescope.ops.analyses import aligned_rows
    from saescope.ops.docsets import labels_for
    from saescope.ops.requests import CorrelationsRequest
    from saescope.paths import cache_home
    from saescope.workspace import Workspace

    cfg = PRConfig(
        n_instructions=args.instructions,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        seed=args.seed,
    )
    prompts, replies = build_frames(cfg, Path(args.data))
    say(f"{len(prompts)} instructions, {len(replies)} answers of {', '.join(cfg.models)}")
    ws = Workspace(Path(args.home) if args.home else cache_home() / "evals", device=args.device)
    texts = pd.util.hash_pandas_object(pd.concat([prompts["text"], replies["text"]]), index=False)
    tag = hashlib.sha256(texts.to_numpy().tobytes()).hexdigest()[:12]
    names = (f"pr-prompts-{tag}", f"pr-answers-{tag}")
    secs = _ensure(ws, names[0], prompts, args, chat=False) + _ensure(ws, names[1], replies, args, chat=True)
    say(f"embedded ({secs:.0f}s this run)")
    req = CorrelationsRequest.build(dataset=names[0], against=names[1], join_on=KEY, min_cooc=args.min_cooc)
    x, y, ix, iy = aligned_rows(ws, req)
    Y = y.X[iy]
    asks = prompts.set_index("doc_id").loc[x.doc_ids, [f"asks_{ln.name}" for ln in LINKS]].to_numpy().astype(bool)
    props = replies.set_index("doc_id").loc[y.doc_ids, [f"gets_{ln.name}" for ln in LINKS]].to_numpy().astype(bool)
    props = props[iy]
    labels = (labels_for(ws, x.embedding), labels_for(ws, y.embedding))
    runs: dict[str, Any] = {}
    perm = rng_for(cfg.seed, "prompt-response", "shuffle").permutation(x.X.shape[0])
    shuffled_ix = perm[ix]  # each instruction's answers go with another instruction, consistently across models
    for kind, rows_x, skip in (("real", ix, False), ("real_no_echoes", ix, True), ("shuffled", shuffled_ix, False)):
        t = time.perf_counter()
        Xk, req_k = x.X[rows_x], asks[rows_x]
        st = cross_pair_stats(Xk, Y, min_cooc=args.min_cooc, skip_same=skip)
        checks = [
            check_link(ln.name, ln.asks, ln.answers, req_k[:, j], props[:, j], int(prompts[f"asks_{ln.name}"].sum()))
            for j, ln in enumerate(LINKS)
        ]
        order = score_links(checks, st, Xk, Y, req_k, props, alpha=args.alpha, mcc_min=args.mcc_min)
        gx = [mcc_columns(Xk, req_k[:, j]) >= args.mcc_min for j in range(len(LINKS))]
        gy = [mcc_columns(Y, props[:, j]) >= args.mcc_min for j in range(len(LINKS))]
        runs[kind] = {
            "tested": len(st.q),
            "significant": int((st.q <= args.alpha).sum()),
            "seconds": time.perf_counter() - t,
            "links": [asdict(c) for c in checks],
            "top_pairs": _pair_rows(order[:25], st, labels, checks, gx, gy),
        }
        say(f"{kind}: {runs[kind]['significant']} of {runs[kind]['tested']} tested pairs significant")
    result = {
        "command": "python -m evals.prompt_response " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started.isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - t0,
        "embed_seconds": secs,
        "config": asdict(cfg),
        "datasets": names,
        "n_rows": int(Y.shape[0]),
        "settings": {"min_cooc": args.min_cooc, "alpha": args.alpha, "mcc_min": args.mcc_min, "ks": list(KS)},
        "versions": package_versions(),
        "runs": runs,
    }
    out = Path(args.out) if args.out else RESULTS / f"{date.today().isoformat()}-prompt-response"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    (out / "report.md").write_text(render(result), encoding="utf-8")
    say(f"wrote {out / 'report.md'} in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
