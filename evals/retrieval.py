"""Property retrieval and targeted clustering: SAE latents against dense MiniLM embeddings, same documents.

Retrieval: each planted property, phrased as a query, ranks A∪B of one planted case; the planted
documents are the relevant ones. Five methods (:data:`METHODS`): the research recipe (``sae-research``),
saescope's label-and-context matching (``sae``), latents whose firing correlates with a guide (dense
similarity plus the best-matching latent by description: ``sae-guided``), ``sae``, ``sae-guided`` and dense fused by reciprocal rank (``hybrid``), and dense MiniLM
cosine. An SAE method ranks only documents where a chosen latent fires;
the rest follow in a seeded random order (a random tie-break, not the row order, which would put the
planted documents last). Clustering: documents are split in two along an axis (SAE: latents whose
labels match the axis; dense: k-means on sentence embeddings, which cannot be told the axis) and
compared with the true split by adjusted Rand index.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
from pydantic import BaseModel, Field

from evals.benchmark import PLAIN_CLASS, Case, rng_for
from evals.metrics import adjusted_rand, average_precision, ndcg_at_k

if TYPE_CHECKING:
    from saescope.ops.docsets import Resolved
    from saescope.workspace import Workspace


METHODS: tuple[str, ...] = ("sae-research", "sae", "sae-guided", "hybrid", "dense")
"""The retrieval methods compared, as ``rank_by_property`` names them."""


class MethodOrder(BaseModel):
    """One method's full ranking of a document set for a query."""

    method: str
    order: list[str] = Field(description="every document id, best first (unscored ones in a seeded random order)")
    scored: int = Field(description="documents the method scored above zero")
    latents: list[str] = Field(description="labels of the latents chosen (none for dense)")
    seconds: float


class RetrievalScore(BaseModel):
    """Average precision and nDCG@10 of each retrieval method for one property."""

    case_id: str
    prop: str
    kind: str
    query: str
    n_docs: int
    n_relevant: int
    random_ap: float = Field(description="expected AP of a random ranking: n_relevant / n_docs")
    sae_ap: float = Field(description="sae: latents matched on labels and activating contexts")
    sae_ndcg10: float
    dense_ap: float
    dense_ndcg10: float
    research_ap: float | None = Field(default=None, description="sae-research: the arXiv 2512.10092 recipe")
    research_ndcg10: float | None = None
    hybrid_ap: float | None = Field(
        default=None, description="hybrid: sae (and, since sae-guided exists, sae-guided) and dense fused by RRF"
    )
    hybrid_ndcg10: float | None = None
    guided_ap: float | None = Field(
        default=None, description="sae-guided: latents whose firing correlates with the dense + label guide"
    )
    guided_ndcg10: float | None = None
    sae_ranked: int = Field(description="documents the SAE scored above zero (the rest are in random order)")
    sae_latents: list[str] = Field(description="labels of the latents chosen for the query")
    sae_seconds: float
    dense_seconds: float = Field(description="ranking by the cached dense vectors of the documents and the query")


def method_orders(ws: Workspace, r: Resolved, query: str, *, seed: int, key: str) -> dict[str, MethodOrder]:
    """Each of :data:`METHODS` ranking every document of ``r`` for ``query``; a method that finds no latent
    ranks nothing (all documents follow in a seeded random order, ``key`` naming the stream)."""
    from saescope.errors import InputError
    from saescope.ops.analyses import rank_by_property

    all_ids = [str(d) for d in r.doc_ids]
    out = {}
    for method in METHODS:
        start = time.perf_counter()
        try:
            res = rank_by_property(ws, r, query, method=method, top_k=len(all_ids))  # type: ignore[arg-type]
            ids = [d.doc_id for d in res.ranking.docs]
            labels = [p.label for p in res.latents.latents]
        except InputError:  # no latent matches the query: the method ranks nothing
            ids, labels = [], []
        out[method] = MethodOrder(
            method=method,
            order=full_order(ids, all_ids, rng_for(seed, key, method)),
            scored=len(ids),
            latents=labels,
            seconds=time.perf_counter() - start,
        )
    return out


class PositivesScore(BaseModel):
    """AP of ``sae`` given a few positive example documents, against ``sae`` and dense without them, all over
    the documents that are not examples."""

    case_id: str
    n_positives: int
    sae_ap: float = Field(description="sae with the query only")
    sae_positives_ap: float = Field(description="sae with the query and the positive examples")
    examples_only_ap: float = Field(description="sae with the positive examples only (empty query)")
    dense_ap: float
    dense_examples_ap: float = Field(
        default=float("nan"), description="dense, the query plus the mean of the examples' vectors (Rocchio)"
    )


