"""Document sets made concrete: the one resolver every operation uses to turn names and filters into rows.

A :class:`DocSet` names documents of one dataset (optionally filtered on metadata); :func:`resolve` gives
their rows, matrix, ids and metadata, :func:`resolve_rows` the same with the matrix read only when first
used (a store larger than memory is counted shard by shard instead, see :mod:`saescope.ops.streamed`).
:func:`resolve_sides` does the same for the two sides of a
comparison (:class:`~saescope.ops.requests.DiffSpec`: two sets, pairs matched by a key, or one value of a
column against the rest), so that a diff, a hypothesis summary and a verification count the same documents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from saescope import analyses as an
from saescope.errors import InputError, clip
from saescope.labels import LabelBook
from saescope.ops.requests import DiffSpec
from saescope.store.dataset import Embedding
from saescope.workspace import Workspace

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DocSet:
    """Documents of one dataset, optionally filtered on its metadata (``model == 'gpt-4o'``)."""

    dataset: str
    where: str | None = None
    sae: str | None = None
    """SAE id or embedding key, when the dataset has several embeddings."""

    @property
    def name(self) -> str:
        return f"{self.dataset}[{self.where}]" if self.where else self.dataset


@dataclass
class Resolved:
    """A document set made concrete: its rows, ids and metadata, and its dataset's matrix (read on first use)."""

    docset: DocSet
    embedding: Embedding
    rows: IntArray
    doc_ids: np.ndarray
    meta: pd.DataFrame
    n_docs: int
    """Documents in the whole dataset (rows of its matrix)."""
    load: Callable[[], sp.csr_matrix] = field(repr=False)
    _matrix: sp.csr_matrix | None = field(default=None, repr=False)
    _X: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def matrix(self) -> sp.csr_matrix:
        """The whole dataset's matrix, read (or taken from the workspace's cache) on first use.

        Raises:
            InputError: the embedding changed since the rows were resolved, or a shard is unreadable.
        """
        if self._matrix is None:
            matrix = self.load()
            if matrix.shape[0] != self.n_docs:
                raise _changed(self.docset.dataset, self.n_docs, matrix.shape[0])
            self._matrix = matrix
        return self._matrix

    @property
    def X(self) -> sp.csr_matrix:
        """The rows of this set (the matrix itself when the set is the whole dataset)."""
        if self._X is None:
            matrix = self.matrix
            self._X = matrix[self.rows] if len(self.rows) != matrix.shape[0] else matrix
        return self._X

    def column(self, name: str) -> pd.Series:
        """The metadata column ``name`` of these documents (``doc_id`` included).

        Raises:
            InputError: the dataset has no such column.
        """
        if name not in self.meta.columns:
            columns = [c for c in self.meta.columns if c != "doc_id"]
            raise InputError(f"{self.docset.dataset} has no column {clip(name)!r}; columns: {columns}")
        return self.meta[name]

    def texts(self, ws: Workspace) -> list[str]:
        """The documents' texts, in row order."""
        frame = ws.dataset(self.docset.dataset).documents(["text"])
        return [str(t) for t in frame["text"].to_numpy()[self.rows]]


def labels_for(ws: Workspace, emb: Embedding) -> LabelBook:
    """The labels of the SAE an embedding was made with."""
    return ws.labels(ws.sae_of(emb))


def _changed(dataset: str, n_meta: int, n_rows: int) -> InputError:
    return InputError(
        f"{dataset} changed while it was being read ({n_meta} documents, {n_rows} embedded "
        "rows): another process is re-ingesting or re-embedding it; call again when it is done"
    )


def resolve(ws: Workspace, docset: DocSet, *, min_docs: int = 1) -> Resolved:
    """Rows of ``docset`` in its dataset's embedding, with the dataset's matrix read at once.

    Raises:
        NotFoundError: unknown dataset or no embedding.
        InputError: a bad filter, or fewer than ``min_docs`` documents match.
    """
    emb, matrix = ws.matrix(docset.dataset, docset.sae)
    return _resolve(ws, docset, emb, matrix.shape[0], min_docs, matrix)


def resolve_rows(ws: Workspace, docset: DocSet, *, min_docs: int = 1) -> Resolved:
    """As :func:`resolve`, but the matrix is read only when ``matrix`` or ``X`` is first used: the rows are
    checked against the manifest's document count, so a store larger than memory can be counted shard by shard.

    Raises:
        NotFoundError: unknown dataset or no complete embedding.
        InputError: a bad filter, or fewer than ``min_docs`` documents match.
    """
    emb = ws.embedding(docset.dataset, docset.sae)
    return _resolve(ws, docset, emb, emb.manifest.n_docs, min_docs, None)


