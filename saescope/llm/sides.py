"""The two sides of a comparison (two sets, paired documents, or one value against the rest) as matrices.

Shared by the diff tools, the hypothesis summary and verification, so that all of them count the same
documents: a :class:`DiffSpec` names the sides, :func:`run_diff` runs the matching diff and
:func:`resolve_sides` gives the rows of each side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from saescope.errors import InputError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from saescope import analyses as an
    from saescope.workspace import Workspace

DiffMode = Literal["sets", "paired", "one_vs_many"]


class DiffSpec(BaseModel):
    """Which documents are compared: A against B."""

    mode: DiffMode = Field(default="sets", description="sets, paired (matched by pair_key) or one_vs_many")
    dataset_a: str
    where_a: str | None = None
    dataset_b: str | None = Field(default=None, description="defaults to dataset_a")
    where_b: str | None = None
    pair_key: str | None = None
    column: str | None = None
    target: str | None = None
    sae: str | None = None

    def check(self) -> DiffSpec:
        """Raises:
        InputError: the arguments for the mode are missing, or set for another mode.
        """
        if self.mode == "paired" and not self.pair_key:
            raise InputError(
                "mode 'paired' needs pair_key: the metadata column that matches a document of A to "
                "one of B (e.g. a prompt id)"
            )
        if self.mode == "one_vs_many":
            if not (self.column and self.target is not None):
                raise InputError(
                    "mode 'one_vs_many' needs column and target: the documents of dataset_a whose "
                    "column equals target are compared with each other value of the column"
                )
            if self.dataset_b or self.where_b:
                raise InputError(
                    "mode 'one_vs_many' compares values of one column within dataset_a (filtered by "
                    "where_a); leave dataset_b and where_b empty"
                )
        elif self.column or self.target is not None:
            raise InputError(f"column/target only apply to mode 'one_vs_many' (mode is {self.mode!r})")
        if self.mode == "sets" and (self.dataset_b in (None, self.dataset_a)) and self.where_a == self.where_b:
            raise InputError(
                "A and B are the same documents: give dataset_b, or different where_a / where_b "
                "filters (e.g. where_a=\"label == 'x'\", where_b=\"label != 'x'\")"
            )
        return self

    @property
    def b(self) -> str:
        return self.dataset_b or self.dataset_a


def run_diff(ws: Workspace, spec: DiffSpec, **options: Any) -> an.SetDiff | an.PairedDiff | an.OneVsMany:
    """The diff for ``spec``: :func:`queries.diff`, :func:`queries.diff_paired` or :func:`queries.diff_by_column`.

    Raises:
        InputError, NotFoundError: as the query does.
    """
    from saescope import queries
    from saescope.queries import DocSet

    spec.check()
    if spec.mode == "one_vs_many":
        one = {k: v for k, v in options.items() if k != "direction"}
        if one.get("rank_by") not in (None, "effect", "p"):
            one["rank_by"] = "score"
        return queries.diff_by_column(
            ws, spec.dataset_a, str(spec.column), str(spec.target), where=spec.where_a, sae=spec.sae, **one
        )
    a, b = DocSet(spec.dataset_a, spec.where_a, spec.sae), DocSet(spec.b, spec.where_b, spec.sae)
    if spec.mode == "paired":
        return queries.diff_paired(ws, a, b, str(spec.pair_key), **options)
    return queries.diff(ws, a, b, **options)


@dataclass
class Side:
    """One side of a comparison: its documents' rows in their dataset and their SAE vectors."""

    name: str
    dataset: str
    rows: np.ndarray
    doc_ids: np.ndarray
    X: sp.csr_matrix
    keys: np.ndarray | None = None
    """Pair keys in paired mode (what a paired diff's examples name), else None (examples are doc ids)."""

    def doc_ids_for(self, names: list[str]) -> list[str]:
        """Document ids for example names from a diff (pair keys in paired mode, doc ids otherwise)."""
        if self.keys is None:
            return names
        lookup = dict(zip(self.keys.astype(str), self.doc_ids.astype(str), strict=True))
        return [lookup[n] for n in names if n in lookup]


