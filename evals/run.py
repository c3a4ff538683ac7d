"""``python -m evals.run``: build the benchmark, embed it once, run every method on every case, write the report.

    python -m evals.run                          # the full offline benchmark on the embedded default
    python -m evals.run --quick                  # a few cases, few documents (minutes)
    python -m evals.run --cases 'rv_code_*,null' --fractions 0.1,0.25
    python -m evals.run --llm-base-url http://localhost:8000/v1 --llm-model NAME   # adds LLM steps and judge

Without an LLM the SAE pipeline is scored by the LLM-free latent match, and both methods' LLM costs
are counted on their real prompts (dry run). Results go to ``evals/results/<date>/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from evals.benchmark import DEFAULT_FRACTIONS, Benchmark, BenchmarkConfig, Case, build, subset
from evals.methods import (
    DryRunProvider,
    LatentScore,
    TokenCounter,
    judge,
    run_baseline,
    sae_diff,
    sae_summarise,
    score_latents,
)
from evals.records import CaseResult, Environment, RunResults, Settings, run_environment
from evals.report import write_report
from evals.retrieval import ClusterScore, RetrievalScore, cluster_score, retrieval_score
from saescope import analyses as an

log = logging.getLogger("evals")
RESULTS = Path(__file__).resolve().parent / "results"
QUICK = BenchmarkConfig(
    n_per_side=40,
    fractions=(0.25, 0.5),
    properties=("question", "code", "spanish", "shouting"),
    paired_properties=("apology",),
    paired_fractions=(0.5,),
)


def recovered(case: Case, score: LatentScore, settings: Settings) -> bool:
    """Does this latent's firing set match the documents with the property? Real cases: MCC >= mcc_min
    (either side); planted: F1 >= f1_min for a latent more frequent in B, where the property was planted."""
    if case.two_sided:
        return score.mcc >= settings.mcc_min
    return score.diff < 0 and score.f1 >= settings.f1_min


def _say(msg: str) -> None:
    sys.stderr.write(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _embed(ws: Any, name: str, args: argparse.Namespace) -> tuple[Any, float, float | None]:
    """Embed (or resume) the benchmark dataset; the seconds spent now and the rate over all runs."""
    from saescope.workspace import SAEChoice

    times_path = ws.store.root / "eval-embed-times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    done = {"tokens": 0, "docs": 0}
    last = [0.0]

    def progress(p: Any) -> None:
        done["tokens"], done["docs"] = p.tokens_done, p.docs_done
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            _say(f"embedding {p.docs_done}/{p.docs_total} documents, {p.tokens_done:,} tokens, {p.elapsed_s:.0f}s")

    choice = SAEChoice.parse(args.sae)
    ws.embedder(choice, None, args.reader)  # load the models first: the rate is for embedding alone
    start = time.perf_counter()
    manifest = ws.embed(name, choice, reader=args.reader, progress=progress)
    seconds = time.perf_counter() - start
    entry = times.get(manifest.key, {"seconds": 0.0, "tokens": 0})
    if done["tokens"] > 0:
        entry = {"seconds": entry["seconds"] + seconds, "tokens": entry["tokens"] + done["tokens"]}
        times[manifest.key] = entry
        times_path.write_text(json.dumps(times, indent=1))
    rate = entry["seconds"] / entry["tokens"] * 1000 if entry["tokens"] else None
    return manifest, seconds if done["tokens"] else 0.0, rate


def _provider(args: argparse.Namespace, counter: TokenCounter) -> tuple[Any, str]:
    if not args.llm_model:
        return DryRunProvider(counter, args.price_model), "none (dry run)"
    from saescope.llm.providers import LLMSettings, OpenAICompatibleProvider

    settings = LLMSettings.from_env(
        provider="openai", base_url=args.llm_base_url, model=args.llm_model, max_concurrency=args.llm_concurrency
    )
    return OpenAICompatibleProvider(settings), settings.describe()


def run_case(
    ws: Any,
    name: str,
    case: Case,
    *,
    matrix: Any,
    doc_rows: dict[str, int],
    n_tokens: np.ndarray,
    rate: float | None,
    texts: dict[str, str],
    provider: Any,
    settings: Settings,
    seed: int,
    sae_key: str,
    use_llm: bool,
) -> CaseResult:
    ids = list(dict.fromkeys([*case.docs_a, *case.docs_b]))
    tokens = int(n_tokens[[doc_rows[d] for d in ids]].sum())
    start = time.perf_counter()
    diff = sae_diff(ws, name, case, top_k=settings.top_k, alpha=settings.alpha, sae=sae_key)
    diff_seconds = time.perf_counter() - start
    top = score_latents(matrix, doc_rows, case, diff.rows)
    first = next((i for i, s in enumerate(top) if recovered(case, s, settings)), None)
    first_sig = next((i for i, s in enumerate(top) if recovered(case, s, settings) and s.q <= settings.alpha), None)
    n_a, n_b = (diff.n_pairs, diff.n_pairs) if isinstance(diff, an.PairedDiff) else (diff.n_a, diff.n_b)
    result = CaseResult(
        case_id=case.case_id,
        column=case.column,
        group=case.group,
        corpus=case.corpus,
        prop=case.prop,
        kind=case.kind,
        fraction=case.fraction,
        paired=case.paired,
        n_a=n_a,
        n_b=n_b,
        n_positive=len(case.positives),
        tokens=tokens,
        embed_seconds=tokens * rate / 1000 if rate else 0.0,
        diff_seconds=diff_seconds,
        n_tested=diff.n_tested,
        n_significant=diff.n_significant,
        top=top,
        first_recovered=first,
        first_significant=first_sig,
    )

    async def llm_steps() -> None:
        t0 = time.perf_counter()
        hyps, replies = await sae_summarise(
            ws,
            name,
            case,
            diff,
            provider,
            n_latents=settings.n_latents,
            n_hypotheses=settings.n_hypotheses,
            alpha=settings.alpha,
            sae=sae_key,
        )
        result.sae_hypotheses = hyps
        result.sae_cost.add(replies, time.perf_counter() - t0)
        result.baseline_hypotheses, result.baseline_cost = await run_baseline(
            case,
            texts,
            provider,
            docs_per_side=settings.baseline_docs,
            batch_docs=settings.batch_docs,
            pairs_per_call=settings.pairs_per_call,
            n_hypotheses=settings.n_hypotheses,
            seed=seed,
        )
        if use_llm and case.group != "null":
            t0 = time.perf_counter()
            result.sae_judged, r1 = await judge(provider, case, result.sae_hypotheses)
            result.baseline_judged, r2 = await judge(provider, case, result.baseline_hypotheses)
            result.judge_cost.add([*r1, *r2], time.perf_counter() - t0)

    anyio.run(llm_steps)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evals.run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cases",
        help="comma-separated case ids or groups, shell patterns allowed "
        "(rv_code_*, planted, paired, real, null); default: all",
    )
    p.add_argument("--fractions", help=f"planted fractions of B (default {','.join(map(str, DEFAULT_FRACTIONS))})")
    p.add_argument("--properties", help="comma-separated planted properties (default: all)")
    p.add_argument("--n", type=int, help="documents per side (default 200; 40 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a small benchmark: 4 properties, 2 fractions, 40 docs/side")
    p.add_argument("--sae", default="default", help="'default', an SAELens folder, or RELEASE:SAE_ID")
    p.add_argument("--reader", help="reader model for that SAE (default: the one the SAE names)")
    p.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    p.add_argument("--home", help="data root for the benchmark dataset (default: $SAESCOPE_HOME/../evals cache)")
    p.add_argument("--out", help="report folder (default: evals/results/<date>)")
    p.add_argument(
        "--llm-base-url", help="OpenAI-compatible endpoint; the key comes from $SAESCOPE_LLM_API_KEY or $OPENAI_API_KEY"
    )
    p.add_argument("--llm-model", help="model name at that endpoint; without it no LLM is called (dry run)")
    p.add_argument("--llm-concurrency", type=int, default=4)
    p.add_argument(
        "--price-model",
        default="gpt-4o-mini",
        help="model whose list price prices the tokens (default gpt-4o-mini; --llm-model when given)",
    )
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--f1-min", type=float, default=0.5)
    p.add_argument("--mcc-min", type=float, default=0.3)
    p.add_argument("--n-latents", type=int, default=10)
    p.add_argument("--n-hypotheses", type=int, default=5)
    p.add_argument("--baseline-docs", type=int, help="documents per side the baseline reads (default: all)")
    p.add_argument("--batch-docs", type=int, default=10)
    p.add_argument("--pairs-per-call", type=int, default=1)
    p.add_argument("--skip", default="", help="comma-separated: retrieval, clustering")
    return p


def config_from_args(args: argparse.Namespace) -> BenchmarkConfig:
    cfg = QUICK if args.quick else BenchmarkConfig()
    changes: dict[str, Any] = {"seed": args.seed}
    if args.n:
        changes["n_per_side"] = args.n
    if args.fractions:
        changes["fractions"] = tuple(float(f) for f in args.fractions.split(","))
    if args.properties:
        changes["properties"] = tuple(p.strip() for p in args.properties.split(",") if p.strip())
    return replace(cfg, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    from saescope.llm.ledger import PriceTable
    from saescope.paths import cache_home
    from saescope.store.ingest import IngestOptions, documents_from_list
    from saescope.workspace import Workspace

    cfg = config_from_args(args)
    bench: Benchmark = subset(build(cfg), [c.strip() for c in (args.cases or "").split(",") if c.strip()])
    _say(f"benchmark: {len(bench.cases)} cases, {len(bench.documents)} documents (seed {cfg.seed})")
    home = Path(args.home) if args.home else cache_home() / "evals"
    ws = Workspace(home, device=args.device)
    name = f"evals-{bench.fingerprint()}"
    if name not in ws.store.names():
        frame, _ = documents_from_list(bench.documents.to_dict("records"), IngestOptions(id_column="doc_id"))
        ws.store.create(name, frame, source=f"evals.benchmark {json.dumps(asdict(cfg))}")
    manifest, embed_seconds, rate = _embed(ws, name, args)
    _say(f"embedded {name} ({embed_seconds:.0f}s this run)")
    emb, matrix = ws.matrix(name, manifest.key)
    meta = ws.dataset(name).metadata()
    doc_rows = {str(d): i for i, d in enumerate(meta["doc_id"].to_numpy())}
    n_tokens = emb.n_tokens()
    texts = bench.texts()
    counter = TokenCounter.default()
    provider, llm_desc = _provider(args, counter)
    prices = PriceTable.load()
    price_model = args.llm_model or args.price_model
    price = prices.price(price_model)
    n = cfg.n_per_side
    settings = Settings(
        top_k=args.top_k,
        alpha=args.alpha,
        f1_min=args.f1_min,
        mcc_min=args.mcc_min,
        n_latents=args.n_latents,
        n_hypotheses=args.n_hypotheses,
        baseline_docs=args.baseline_docs or n,
        batch_docs=args.batch_docs,
        pairs_per_call=args.pairs_per_call,
        price_model=price_model,
        llm=llm_desc,
        tokenizer=counter.name,
    )
    results = []
    for i, case in enumerate(bench.cases, 1):
        res = run_case(
            ws,
            name,
            case,
            matrix=matrix,
            doc_rows=doc_rows,
            n_tokens=n_tokens,
            rate=rate,
            texts=texts,
            provider=provider,
            settings=settings,
            seed=cfg.seed,
            sae_key=manifest.key,
            use_llm=bool(args.llm_model),
        )
        results.append(res)
        _say(
            f"case {i}/{len(bench.cases)} {case.case_id}: {res.n_significant} significant, first recovering "
            f"latent at rank {res.first_recovered}"
        )
    skip = {s.strip() for s in args.skip.split(",")}
    retrieval: list[RetrievalScore] = []
    clustering: list[ClusterScore] = []
    if "retrieval" not in skip:
        for case in _one_per_property(bench.cases, 0.25):
            retrieval.append(retrieval_score(ws, name, case, sae=manifest.key, seed=cfg.seed))
        _say(f"retrieval: {len(retrieval)} properties")
    if "clustering" not in skip:
        for case in bench.cases:
            if case.group == "real":
                clustering.append(
                    cluster_score(
                        ws, name, case, str(case.axis or case.query), side_b_only=False, sae=manifest.key, seed=cfg.seed
                    )
                )
        for case in _one_per_property(bench.cases, 0.5):
            clustering.append(
                cluster_score(ws, name, case, str(case.query), side_b_only=True, sae=manifest.key, seed=cfg.seed)
            )
        _say(f"clustering: {len(clustering)} axes")
    sae = ws.sae_of(emb)
    env = Environment(
        **run_environment("evals.run", argv, started, t_start, sae, manifest),
        dataset=name,
        home=str(home),
        n_docs=len(bench.documents),
        embed_seconds=embed_seconds,
        embed_seconds_per_1k_tokens=rate,
        tokens_total=int(n_tokens.sum()),
        price_table_date=prices.date,
        price=price.model_dump() if price else None,
    )
    run = RunResults(
        benchmark=asdict(cfg),
        settings=settings,
        environment=env,
        cases=results,
        retrieval=retrieval,
        clustering=clustering,
    )
    out = Path(args.out) if args.out else RESULTS / (date.today().isoformat() + ("-quick" if args.quick else ""))
    write_report(run, out)
    _say(f"wrote {out / 'report.md'} in {time.perf_counter() - t_start:.0f}s")
    return 0


def _one_per_property(cases: Sequence[Case], fraction: float) -> list[Case]:
    """For each planted property, its case with the fraction nearest ``fraction``."""
    best: dict[str, Case] = {}
    for c in cases:
        if c.group != "planted" or c.fraction is None:
            continue
        cur = best.get(str(c.prop))
        if cur is None or abs(c.fraction - fraction) < abs(float(cur.fraction or 0) - fraction):
            best[str(c.prop)] = c
    return list(best.values())


if __name__ == "__main__":
    sys.exit(main())