def _resolve(
    ws: Workspace, docset: DocSet, emb: Embedding, n_rows: int, min_docs: int, matrix: sp.csr_matrix | None
) -> Resolved:
    meta = ws.dataset(docset.dataset).metadata()
    if len(meta) != n_rows:
        raise _changed(docset.dataset, len(meta), n_rows)
    rows = an.select_rows(meta, docset.where) if docset.where is not None else np.arange(len(meta))
    if len(rows) < min_docs:
        columns = [c for c in meta.columns if c != "doc_id"]
        raise InputError(
            f"{docset.name} selects {len(rows)} document(s); at least {min_docs} needed. "
            f"Check the filter against the columns {columns}"
        )
    rows = np.asarray(rows, dtype=np.int64)

    def load() -> sp.csr_matrix:
        return ws.matrix(docset.dataset, emb.key)[1]

    return Resolved(docset, emb, rows, meta["doc_id"].to_numpy()[rows], meta.iloc[rows], n_rows, load, matrix)


def same_space(*sets: Resolved) -> None:
    """Raises:
    InputError: the sets were embedded with different SAEs or pooling settings.
    """
    specs = {
        (s.embedding.manifest.spec.sae.get("id"), str(sorted(s.embedding.manifest.spec.config.items()))) for s in sets
    }
    if len(specs) > 1:
        raise InputError(
            "these document sets were embedded with different SAEs or pooling settings, so their latents "
            f"are not comparable: {sorted(specs)}. Embed them with the same settings."
        )


@dataclass
class Side:
    """One side of a comparison: its documents' rows in their dataset and their SAE vectors (read on first use)."""

    name: str
    source: Resolved = field(repr=False)
    """The resolved set the side was taken from (its dataset, embedding and matrix)."""
    rows: IntArray
    doc_ids: np.ndarray
    keys: np.ndarray | None = None
    """Pair keys in paired mode (what a paired diff's examples name), else None (examples are doc ids)."""
    _X: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def dataset(self) -> str:
        return self.source.docset.dataset

    @property
    def X(self) -> sp.csr_matrix:
        """The side's rows of its dataset's matrix (the matrix is read on first use).

        Raises:
            InputError: as :attr:`Resolved.matrix`.
        """
        if self._X is None:
            self._X = self.source.matrix[self.rows]
        return self._X

    def doc_ids_for(self, names: list[str]) -> list[str]:
        """Document ids for example names from a diff (pair keys in paired mode, doc ids otherwise)."""
        if self.keys is None:
            return names
        lookup = dict(zip(self.keys.astype(str), self.doc_ids.astype(str), strict=True))
        return [lookup[n] for n in names if n in lookup]


@dataclass
class Sides:
    """Both sides of a comparison, in one SAE's space; in one_vs_many, B is every other value together."""

    spec: DiffSpec
    a: Side
    b: Side
    labels: LabelBook
    groups: dict[str, Side] = field(default_factory=dict)
    """one_vs_many only: each other value of the column on its own, in sorted order."""

    @property
    def d_sae(self) -> int:
        return int(self.a.source.embedding.manifest.d_sae)

    def check_latents(self, latents: list[int]) -> None:
        """Raises:
        InputError: no latents, or one outside the SAE.
        """
        if not latents:
            raise InputError("give at least one latent id (from diff_datasets or search_features)")
        check_latents(latents, self.d_sae)


def check_latents(latents: Sequence[int], d_sae: int) -> None:
    """Raises:
    InputError: a latent id outside the SAE.
    """
    bad = [i for i in latents if not 0 <= i < d_sae]
    if bad:
        raise InputError(f"latents {[clip(str(i), 40) for i in bad[:5]]} are outside the SAE (0..{d_sae - 1})")


def _side(name: str, r: Resolved, idx: IntArray, keys: np.ndarray | None = None) -> Side:
    return Side(name, r, r.rows[idx], r.doc_ids[idx], keys)


def key_text(values: pd.Series) -> pd.Series:
    """Values as the text that matches them: whole numbers without a decimal point, so that a column read as
    integers in one dataset and as floats in another (where a value is missing) still pairs, and a
    target written ``1`` finds the value ``1.0``."""
    if pd.api.types.is_float_dtype(values):
        finite = np.isfinite(values.to_numpy(dtype=np.float64))
        whole = finite & (np.abs(values.to_numpy(dtype=np.float64)) < 2**53)
        whole &= np.floor(values.to_numpy(dtype=np.float64)) == values.to_numpy(dtype=np.float64)
        text = values.astype(str)
        text[whole] = values[whole].astype(np.int64).astype(str)
        return text
    return values.astype(str)