def positives_score(
    ws: Workspace, dataset: str, case: Case, *, n_positives: int, sae: str | None, seed: int
) -> PositivesScore:
    """Draw ``n_positives`` of ``case``'s planted documents (seeded) as examples and rank A∪B without them."""
    from saescope.errors import InputError
    from saescope.ops.analyses import rank_by_property
    from saescope.ops.docsets import DocSet, resolve

    r = resolve(ws, DocSet(dataset, f"{case.column} != ''", sae))
    all_ids = [str(d) for d in r.doc_ids]
    relevant = sorted(set(case.positives) & set(all_ids))
    rng = rng_for(seed, "retrieval-positives", case.case_id)
    examples = [relevant[int(i)] for i in rng.choice(len(relevant), size=n_positives, replace=False)]
    rest = [d for d in all_ids if d not in set(examples)]
    n_rel = len(relevant) - n_positives

    def ap(method: str, query: str, positives: list[str]) -> float:
        try:
            res = rank_by_property(ws, r, query, method=method, positives=positives, top_k=len(all_ids))  # type: ignore[arg-type]
            ids = [d.doc_id for d in res.ranking.docs if d.doc_id not in set(examples)]
        except InputError:
            ids = []
        order = full_order(ids, rest, rng_for(seed, "retrieval-positives", case.case_id, method, str(bool(query))))
        return average_precision([d in set(relevant) for d in order], n_rel)

    from saescope import analyses as an
    from saescope.ops.encoder import dataset_vectors, encode

    query = str(case.query)
    vectors = dataset_vectors(ws, dataset)[r.rows]
    row_of = {d: i for i, d in enumerate(all_ids)}
    rocchio = encode([query])[0] + vectors[[row_of[d] for d in examples]].mean(axis=0)
    dense_ex = an.rank_dense(vectors, rocchio, top_k=len(all_ids), doc_ids=r.doc_ids)
    dense_ex_ids = [d.doc_id for d in dense_ex.docs if d.doc_id not in set(examples)]
    return PositivesScore(
        dense_examples_ap=average_precision([d in set(relevant) for d in dense_ex_ids], n_rel),
        case_id=case.case_id,
        n_positives=n_positives,
        sae_ap=ap("sae", query, []),
        sae_positives_ap=ap("sae", query, examples),
        examples_only_ap=ap("sae", "", examples),
        dense_ap=ap("dense", query, []),
    )


class ClusterScore(BaseModel):
    """Adjusted Rand index of SAE and dense clustering against a known two-way split."""

    case_id: str
    axis: str
    n_docs: int
    sae_ari: float
    dense_ari: float
    sae_unassigned: int = Field(description="documents where no selected latent fires (one more group for ARI)")
    seconds: float
    guided_ari: float | None = Field(
        default=None,
        description="cluster --classes: latents guided by the dense similarity to each class and the firing of "
        "the latents whose descriptions match it",
    )
    guided_dense_ari: float | None = Field(
        default=None, description="cluster --classes --guide dense: the dense similarity alone as the guide"
    )
    classes: list[str] = Field(default_factory=list, description="the two classes given to the guided clustering")


def full_order(ranked: list[str], all_ids: list[str], rng: np.random.Generator) -> list[str]:
    """``ranked`` followed by every other id of ``all_ids`` in random order."""
    seen = set(ranked)
    rest = [d for d in all_ids if d not in seen]
    return ranked + [rest[int(i)] for i in rng.permutation(len(rest))]


