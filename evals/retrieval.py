"""Property retrieval and targeted clustering: SAE latents against dense MiniLM embeddings, same documents.

Retrieval: each planted property, phrased as a query, ranks A∪B of one planted case; the planted
documents are the relevant ones. The SAE ranks only documents where a chosen latent fires; the
rest follow in a seeded random order (a random tie-break, not the row order, which would put the
planted documents last). Clustering: documents are split in two along an axis (SAE: latents whose
labels match the axis; dense: k-means on sentence embeddings, which cannot be told the axis) and
compared with the true split by adjusted Rand index.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from evals.benchmark import Case, rng_for
from evals.metrics import adjusted_rand, average_precision, ndcg_at_k

if TYPE_CHECKING:
    from saescope.workspace import Workspace


class RetrievalScore(BaseModel):
    """Average precision and nDCG@10 of SAE and dense retrieval for one property."""

    case_id: str
    prop: str
    kind: str
    query: str
    n_docs: int
    n_relevant: int
    random_ap: float = Field(description="expected AP of a random ranking: n_relevant / n_docs")
    sae_ap: float
    sae_ndcg10: float
    dense_ap: float
    dense_ndcg10: float
    sae_ranked: int = Field(description="documents the SAE scored above zero (the rest are in random order)")
    sae_latents: list[str] = Field(description="labels of the latents chosen for the query")
    sae_seconds: float
    dense_seconds: float = Field(description="encoding every document and the query, then ranking")


class ClusterScore(BaseModel):
    """Adjusted Rand index of SAE and dense clustering against a known two-way split."""

    case_id: str
    axis: str
    n_docs: int
    sae_ari: float
    dense_ari: float
    sae_unassigned: int = Field(description="documents where no selected latent fires (one more group for ARI)")
    seconds: float


def full_order(ranked: list[str], all_ids: list[str], rng: np.random.Generator) -> list[str]:
    """``ranked`` followed by every other id of ``all_ids`` in random order."""
    seen = set(ranked)
    rest = [d for d in all_ids if d not in seen]
    return ranked + [rest[int(i)] for i in rng.permutation(len(rest))]


def retrieval_score(ws: Workspace, dataset: str, case: Case, *, sae: str | None, seed: int) -> RetrievalScore:
    """Rank A∪B of ``case`` for its property's query, by SAE latents and by dense similarity."""
    from saescope import analyses as an
    from saescope.errors import InputError
    from saescope.ops.analyses import rank_by_property
    from saescope.ops.docsets import DocSet, resolve
    from saescope.ops.encoder import encode

    r = resolve(ws, DocSet(dataset, f"{case.column} != ''", sae))
    all_ids = [str(d) for d in r.doc_ids]
    query = str(case.query)
    start = time.perf_counter()
    try:
        res = rank_by_property(ws, r, query, top_k=len(all_ids))
        sae_ids, labels = [d.doc_id for d in res.sae_ranking.docs], [p.label for p in res.latents.latents]
    except InputError:  # no latent matches the query: the SAE ranks nothing
        sae_ids, labels = [], []
    sae_seconds = time.perf_counter() - start
    texts = r.texts(ws)
    start = time.perf_counter()
    dense = an.rank_dense(encode(texts), encode([query])[0], top_k=len(all_ids), doc_ids=r.doc_ids)
    dense_seconds = time.perf_counter() - start
    relevant = set(case.positives)
    sae_order = full_order(sae_ids, all_ids, rng_for(seed, "retrieval", case.case_id))
    sae_rel = [d in relevant for d in sae_order]
    dense_rel = [d.doc_id in relevant for d in dense.docs]
    n_rel = len(relevant & set(all_ids))
    return RetrievalScore(
        case_id=case.case_id,
        prop=str(case.prop),
        kind=str(case.kind),
        query=query,
        n_docs=len(all_ids),
        n_relevant=n_rel,
        random_ap=n_rel / len(all_ids),
        sae_ap=average_precision(sae_rel, n_rel),
        sae_ndcg10=ndcg_at_k(sae_rel, 10, n_rel),
        dense_ap=average_precision(dense_rel, n_rel),
        dense_ndcg10=ndcg_at_k(dense_rel, 10, n_rel),
        sae_ranked=len(sae_ids),
        sae_latents=labels,
        sae_seconds=sae_seconds,
        dense_seconds=dense_seconds,
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
        sae_assign, unassigned = sae_c.assignment, sae_c.n_unassigned
    except InputError:
        sae_assign, unassigned = [-1] * len(ids), len(ids)
    dense_c = cluster_resolved(ws, r, dense=True, k=2, seed=seed)
    return ClusterScore(
        case_id=case.case_id,
        axis=axis,
        n_docs=len(ids),
        sae_ari=adjusted_rand(truth, sae_assign),
        dense_ari=adjusted_rand(truth, dense_c.assignment),
        sae_unassigned=unassigned,
        seconds=time.perf_counter() - start,
    )
