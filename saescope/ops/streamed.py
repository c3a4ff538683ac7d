"""Diffs, trends and co-occurrence of embeddings too big for memory, counted shard by shard.

An operation asks :func:`fits_in_memory` whether the matrices it would read fit the memory budget
(``SAESCOPE_MEMORY_BUDGET_MB``, by default half of the memory available when it is asked). If they do, it
reads them whole, as before; if not, it calls the functions here, which take the same counts one shard at a
time (:mod:`saescope.analyses.streamed`) and hand them to the same statistics, so both paths return equal
results. Streamed: diffs of two sets and of one value against the others, trends (with or without pairing)
and co-occurrence without a column; paired diffs, which need each pair's joint firing, read a chunk of pairs'
rows at a time. Metadata correlations, co-occurrence across datasets, clustering and retrieval still read
the matrix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from saescope import analyses as an
from saescope.analyses import streamed
from saescope.analyses.correlations import cooccurrence_from_counts, cooccurrence_pairs
from saescope.analyses.diff import (
    Examples,
    diff_one_vs_many_from_counts,
    diff_paired_from_counts,
    diff_sets_from_counts,
)
from saescope.analyses.trend import latent_trends_from_counts, trend_rows
from saescope.errors import InputError
from saescope.ops.docsets import Resolved, Sides
from saescope.store.dataset import Embedding

IntArray = npt.NDArray[np.int64]

BUDGET_ENV = "SAESCOPE_MEMORY_BUDGET_MB"
BUDGET_SHARE = 0.5
"""Share of the available memory an operation may fill with matrices when ``SAESCOPE_MEMORY_BUDGET_MB`` is unset."""
LOAD_FACTOR = 2.5
"""Peak memory of reading a matrix whole, in matrix sizes: the stacked shards plus each side's copy of its rows
(an ops-level sets diff of a million documents of 74 active latents peaked 1.39 GB above its baseline, 2.4 times
the 0.58 GB estimate; benchmarks/results/stream_memory.md)."""
BYTES_PER_ENTRY = 8
"""A stored activation: a float32 value and an int32 latent index."""


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (``MemAvailable`` on Linux, else free pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return 1 << 62  # unknown: trust the matrix to fit, as before the budget existed


def memory_budget() -> int:
    """Bytes an operation may fill with whole matrices: ``SAESCOPE_MEMORY_BUDGET_MB`` (0 always streams), else
    :data:`BUDGET_SHARE` of :func:`available_memory`.

    Raises:
        InputError: ``SAESCOPE_MEMORY_BUDGET_MB`` is not a whole number of megabytes >= 0.
    """
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        if not env.isdigit():
            raise InputError(f"{BUDGET_ENV} must be a whole number of megabytes (0 or more), got {env[:40]!r}")
        return int(env) << 20
    return int(available_memory() * BUDGET_SHARE)


def matrix_bytes(emb: Embedding) -> int:
    """Estimated bytes of an embedding's CSR matrix: documents x mean active latents (from the manifest's stats)
    x :data:`BYTES_PER_ENTRY`, plus the row pointers; without stats, the size of its shards on disk."""
    m = emb.manifest
    mean = m.stats.get("active_latents_mean")
    if mean is None:
        return sum(emb.shard_path(i).stat().st_size for i in range(m.n_shards) if emb.shard_path(i).exists())
    return int(m.n_docs * float(mean) * BYTES_PER_ENTRY + (m.n_docs + 1) * 8)


def fits_in_memory(*embeddings: Embedding) -> bool:
    """Whether reading these embeddings whole (each once) stays within :func:`memory_budget`.

    Raises:
        InputError: as :func:`memory_budget`.
    """
    unique = {e.path: e for e in embeddings}
    needed = sum(matrix_bytes(e) for e in unique.values()) * LOAD_FACTOR
    return needed <= memory_budget()


def _shards(r: Resolved) -> Iterable[tuple[int, sp.csr_matrix]]:
    return r.embedding.iter_shards()


def _examples(r: Resolved, rows: IntArray, d_sae: int) -> Examples:
    """A page's example finder over ``rows`` of ``r``'s embedding, reading it shard by shard."""

    def examples(latents: list[int], n: int) -> dict[int, list[int]]:
        if not latents or n <= 0:
            return {int(c): [] for c in latents}
        return streamed.top_rows(_shards(r), rows, latents, n, d_sae)

    return examples


def _side_counts(sides: Sides) -> tuple[IntArray, IntArray]:
    """Per-latent firing counts of side A and side B (one pass when both are rows of one embedding)."""
    a, b, d = sides.a, sides.b, sides.d_sae
    if a.source.embedding.path == b.source.embedding.path:
        _, counts = streamed.set_counts(_shards(a.source), [a.rows, b.rows], d)
        return counts[0], counts[1]
    _, ca = streamed.set_counts(_shards(a.source), [a.rows], d)
    _, cb = streamed.set_counts(_shards(b.source), [b.rows], d)
    return ca[0], cb[0]


def diff_sets(sides: Sides, **options: Any) -> an.SetDiff:
    """:func:`saescope.analyses.diff_sets` of two sides, counted shard by shard.

    Raises:
        InputError: as :func:`saescope.analyses.diff_sets`, or a shard does not hold the rows its manifest expects.
    """
    a, b = sides.a, sides.b
    counts_a, counts_b = _side_counts(sides)
    return diff_sets_from_counts(
        counts_a,
        len(a.rows),
        counts_b,
        len(b.rows),
        sides.labels,
        examples_a=_examples(a.source, a.rows, sides.d_sae),
        examples_b=_examples(b.source, b.rows, sides.d_sae),
        doc_ids_a=a.doc_ids,
        doc_ids_b=b.doc_ids,
        name_a=a.name,
        name_b=b.name,
        **options,
    )


def pairs_per_chunk(a: Embedding, b: Embedding) -> int:
    """How many pairs' rows (one of ``a``, one of ``b`` each) fit in :func:`memory_budget` at once; at least a
    shard's worth (a shard is held while reading anyway), so a tiny budget costs passes, not one per pair.

    Raises:
        InputError: as :func:`memory_budget`.
    """
    per_row = sum(matrix_bytes(e) / max(e.manifest.n_docs, 1) for e in (a, b)) * LOAD_FACTOR
    floor = max(a.manifest.shard_size, b.manifest.shard_size, 1)
    return max(floor, int(memory_budget() // max(per_row, 1.0)))


def diff_paired(sides: Sides, **options: Any) -> an.PairedDiff:
    """:func:`saescope.analyses.diff_paired` of two sides whose pairs are row ``i`` of each, read a chunk of
    pairs at a time (:func:`pairs_per_chunk`; every chunk is one pass over each side's shards).

    Raises:
        InputError: as :func:`saescope.analyses.diff_paired`, or a shard does not hold the rows it should.
    """
    a, b, d = sides.a, sides.b, sides.d_sae
    chunk = pairs_per_chunk(a.source.embedding, b.source.embedding)

    def shards_a() -> Iterable[tuple[int, sp.csr_matrix]]:
        return _shards(a.source)

    def shards_b() -> Iterable[tuple[int, sp.csr_matrix]]:
        return _shards(b.source)

    same = a.source.embedding.path == b.source.embedding.path

    ca, cb, both = streamed.paired_counts(shards_a, shards_b, a.rows, b.rows, d, chunk, same=same)
    found: dict[tuple[int, ...], tuple[dict[int, list[int]], dict[int, list[int]]]] = {}

    def only(side: int) -> Examples:
        def examples(latents: list[int], n: int) -> dict[int, list[int]]:
            key = (*sorted(latents), n)
            if key not in found:  # one pass finds both sides' examples
                found[key] = streamed.paired_top_only(
                    shards_a, shards_b, a.rows, b.rows, latents, n, d, chunk, same=same
                )
            return found[key][side]

        return examples

    return diff_paired_from_counts(
        len(a.rows),
        ca,
        cb,
        both,
        sides.labels,
        examples_only_a=only(0),
        examples_only_b=only(1),
        doc_ids=a.keys,
        name_a=a.name,
        name_b=b.name,
        **options,
    )


def diff_one_vs_many(sides: Sides, **options: Any) -> an.OneVsMany:
    """:func:`saescope.analyses.diff_one_vs_many` of a target side against each other group, in one counting pass.

    Raises:
        InputError: as :func:`saescope.analyses.diff_one_vs_many`, or a shard does not hold the rows it should.
    """
    target, groups = sides.a, list(sides.groups.values())
    _, counts = streamed.set_counts(_shards(target.source), [target.rows, *(g.rows for g in groups)], sides.d_sae)
    return diff_one_vs_many_from_counts(
        counts[0],
        len(target.rows),
        counts[1:],
        np.array([len(g.rows) for g in groups], dtype=np.int64),
        sides.labels,
        list(sides.groups),
        examples=_examples(target.source, target.rows, sides.d_sae),
        target_name=target.name,
        doc_ids_target=target.doc_ids,
        **options,
    )


def latent_trends(
    r: Resolved, groups: IntArray, names: list[str], labels: an.Labels, strata: IntArray | None, **options: Any
) -> an.Trend:
    """:func:`saescope.analyses.latent_trends` of ``r``'s rows, counted shard by shard.

    Raises:
        InputError: as :func:`saescope.analyses.latent_trends`, or a shard does not hold the rows it should.
    """
    d = r.embedding.manifest.d_sae
    g_idx, s_idx = trend_rows(len(r.rows), groups, len(names), strata)
    all_groups = np.full(r.n_docs, -1, dtype=np.int64)
    all_strata = np.full(r.n_docs, -1, dtype=np.int64)
    all_groups[r.rows], all_strata[r.rows] = g_idx, s_idx
    counts = streamed.group_trend_counts(_shards(r), all_groups, len(names), all_strata, d)

    def examples(rows: IntArray, latents: list[int], n: int) -> dict[int, list[int]]:
        return _examples(r, r.rows[rows], d)(latents, n)

    return latent_trends_from_counts(
        counts,
        g_idx,
        names,
        labels,
        examples=examples,
        strata=s_idx if strata is not None else None,
        doc_ids=r.doc_ids,
        **options,
    )


def latent_cooccurrence(
    r: Resolved,
    labels: an.Labels,
    *,
    min_cooc: int,
    latent: int | None = None,
    label_embeddings: npt.NDArray[np.floating[Any]] | None = None,
    **options: Any,
) -> an.Cooccurrence:
    """:func:`saescope.analyses.latent_cooccurrence` of ``r``'s rows in two passes over the shards: each latent's
    count, then the pair counts of the latents firing in at least ``min_cooc`` documents (only pairs that
    co-occur at least once are held).

    Raises:
        InputError: as :func:`saescope.analyses.latent_cooccurrence`, or a shard does not hold the rows it should.
    """
    d = r.embedding.manifest.d_sae
    if min_cooc < 1:
        raise InputError(f"min_cooc must be >= 1, got {min_cooc}")
    if latent is not None:
        an.common.check_latent(latent, d)
    _, per_set = streamed.set_counts(_shards(r), [r.rows], d)
    counts = per_set[0]
    active = np.flatnonzero(counts >= min_cooc).astype(np.int64)
    pairs: tuple[IntArray, IntArray, IntArray] = (np.zeros(0, np.int64),) * 3
    if len(active) >= 2 and (latent is None or latent in set(active.tolist())):
        C = streamed.cooccurrence_counts(_shards(r), active, d, r.rows, with_latent=latent)
        pairs = cooccurrence_pairs(C, active, min_cooc, latent)
    return cooccurrence_from_counts(
        len(r.rows),
        counts,
        pairs,
        labels,
        min_cooc=min_cooc,
        latent=latent,
        label_embeddings=label_embeddings,
        **options,
    )
