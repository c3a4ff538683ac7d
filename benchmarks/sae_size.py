"""Does a larger SAE dictionary make concepts cleaner? Train SAEs of several sizes on the same data and compare.

    .venv/bin/python benchmarks/sae_size.py --work /tmp/sae-size --sizes 4096,16384 \\
        --max-docs 5000 --samples 1000000

For each dictionary size ``d_sae`` (same corpus subset, same number of training samples, same seed):

1. train with ``saescope.training.pipeline.train_default_sae`` into ``<work>/sae-<d_sae>`` (a complete SAE
   folder, usable as ``--sae <folder>``); held-out FVU, L0 and dead fraction come back from it;
2. LLM-free description fidelity exactly as ``saescope.training.describe_default`` measures it for the shipped
   SAE: 2,100 probe windows (seed 0), embedded with the variant, ``describe_latents`` with the shipped
   vocabulary, stratified by source;
3. the planted-axes benchmark ``python -m evals.axes --home <work>/axes-home-<d> --sae <folder>``.

Activations are cached in ``<work>/work`` and every finished stage is skipped on a rerun, so an interrupted
run resumes. The report goes to ``benchmarks/results/sae_size.md``; a ``## Verdict`` section already in that
file is kept when it is rewritten.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "benchmarks" / "results" / "sae_size.md"
SHIPPED = REPO / "saescope" / "data" / "default_sae"
NON_CONTENT = {"programming", "format", "language"}
"""Vocabulary categories left out of the example descriptions (to see whether the rest are about content)."""

log = logging.getLogger("sae_size")


def cpu_name() -> str:
    from saescope.embed.dtype_probe import cpu_info

    return cpu_info().model


def load_times(work: Path) -> dict[str, float]:
    path = work / "times.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_time(work: Path, key: str, seconds: float) -> None:
    times = load_times(work)
    times[key] = round(seconds, 1)
    (work / "times.json").write_text(json.dumps(times, indent=1))


def train(work: Path, d_sae: int, samples: int, max_docs: int) -> dict[str, Any]:
    """Train (or reuse) the variant; its quality and the seconds it took (extraction included when first)."""
    from saescope.training.pipeline import train_default_sae
    from saescope.training.train import TrainConfig

    out = work / f"sae-{d_sae}"
    if not (out / "quality.json").exists():
        t0 = time.perf_counter()
        train_default_sae(out, work / "work", TrainConfig(d_sae=d_sae, training_samples=samples), max_docs=max_docs)
        save_time(work, f"train-{d_sae}", time.perf_counter() - t0)
    meta = json.loads((out / "saescope.json").read_text())
    quality: dict[str, Any] = meta["quality"]
    quality["train_seconds"] = load_times(work).get(f"train-{d_sae}", meta.get("train_seconds"))
    return quality


def describe(work: Path, sae_dir: Path, windows: int = 2100, seed: int = 0) -> dict[str, Any]:
    """Description fidelity of the SAE in ``sae_dir`` on the probe windows, as describe_default measures it."""
    key = sae_dir.name
    cached = work / f"describe-{key}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    from saescope.labels import CONCEPT_MIN_FIDELITY
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.describe import describe_latents, shipped_vocabulary
    from saescope.ops.embedding import embed_dataset, sae_choice
    from saescope.ops.requests import DescribeLatentsRequest, EmbedRequest, IngestRequest
    from saescope.training.describe_default import probe_windows
    from saescope.workspace import Workspace

    t0 = time.perf_counter()
    ws = Workspace(work / f"probe-home-{key}", device="cpu")
    name = "probe"
    if name not in ws.store.names():
        rows: list[str | dict[str, Any]] = [
            {"doc_id": f"{d.source}-{d.doc_id}", "text": d.text, "source": d.source}
            for d in probe_windows(windows, seed)
        ]
        ingest_documents(ws, IngestRequest(name=name, documents=rows, id_column="doc_id"))
    req = EmbedRequest(dataset=name, sae=str(sae_dir))
    embed_dataset(ws, req, sae_choice(req))
    t_embed = time.perf_counter() - t0
    res = describe_latents(ws, DescribeLatentsRequest(dataset=name, seed=seed, top_k=50, stratify_by="source"))
    log.info("%s", res.to_text())
    category = dict(zip(shipped_vocabulary().texts, shipped_vocabulary().categories, strict=True))
    sae = ws.sae_of(ws.dataset(name).embedding())
    book = ws.labels(sae)
    described: list[dict[str, Any]] = []
    for latent, rec in book.latents.items():
        for lab in rec.labels:
            if lab.source == "concept" and lab.score is not None:
                tokens = next((x.text for x in rec.labels if x.source == "top-tokens"), "")
                described.append(
                    {
                        "latent": latent,
                        "text": lab.text,
                        "category": category.get(lab.text, ""),
                        "fidelity": lab.score,
                        "tokens": tokens,
                    }
                )
    fid = np.array([d["fidelity"] for d in described])
    good = sorted((d for d in described if d["fidelity"] >= CONCEPT_MIN_FIDELITY), key=lambda d: -d["fidelity"])
    by_cat: dict[str, int] = {}
    for d in good:
        by_cat[d["category"]] = by_cat.get(d["category"], 0) + 1
    result = {
        "sae": sae.id,
        "n_docs": res.n_docs,
        "tested": res.n_tested,
        "described": res.n_described,
        "median_fidelity": float(np.median(fid)) if len(fid) else float("nan"),
        "n_good": res.n_shown,
        "good_by_category": dict(sorted(by_cat.items(), key=lambda kv: -kv[1])),
        "examples": [d for d in good if d["category"] not in NON_CONTENT][:12],
        "embed_seconds": round(t_embed, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    cached.write_text(json.dumps(result, indent=1))
    return result


def axes(work: Path, sae_dir: Path) -> dict[str, Any]:
    """Per-axis ARI of the planted-axes benchmark with the SAE in ``sae_dir``."""
    out = work / f"axes-out-{sae_dir.name}"
    if not (out / "results.json").exists():
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "evals.axes", "--home", str(work / f"axes-home-{sae_dir.name}")]
        cmd += ["--sae", str(sae_dir), "--out", str(out), "--device", "cpu"]
        log.info("running %s", " ".join(cmd))
        subprocess.run(cmd, cwd=REPO, check=True)
        save_time(work, f"axes-{sae_dir.name}", time.perf_counter() - t0)
    planted = json.loads((out / "results.json").read_text())["planted"]
    by_axis = {s["axis"]: s for s in planted}
    return {
        "by_axis": {
            a: {k: by_axis[a][k] for k in ("guided_ari", "research_ari", "sae_ari", "dense_ari")} for a in by_axis
        },
        "guided_mean": float(np.mean([s["guided_ari"] for s in planted])),
        "research_mean": float(np.mean([s["research_ari"] for s in planted])),
        "dense_mean": float(np.mean([s["dense_ari"] for s in planted])),
        "seconds": load_times(work).get(f"axes-{sae_dir.name}"),
    }


def _f(v: Any, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def render(rows: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Does a larger SAE dictionary make concepts cleaner? (issue 13, part 4)",
        "",
        f"Command: `{command}`",
        "",
        f"CPU: {cpu_name()} ({args.threads_note}); torch on CPU. Same corpus subset (max_docs={args.max_docs}, "
        f"seed 0, held-out documents as in `train-sae`), same samples ({args.samples:,}), same k=64 for every "
        "variant. Description fidelity: 2,100 probe windows (seed 0), shipped vocabulary, stratified by source, "
        "as `saescope.training.describe_default`; axes: `python -m evals.axes` (planted axes, 400 documents).",
        "",
        "| variant | d_sae | train tokens | samples | FVU | L0 | dead | described | median fidelity "
        "| >=0.75 (share of alive) | axes ARI guided kind / style / layout / mean | research mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        q, d, a = r["quality"], r["describe"], r["axes"]
        alive = q["d_sae"] * (1 - q["dead_fraction"])
        g = a["by_axis"]
        guided = " / ".join(_f(g[x]["guided_ari"]) for x in ("kind", "style", "layout")) + f" / {_f(a['guided_mean'])}"
        lines.append(
            f"| {r['name']} | {q['d_sae']:,} | {q['train_tokens']:,} | {q['train_samples']:,} | {q['fvu']:.4f} "
            f"| {q['l0']:.1f} | {q['dead_fraction']:.2%} | {d['described']:,} | {d['median_fidelity']:.2f} "
            f"| {d['n_good']} ({d['n_good'] / alive:.1%}) | {guided} | {_f(a['research_mean'])} |"
        )
    sq = json.loads((SHIPPED / "saescope.json").read_text())["quality"]
    alive = sq["d_sae"] * (1 - sq["dead_fraction"])
    lines += [
        f"| shipped (reference: full corpus, {sq['train_samples']:,} samples; not directly comparable) "
        f"| {sq['d_sae']:,} | {sq['train_tokens']:,} | {sq['train_samples']:,} | {sq['fvu']:.4f} | {sq['l0']:.1f} "
        f"| {sq['dead_fraction']:.2%} | 3,391 | 0.57 | 249 ({249 / alive:.1%}) | 0.26 / 1.00 / 0.00 / 0.42 | 0.16 |",
        "",
        "Dense k-means mean ARI over the three axes (one clustering for all axes): "
        + ", ".join(f"{r['name']} {_f(r['axes']['dense_mean'])}" for r in rows)
        + ".",
        "",
        "## Per axis",
        "",
        "| variant | axis | sae guided | sae-research | sae (axis name) | dense |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        for axis, s in r["axes"]["by_axis"].items():
            lines.append(
                f"| {r['name']} | {axis} | {_f(s['guided_ari'])} | {_f(s['research_ari'])} | {_f(s['sae_ari'])} "
                f"| {_f(s['dense_ari'])} |"
            )
    lines += ["", "## Descriptions with fidelity >= 0.75", ""]
    for r in rows:
        d = r["describe"]
        cats = ", ".join(f"{c or '?'} {n}" for c, n in d["good_by_category"].items())
        lines += [
            f"**{r['name']}** ({d['n_good']} in all; by category: {cats}). Examples outside "
            "programming / format / language:",
            "",
        ]
        for e in d["examples"]:
            lines.append(
                f'- latent {e["latent"]}: "{e["text"]}" ({e["category"]}, {e["fidelity"]:.2f}); tokens: '
                f"{e['tokens'][:60]}"
            )
        lines.append("")
    lines += [
        "## Wall time",
        "",
        "| variant | train (first one includes extraction) | probe embed | describe total | axes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {_f(r['quality']['train_seconds'], 0)} s | {_f(r['describe']['embed_seconds'], 0)} s "
            f"| {_f(r['describe']['seconds'], 0)} s | {_f(r['axes']['seconds'], 0)} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="benchmarks/sae_size.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/sae-size", help="scratch folder (activations, SAEs, homes); resumable")
    p.add_argument("--sizes", default="4096,16384", help="comma-separated dictionary sizes")
    p.add_argument("--max-docs", type=int, default=5000, help="random corpus subset (seed 0)")
    p.add_argument("--samples", type=int, default=1_000_000, help="training samples per variant")
    p.add_argument("--report", default=str(REPORT))
    args = p.parse_args(argv)
    import torch

    args.threads_note = f"{torch.get_num_threads()} torch threads"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for d_sae in [int(s) for s in args.sizes.split(",")]:
        quality = train(work, d_sae, args.samples, args.max_docs)
        log.info("d_sae %d: %s", d_sae, quality)
        sae_dir = work / f"sae-{d_sae}"
        desc = describe(work, sae_dir)
        log.info(
            "d_sae %d: %d described, median %.2f, %d >= 0.75",
            d_sae,
            desc["described"],
            desc["median_fidelity"],
            desc["n_good"],
        )
        ax = axes(work, sae_dir)
        log.info("d_sae %d: axes guided mean %.2f, research mean %.2f", d_sae, ax["guided_mean"], ax["research_mean"])
        rows.append({"name": f"{d_sae // 1024}k", "quality": quality, "describe": desc, "axes": ax})
    command = "python benchmarks/sae_size.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(rows, args, command)
    report = Path(args.report)
    if report.exists() and "\n## Verdict" in report.read_text():
        text += "\n## Verdict" + report.read_text().split("\n## Verdict", 1)[1]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text, encoding="utf-8")
    log.info("wrote %s", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