def _pair_index(r: Resolved, key: str) -> pd.Series:
    column = r.column(key)
    present = column.notna().to_numpy()
    if not present.all():
        log.warning("%s: %d documents have no %r and are left unpaired", r.docset.name, int((~present).sum()), key)
    values = key_text(column[present])
    repeated = values[values.duplicated()]
    if len(repeated):
        raise InputError(
            f"{r.docset.name}: key {clip(key)!r} repeats (e.g. {repeated.iloc[0]!r}); pairs must be unique. Filter each "
            "side to one document per key (e.g. where_a=\"model == 'x'\")"
        )
    return pd.Series(np.flatnonzero(present).astype(np.int64), index=values.to_numpy())


def resolve_sides(ws: Workspace, spec: DiffSpec) -> Sides:
    """The documents of each side of ``spec``, as every comparison counts them; each side's vectors are read
    when its ``X`` is first used.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter, column or key, or an empty side.
    """
    if spec.mode == "one_vs_many":
        return _one_vs_many(ws, spec)
    ra = resolve_rows(ws, DocSet(spec.dataset_a, spec.where_a, spec.sae))
    rb = resolve_rows(ws, DocSet(spec.b, spec.where_b, spec.sae))
    same_space(ra, rb)
    if spec.mode == "paired":
        key = str(spec.pair_key)
        ka, kb = _pair_index(ra, key), _pair_index(rb, key)
        common = ka.index.intersection(kb.index, sort=False)
        if len(common) == 0:
            raise InputError(
                f"no {clip(key)!r} value is shared by {ra.docset.name} and {rb.docset.name}; nothing to pair"
            )
        keys = np.asarray(common, dtype=object)
        ia, ib = ka[common].to_numpy(), kb[common].to_numpy()
        a, b = _side(ra.docset.name, ra, ia, keys), _side(rb.docset.name, rb, ib, keys)
        return Sides(spec, a, b, labels_for(ws, ra.embedding))
    if spec.dataset_a == spec.b:
        overlap = np.intersect1d(ra.rows, rb.rows)
        if len(overlap):
            log.warning("%d documents are in both sets", len(overlap))
    a = _side(ra.docset.name, ra, np.arange(len(ra.rows)))
    b = _side(rb.docset.name, rb, np.arange(len(rb.rows)))
    return Sides(spec, a, b, labels_for(ws, ra.embedding))


def _one_vs_many(ws: Workspace, spec: DiffSpec) -> Sides:
    base = resolve_rows(ws, DocSet(spec.dataset_a, spec.where_a, spec.sae))
    column = base.column(str(spec.column))
    present = column.notna().to_numpy()
    values = np.full(len(column), "", dtype=object)
    values[present] = key_text(column[present]).to_numpy()
    target = str(spec.target)
    groups = sorted(set(values[present].tolist()))
    if target not in groups:
        raise InputError(f"{clip(str(spec.column))!r} has no value {clip(target)!r}; values: {groups[:30]}")
    others = [g for g in groups if g != target]
    if not others:
        raise InputError(f"{clip(str(spec.column))!r} has only the value {clip(target)!r}; nothing to compare against")
    if not present.all():
        log.warning("%d documents have no %r value and are left out", int((~present).sum()), spec.column)
    in_a = present & (values == target)
    in_b = present & (values != target)
    return Sides(
        spec,
        _side(target, base, np.flatnonzero(in_a)),
        _side(f"not {target}", base, np.flatnonzero(in_b)),
        labels_for(ws, base.embedding),
        groups={g: _side(g, base, np.flatnonzero(present & (values == g))) for g in others},
    )


def any_fires(X: sp.csr_matrix, latents: list[int]) -> npt.NDArray[np.bool_]:
    """For each row of ``X``, whether any of ``latents`` fires (activation > 0)."""
    sub = X[:, latents]
    return np.asarray((sub > 0).sum(axis=1)).ravel() > 0


def texts_of(ws: Workspace, dataset: str, doc_ids: list[str]) -> dict[str, str]:
    """``{doc_id: text}`` for the given ids of ``dataset`` (unknown ids are left out)."""
    if not doc_ids:
        return {}
    frame = ws.dataset(dataset).documents(["text"])
    sub = frame[frame["doc_id"].astype(str).isin(set(doc_ids))]
    return dict(zip(sub["doc_id"].astype(str), sub["text"].astype(str), strict=True))
