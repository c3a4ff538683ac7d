"""``saescope demo``: ingest the shipped demo corpus, embed it with the default, and show the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from saescope.store.ingest import IngestOptions, read_documents
from saescope.workspace import Workspace

DEMO_CORPUS = Path(__file__).resolve().parent / "data" / "demo" / "reviews.jsonl.gz"
DEMO_NAME = "demo-reviews"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_demo(ws: Workspace, *, as_json: bool = False, show_docs: int = 3, k: int = 8) -> int:
    """Ingest 400 Rotten Tomatoes snippets (fresh / rotten reviews and plot summaries), embed, summarise."""
    frame, _ = read_documents(DEMO_CORPUS, IngestOptions(id_column="id"))
    ws.store.create(DEMO_NAME, frame, source=str(DEMO_CORPUS), overwrite=True)
    if not as_json:
        _say(
            f"Ingested {len(frame)} documents into {DEMO_NAME!r}: "
            + ", ".join(f"{n} {c}" for c, n in frame["category"].value_counts().items())
        )
        _say("Embedding with the default reader (SmolLM2-135M-Instruct, block 15) and the shipped TopK SAE...")
    manifest = ws.embed(DEMO_NAME)
    emb, matrix = ws.matrix(DEMO_NAME)
    book = ws.labels(ws.sae_of(emb))
    s = manifest.stats
    doc_freq = (matrix > 0).sum(axis=0).A1 / matrix.shape[0]
    examples: list[dict[str, Any]] = []
    for cat in ("fresh", "rotten", "plot"):
        rows = frame.index[frame["category"] == cat][:1].tolist()
        for row in rows[:show_docs]:
            vec = matrix.getrow(row)
            # Rank by activation weighted by rarity, so shared, generic latents do not crowd the list.
            score = vec.data * -np.log(doc_freq[vec.indices] + 1e-9)
            order = vec.indices[(-score).argsort(kind="stable")][:k]
            acts = dict(zip(vec.indices.tolist(), vec.data.tolist(), strict=True))
            examples.append(
                {
                    "doc_id": frame["doc_id"].iloc[row],
                    "category": cat,
                    "text": frame["text"].iloc[row],
                    "n_active": int(vec.nnz),
                    "features": [
                        {
                            "latent": int(i),
                            "activation": round(acts[int(i)], 2),
                            "in_docs": round(float(doc_freq[i]), 3),
                            "label": book.text(int(i)),
                        }
                        for i in order
                    ],
                }
            )
    from saescope import queries

    diff = queries.diff(
        ws,
        queries.DocSet(DEMO_NAME, "category == 'fresh'"),
        queries.DocSet(DEMO_NAME, "category == 'rotten'"),
        top_k=10,
    )
    plots = queries.diff(
        ws,
        queries.DocSet(DEMO_NAME, "category == 'plot'"),
        queries.DocSet(DEMO_NAME, "category != 'plot'"),
        top_k=8,
        direction="a",
    )
    if as_json:
        _say(
            json.dumps(
                {
                    "dataset": DEMO_NAME,
                    "stats": s,
                    "examples": examples,
                    "diff_fresh_vs_rotten": diff.model_dump(mode="json"),
                    "diff_plot_vs_reviews": plots.model_dump(mode="json"),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    _say(
        f"Active latents per document: mean {s['active_latents_mean']:.1f} (sd {s['active_latents_std']:.1f}, "
        f"median {s['active_latents_median']:.0f}) of {matrix.shape[1]}; {int(s['tokens_total']):,} tokens read."
    )
    for ex in examples:
        _say()
        text = ex["text"].replace("\n", " ")
        _say(f"[{ex['category']}] {ex['doc_id']}: {text[:150]}{'...' if len(text) > 150 else ''}")
        _say(f"  {ex['n_active']} active latents; most distinctive:")
        for f in ex["features"]:
            _say(f"    #{f['latent']:<5} act {f['activation']:6.2f}  in {f['in_docs']:6.1%} of docs  {f['label'][:70]}")
    _say()
    _say("Dataset diff: fresh (positive) vs rotten (negative) reviews")
    _say(diff.to_text())
    _say()
    _say("Dataset diff: plot summaries vs reviews (latents more frequent in plot summaries)")
    _say(plots.to_text())
    return 0
