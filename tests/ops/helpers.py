"""Independent recomputations from the stored matrix and metadata, for checking what the operations return."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from tests.server.shared import Data


def matrix(data: Data, dataset: str = "reviews") -> sp.csr_matrix:
    return data.ws.matrix(dataset)[1]


def meta(data: Data, dataset: str = "reviews") -> pd.DataFrame:
    return data.ws.dataset(dataset).metadata()


def rows_where(data: Data, column: str, value: object, dataset: str = "reviews") -> npt.NDArray[np.int64]:
    return np.flatnonzero((meta(data, dataset)[column] == value).to_numpy()).astype(np.int64)


def fires(M: sp.csr_matrix, rows: npt.ArrayLike, latent: int) -> npt.NDArray[np.bool_]:
    """Whether ``latent`` fires (> 0) in each of ``rows``."""
    return np.asarray(M[np.asarray(rows), :][:, [latent]].toarray()).ravel() > 0


def any_fire_count(M: sp.csr_matrix, rows: npt.ArrayLike, latents: list[int]) -> int:
    sub = np.asarray(M[np.asarray(rows), :][:, latents].toarray())
    return int((sub > 0).any(axis=1).sum())
