"""Pooled activations on disk: CSR shards in safetensors (float16 values), written atomically.

safetensors is used rather than ``np.savez`` because its bytes depend only on the arrays (zip
entries carry timestamps), so a re-run after a crash writes byte-identical shards, and because it
never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from saescope.errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def write_shard(path: Path, matrix: sp.csr_matrix, n_tokens: np.ndarray, first_row: int) -> None:
    """Store one shard: rows ``first_row .. first_row + matrix.shape[0] - 1`` of an embedding."""
    from safetensors.numpy import save

    m = sp.csr_matrix(matrix)
    m.sort_indices()
    if m.shape[0] != len(n_tokens):
        raise ValueError("n_tokens must have one entry per row")
    tensors = {
        "indptr": m.indptr.astype(np.int64),
        "indices": m.indices.astype(np.int32),
        "data": m.data.astype(np.float16),
        "n_tokens": np.asarray(n_tokens, dtype=np.int32),
        # Kept as a tensor, not header metadata: safetensors writes metadata keys in hash order.
        "layout": np.array([first_row, m.shape[0], m.shape[1]], dtype=np.int64),
    }
    atomic_write_bytes(path, save(tensors))


def read_shard(path: Path) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """``(matrix, n_tokens, first_row)`` of a shard file.

    Raises:
        InputError: the file is not a readable shard.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            arrays = {k: fh.get_tensor(k) for k in ("indptr", "indices", "data", "n_tokens", "layout")}
    except Exception as exc:
        raise InputError(f"{path} is not a readable shard ({exc}); delete it and re-run embed") from exc
    first_row, n_rows, d_sae = (int(v) for v in arrays["layout"])
    m = sp.csr_matrix((arrays["data"].astype(np.float32), arrays["indices"], arrays["indptr"]), shape=(n_rows, d_sae))
    return m, arrays["n_tokens"].astype(np.int64), first_row