def retrieval_score(ws: Workspace, dataset: str, case: Case, *, sae: str | None, seed: int) -> RetrievalScore:
    """Rank A∪B of ``case`` for its property's query by each of :data:`METHODS`."""
    from saescope.ops.docsets import DocSet, resolve

    r = resolve(ws, DocSet(dataset, f"{case.column} != ''", sae))
    all_ids = [str(d) for d in r.doc_ids]
    orders = method_orders(ws, r, str(case.query), seed=seed, key=f"retrieval-{case.case_id}")
    relevant = set(case.positives)
    n_rel = len(relevant & set(all_ids))
    ap = {m: average_precision([d in relevant for d in o.order], n_rel) for m, o in orders.items()}
    ndcg = {m: ndcg_at_k([d in relevant for d in o.order], 10, n_rel) for m, o in orders.items()}
    return RetrievalScore(
        case_id=case.case_id,
        prop=str(case.prop),
        kind=str(case.kind),
        query=str(case.query),
        n_docs=len(all_ids),
        n_relevant=n_rel,
        random_ap=n_rel / len(all_ids),
        sae_ap=ap["sae"],
        sae_ndcg10=ndcg["sae"],
        dense_ap=ap["dense"],
        dense_ndcg10=ndcg["dense"],
        research_ap=ap["sae-research"],
        research_ndcg10=ndcg["sae-research"],
        hybrid_ap=ap["hybrid"],
        hybrid_ndcg10=ndcg["hybrid"],
        guided_ap=ap["sae-guided"],
        guided_ndcg10=ndcg["sae-guided"],
        sae_ranked=orders["sae"].scored,
        sae_latents=orders["sae"].latents,
        sae_seconds=orders["sae"].seconds,
        dense_seconds=orders["dense"].seconds,
    )


def cluster_score(
    ws: Workspace, dataset: str, case: Case, axis: str, *, side_b_only: bool, sae: str | None, seed: int
) -> ClusterScore:
    """Two clusters along ``axis``: of A∪B against the sides (``side_b_only=False``), or of B against
    planted / not planted."""
    from saescope.errors import InputError
    from saescope.ops.analyses import cluster_resolved
    from saescope.ops.docsets import DocSet, resolve

    where = f"{case.column} == 'b'" if side_b_only else f"{case.column} != ''"
    r = resolve(ws, DocSet(dataset, where, sae))
    ids = [str(d) for d in r.doc_ids]
    positives = set(case.positives)
    truth = [str(d in positives) for d in ids] if side_b_only else [str(v) for v in r.meta[case.column].to_numpy()]
    start = time.perf_counter()
    try:
        sae_c = cluster_resolved(ws, r, axis=axis, k=2, seed=seed)
        # documents where no axis latent fires join the nearest cluster, not a cluster of their own
        sae_assign, unassigned = sae_c.placed, sae_c.n_unassigned
    except InputError:
        sae_assign, unassigned = [-1] * len(ids), len(ids)
    dense_c = cluster_resolved(ws, r, dense=True, k=2, seed=seed)
    classes = list(case.classes) or [str(case.query), PLAIN_CLASS]
    guided: dict[str, list[int]] = {}
    for guide in ("both", "dense"):
        try:
            guided[guide] = cluster_resolved(ws, r, classes=classes, guide=guide, seed=seed).placed
        except InputError:  # refused (no latent follows the classes): scored as one cluster
            guided[guide] = [0] * len(ids)
    return ClusterScore(
        case_id=case.case_id,
        axis=axis,
        n_docs=len(ids),
        sae_ari=adjusted_rand(truth, sae_assign),
        dense_ari=adjusted_rand(truth, dense_c.assignment),
        sae_unassigned=unassigned,
        seconds=time.perf_counter() - start,
        guided_ari=adjusted_rand(truth, guided["both"]),
        guided_dense_ari=adjusted_rand(truth, guided["dense"]),
        classes=classes,
    )


class _HasAps(Protocol):
    random_ap: float
    sae_ap: float
    dense_ap: float
    research_ap: float | None
    hybrid_ap: float | None
    guided_ap: float | None


def method_aps(rows: Sequence[_HasAps]) -> dict[str, list[float]]:
    """Each method's AP per property (a method missing from older records is left out)."""
    cols: dict[str, list[float | None]] = {
        "sae-research": [r.research_ap for r in rows],
        "sae": [r.sae_ap for r in rows],
        "sae-guided": [r.guided_ap for r in rows],
        "hybrid": [r.hybrid_ap for r in rows],
        "dense": [r.dense_ap for r in rows],
    }
    return {m: [float(v) for v in vs if v is not None] for m, vs in cols.items() if all(v is not None for v in vs)}


def retrieval_headline(rows: Sequence[_HasAps]) -> str:
    """Mean AP of every method, its ratio to dense, and on how many properties it beats dense."""
    aps = method_aps(rows)
    dense = aps["dense"]
    d_mean = float(np.mean(dense))
    parts = []
    for m, vs in aps.items():
        if m == "dense":
            continue
        wins = sum(a > b for a, b in zip(vs, dense, strict=True))
        ratio = f"{np.mean(vs) / d_mean:.2f}× dense" if d_mean > 0 else "dense 0"
        parts.append(f"{m} {np.mean(vs):.2f} ({ratio}, above dense on {wins}/{len(vs)})")
    return (
        f"mean AP over {len(rows)} properties: " + "; ".join(parts) + f"; dense MiniLM {d_mean:.2f}; random "
        f"{np.mean([r.random_ap for r in rows]):.2f}"
    )


