"""Speed and memory of the analyses on synthetic SAE embeddings at realistic sparsity.

Run: ``.venv/bin/python benchmarks/analyses.py [--quick]`` (``nice -n 10`` on a shared machine).
Writes ``benchmarks/results/analyses.md``. Only the analysis call is timed, never data generation.

Data: each document has 50-150 active latents (about 0.6% of 16,384), drawn from a Zipf-like
latent distribution (p ~ 1 / (rank + 10)), so a few latents fire in most documents and most fire
rarely; activations are exponential. Set B of the diff has 200 latents with doubled probability.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saescope.analyses import diff_sets, latent_cooccurrence, rank_by_latents  # noqa: E402

D_SAE = 16_384


def zipf_probs(d: int, rng: np.random.Generator, offset: float = 10.0, s: float = 1.0) -> np.ndarray:
    p = 1.0 / (np.arange(d) + offset) ** s
    probs: np.ndarray = (p / p.sum())[rng.permutation(d)]
    return probs


def synth(n: int, probs: np.ndarray, lo: int, hi: int, rng: np.random.Generator) -> sp.csr_matrix:
    """``n`` x len(probs) CSR, ``lo..hi`` draws per row from ``probs`` (duplicates merged), float32."""
    k = rng.integers(lo, hi + 1, n)
    indptr = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    nnz = int(indptr[-1])
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    cols = np.empty(nnz, dtype=np.int32)
    step = 10_000_000
    for a in range(0, nnz, step):
        b = min(nnz, a + step)
        cols[a:b] = np.searchsorted(cdf, rng.random(b - a))
    np.minimum(cols, len(probs) - 1, out=cols)
    data = (rng.exponential(1.0, nnz) + 0.05).astype(np.float32)
    X = sp.csr_matrix((data, cols, indptr), shape=(n, len(probs)))
    X.sum_duplicates()
    return X


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak of Python-tracked allocations (numpy arrays included) during one call, in MiB."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def cpu_model() -> str:
    from saescope.embed.dtype_probe import cpu_info

    return cpu_info().model


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


Report = Callable[[str, str, float, float, str, str], None]


def bench_diff(n: int, probs: np.ndarray, rng: np.random.Generator, report: Report) -> None:
    """Two sets of ``n`` documents; B has 200 latents with doubled probability."""
    t0 = time.perf_counter()
    XA = synth(n, probs, 50, 150, rng)
    pb = probs.copy()
    pb[rng.choice(D_SAE, 200, replace=False)] *= 2
    XB = synth(n, pb / pb.sum(), 50, 150, rng)
    ids_a = np.array([f"a{i}" for i in range(n)])
    ids_b = np.array([f"b{i}" for i in range(n)])
    print(f"generated diff data in {time.perf_counter() - t0:.1f} s (nnz {XA.nnz:,} + {XB.nnz:,})", flush=True)

    def run_diff() -> Any:
        return diff_sets(XA, XB, None, doc_ids_a=ids_a, doc_ids_b=ids_b, top_k=20)

    secs, res = timed(run_diff, 3)
    report(
        "diff_sets (top 20 + examples)",
        f"{n:,} vs {n:,} docs x {D_SAE:,}",
        secs,
        peak_mib(run_diff),
        "< 2 s",
        f"{res.n_tested} tested, {res.n_significant} significant",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the sizes (for a smoke test)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analyses.md")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    rng = np.random.default_rng(0)
    probs = zipf_probs(D_SAE, rng)
    results: list[tuple[str, str, float, float, str, str]] = []

    def report(name: str, size: str, secs: float, mib: float, target: str, note: str) -> None:
        results.append((name, size, secs, mib, target, note))
        print(f"{name:<34} {size:<34} {secs * 1000:9.1f} ms  peak {mib:8.1f} MiB  target {target}  {note}", flush=True)

    bench_diff(500_000 // scale, probs, rng, report)

    # NPMI: 100k docs, 25-75 active latents each (~50)
    n_npmi = 100_000 // scale
    X = synth(n_npmi, probs, 25, 75, rng)
    print(f"generated NPMI data (nnz {X.nnz:,}, {X.nnz / n_npmi:.0f} per doc)", flush=True)

    def run_npmi() -> Any:
        return latent_cooccurrence(X, None, min_cooc=5, top_k=50)

    secs, res = timed(run_npmi, 1)
    report(
        "latent_cooccurrence (NPMI)",
        f"{n_npmi:,} docs x {D_SAE:,}",
        secs,
        peak_mib(run_npmi),
        "< 30 s",
        f"{res.total:,} pairs with count >= 5",
    )
    del X, res

    # retrieval: 1M docs, 5 latents
    n_ret = 1_000_000 // scale
    X = synth(n_ret, probs, 50, 150, rng)
    t0 = time.perf_counter()
    Xc = X.tocsc()
    print(f"generated retrieval data (nnz {X.nnz:,}); CSC copy built in {time.perf_counter() - t0:.1f} s", flush=True)
    counts = np.diff(Xc.indptr)
    mid = np.argsort(counts)[len(counts) // 2 : len(counts) // 2 + 2000]
    lats = rng.choice(mid, 5, replace=False)
    weights = {int(j): float(w) for j, w in zip(lats, [1.0, 0.8, 0.6, 0.5, 0.4], strict=True)}
    ids = np.array([f"d{i}" for i in range(n_ret)])
    for fmt_name, M in (("CSC", Xc), ("CSR", X)):

        def run_rank(M: Any = M) -> Any:
            return rank_by_latents(M, weights, top_k=20, doc_ids=ids)

        secs, res = timed(run_rank, 5)
        report(
            f"rank_by_latents (5 latents, {fmt_name})",
            f"{n_ret:,} docs x {D_SAE:,}",
            secs,
            peak_mib(run_rank),
            "< 200 ms",
            f"{res.total:,} docs with score > 0",
        )

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_report(args, results, rss)


def write_report(args: argparse.Namespace, results: list[tuple[str, str, float, float, str, str]], rss: float) -> None:
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
            ).stdout.strip()
            or "uncommitted"
        )
    except OSError:
        commit = "unknown"
    lines = [
        "# Analyses benchmark",
        "",
        f"- command: `.venv/bin/python benchmarks/analyses.py{' --quick' if args.quick else ''}`",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}",
        f"- load average at the end (1/5/15 min): {load_average()}",
        f"- commit: {commit}",
        f"- peak RSS of the whole run (data included): {rss:,.0f} MiB",
        "",
        "Synthetic data: 50-150 active latents per document (25-75 for NPMI) out of 16,384, Zipf-like latent "
        "frequencies, float32 activations. Times are the best of several runs of the analysis call only; peak is "
        "the tracemalloc peak of one call.",
        "",
        "| analysis | size | time | peak alloc | target | note |",
        "|---|---|---|---|---|---|",
    ]
    for name, size, secs, mib, target, note in results:
        shown = f"{secs * 1000:.0f} ms" if secs < 1 else f"{secs:.2f} s"
        lines.append(f"| {name} | {size} | {shown} | {mib:,.0f} MiB | {target} | {note} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
