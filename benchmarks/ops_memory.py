"""Peak memory of an operation-level sets diff, through the memory budget switch: streamed vs in memory.

Run: ``.venv/bin/python benchmarks/ops_memory.py [--docs 1000000]``

A data root is built in a temporary folder: a random TopK SAE folder (4,096 latents, so the diff can label its
latents), a dataset of ``--docs`` documents with a ``side`` column (a / b alternating), and its embedding,
written by the store's own ``Embedding.run`` from synthetic pooled rows (75 random active latents per
document, float16 values as the store keeps them), so the manifest records its stats. Then ``ops.diff`` of
``side == 'a'`` against ``side == 'b'`` runs twice, each in a fresh subprocess that reports its peak RSS
(``resource.getrusage``): once with ``SAESCOPE_MEMORY_BUDGET_MB=0`` (counted shard by shard) and once with
the budget unset (the default: half the available memory, which this matrix fits, so it is read whole). The
SAE and its labels are loaded before the baseline is taken, so the difference is the diff's own. Both
results must be equal. The folder is deleted afterwards. Appends a section to
``benchmarks/results/stream_memory.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saescope.ops.streamed import LOAD_FACTOR  # noqa: E402

D_SAE = 4096
ACTIVE = 75
SHARD = 65_536
NAME = "big"


def build_sae(folder: Path) -> Path:
    """A random TopK SAE (d_in 64, d_sae 4,096) saved in SAELens's format."""
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig

    torch.manual_seed(0)
    cfg = TopKSAEConfig(d_in=64, d_sae=D_SAE, k=ACTIVE, dtype="float32", device="cpu")
    cfg.metadata.hook_name = "blocks.0.hook_resid_post"
    cfg.metadata.model_name = "synthetic"
    TopKSAE(cfg).save_model(str(folder))
    return folder


def synthetic_rows(seed: int) -> Callable[[list[str], Callable[[int, int], None]], tuple[sp.csr_matrix, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def shard(texts: list[str], report: Callable[[int, int], None]) -> tuple[sp.csr_matrix, np.ndarray]:
        rows = len(texts)
        grid = rng.integers(0, D_SAE, (rows, ACTIVE), dtype=np.int32)
        grid[::2, :5] //= 4  # even rows (side a; shards start at even rows) fire low latents more often
        cols = grid.ravel()
        vals = rng.random(rows * ACTIVE, dtype=np.float32) + 0.01
        indptr = np.arange(0, rows * ACTIVE + 1, ACTIVE, dtype=np.int64)
        m = sp.csr_matrix((vals, cols, indptr), shape=(rows, D_SAE))
        m.sum_duplicates()
        report(rows, rows * 30)
        return m, np.full(rows, 30)

    return shard


def build_root(home: Path, n_docs: int) -> int:
    """The data root with dataset ``big`` embedded; returns the bytes of its shards on disk."""
    from saescope.embed.sae import SparseAutoencoder
    from saescope.store.dataset import EmbeddingSpec, shard_by_shard
    from saescope.workspace import Workspace

    sae_dir = build_sae(home.parent / "sae")
    sae = SparseAutoencoder.from_disk(sae_dir, device="cpu")
    ws = Workspace(home, device="cpu")
    ids = np.arange(n_docs)
    frame = pd.DataFrame({"doc_id": ids.astype(str), "text": "doc", "side": np.where(ids % 2 == 0, "a", "b")})
    ds = ws.store.create(NAME, frame, source="benchmark")
    spec = EmbeddingSpec(
        reader={"id": "synthetic", "layer": 0},
        sae={"id": sae.id, "source": sae.source, "d_sae": D_SAE},
        config={},
    )
    emb = ds.prepare_embedding(spec, D_SAE, shard_size=SHARD)
    emb.run(shard_by_shard(synthetic_rows(0)))
    return sum(p.stat().st_size for p in emb.path.glob("shard-*.safetensors"))


def measure(home: Path) -> dict[str, Any]:
    """Run the diff in this process: peak RSS (MB), RSS before it, seconds, and a digest of the result."""
    from saescope import ops
    from saescope.ops.docsets import labels_for
    from saescope.ops.requests import DiffRequest
    from saescope.ops.streamed import fits_in_memory, matrix_bytes
    from saescope.workspace import Workspace

    ws = Workspace(home, device="cpu")
    emb = ws.embedding(NAME)
    labels_for(ws, emb)  # the SAE and its labels, loaded on both paths alike, before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    req = DiffRequest.build(dataset_a=NAME, where_a="side == 'a'", where_b="side == 'b'", min_support=5)
    start = time.perf_counter()
    result = ops.diff(ws, req)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hashlib.sha256(result.model_dump_json().encode()).hexdigest()[:16]
    assert result.sets is not None and result.sets.rows
    return {
        "peak_mb": peak,
        "base_mb": base,
        "seconds": seconds,
        "digest": digest,
        "streamed": not fits_in_memory(emb),
        "estimate_mb": matrix_bytes(emb) / 2**20,
        "n_significant": result.sets.n_significant,
    }


def run_child(home: Path, budget: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SAESCOPE_MEMORY_BUDGET_MB"}
    if budget is not None:
        env["SAESCOPE_MEMORY_BUDGET_MB"] = budget
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(home)], check=True, capture_output=True, text=True, env=env
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def row(label: str, r: dict[str, Any]) -> str:
    peak, base = float(r["peak_mb"]), float(r["base_mb"])
    return f"| {label} | {r['streamed']} | {peak:,.0f} (+{peak - base:,.0f}) | {float(r['seconds']):,.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--child", metavar="HOME", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stream_memory.md"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child))))
        return

    folder = Path(tempfile.mkdtemp(prefix="saescope-ops-memory-"))
    try:
        start = time.perf_counter()
        disk = build_root(folder / "home", args.docs)
        build_s = time.perf_counter() - start
        s = run_child(folder / "home", "0")
        m = run_child(folder / "home", None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if s["digest"] != m["digest"]:
        raise SystemExit("the streamed and in-memory diffs differ")
    if not s["streamed"] or m["streamed"]:
        raise SystemExit(f"the budget did not switch paths: {s['streamed']=} {m['streamed']=}")
    lines = [
        "",
        "## An operation-level sets diff through the memory budget switch",
        "",
        f"Command: `.venv/bin/python benchmarks/ops_memory.py --docs {args.docs}`",
        f"Date: {dt.date.today().isoformat()}; {os.cpu_count()} cores; Python {platform.python_version()}",
        f"Store: {args.docs:,} documents embedded through `Embedding.run` from synthetic rows ({ACTIVE} random active "
        f"latents over {D_SAE:,}, float16 values, {SHARD:,} documents per shard; {disk / 2**20:,.0f} MB of shards, "
        f"built in {build_s:,.0f} s); the manifest's estimate of the matrix: {float(m['estimate_mb']):,.0f} MB "
        f"(x{LOAD_FACTOR} for reading it whole).",
        "Task: `ops.diff` (mode sets) of `side == 'a'` vs `side == 'b'`, top 20 with examples, each path in a fresh "
        "process, SAE and labels loaded before the baseline; peak RSS in MB, in brackets above that baseline. "
        f"Both results are identical (digest {s['digest']}; {s['n_significant']} latents with q <= 0.05).",
        "",
        "| path | streamed | peak RSS (MB) | diff (s) |",
        "|---|---|---|---|",
        row("`SAESCOPE_MEMORY_BUDGET_MB=0`", s),
        row("budget unset (half the available memory)", m),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with Path(args.out).open("a", encoding="utf-8") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