def retrieval_markdown(rows: Sequence[RetrievalScore], command: str) -> str:
    """A report of planted-property retrieval alone: the headline and one row per property."""
    lines = [
        "# Planted-property retrieval: sae-research, sae, sae-guided, hybrid, dense",
        "",
        f"`{command}`",
        "",
        retrieval_headline(rows) + ".",
        "",
        "| property | kind | query | relevant/docs | AP sae-research | AP sae | AP sae-guided | AP hybrid | AP dense | "
        "sae latents (first 3) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.research_ap, r.sae_ap, r.guided_ap, r.hybrid_ap, r.dense_ap]
        lines.append(
            f"| {r.prop} | {r.kind} | {r.query} | {r.n_relevant}/{r.n_docs} | "
            + " | ".join("–" if c is None else f"{c:.3f}" for c in cells)
            + " | "
            + "; ".join(x[:30].replace("|", "/") for x in r.sae_latents[:3])
            + " |"
        )
    return "\n".join(lines) + "\n"


def positives_markdown(rows: Sequence[PositivesScore], command: str) -> str:
    """A report of retrieval given positive examples: AP over the documents that are not examples."""
    n = rows[0].n_positives if rows else 0
    cols = ("sae_ap", "sae_positives_ap", "examples_only_ap", "dense_ap", "dense_examples_ap")
    means = [float(np.mean([getattr(r, c) for r in rows])) for c in cols]
    lines = [
        f"# Planted-property retrieval given {n} positive examples",
        "",
        f"`{command}`",
        "",
        "AP over the documents that are not examples. Mean: "
        + ", ".join(f"{c.removesuffix('_ap')} {m:.3f}" for c, m in zip(cols, means, strict=True))
        + ".",
        "",
        "| case | sae (query) | sae (query + examples) | sae (examples only) | dense (query) | dense (query + examples) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.case_id} | " + " | ".join(f"{getattr(r, c):.3f}" for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Planted-property retrieval alone, on a home where ``evals.run`` already embedded the benchmark."""
    import argparse
    import json
    import sys
    from pathlib import Path

    from evals.benchmark import BenchmarkConfig, build
    from evals.run import _one_per_property
    from saescope.workspace import Workspace

    p = argparse.ArgumentParser(prog="python -m evals.retrieval", description=main.__doc__)
    p.add_argument("--home", required=True, help="data root where evals.run embedded the benchmark")
    p.add_argument("--out", required=True, help="folder for report.md and results.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fraction", type=float, default=0.25, help="each property's case nearest this planted share")
    p.add_argument("--positives", type=int, default=0, help="also score sae given this many planted examples")
    args = p.parse_args(argv)
    bench = build(BenchmarkConfig(seed=args.seed))
    ws = Workspace(Path(args.home))
    name = f"evals-{bench.fingerprint()}"
    if name not in ws.store.names():
        p.error(f"{name} is not in {args.home}: run python -m evals.run --home {args.home} first")
    rows, with_examples = [], []
    for case in _one_per_property(bench.cases, args.fraction):
        if args.positives:
            with_examples.append(positives_score(ws, name, case, n_positives=args.positives, sae=None, seed=args.seed))
            sys.stderr.write(f"{with_examples[-1]!r}\n")
            continue
        rows.append(retrieval_score(ws, name, case, sae=None, seed=args.seed))
        sys.stderr.write(f"{case.case_id}: " + retrieval_headline(rows[-1:]) + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m evals.retrieval " + " ".join(sys.argv[1:] if argv is None else argv)
    if with_examples:
        (out / "positives.md").write_text(positives_markdown(with_examples, command), encoding="utf-8")
        (out / "positives.json").write_text(
            json.dumps([r.model_dump() for r in with_examples], indent=1), encoding="utf-8"
        )
        return 0
    (out / "report.md").write_text(retrieval_markdown(rows, command), encoding="utf-8")
    (out / "results.json").write_text(json.dumps([r.model_dump() for r in rows], indent=1), encoding="utf-8")
    sys.stderr.write(retrieval_headline(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
