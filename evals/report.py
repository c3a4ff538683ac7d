"""The report of one run: ``report.md`` with tables, two PNG plots, and ``results.json`` with everything."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.metrics import agreement, cohen_kappa, mean, recall_at_k
from evals.records import CaseResult, RunResults
from evals.retrieval import retrieval_headline
from saescope.llm.ledger import ModelPrice

KS = (1, 5, 20)
HEADLINE_K = 5
RECALL_HEADER = ["fraction", "cases", *[f"recall@{k}" for k in KS], f"recall@{HEADLINE_K}, q ≤ α", "mean best F1"]


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _first_true(flags: Sequence[bool] | None) -> int | None:
    if not flags:
        return None
    return next((i for i, f in enumerate(flags) if f), None)


def _dollars(cost: Any, price: ModelPrice | None) -> float | None:
    return cost.dollars(price) if price else None


def recall_rows(cases: Sequence[CaseResult]) -> list[list[Any]]:
    """Per fraction: cases, recall@k of the LLM-free latent match, mean best F1 among the top latents."""
    rows = []
    for f in sorted({c.fraction for c in cases if c.fraction is not None}):
        sel = [c for c in cases if c.fraction == f]
        rows.append(
            [
                f"{f:.0%}",
                len(sel),
                *[recall_at_k([c.first_recovered for c in sel], k) for k in KS],
                recall_at_k([c.first_significant for c in sel], HEADLINE_K),
                mean([max((s.f1 for s in c.top), default=0.0) for c in sel]),
            ]
        )
    return rows


def judged(cases: Sequence[CaseResult]) -> bool:
    return any(c.sae_judged is not None for c in cases)


def _cost_rows(cases: Sequence[CaseResult], price: ModelPrice | None) -> list[list[Any]]:
    rows = []
    for group in ("planted", "paired", "real", "null"):
        sel = [c for c in cases if c.group == group]
        if not sel:
            continue
        for method, get in (("SAE pipeline", lambda c: c.sae_cost), ("LLM-only", lambda c: c.baseline_cost)):
            costs = [get(c) for c in sel]
            usd = [_dollars(x, price) for x in costs]
            extra = (
                (mean([c.embed_seconds for c in sel]), mean([c.diff_seconds for c in sel]))
                if method == "SAE pipeline"
                else (None, None)
            )
            rows.append(
                [
                    group,
                    method,
                    len(sel),
                    f"{mean([x.calls for x in costs]):.1f}",
                    f"{mean([x.prompt_tokens for x in costs]):,.0f}",
                    f"{mean([x.completion_tokens for x in costs]):,.0f}",
                    f"{mean(usd):.5f}" if price else None,
                    mean([x.llm_seconds for x in costs]),
                    *extra,
                ]
            )
    return rows


def cost_ratio(cases: Sequence[CaseResult], price: ModelPrice | None, *, both_called: bool = False) -> dict[str, float]:
    """Total baseline $ over total SAE $ (and tokens), over cases where a difference exists (and, with
    ``both_called``, only those where the SAE pipeline called the LLM: it calls none without a significant latent)."""
    sel = [c for c in cases if c.group != "null" and (c.sae_cost.calls > 0 or not both_called)]
    out: dict[str, float] = {"cases": float(len(sel))}
    sae_tok = sum(c.sae_cost.prompt_tokens + c.sae_cost.completion_tokens for c in sel)
    base_tok = sum(c.baseline_cost.prompt_tokens + c.baseline_cost.completion_tokens for c in sel)
    out["tokens"] = base_tok / sae_tok if sae_tok else float("inf")
    if price:
        sae_usd = sum(c.sae_cost.dollars(price) or 0.0 for c in sel)
        base_usd = sum(c.baseline_cost.dollars(price) or 0.0 for c in sel)
        out["usd"] = base_usd / sae_usd if sae_usd else float("inf")
        out["sae_usd_total"], out["baseline_usd_total"] = sae_usd, base_usd
    return out


def _plots(run: RunResults, out: Path, price: ModelPrice | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    planted = [c for c in run.cases if c.group == "planted"]
    if planted:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        fracs = sorted({float(c.fraction or 0) for c in planted})
        for kind, style in (("content", "o-"), ("style", "s-"), ("format", "^-"), (None, "k.-")):
            sel = [c for c in planted if kind is None or c.kind == kind]
            if not sel:
                continue
            ys = [recall_at_k([c.first_recovered for c in sel if c.fraction == f], HEADLINE_K) for f in fracs]
            ax.plot(
                fracs, ys, style, label=f"SAE, LLM-free match: {kind or 'all'}", linewidth=2.5 if kind is None else 1.2
            )
        if judged(planted):
            for label, get in (
                ("SAE + LLM (judge)", lambda c: c.sae_judged),
                ("LLM-only (judge)", lambda c: c.baseline_judged),
            ):
                ys = [recall_at_k([_first_true(get(c)) for c in planted if c.fraction == f], HEADLINE_K) for f in fracs]
                ax.plot(fracs, ys, "--", label=label)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(fracs, [f"{f:.0%}" for f in fracs])
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("fraction of B with the planted property")
        ax.set_ylabel(f"recall@{HEADLINE_K}")
        ax.set_title(f"Planted properties recovered (reviews, n={run.benchmark['n_per_side']}/side)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "recall_vs_fraction.png", dpi=120)
        plt.close(fig)
        written.append("recall_vs_fraction.png")
    scored = [c for c in run.cases if c.group in ("planted", "paired")]
    if scored and price:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        sae_usd = mean([c.sae_cost.dollars(price) for c in scored])
        base_usd = mean([c.baseline_cost.dollars(price) for c in scored])
        sae_free = recall_at_k([c.first_recovered for c in scored], HEADLINE_K)
        ax.scatter([sae_usd], [sae_free], marker="o", s=60, label="SAE pipeline (LLM-free latent match)")
        sig = recall_at_k([c.first_significant for c in scored], HEADLINE_K)
        ax.scatter([sae_usd], [sig], marker="D", s=40, label="SAE pipeline, the latent also significant (q ≤ α)")
        for i, f in enumerate(sorted({c.fraction for c in scored if c.fraction is not None})):
            sel = [c for c in scored if c.fraction == f]
            x = mean([c.sae_cost.dollars(price) for c in sel])
            y = recall_at_k([c.first_recovered for c in sel], HEADLINE_K)
            ax.scatter([x], [y], marker="o", s=14, color="tab:blue", alpha=0.5)
            ax.annotate(f"{f:.0%}", (x, y), textcoords="offset points", xytext=(4, -10 if i % 2 else 4), fontsize=7)
        if judged(scored):
            ax.scatter(
                [sae_usd],
                [recall_at_k([_first_true(c.sae_judged) for c in scored], HEADLINE_K)],
                marker="s",
                s=60,
                label="SAE pipeline + LLM (judge)",
            )
            ax.scatter(
                [base_usd],
                [recall_at_k([_first_true(c.baseline_judged) for c in scored], HEADLINE_K)],
                marker="^",
                s=60,
                label="LLM-only baseline (judge)",
            )
        else:
            ax.axvline(base_usd, linestyle="--", color="tab:red", label="LLM-only baseline cost (recall needs an LLM)")
        ax.set_xlabel(
            f"mean LLM cost per case, USD ({run.settings.price_model}, prices of {run.environment.price_table_date})"
        )
        ax.set_ylabel(f"recall@{HEADLINE_K}, planted + paired cases")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(0, max(sae_usd, base_usd) * 1.15 or 1)
        ax.legend(fontsize=8)
        ax.set_title("Cost vs recall per method")
        fig.tight_layout()
        fig.savefig(out / "cost_vs_recall.png", dpi=120)
        plt.close(fig)
        written.append("cost_vs_recall.png")
    return written


def _property_table(cases: Sequence[CaseResult]) -> str:
    fracs = sorted({float(c.fraction or 0) for c in cases})
    props = list(dict.fromkeys(str(c.prop) for c in cases))
    rows = []
    for p in props:
        sel = {float(c.fraction or 0): c for c in cases if c.prop == p}
        kind = next(iter(sel.values())).kind
        cells: list[str | None] = []
        for f in fracs:
            c = sel.get(f)
            if c is None:
                cells.append(None)
                continue
            best = max((s.f1 for s in c.top), default=0.0)
            cells.append(f"{best:.2f} (#{c.first_recovered + 1})" if c.first_recovered is not None else f"{best:.2f}")
        hits = [(f, c) for f, c in sorted(sel.items()) if c.first_recovered is not None]
        if hits:
            f, c = hits[0]
            top = c.top[int(c.first_recovered or 0)]
            label = f"{top.latent} “{top.label[:40]}” (at {f:.0%})"
        else:
            label = "–"
        rows.append([p, kind, *cells, label])
    return _table(["property", "kind", *[f"{f:.0%}" for f in fracs], "recovering latent, smallest fraction"], rows)


def _best_label(c: CaseResult, key: Callable[[Any], float]) -> str:
    if not c.top:
        return "–"
    s = max(c.top, key=key)
    return f"{s.latent} “{s.label[:50]}” ({'A' if s.diff > 0 else 'B'})"


def render(run: RunResults, plots: Sequence[str]) -> str:
    s, env = run.settings, run.environment
    price = ModelPrice(**env.price) if env.price else None
    cases = run.cases
    planted = [c for c in cases if c.group == "planted"]
    paired = [c for c in cases if c.group == "paired"]
    real = [c for c in cases if c.group == "real"]
    null = [c for c in cases if c.group == "null"]
    ratio = cost_ratio(cases, price)
    out = [f"# saescope evals: SAE diffing vs LLM-only diffing, SAE vs dense retrieval ({env.started[:10]})", ""]
    out += ["## Headline", ""]
    if planted or paired:
        both = planted + paired
        out.append(
            f"- Planted and paired properties, LLM-free match (a top-{HEADLINE_K} latent's firing set has F1 ≥ {s.f1_min} "
            f"with the planted documents over A∪B): recall@{HEADLINE_K} "
            f"{recall_at_k([c.first_recovered for c in both], HEADLINE_K):.2f} over {len(both)} cases; by "
            "fraction: " + ", ".join(f"{r[0]} {r[3]:.2f}" for r in recall_rows(both)) + "."
        )
    if real:
        out.append(
            f"- Real differences: {sum(c.first_recovered is not None for c in real)}/{len(real)} recovered by "
            f"a top-{s.top_k} latent with MCC ≥ {s.mcc_min}."
        )
    if null:
        out.append(
            f"- Null controls: {sum(c.n_significant for c in null)} latents significant at q ≤ {s.alpha} over "
            f"{len(null)} controls (each one a false difference); the SAE pipeline calls no LLM when none is."
        )
    if ratio["cases"]:
        called = cost_ratio(cases, price, both_called=True)
        usd = (
            f"; ${ratio['baseline_usd_total']:.3f} vs ${ratio['sae_usd_total']:.3f} in all, "
            f"{ratio['usd']:.1f}× at {s.price_model} prices"
            if "usd" in ratio
            else ""
        )
        out.append(
            f"- LLM cost over the {ratio['cases']:.0f} cases with a true difference: the LLM-only baseline used "
            f"{ratio['tokens']:.1f}× the tokens of the SAE pipeline's LLM steps{usd}"
            + (" (dry run: prompts counted exactly, completions at their caps)" if "dry" in s.llm else "")
            + f". Only over the {called['cases']:.0f} cases where the SAE pipeline had a significant latent and so "
            f"called the LLM: {called['tokens']:.1f}× the tokens"
            + (f", {called['usd']:.1f}× the dollars." if "usd" in called else ".")
        )
    if run.retrieval:
        r = run.retrieval
        out.append(
            f"- Retrieval ({retrieval_headline(r)}); nDCG@10 SAE {mean([x.sae_ndcg10 for x in r]):.2f} vs dense "
            f"{mean([x.dense_ndcg10 for x in r]):.2f}."
        )
    if run.clustering:
        k = run.clustering
        out.append(
            f"- Clustering along an axis (mean ARI over {len(k)} axes): SAE {mean([x.sae_ari for x in k]):.2f} "
            f"vs dense {mean([x.dense_ari for x in k]):.2f}; SAE higher on "
            f"{sum(x.sae_ari > x.dense_ari for x in k)}/{len(k)}."
            + (
                f" SAE guided by the classes (cluster --classes): {mean([x.guided_ari or 0.0 for x in k]):.2f}, "
                f"higher than dense on {sum((x.guided_ari or 0.0) > x.dense_ari for x in k)}/{len(k)}."
                if all(x.guided_ari is not None for x in k)
                else ""
            )
            + (
                f" With the dense similarity alone as its guide: {mean([x.guided_dense_ari or 0.0 for x in k]):.2f}."
                if all(x.guided_dense_ari is not None for x in k)
                else ""
            )
        )
    out.append(
        f"- Embedding: {env.tokens_total:,} tokens, "
        + (
            f"{env.embed_seconds_per_1k_tokens:.2f} s per 1k tokens"
            if env.embed_seconds_per_1k_tokens
            else "time unknown (reused)"
        )
        + f" on {env.cpus} CPU(s); run wall time {env.wall_seconds / 60:.1f} min."
    )
    out.append("")
    if planted:
        out += [
            "## Planted properties (reviews)",
            "",
            f"Recall@k: share of cases with a latent among the diff's top k (ranked by the conservative end of "
            f"the Δfreq interval) that is more frequent in B and whose firing set over A∪B has F1 ≥ {s.f1_min} "
            f"with the planted documents; the q ≤ α column also requires it to be significant.",
            "",
            _table(RECALL_HEADER, recall_rows(planted)),
            "",
            "Best F1 among the top latents, and (#rank) of the first that recovers the property:",
            "",
            _property_table(planted),
            "",
        ]
    if paired:
        out += [
            "## Paired responses (reader answers, same prompts)",
            "",
            _table(RECALL_HEADER, recall_rows(paired)),
            "",
            _property_table(paired),
            "",
        ]
    if real:
        out += [
            "## Real differences",
            "",
            _table(
                ["case", "n A", "n B", "significant", "best MCC", "first rank", "best latent (side)"],
                [
                    [
                        c.case_id,
                        c.n_a,
                        c.n_b,
                        c.n_significant,
                        max((x.mcc for x in c.top), default=None),
                        None if c.first_recovered is None else c.first_recovered + 1,
                        _best_label(c, lambda x: x.mcc),
                    ]
                    for c in real
                ],
            ),
            "",
        ]
    if null:
        out += [
            "## Null controls (two random halves of one corpus)",
            "",
            _table(
                [
                    "case",
                    "n A",
                    "n B",
                    "latents tested",
                    "false differences (q ≤ α)",
                    "largest |Δfreq| in top",
                    "SAE hypotheses",
                    "LLM-only hypotheses",
                ],
                [
                    [
                        c.case_id,
                        c.n_a,
                        c.n_b,
                        c.n_tested,
                        c.n_significant,
                        max((abs(x.diff) for x in c.top), default=None),
                        len(c.sae_hypotheses) if "dry" not in s.llm else "–",
                        len(c.baseline_hypotheses) if "dry" not in s.llm else "–",
                    ]
                    for c in null
                ],
            ),
            "",
        ]
    out += [
        "## Cost per case",
        "",
        f"Prompt tokens {'counted on the real prompts with the ' + s.tokenizer if 'dry' in s.llm else 'as reported by the endpoint'}"
        + ("; completion tokens are the calls' max_tokens caps (an upper bound)" if "dry" in s.llm else "")
        + f". USD at {s.price_model} list prices of {env.price_table_date}"
        + (f" (${price.prompt}/M prompt, ${price.completion}/M completion)" if price else " (model not in the table)")
        + ". The SAE pipeline's LLM steps are relabelling its significant latents (up to "
        f"{s.n_latents}) and one summary; the baseline reads {s.baseline_docs} documents per side, "
        f"{s.batch_docs} per side per call ({s.pairs_per_call} pair(s) per call for paired cases), then merges.",
        "",
        _table(
            [
                "group",
                "method",
                "cases",
                "LLM calls",
                "prompt tok",
                "completion tok",
                "USD",
                "LLM s",
                "embed s",
                "diff s",
            ],
            _cost_rows(cases, price),
        ),
        "",
    ]
    if judged(cases):
        rows = []
        for group, sel in (("planted", planted), ("paired", paired), ("real", real)):
            if sel:
                for method, get in (("SAE + LLM", lambda c: c.sae_judged), ("LLM-only", lambda c: c.baseline_judged)):
                    rows.append(
                        [group, method, *[recall_at_k([_first_true(get(c)) for c in sel], k) for k in (1, 3, 5)]]
                    )
        scored = [c for c in planted + paired if c.sae_judged is not None]
        llm_free = [any(recovered_in(c, s)) for c in scored]
        judge_says = [any(c.sae_judged or []) for c in scored]
        out += [
            "## With an LLM: hypotheses graded by the judge",
            "",
            f"LLM: {s.llm}. Recall@k: the judge says one of the first k hypotheses states the true difference.",
            "",
            _table(["group", "method", "recall@1", "recall@3", "recall@5"], rows),
            "",
            f"Judge vs LLM-free match on {len(scored)} planted/paired cases (does some significant top-"
            f"{s.n_latents} latent have F1 ≥ {s.f1_min}, vs does the judge accept some SAE hypothesis): agreement "
            f"{_fmt(agreement(llm_free, judge_says))}, Cohen's κ {_fmt(cohen_kappa(llm_free, judge_says))}.",
            "",
        ]
    if run.retrieval:
        out += [
            "## Property retrieval: SAE latents vs dense (MiniLM) on the same documents",
            "",
            "Each planted property's query ranks A∪B of its 25% case (relevant: the planted documents). "
            "sae-research: the 100 latents whose labels match the query, rank-weighted, p90-normalised (arXiv "
            "2512.10092); sae: latents matched on labels and activating contexts; sae-guided: the 100 latents "
            "whose firing correlates best with a guide (each document's dense similarity to the query plus its "
            "best-matching latent by description); hybrid: sae, sae-guided and dense fused by reciprocal rank "
            "(k=60); dense: MiniLM cosine. All through `ops.analyses.rank_by_property`.",
            "",
            retrieval_headline(run.retrieval) + ".",
            "",
            _table(
                [
                    "property",
                    "kind",
                    "query",
                    "relevant/docs",
                    "AP sae-research",
                    "AP sae",
                    "AP sae-guided",
                    "AP hybrid",
                    "AP dense",
                    "nDCG@10 sae",
                    "nDCG@10 dense",
                    "sae latents (first 3)",
                ],
                [
                    [
                        r.prop,
                        r.kind,
                        r.query,
                        f"{r.n_relevant}/{r.n_docs}",
                        r.research_ap,
                        r.sae_ap,
                        r.guided_ap,
                        r.hybrid_ap,
                        r.dense_ap,
                        r.sae_ndcg10,
                        r.dense_ndcg10,
                        "; ".join(x[:30] for x in r.sae_latents[:3]),
                    ]
                    for r in run.retrieval
                ],
            ),
            "",
        ]
    if run.clustering:
        out += [
            "## Clustering along an axis: adjusted Rand index against the known split (k=2)",
            "",
            "SAE: latents whose labels match the axis, average linkage on Jaccard (documents where no axis latent "
            "fires are placed by their full vectors); SAE guided: `cluster --classes` with the two classes shown "
            "(latents whose firing correlates with a guide: each document's MiniLM similarity to each class plus "
            "the firing of the latents whose descriptions match it; k-means); dense guide only: the same with the "
            "MiniLM similarity alone as the guide (`--guide dense`); dense: k-means on MiniLM embeddings (it "
            "cannot be told the axis).",
            "",
            _table(
                [
                    "case",
                    "axis",
                    "docs",
                    "ARI SAE",
                    "ARI SAE guided",
                    "ARI guided, dense guide only",
                    "ARI dense",
                    "SAE unassigned",
                    "classes",
                ],
                [
                    [
                        k.case_id,
                        k.axis,
                        k.n_docs,
                        k.sae_ari,
                        k.guided_ari,
                        k.guided_dense_ari,
                        k.dense_ari,
                        k.sae_unassigned,
                        " / ".join(k.classes) or "–",
                    ]
                    for k in run.clustering
                ],
            ),
            "",
        ]
    if plots:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
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
                *[[k, v] for k, v in env.versions.items()],
                ["dataset", f"{env.dataset} ({env.n_docs} documents, in {env.home})"],
                ["reader", env.reader],
                ["SAE", env.sae],
                ["pooling", env.embed_config],
                ["benchmark", run.benchmark],
                ["LLM", s.llm],
                ["token counting", s.tokenizer],
                ["price table", f"saescope/llm/prices.json, {env.price_table_date}"],
            ],
        ),
        "",
    ]
    out += [
        "## Caveats",
        "",
        "- Recovery without an LLM asks whether a latent's firing set matches the planted documents; it says "
        "nothing about whether the latent's label would tell a person what the property is.",
        "- Planted properties are template insertions into short review snippets; real differences in the wild are "
        "subtler. Fractions share their unplanted documents within a property (one sample of B per corpus).",
        "- Real differences count as recovered on MCC, because F1 has a floor of 0.67 for a latent that fires "
        "everywhere when the two sides are the same size.",
        "- Dry-run costs price completions at their caps, which favours neither method much but overstates both; "
        "token counts use one tokenizer for every vendor.",
        "- The embedding cost (CPU seconds) is shown apart from LLM dollars; on this machine it is the dominant "
        "time of the SAE pipeline.",
        "- A latent can separate the sides of a real difference through an artifact (a formatting character, or "
        "document length through max-pooling); read the labels in the real-differences table before crediting it.",
        "- Retrieval and axis clustering choose latents by their labels; labels made of top tokens rather than "
        "descriptions limit both, whatever the latents detect.",
        "",
    ]
    return "\n".join(out)


def recovered_in(c: CaseResult, settings: Any = None) -> list[bool]:
    """For each significant latent among the first n_latents, whether it recovers the property (F1 rule)."""
    s = settings
    f1_min = getattr(s, "f1_min", 0.5)
    alpha = getattr(s, "alpha", 0.05)
    n = getattr(s, "n_latents", 10)
    return [x.f1 >= f1_min and x.diff < 0 for x in [t for t in c.top if t.q <= alpha][:n]]


def write_report(run: RunResults, out: Path) -> Path:
    """Write ``results.json``, the plots and ``report.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(run.model_dump_json(indent=1), encoding="utf-8")
    price = ModelPrice(**run.environment.price) if run.environment.price else None
    plots = _plots(run, out, price)
    (out / "report.md").write_text(render(run, plots), encoding="utf-8")
    return out / "report.md"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evals.report FOLDER``: render the report again from ``FOLDER/results.json``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m evals.report RESULTS_FOLDER\n")
        return 2
    folder = Path(args[0])
    run = RunResults.model_validate_json((folder / "results.json").read_text(encoding="utf-8"))
    write_report(run, folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
