"""The markdown report of :mod:`evals.prompt_response`, rendered from its ``results.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1e}" if v != 0 and abs(v) < 1e-3 else f"{v:.3g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _short(text: str, n: int = 42) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def recall(links: Sequence[Mapping[str, Any]], k: int) -> tuple[int, int]:
    """(verified links with a matching pair among the top k, verified links)."""
    verified = [c for c in links if c["verified"]]
    return sum(bool(c["hits"][k]) for c in verified), len(verified)


def render(res: Mapping[str, Any]) -> str:
    cfg, st, real, shuf = res["config"], res["settings"], res["runs"]["real"], res["runs"]["shuffled"]
    echo_free = res["runs"].get("real_no_echoes")
    ks = st["ks"]
    lines = [
        f"# Prompt → response concept correlations on real answers ({res['started'][:10]})",
        "",
        f"`{res['command']}`",
        "",
        f"{cfg['n_instructions']} AlpacaEval instructions (seed {cfg['seed']}) and the answers of "
        f"{', '.join(cfg['models'])}: {res['n_rows']} matched rows. Instructions are embedded as plain text, "
        "answers as assistant messages (shortened as in the real-response eval). A pair is tested when it fires "
        f"together on >= {st['min_cooc']} rows and is significant at BH q <= {st['alpha']} (one-sided "
        f"hypergeometric). A pair matches a link when both latents reach MCC >= {st['mcc_min']} with the rules. "
        f"Embedding took {res['embed_seconds']:.0f} s in this run; the whole run {res['seconds']:.0f} s.",
        "",
        "## The links, as the rules see them on these rows",
        "",
    ]
    lines += _table(
        [
            "link",
            "request",
            "instructions",
            "answer property",
            "after the request",
            "otherwise",
            "Fisher p",
            "verified",
        ],
        [
            [
                c["name"],
                c["asks"],
                c["n_instructions"],
                c["answers"],
                c["freq_after"],
                c["freq_otherwise"],
                c["p"],
                "yes" if c["verified"] else "no",
            ]
            for c in real["links"]
        ],
    )
    lines += ["", "## Does the cross-dataset correlation find them?", ""]
    headers = ["link", "pairing", "instr. latents", "answer latents", "matching pairs", "first rank", "by p"]
    headers += [f"top {k}" for k in ks] + [f"chance top {k}" for k in ks]
    real_links, shuf_links = _norm(real["links"]), _norm(shuf["links"])
    kinds = [("real", real_links), ("shuffled", shuf_links)]
    if echo_free is not None:
        kinds.insert(1, ("real, no echoes", _norm(echo_free["links"])))
    rows = []
    for kind, links in kinds:
        for c in links:
            row = [c["name"], kind, c["n_x_latents"], c["n_y_latents"], c["matching"]]
            row += [c["first_rank"] or "-", c["first_rank_by_p"] or "-"]
            row += ["yes" if c["hits"][k] else "no" for k in ks] + [c["chance"][k] for k in ks]
            rows.append(row)
    lines += _table(headers, rows)
    lines += [""]
    for k in ks:
        got, n = recall(real_links, k)
        line = f"- Recall of the {n} verified links among the top {k} pairs (real pairing): **{got}/{n}**"
        if echo_free is not None:
            got2, _ = recall(_norm(echo_free["links"]), k)
            line += f"; with a latent's pairs with itself (echoes of the prompt's words) left out: **{got2}/{n}**"
        lines.append(line + ".")
    lines += [
        f"- Significant pairs: **{real['significant']:,}** of {real['tested']:,} tested with the real pairing; "
        f"**{shuf['significant']:,}** of {shuf['tested']:,} with the shuffled pairing (each one a false link).",
        f"- Pairs matching a link among the shuffled pairing's significant pairs: "
        f"{sum(c['matching'] for c in shuf_links)}.",
        "",
        "## Top pairs (real pairing, by NPMI)",
        "",
    ]
    lines += _pairs(real["top_pairs"])
    if echo_free is not None:
        lines += ["", "## Top pairs, a latent's pairs with itself left out (skip_echoes)", ""]
        lines += _pairs(echo_free["top_pairs"])
    lines += ["", "## Reading it", ""]
    lines += _notes(res, real_links, shuf_links)
    return "\n".join(lines) + "\n"


def _pairs(pairs: Sequence[Mapping[str, Any]]) -> list[str]:
    return _table(
        ["rank", "instruction latent", "answer latent", "n_xy", "n_x", "n_y", "npmi", "q", "matches"],
        [
            [
                p["rank"],
                f"#{p['latent_x']} {_short(p['label_x'])}",
                f"#{p['latent_y']} {_short(p['label_y'])}",
                p["count_xy"],
                p["count_x"],
                p["count_y"],
                p["npmi"],
                p["q"],
                ", ".join(p["links"]) or "-",
            ]
            for p in pairs
        ],
    )


def _norm(links: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Links with integer keys in ``hits`` and ``chance`` (JSON turns them into strings)."""
    return [
        {**c, "hits": {int(k): v for k, v in c["hits"].items()}, "chance": {int(k): v for k, v in c["chance"].items()}}
        for c in links
    ]


def _notes(res: Mapping[str, Any], real: Sequence[Mapping[str, Any]], shuf: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    unverified = [c["name"] for c in real if not c["verified"]]
    if unverified:
        out.append(
            f"- Not scored, because the rules do not confirm them on these rows: {', '.join(unverified)} "
            "(too few instructions make the request, or the answers do not follow it)."
        )
    missed = [c["name"] for c in real if c["verified"] and c["first_rank"] is None]
    if missed:
        out.append(
            f"- Verified but never matched by a significant pair: {', '.join(missed)}; where a side has no latent "
            "with MCC >= the threshold, the SAE has no concept for it at this dictionary size."
        )
    late = [f"{c['name']} (rank {c['first_rank']})" for c in real if c["verified"] and (c["first_rank"] or 0) > 100]
    if late:
        out.append(f"- Found, but below the top 100: {', '.join(late)}.")
    n_models = len(res["config"]["models"])
    if n_models > 1:
        out.append(
            f"- Each instruction appears in {n_models} rows (one per model), so rows are not independent and the "
            "q-values are optimistic; the shuffled pairing measures what that costs."
        )
    out.append(
        "- Ranking by NPMI favours rare, exclusive pairs; ranking by p favours frequent ones. Both ranks are shown; "
        "neither was tuned on these links."
    )
    return out