@dataclass
class Sides:
    a: Side
    b: Side
    d_sae: int
    labels: Any

    def check_latents(self, latents: list[int]) -> None:
        """Raises:
        InputError: no latents, or one outside the SAE.
        """
        if not latents:
            raise InputError("give at least one latent id (from diff_datasets or search_features)")
        bad = [i for i in latents if not 0 <= i < self.d_sae]
        if bad:
            raise InputError(f"latents {bad} are outside the SAE (0..{self.d_sae - 1})")


def resolve_sides(ws: Workspace, spec: DiffSpec) -> Sides:
    """The documents of each side of ``spec``, as the diff of the same spec counts them.

    Raises:
        InputError, NotFoundError: unknown dataset, bad filter, column or key, or an empty side.
    """
    from saescope import queries
    from saescope.queries import DocSet

    spec.check()
    if spec.mode == "one_vs_many":
        base = queries.resolve(ws, DocSet(spec.dataset_a, spec.where_a, spec.sae))
        if spec.column not in base.meta.columns:
            raise InputError(f"{spec.dataset_a} has no column {spec.column!r}; columns: {list(base.meta.columns)}")
        values = base.meta[spec.column].astype(str).to_numpy()
        if str(spec.target) not in set(values):
            raise InputError(f"{spec.column!r} has no value {spec.target!r}; values: {sorted(set(values))[:30]}")
        X = base.X
        ia, ib = np.flatnonzero(values == str(spec.target)), np.flatnonzero(values != str(spec.target))
        if len(ib) == 0:
            raise InputError(f"{spec.column!r} has only the value {spec.target!r}; nothing to compare against")
        a = Side(str(spec.target), spec.dataset_a, base.rows[ia], base.doc_ids[ia], X[ia])
        b = Side(f"not {spec.target}", spec.dataset_a, base.rows[ib], base.doc_ids[ib], X[ib])
        return Sides(a, b, X.shape[1], queries.labels_for(ws, base.embedding))
    ra = queries.resolve(ws, DocSet(spec.dataset_a, spec.where_a, spec.sae))
    rb = queries.resolve(ws, DocSet(spec.b, spec.where_b, spec.sae))
    XA, XB = ra.X, rb.X
    ia, ib = np.arange(len(ra.rows)), np.arange(len(rb.rows))
    if spec.mode == "paired":
        key = str(spec.pair_key)
        for r in (ra, rb):
            if key not in r.meta.columns and key != "doc_id":
                raise InputError(f"{r.docset.dataset} has no column {key!r}; columns: {list(r.meta.columns)}")
        ka = {str(v): i for i, v in enumerate(ra.meta[key].to_numpy())}
        kb = {str(v): i for i, v in enumerate(rb.meta[key].to_numpy())}
        common = sorted(set(ka) & set(kb))
        if not common:
            raise InputError(f"no {key!r} value is shared by {ra.docset.name} and {rb.docset.name}; nothing to pair")
        ia, ib = np.array([ka[k] for k in common]), np.array([kb[k] for k in common])
    else:
        common = []
    if XA.shape[1] != XB.shape[1]:
        raise InputError("the two sides were embedded with different SAEs; embed them with the same one")
    keys = np.asarray(common, dtype=object) if spec.mode == "paired" else None
    a = Side(ra.docset.name, spec.dataset_a, ra.rows[ia], ra.doc_ids[ia], XA[ia], keys)
    b = Side(rb.docset.name, spec.b, rb.rows[ib], rb.doc_ids[ib], XB[ib], keys)
    return Sides(a, b, XA.shape[1], queries.labels_for(ws, ra.embedding))


def any_fires(X: sp.csr_matrix, latents: list[int]) -> np.ndarray:
    """For each row of ``X``, whether any of ``latents`` fires (activation > 0)."""
    sub = X[:, latents]
    return np.asarray((sub > 0).sum(axis=1)).ravel() > 0


def texts_of(ws: Workspace, dataset: str, doc_ids: list[str]) -> dict[str, str]:
    """``{doc_id: text}`` for the given ids of ``dataset`` (unknown ids are left out)."""
    if not doc_ids:
        return {}
    frame = ws.dataset(dataset).documents(["text"])
    wanted = set(doc_ids)
    sub = frame[frame["doc_id"].astype(str).isin(wanted)]
    return dict(zip(sub["doc_id"].astype(str), sub["text"].astype(str), strict=True))
