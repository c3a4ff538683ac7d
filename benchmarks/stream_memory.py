"""Peak memory of a diff's counting step, streamed shard by shard vs the whole matrix in memory, by store size.

Run: ``.venv/bin/python benchmarks/stream_memory.py [--sizes 100000 1000000] [--in-memory-max 1000000]``

For each size, synthetic pooled rows (75 random active latents per document over 4,096, float16 values as
the store keeps them) are written shard by shard with the store's own :func:`~saescope.store.shards.write_shard`
into a temporary folder, then each path runs in a fresh subprocess that reports its peak RSS
(``resource.getrusage``): ``streamed`` counts both sides of a diff (even rows vs odd rows) with
:func:`saescope.analyses.streamed.set_counts` over the shard files; ``in-memory`` stacks every shard into one
CSR matrix as ``Embedding.matrix()`` does, takes each side's rows (as the resolver does) and counts their
columns. Both produce the same counts (checked). The folder is deleted after each size. Writes
``benchmarks/results/stream_memory.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

D_SAE = 4096
ACTIVE = 75
SHARD = 65_536


def write_store(folder: Path, n_docs: int, seed: int = 0) -> int:
    """Write ``n_docs`` synthetic rows as shards; returns the bytes on disk."""
    from saescope.store.shards import write_shard

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, lo in enumerate(range(0, n_docs, SHARD)):
        rows = min(SHARD, n_docs - lo)
        cols = rng.integers(0, D_SAE, (rows, ACTIVE), dtype=np.int32).ravel()
        vals = rng.random(rows * ACTIVE, dtype=np.float32) + 0.01
        indptr = np.arange(0, rows * ACTIVE + 1, ACTIVE, dtype=np.int64)
        m = sp.csr_matrix((vals, cols, indptr), shape=(rows, D_SAE))
        m.sum_duplicates()
        write_shard(folder / f"shard-{i:05d}.safetensors", m, np.full(rows, 30), lo)
    return sum(p.stat().st_size for p in folder.iterdir())


def shards(folder: Path) -> Iterator[tuple[int, sp.csr_matrix]]:
    from saescope.store.shards import read_shard

    for path in sorted(folder.glob("shard-*.safetensors")):
        part, _, first = read_shard(path)
        yield first, part


def measure(mode: str, folder: Path, n_docs: int) -> dict[str, float]:
    """Run one path in this process; returns its peak RSS (MB), the RSS after imports and the time."""
    from saescope.analyses.common import column_counts
    from saescope.analyses.streamed import set_counts

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ra, rb = np.arange(0, n_docs, 2), np.arange(1, n_docs, 2)
    start = time.perf_counter()
    if mode == "streamed":
        _, counts = set_counts(shards(folder), [ra, rb], D_SAE)
        ca, cb = counts
    else:
        M = sp.vstack([p for _, p in shards(folder)], format="csr")
        ca, cb = column_counts(M[ra]), column_counts(M[rb])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mb": peak, "base_mb": base, "seconds": seconds, "checksum": float(ca @ np.arange(D_SAE) + cb.sum())}


def run_child(mode: str, folder: Path, n_docs: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder), str(n_docs)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def cpu_model() -> str:
    from saescope.embed.dtype_probe import cpu_info

    return cpu_info().model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--in-memory-max", type=int, default=1_000_000, help="largest size run in memory too")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stream_memory.md"))
    args = parser.parse_args()
    if args.child:
        mode, folder, n = args.child
        print(json.dumps(measure(mode, Path(folder), int(n))))
        return

    rows = []
    for n_docs in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="saescope-stream-"))
        try:
            start = time.perf_counter()
            disk = write_store(folder, n_docs)
            write_s = time.perf_counter() - start
            s = run_child("streamed", folder, n_docs)
            m = run_child("in-memory", folder, n_docs) if n_docs <= args.in_memory_max else None
            if m is not None and m["checksum"] != s["checksum"]:
                raise SystemExit(f"streamed and in-memory counts differ at {n_docs} documents")
            row = (
                f"| {n_docs:,} | {disk / 2**20:,.0f} | {write_s:,.0f} | {s['peak_mb']:,.0f} "
                f"(+{s['peak_mb'] - s['base_mb']:,.0f}) | {s['seconds']:,.1f} | "
                + (
                    f"{m['peak_mb']:,.0f} (+{m['peak_mb'] - m['base_mb']:,.0f}) | {m['seconds']:,.1f} |"
                    if m
                    else "not run | |"
                )
            )
            print(row, flush=True)
            rows.append(row)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    sizes = " ".join(str(n) for n in args.sizes)
    lines = [
        "# Peak memory of a diff's counts: streamed shard by shard vs the whole matrix",
        "",
        f"Command: `.venv/bin/python benchmarks/stream_memory.py --sizes {sizes} --in-memory-max {args.in_memory_max}`",
        f"Date: {dt.date.today().isoformat()}; CPU: {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}",
        f"Store: {ACTIVE} random active latents per document over {D_SAE:,} (about {ACTIVE - 0.7:.1f} after "
        f"duplicates merge), float16 values, {SHARD:,} documents per shard, written with the store's write_shard.",
        "Task: firing counts per latent of even rows vs odd rows (what a sets diff needs), each path in a fresh "
        "process; peak RSS in MB, in brackets above the process's RSS after imports.",
        "",
        "| documents | shards on disk (MB) | write (s) | streamed peak RSS (MB) | streamed (s) | "
        "in-memory peak RSS (MB) | in-memory (s) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
