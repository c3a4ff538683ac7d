"""GPU embedding throughput in bf16: the local path and the Ray path (one actor per GPU) against the GPU's
bf16 matmul roofline measured in the same run. Run through ``benchmarks/gpu.sh``.

Run: ``python benchmarks/gpu_embed.py [--docs 20000] [--shard-size 1024] [--reader R --sae S]``

The roofline is the sustained bf16 matmul rate of one GPU (8192^3 products, CUDA events) divided by the
FLOPs per token: 2 x the parameters of the blocks run (the reader is cut after the SAE's block, so later
blocks cost nothing), plus attention scores (2 x 2 x blocks x mean context x d_model) and the SAE encoder
(2 x d_in x d_sae). The Ray path's fraction is taken against the roofline times the number of actors.
Writes ``benchmarks/results/gpu_embed.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ray_embed import answers  # noqa: E402 - after the benchmarks folder is on the path


def bf16_matmul_flops(n: int = 8192, reps: int = 20) -> float:
    """Sustained bf16 matmul FLOP/s of the current GPU."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return float(2 * n**3 * reps / (start.elapsed_time(end) / 1e3))


def flops_per_token(reader: Any, sae: Any, mean_context: float) -> float:
    net = reader.net
    block_params = sum(p.numel() for name, p in net.named_parameters() if "embed" not in name)
    attention = 2 * 2 * (reader.layer + 1) * mean_context * reader.d_model
    return float(2 * block_params + attention + 2 * sae.d_in * sae.d_sae)


def timed_embed(
    ws: Any, name: str, shard_size: int, ray: Any, choice: Any, reader: str | None
) -> tuple[float, float, int]:
    """(wall seconds, steady tokens/s between the first and last shard reported, tokens)."""
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    ws.embed(
        name,
        choice,
        reader=reader,
        shard_size=shard_size,
        ray=ray,
        progress=lambda p: marks.append((time.perf_counter(), p.tokens_done)),
    )
    wall = time.perf_counter() - start
    firsts: dict[int, float] = {}
    for t, k in marks:
        firsts.setdefault(k, t)
    points = sorted((t, k) for k, t in firsts.items())
    (t0, k0), (t1, k1) = points[0], points[-1]
    return wall, (k1 - k0) / (t1 - t0) if t1 > t0 else float("nan"), k1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--shard-size", type=int, default=1024)
    parser.add_argument("--reader", help="HF id or folder (default: the model the SAE names)")
    parser.add_argument("--sae", default="default", help="'default', an SAELens folder, or RELEASE:SAE_ID")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_embed.md")
    args = parser.parse_args()

    import ray
    import torch

    from saescope.distributed import RaySettings
    from saescope.workspace import SAEChoice, Workspace

    if not torch.cuda.is_available():
        sys.exit("gpu_embed: no CUDA GPU visible to torch; run it on a machine with one")
    n_gpus = torch.cuda.device_count()
    peak = bf16_matmul_flops()
    base = answers(args.docs)
    texts = [base[i % len(base)] + ("" if i < len(base) else f" ({i // len(base)})") for i in range(args.docs)]
    choice = SAEChoice.parse(args.sae)
    rows: list[tuple[str, float, float, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "local", device="cuda", dtype="bfloat16")
        ws.store.create("bench", pd.DataFrame({"doc_id": range(len(texts)), "text": texts}), source="benchmark")
        embedder = ws.embedder(choice, reader=args.reader)  # loaded before timing: the Ray actors load their own
        mean_ctx = float(np.mean([min(len(t), 512) for t in embedder.reader.tokenize(texts[:2000])])) / 2
        per_token = flops_per_token(embedder.reader, embedder.sae, mean_ctx)
        roofline = peak / per_token
        wall, steady, tokens = timed_embed(ws, "bench", args.shard_size, None, choice, args.reader)
        rows.append(("local, 1 GPU", wall, steady, tokens, steady / roofline))
        local = ws.embedding("bench").matrix()
        del embedder, ws
        torch.cuda.empty_cache()

        ray.init(include_dashboard=False, log_to_driver=False)
        ws = Workspace(Path(tmp) / "ray", device="cpu")
        ws.store.create("bench", pd.DataFrame({"doc_id": range(len(texts)), "text": texts}), source="benchmark")
        settings = RaySettings(gpus_per_actor=1, actors=n_gpus)
        wall, steady, tokens = timed_embed(ws, "bench", args.shard_size, settings, choice, args.reader)
        rows.append((f"Ray, {n_gpus} actor(s) x 1 GPU", wall, steady, tokens, steady / (roofline * n_gpus)))
        got = ws.embedding("bench").matrix()
        ray.shutdown()
    same = np.array_equal(got.indptr, local.indptr) and np.array_equal(got.indices, local.indices)
    max_diff = float(np.abs(got.data - local.data).max()) if same and got.nnz else float("nan")
    lines = [
        "# GPU embedding throughput (bf16) against the bf16 matmul roofline",
        "",
        f"`bash benchmarks/gpu.sh --docs {args.docs} --shard-size {args.shard_size}"
        f"{f' --reader {args.reader}' if args.reader else ''} --sae {args.sae}`, {dt.date.today().isoformat()}",
        "",
        f"- GPU: {n_gpus} x {torch.cuda.get_device_name(0)}; torch {torch.__version__}, ray {ray.__version__}",
        f"- bf16 matmul (8192^3): {peak / 1e12:,.0f} TFLOP/s per GPU; {per_token / 1e6:,.1f} MFLOP per token "
        f"(mean context {mean_ctx:.0f}) -> roofline {roofline:,.0f} tokens/s per GPU",
        f"- {len(texts):,} documents, {rows[0][3]:,} tokens, shards of {args.shard_size}",
        f"- Ray rows equal local rows: {'yes' if same else 'NO'} (largest value difference {max_diff:.2g})",
        "",
        "| path | wall s | steady tokens/s | fraction of roofline |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {w:.1f} | {s:,.0f} | {f:.3f} |" for n, w, s, _, f in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
