"""Does an HTML report stay light on a large dataset? A 500k-document diff, timed and opened in Chromium.

The dataset holds real text (the demo reviews, repeated with a suffix per copy), and its embedding is
synthetic: rows of 60-90 latents of the default SAE, drawn with Zipf-like frequencies, a few latents
planted more often in half A. It is written through the store's own shard commits under the default
reader and SAE's spec, so the report's cards recompute token evidence with the real reader on the
documents they show.

    .venv/bin/python benchmarks/report_scale.py [--docs 500000] [--out benchmarks/results/report_scale.md]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from saescope import ops
from saescope.demo import DEMO_CORPUS
from saescope.ops.reports import diff_report
from saescope.ops.requests import DiffRequest
from saescope.report import render_html
from saescope.store.ingest import IngestOptions, read_documents
from saescope.workspace import Workspace, _versions


def synthetic_rows(texts: list[str], d_sae: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, d_sae + 1) ** 0.9
    weights /= weights.sum()
    rows, cols = [], []
    for i, text in enumerate(texts):
        k = int(rng.integers(60, 90))
        chosen = rng.choice(d_sae, k, replace=False, p=weights)
        if text.endswith("(A)") and rng.random() < 0.3:
            chosen = np.union1d(chosen, [7, 11, 13])
        rows += [i] * len(chosen)
        cols += chosen.tolist()
    data = rng.uniform(0.5, 8.0, len(rows)).astype(np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(texts), d_sae))


def embed_fn(
    d_sae: int,
) -> Callable[[Iterator[list[str]], Callable[[int, int], None]], Iterator[tuple[sp.csr_matrix, np.ndarray]]]:
    def stream(
        shards: Iterator[list[str]], report: Callable[[int, int], None]
    ) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
        done = 0
        for n, texts in enumerate(shards):
            done += len(texts)
            report(done, done * 25)
            yield synthetic_rows(texts, d_sae, n), np.full(len(texts), 25, dtype=np.int64)

    return stream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500_000)
    parser.add_argument("--out", default="benchmarks/results/report_scale.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="saescope-report-scale-"))
    try:
        ws = Workspace(home, device="cpu")
        base, _ = read_documents(DEMO_CORPUS, IngestOptions(id_column="id"))
        copies = -(-args.docs // len(base))
        frame = pd.concat([base.assign(copy=c) for c in range(copies)], ignore_index=True).iloc[: args.docs]
        half = np.where(np.arange(len(frame)) % 2 == 0, "A", "B")
        frame = frame.assign(
            doc_id=[f"{d}-{c}" for d, c in zip(frame["doc_id"], frame["copy"], strict=True)],
            text=[f"{t} ({h})" for t, h in zip(frame["text"], half, strict=True)],
            half=half,
        ).drop(columns=["copy"])
        t0 = time.perf_counter()
        ws.store.create("big", frame, source="benchmark")
        embedder = ws.embedder()
        emb = ws.dataset("big").prepare_embedding(
            ws.spec_for(embedder), embedder.sae.d_sae, shard_size=4096, versions=_versions()
        )
        emb.run(embed_fn(embedder.sae.d_sae))
        setup_s = time.perf_counter() - t0

        req = DiffRequest(dataset_a="big", where_a="half == 'A'", where_b="half == 'B'", top_k=20)
        t0 = time.perf_counter()
        result = ops.diff(ws, req)
        diff_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = diff_report(ws, req, result, command="benchmarks/report_scale.py")
        gather_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        page = render_html(report)
        render_s = time.perf_counter() - t0
        path = home / "report.html"
        path.write_text(page, encoding="utf-8")
        browser = shutil.which("chromium")
        load_s = None
        if browser:
            t0 = time.perf_counter()
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
                capture_output=True,
                timeout=120,
                check=True,
            )
            load_s = time.perf_counter() - t0
        n_docs = sum(len(c.docs) for c in report.cards)
        lines = [
            "# HTML report of a large diff",
            "",
            f"Command: `.venv/bin/python benchmarks/report_scale.py --docs {args.docs}`",
            "",
            "| step | value |",
            "|---|---|",
            f"| documents (A / B) | {args.docs:,} ({int((half == 'A').sum()):,} / {int((half == 'B').sum()):,}) |",
            f"| store + synthetic embedding written | {setup_s:.1f} s |",
            f"| diff (matrix load, test, top 20) | {diff_s:.2f} s |",
            f"| report data: {len(report.cards)} cards, {n_docs} documents, token evidence by the reader | {gather_s:.2f} s |",
            f"| render to HTML | {render_s * 1000:.1f} ms |",
            f"| page size | {len(page.encode()) / 1024:.0f} KiB |",
            f"| headless Chromium: start, load, lay out, dump (process wall time) | "
            f"{'-' if load_s is None else f'{load_s:.2f} s'} |",
            "",
            "The page holds the top rows and a few documents per side, so its size does not grow with the dataset.",
        ]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        sys.stdout.write("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
