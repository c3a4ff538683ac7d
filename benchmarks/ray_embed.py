"""The Ray path against the local path on this machine: the overhead of distributing one machine's work.

Run: ``.venv/bin/python benchmarks/ray_embed.py [--docs 200] [--shard-size 25] [--rounds 2]``

Embeds the same documents (SmolLM2's own answers, ~135 tokens each) with the default reader and SAE four
ways into fresh stores: locally (one process, the engine's default workers), and on a local Ray cluster of
2 CPUs with 1 actor of 1 CPU, 2 actors of 1 CPU, and 1 actor of 2 CPUs. For each it reports the wall time
of the whole call (models loaded, actors started) and the steady rate (tokens/s between the first and the
last shard reported), each as a ratio to the local path, and checks that the rows equal the local ones.
Ray's own start-up (``ray.init``) is timed apart; the cluster is up during the local runs too. The four
ways run in turn, ``--rounds`` times, and the table shows each one's median; the load average before each
run is printed, since a busy machine skews whichever run meets the load. Writes
``benchmarks/results/ray_embed.md``.
Machines here drift by up to 2x over minutes and other processes may share the cores: only same-run
ratios mean anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from saescope.distributed import RaySettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def answers(n: int) -> list[str]:
    """SmolLM2's answers to varied prompts (the shipped training responses), a fixed sample of ``n``."""
    from saescope.training.corpus import reader_responses
    from saescope.training.pipeline import SHIPPED_RESPONSES

    rows = [d.text for d in reader_responses(SHIPPED_RESPONSES)]
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)]


@dataclass
class Run:
    name: str
    load: float
    wall_s: float
    steady_tok_s: float
    tokens: int
    matrix: sp.csr_matrix


def embed(root: Path, name: str, texts: list[str], shard_size: int, ray: RaySettings | None) -> Run:
    from saescope.store.dataset import ShardProgress
    from saescope.workspace import Workspace

    load = os.getloadavg()[0]
    ws = Workspace(root / f"{name.replace(' ', '_').replace(',', '')}-{time.monotonic_ns()}", device="cpu")
    ws.store.create("bench", pd.DataFrame({"doc_id": range(len(texts)), "text": texts}), source="benchmark")
    marks: list[tuple[float, int]] = []

    def progress(p: ShardProgress) -> None:
        marks.append((time.perf_counter(), p.tokens_done))

    start = time.perf_counter()
    ws.embed("bench", shard_size=shard_size, progress=progress, ray=ray)
    wall = time.perf_counter() - start
    # Shard boundaries only: the local path reports batch by batch, the Ray path shard by shard.
    firsts: dict[int, float] = {}
    for t, k in marks:
        firsts.setdefault(k, t)
    points = sorted((t, k) for k, t in firsts.items())
    (t0, k0), (t1, k1) = points[0], points[-1]
    steady = (k1 - k0) / (t1 - t0) if t1 > t0 else float("nan")
    return Run(name, load, wall, steady, k1, ws.embedding("bench").matrix())


def cpu_line() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}; flags: {' '.join(wanted) or 'none of avx2/avx512/amx'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--shard-size", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_embed.md")
    args = parser.parse_args()

    import ray
    import torch

    from saescope.distributed import RaySettings

    texts = answers(args.docs)
    ways: list[tuple[str, RaySettings | None]] = [
        ("local", None),
        ("Ray, 1 actor x 1 CPU", RaySettings(actors=1)),
        ("Ray, 2 actors x 1 CPU", RaySettings(actors=2)),
        ("Ray, 1 actor x 2 CPUs", RaySettings(actors=1, cpus_per_actor=2)),
    ]
    every: dict[str, list[Run]] = {name: [] for name, _ in ways}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_init_s = time.perf_counter() - start
        for _ in range(args.rounds):
            for name, settings in ways:
                run = embed(Path(tmp), name, texts, args.shard_size, settings)
                print(f"{name}: load {run.load:.1f}, wall {run.wall_s:.1f} s, steady {run.steady_tok_s:,.0f} tok/s")
                every[name].append(run)
        ray.shutdown()

    def median(name: str) -> Run:
        rs = every[name]
        return Run(
            name,
            statistics.median(r.load for r in rs),
            statistics.median(r.wall_s for r in rs),
            statistics.median(r.steady_tok_s for r in rs),
            rs[0].tokens,
            rs[-1].matrix,
        )

    runs = [median(name) for name, _ in ways]
    local = runs[0]
    lines = [
        "# Ray path against the local path (one machine)",
        "",
        f"`.venv/bin/python benchmarks/ray_embed.py --docs {args.docs} --shard-size {args.shard_size}`, "
        f"{dt.date.today().isoformat()}",
        "",
        f"- CPU: {cpu_line()}; {torch.get_num_threads()} torch threads; torch {torch.__version__}, "
        f"ray {ray.__version__}",
        f"- {len(texts)} documents (SmolLM2's answers), {local.tokens:,} tokens, shards of {args.shard_size}; "
        "default reader and SAE",
        f"- `ray.init(num_cpus=2)` took {ray_init_s:.1f} s (not counted below); medians of {args.rounds} "
        "rounds, the four ways in turn",
        f"- load average (1 min) before each run: {', '.join(f'{r.load:.1f}' for rs in every.values() for r in rs)}"
        " (2 cores; other processes shared the machine)",
        "- wall: the whole `Workspace.embed` call (models loaded, actors started); steady: tokens/s between "
        "the first and the last shard reported. Ratios are local / Ray for time and Ray / local for rate "
        "(below 1: Ray is slower)",
        "",
        "| path | wall s | wall ratio | steady tok/s | steady ratio | rows equal local |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        same = (
            r.matrix.shape == local.matrix.shape
            and np.array_equal(r.matrix.indptr, local.matrix.indptr)
            and np.array_equal(r.matrix.indices, local.matrix.indices)
            and np.allclose(r.matrix.data, local.matrix.data, rtol=1e-5, atol=1e-5)
        )
        lines.append(
            f"| {r.name} | {r.wall_s:.1f} | {local.wall_s / r.wall_s:.2f} | {r.steady_tok_s:,.0f} | "
            f"{r.steady_tok_s / local.steady_tok_s:.2f} | {'yes' if same else 'NO'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
