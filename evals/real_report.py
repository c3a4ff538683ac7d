"""The report of one real-response run (:mod:`evals.real_responses`): ``report.md`` and ``results.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.detectors import DETECTORS
from evals.metrics import mean
from evals.real_records import RealCaseResult, RealRun, Recovery
from evals.report import _table
from evals.retrieval import retrieval_headline
from saescope.llm.ledger import ModelPrice

GROUP_TITLES = {
    "concise_verbose": "(a) Concise vs verbose answers of one model (paired by instruction)",
    "versions": "(b) Older vs newer OpenAI model (paired by instruction)",
    "one_vs_many": "(c) One model against three others (one-vs-many)",
}


def _short(text: str | None, n: int = 44) -> str:
    if not text:
        return "–"
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def _latent(latent: int | None, label: str | None) -> str:
    return "–" if latent is None else f"{latent} “{_short(label, 38)}”"


RECOVERY_HEADER = [
    "recovered (rank)",
    "chance",
    "best top latent",
    "MCC",
    "q",
    "that latent vs other detectors",
    "best MCC of any latent (chance)",
]


def _specificity(r: Recovery) -> str:
    if not r.recovered:
        return "–"
    head = "specific" if r.specific else "matches another detector better"
    return f"{head}; also ≥ mcc_min: {', '.join(r.also)}" if r.also else head


def _recovery_cells(r: Recovery | None) -> list[Any]:
    if r is None:
        return ["–"] * len(RECOVERY_HEADER)
    got = f"yes (#{(r.rank or 0) + 1})" if r.recovered else "no"
    return [
        got,
        r.chance,
        _latent(r.latent, r.label),
        r.mcc,
        "–" if r.q is None else f"{r.q:.1g}",
        _specificity(r),
        f"{r.best_any:.2f} ({r.best_any_chance:.2f}): {_latent(r.best_any_latent, r.best_any_label)}",
    ]


def recovery_counts(cases: Sequence[RealCaseResult], alpha: float, mcc_min: float) -> dict[str, int]:
    """Known differences over non-null cases: how many; recovered by a top latent; recovered by one with
    q <= alpha; recovered by a latent that matches this detector better than any other detector; and how
    many some latent of the SAE could have recovered (best MCC >= mcc_min)."""
    recs = [r for c in cases if c.group != "null" for r in c.recoveries]
    return {
        "known": len(recs),
        "recovered": sum(r.recovered for r in recs),
        "significant": sum(r.recovered and r.q is not None and r.q <= alpha for r in recs),
        "possible": sum(r.best_any >= mcc_min for r in recs),
        "specific": sum(r.recovered and bool(r.specific) for r in recs),
    }


def _never(cases: Sequence[RealCaseResult]) -> list[str]:
    """Detectors that are a known difference somewhere and recovered nowhere, with the count of their cases."""
    known: dict[str, int] = {}
    got: set[str] = set()
    for c in cases:
        for r in c.recoveries:
            known[r.detector] = known.get(r.detector, 0) + 1
            if r.recovered:
                got.add(r.detector)
    return [f"{d} ({n} case{'s' if n > 1 else ''})" for d, n in known.items() if d not in got]


def by_detector_rows(cases: Sequence[RealCaseResult], alpha: float) -> list[list[Any]]:
    """Per detector over non-null cases: in how many it is a known difference, recovered, recovered by a
    specific latent, recovered by a latent with q <= alpha, and the summed chance of recovering it by luck."""
    rows = []
    for d in DETECTORS:
        recs = [r for c in cases if c.group != "null" for r in c.recoveries if r.detector == d.name]
        if recs:
            rows.append(
                [
                    d.name,
                    len(recs),
                    sum(r.recovered for r in recs),
                    sum(r.recovered and bool(r.specific) for r in recs),
                    sum(r.recovered and r.q is not None and r.q <= alpha for r in recs),
                    f"{sum(r.chance for r in recs):.1f}",
                ]
            )
    return rows


def _headline(run: RealRun, price: ModelPrice | None) -> list[str]:
    s, env = run.settings, run.environment
    lines = []
    real = [c for c in run.cases if c.group != "null"]
    if real:
        counts = recovery_counts(real, s.alpha, s.mcc_min)
        by_group = []
        for g in ("concise_verbose", "versions", "one_vs_many"):
            recs = [r for c in real if c.group == g for r in c.recoveries]
            if recs:
                by_group.append(f"{g} {sum(r.recovered for r in recs)}/{len(recs)}")
        lines.append(
            f"- Known differences (detectors whose frequency differs by ≥ {s.min_diff} between the sides) recovered "
            f"by one of the diff's top {s.top_k} latents (same direction, MCC ≥ {s.mcc_min} with the detector over "
            f"the case's documents): **{counts['recovered']}/{counts['known']}** over {len(real)} cases "
            f"({', '.join(by_group)}); {counts['significant']} of them by a latent with q ≤ {s.alpha}. "
            f"Expected by luck (the same rule on shuffled detector labels): "
            f"{sum(r.chance for c in real for r in c.recoveries):.1f}. In {counts['specific']} of the "
            f"{counts['recovered']} the recovering latent matches that detector better than any other detector; "
            "in the rest it tracks a co-occurring one (often length). "
            f"Never recovered: {', '.join(_never(real)) or 'none'}. For {counts['possible']}/{counts['known']} "
            f"some latent of the SAE reaches MCC ≥ {s.mcc_min} at all, but with shuffled labels the best of "
            f"{env.sae.get('d_sae', 'all')} latents reaches {mean([r.best_any_chance for c in real for r in c.recoveries]):.2f} "
            "on average, so that bound is loose."
        )
    nulls = [c for c in run.cases if c.group == "null"]
    if nulls:
        chance = sum(sum(d.known for d in c.detectors) for c in nulls)
        lines.append(
            f"- Null controls (random halves of one model's answers): "
            f"{sum(c.n_significant for c in nulls)} latents significant at q ≤ {s.alpha} over {len(nulls)} "
            f"controls (each one a false difference); {chance} detector(s) differ by ≥ {s.min_diff} between the "
            "halves by chance, the noise floor of the known-difference rule at this sample size."
        )
    if run.trend is not None:
        t = run.trend
        trending = [d for d in t.detectors if d.trending]
        lines.append(
            f"- Trend over {len(t.models)} OpenAI models in release order ({t.n_docs} documents, stratified by "
            f"instruction): {len(trending)} detectors trend (q ≤ {s.alpha}: {', '.join(d.detector for d in trending) or 'none'}); "
            f"{sum(r.recovered for r in t.recoveries)}/{len(t.recoveries)} tracked by one of the trend's top "
            f"{s.top_k} latents (MCC ≥ {s.mcc_min}, same direction), {sum(bool(r.specific) for r in t.recoveries)} "
            f"of them by a latent that matches that detector best; not tracked: "
            f"{', '.join(r.detector for r in t.recoveries if not r.recovered) or 'none'}; {t.n_significant} of "
            f"{t.n_tested} latents trend at q ≤ {s.alpha}."
        )
    if run.retrieval:
        rr = run.retrieval
        wins = sum(r.sae_ap > r.dense_ap for r in rr)
        lines.append(
            f"- Retrieval of {len(rr)} detector properties among all {rr[0].n_docs} answers: mean AP SAE "
            f"{mean([r.sae_ap for r in rr]):.2f} vs dense MiniLM {mean([r.dense_ap for r in rr]):.2f} (random "
            f"{mean([r.random_ap for r in rr]):.2f}); SAE higher on {wins}/{len(rr)}. All methods: "
            f"{retrieval_headline(rr)}."
        )
    costed = [c for c in real if c.baseline_cost.calls]
    if costed:
        sae_tok = sum(c.sae_cost.prompt_tokens + c.sae_cost.completion_tokens for c in costed)
        base_tok = sum(c.baseline_cost.prompt_tokens + c.baseline_cost.completion_tokens for c in costed)
        ratio = f"{base_tok / sae_tok:.1f}×" if sae_tok else "∞ (the SAE pipeline called no LLM)"
        usd = ""
        if price:
            sae_usd = sum(c.sae_cost.dollars(price) or 0.0 for c in costed)
            base_usd = sum(c.baseline_cost.dollars(price) or 0.0 for c in costed)
            usd = f"; ${base_usd:.3f} vs ${sae_usd:.3f} at {s.price_model} prices"
        lines.append(
            f"- LLM cost over the {len(costed)} cases with a difference: the LLM-only baseline used {ratio} the "
            f"tokens of the SAE pipeline's LLM steps ({base_tok:,} vs {sae_tok:,}){usd} (dry run: prompts counted "
            "exactly, completions at their caps). The SAE pipeline also embeds: "
            f"{sum(c.embed_seconds for c in costed):.0f} s of CPU time for these cases' documents."
        )
    rate = env.embed_seconds_per_1k_tokens
    lines.append(
        f"- Data: {s.n_instructions} instructions (of {s.n_common} every model answered) × {len(s.models)} models = "
        f"{env.n_docs} answers, {env.truncated_docs} shortened to {s.max_chars} characters; {env.tokens_total:,} "
        f"reader tokens embedded in {env.embed_seconds_total:.0f} s over all runs of this dataset "
        f"({f'{rate:.2f} s per 1k tokens' if rate else 'rate unknown'} on {env.cpus} CPU(s)); this run: "
        f"{env.embed_seconds:.0f} s of embedding, {env.wall_seconds / 60:.1f} min wall time."
    )
    return lines


def _case_section(c: RealCaseResult, min_diff: float) -> list[str]:
    known = [d for d in c.detectors if d.known]
    rec = {r.detector: r for r in c.recoveries}
    lines = [
        f"**{c.case_id}**: A = {c.name_a}, B = {c.name_b} ({c.mode}; n = {c.n_a} / {c.n_b}); "
        f"{c.n_significant} of {c.n_tested} latents significant.",
        "",
    ]
    if not known:
        lines += [f"No detector differs by ≥ {min_diff}.", ""]
        return lines
    rows = [
        [d.detector, d.freq_a, d.freq_b, f"{d.diff:+.2f}", f"{d.p:.1g}", *_recovery_cells(rec.get(d.detector))]
        for d in sorted(known, key=lambda d: -abs(d.diff))
    ]
    header = [
        "detector",
        "freq A",
        "freq B",
        "Δ",
        "p",
        *RECOVERY_HEADER,
    ]
    lines += [_table(header, rows), ""]
    return lines


def _cost_rows(cases: Sequence[RealCaseResult], price: ModelPrice | None) -> list[list[Any]]:
    rows = []
    for c in cases:
        sc, bc = c.sae_cost, c.baseline_cost
        sae_tok = sc.prompt_tokens + sc.completion_tokens
        base_tok = bc.prompt_tokens + bc.completion_tokens
        rows.append(
            [
                c.case_id,
                c.tokens,
                c.embed_seconds,
                sc.calls,
                f"{sae_tok:,}",
                bc.calls,
                f"{base_tok:,}",
                f"{base_tok / sae_tok:.1f}×" if sae_tok else "–",
                f"{sc.dollars(price):.4f}" if price else None,
                f"{bc.dollars(price):.4f}" if price else None,
            ]
        )
    return rows


def render(run: RealRun) -> str:
    s, env = run.settings, run.environment
    price = ModelPrice(**env.price) if env.price else None
    out = [f"# saescope evals on real model responses (AlpacaEval answers, {env.started[:10]})", "", "## Headline", ""]
    out += _headline(run, price)
    out += [
        "",
        "## Data",
        "",
        f"AlpacaEval outputs (`{s.data_dir}`, CC BY-NC 4.0, read at run time): {s.n_instructions} instructions "
        f"sampled with seed {s.seed} from the {s.n_common} that every model below answered with non-empty text; "
        f"every model answers the same ones. Answers over {s.max_chars} characters were shortened to at most "
        f"{s.max_chars}: their start, a `[…]` line and "
        + (f"their last {s.tail_chars} characters" if s.tail_chars else "nothing more")
        + f" ({env.truncated_docs} of {env.n_docs} answers). Each answer was read as an assistant message in the "
        "reader's chat template. The detectors run on the text as embedded.",
        "",
        _table(
            ["detector", "fires when the answer...", "retrieval query"],
            [[d.name, d.description, f"“{d.query}”"] for d in DETECTORS],
        ),
        "",
        "Share of each model's sampled answers where each detector fires (chars: mean length before shortening):",
        "",
    ]
    names = [d.name for d in DETECTORS]
    out += [
        _table(
            ["model", "chars", *names],
            [[m, f"{r['chars_full']:,.0f}", *[r[n] for n in names]] for m, r in run.detector_rates.items()],
        ),
        "",
    ]
    real = [c for c in run.cases if c.group != "null"]
    if real:
        out += [
            "## Known differences and whether the diff recovers them",
            "",
            f"A known difference is a detector whose frequency differs by ≥ {s.min_diff} between the sides "
            "(one-vs-many: more frequent in the target than in every other model by that much, since that diff "
            "lists only latents more frequent in the target). p is the detector's own McNemar (paired) or Fisher "
            f"test, shown because at this sample size a difference of {s.min_diff} is not always beyond chance. "
            f"Recovered: a latent among the diff's top {s.top_k} (ranked by the diff's default, the conservative "
            f"end of the Δfreq interval) moves the same way and its firing set has MCC ≥ {s.mcc_min} with the "
            "detector over the case's documents. Otherwise the top latent with the best MCC is shown. Chance: the "
            "share of 200 shuffles of the detector's labels over the case's documents that the same rule "
            "'recovers' with the same top latents. The last column is the best MCC of any latent of the SAE with "
            f"the detector on those documents (below {s.mcc_min}, no ranking could have recovered it) and, in "
            "brackets, the mean best MCC with shuffled labels: among thousands of latents a rare detector is "
            "matched well by luck.",
            "",
            _table(
                ["case", "group", "A", "B", "n", "known", "recovered", "significant latents"],
                [
                    [
                        c.case_id,
                        c.group,
                        c.name_a,
                        c.name_b,
                        f"{c.n_a}/{c.n_b}",
                        len(c.recoveries),
                        sum(r.recovered for r in c.recoveries),
                        f"{c.n_significant}/{c.n_tested}",
                    ]
                    for c in real
                ],
            ),
            "",
        ]
        out += [
            "By detector (over these cases):",
            "",
            _table(
                [
                    "detector",
                    "known in",
                    "recovered",
                    "by a specific latent",
                    f"by a latent with q ≤ {s.alpha}",
                    "expected by luck",
                ],
                by_detector_rows(real, s.alpha),
            ),
            "",
        ]
        for g, title in GROUP_TITLES.items():
            sel = [c for c in real if c.group == g]
            if sel:
                out += [f"### {title}", ""]
                for c in sel:
                    out += _case_section(c, s.min_diff)
    nulls = [c for c in run.cases if c.group == "null"]
    if nulls:
        out += [
            "## (d) Null controls: two random halves of one model's answers",
            "",
            _table(
                [
                    "case",
                    "n A",
                    "n B",
                    "latents tested",
                    "false differences (q ≤ α)",
                    "largest |Δfreq| in top",
                    f"detectors with |Δ| ≥ {s.min_diff} (chance)",
                ],
                [
                    [
                        c.case_id,
                        c.n_a,
                        c.n_b,
                        c.n_tested,
                        c.n_significant,
                        max((abs(t.diff) for t in c.top), default=0.0),
                        ", ".join(f"{d.detector} {d.diff:+.2f} (p {d.p:.1g})" for d in c.detectors if d.known)
                        or "none",
                    ]
                    for c in nulls
                ],
            ),
            "",
        ]
    if run.trend is not None:
        t = run.trend
        rec = {r.detector: r for r in t.recoveries}
        out += [
            "## (e) Trend over OpenAI releases",
            "",
            f"Models in order: {' < '.join(t.models)}; {t.n_docs} answers, stratified by instruction. Detectors: "
            "Cochran-Armitage (Mantel's stratified form) on the detector flags through "
            "`saescope.analyses.latent_trends`, BH over the detectors. Latents: `ops.trend` on the same documents "
            f"({t.n_tested} tested, {t.n_significant} with q ≤ {s.alpha}); a trending detector is tracked when one "
            f"of the top {s.top_k} latents moves the same way and its firing set has MCC ≥ {s.mcc_min} with the "
            "detector over these documents.",
            "",
            "Frequency per model, in order:",
            "",
            _table(
                [
                    "detector",
                    *[f"{k + 1}" for k in range(len(t.models))],
                    "slope",
                    "z",
                    "q",
                    "trend",
                    *RECOVERY_HEADER,
                ],
                [
                    [
                        d.detector,
                        *d.freqs,
                        f"{d.slope:+.3f}",
                        f"{d.z:+.1f}",
                        f"{d.q:.1g}",
                        "yes" if d.trending else "no",
                        *_recovery_cells(rec.get(d.detector)),
                    ]
                    for d in t.detectors
                ],
            ),
            "",
            "Columns 1.."
            + str(len(t.models))
            + ": "
            + ", ".join(f"{k + 1} = {m}" for k, m in enumerate(t.models))
            + ".",
            "",
            f"The trend's top {min(10, len(t.top))} latents:",
            "",
            _table(
                ["rank", "latent", "label", "z", "q"],
                [
                    [k + 1, x.latent, _short(x.label, 60), f"{x.diff:+.1f}", f"{x.q:.1g}"]
                    for k, x in enumerate(t.top[:10])
                ],
            ),
            "",
        ]
    if run.retrieval:
        rr = run.retrieval
        out += [
            "## (f) Property retrieval: SAE latents vs dense MiniLM, against the detectors",
            "",
            f"Each detector's query ranks all {rr[0].n_docs} answers; relevant: the answers where the detector fires. "
            "All methods through `ops.analyses.rank_by_property`: sae-research (the 100 latents whose labels match "
            "the query, rank-weighted, p90-normalised: arXiv 2512.10092), sae (latents matched on labels and "
            "activating contexts), sae-guided (the 100 latents whose firing correlates best with a guide: "
            "each document's dense similarity to the query plus its best-matching latent by description), hybrid (sae, sae-guided and dense fused by reciprocal rank, k=60; before "
            "sae-guided existed, sae and dense), dense (MiniLM cosine of "
            "the dataset's cached vectors; MiniLM reads only the first 256 tokens of an answer). Documents an SAE "
            "method does not score follow in a seeded random order.",
            "",
            retrieval_headline(rr) + ".",
            "",
            _table(
                [
                    "detector",
                    "query",
                    "relevant",
                    "random AP",
                    "AP sae-research",
                    "AP sae",
                    "AP sae-guided",
                    "AP hybrid",
                    "AP dense",
                    "sae-scored docs",
                    "sae latents (first 3)",
                ],
                [
                    [
                        r.detector,
                        f"“{r.query}”",
                        r.n_relevant,
                        r.random_ap,
                        r.research_ap,
                        r.sae_ap,
                        r.guided_ap,
                        r.hybrid_ap,
                        r.dense_ap,
                        r.sae_ranked,
                        "; ".join(_short(x, 28) for x in r.sae_latents[:3]) or "–",
                    ]
                    for r in rr
                ]
                + [
                    [
                        "mean",
                        "",
                        "",
                        mean([r.random_ap for r in rr]),
                        _mean_or_none([r.research_ap for r in rr]),
                        mean([r.sae_ap for r in rr]),
                        _mean_or_none([r.guided_ap for r in rr]),
                        _mean_or_none([r.hybrid_ap for r in rr]),
                        mean([r.dense_ap for r in rr]),
                        "",
                        "",
                    ]
                ],
            ),
            "",
        ]
    costed = [c for c in run.cases if c.baseline_cost.calls or c.sae_cost.calls]
    if costed:
        out += [
            "## (g) Cost: LLM tokens of the SAE pipeline vs the LLM-only baseline",
            "",
            f"Counted as `evals.run` counts them without an LLM endpoint: every real prompt is built and its tokens "
            f"counted with the {s.tokenizer}; completion tokens are each call's max_tokens cap (an upper bound). The "
            f"SAE pipeline's LLM steps relabel its significant latents (q ≤ {s.alpha}, up to {s.n_latents}) and write "
            "one summary; with no significant latent it calls no LLM. The baseline reads "
            f"{s.baseline_docs} documents (pairs) per side, {s.batch_docs} per side per call ({s.pairs_per_call} pair "
            "per call when paired; one-vs-many: the target against a sample of the others pooled), each quoted up to "
            "600 characters, then merges. "
            + (f"USD at {s.price_model} list prices of {env.price_table_date}." if price else "No price known."),
            "",
            _table(
                [
                    "case",
                    "reader tokens",
                    "embed s",
                    "SAE calls",
                    "SAE tokens",
                    "baseline calls",
                    "baseline tokens",
                    "baseline / SAE",
                    "SAE $",
                    "baseline $",
                ],
                _cost_rows(costed, price),
            ),
            "",
        ]
    out += [
        "## How this was run",
        "",
        "```",
        env.command,
        "```",
        "",
        _table(
            ["", ""],
            [
                ["started (UTC)", env.started],
                ["wall time", f"{env.wall_seconds:.0f} s"],
                ["python", env.python],
                ["platform", env.platform],
                ["CPUs", env.cpus],
                ["dataset", f"{env.dataset} ({env.n_docs} documents) in {env.home}"],
                ["reader", f"{env.reader.get('id')} layer {env.reader.get('layer')}"],
                ["SAE", f"{env.sae.get('id')} (d_sae {env.sae.get('d_sae')})"],
                ["embedding", ", ".join(f"{k}={v}" for k, v in sorted(env.embed_config.items()))],
                [
                    "embedding time",
                    f"{env.embed_seconds_total:.0f} s over all runs of this dataset, {env.embed_seconds:.0f} s in this "
                    "one (0: reused)",
                ],
                ["dense encoding (retrieval)", f"{env.dense_seconds:.0f} s"],
                ["models", ", ".join(s.models)],
                [
                    "settings",
                    f"top_k={s.top_k}, alpha={s.alpha}, mcc_min={s.mcc_min}, min_diff={s.min_diff}, "
                    f"seed={s.seed}, max_chars={s.max_chars}, tail_chars={s.tail_chars}",
                ],
                ["versions", ", ".join(f"{k} {v}" for k, v in env.versions.items())],
            ],
        ),
        "",
    ]
    return "\n".join(out)


def write_report(run: RealRun, out: Path) -> Path:
    """Write ``report.md`` and ``results.json`` into ``out``; the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(run.model_dump_json(indent=1))
    path = out / "report.md"
    path.write_text(render(run))
    return path


def _mean_or_none(values: list[float | None]) -> float | None:
    """The mean, or None when some record lacks the value (results written before the method existed)."""
    return None if any(v is None for v in values) else mean([float(v) for v in values if v is not None])
