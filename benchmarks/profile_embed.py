"""Where embedding time goes: ``torch.profiler`` over the default embedder on one thread.

Run: ``.venv/bin/python benchmarks/profile_embed.py [--docs 300]``

Embeds Rotten Tomatoes snippets with one worker on one thread (what each worker does on a multi-core
CPU) and prints, then writes ``benchmarks/results/profile_embed.md``: the share of profiled time in
matmuls and in the top other ops, and the matmul rate inside the embedder against a single-threaded
matmul measured alone on the reader's shapes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MATMUL_OPS = ("mkldnn::_linear_pointwise", "aten::mm", "aten::addmm")


def _matmul_flops(name: str, shapes: list[list[int]]) -> float:
    """FLOPs of one profiled matmul from its input shapes."""
    if name == "aten::addmm":  # (bias, x, w)
        (m, k), (_, n) = shapes[1], shapes[2]
    elif name == "aten::mm":  # (x, w)
        (m, k), (_, n) = shapes[0], shapes[1]
    else:  # mkldnn::_linear_pointwise: (x, w, b, attr, scalars, algorithm) or .binary (x, other, w, b, attr)
        (m, k), (n, _) = shapes[0], shapes[1] if len(shapes) == 6 else shapes[2]
    return 2.0 * m * k * n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "profile_embed.md"))
    args = parser.parse_args()

    import torch
    from embed import matmul_flops, rotten_tomatoes_texts  # benchmarks/embed.py
    from torch.profiler import ProfilerActivity, profile

    from saescope.embed.engine import EmbedConfig, Embedder
    from saescope.workspace import SAEChoice, Workspace

    texts = rotten_tomatoes_texts(args.docs)
    ws = Workspace(Path(tempfile.mkdtemp(prefix="saescope-profile-")), device="cpu")
    base = ws.embedder(SAEChoice(), EmbedConfig())
    emb = Embedder(base.reader, base.sae, EmbedConfig(), workers=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        emb.embed(texts[:32])  # warm-up
        start = time.perf_counter()
        emb.embed(texts)
        wall = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            emb.embed(texts)
        alone = matmul_flops(seconds=1.5, dtype=emb.reader.dtype_name)
    finally:
        torch.set_num_threads(threads)
    self_us: dict[str, float] = defaultdict(float)
    mm_flops = mm_us = 0.0
    for ev in prof.events():
        self_us[ev.name] += ev.self_cpu_time_total
        if ev.name in MATMUL_OPS and ev.input_shapes:
            mm_flops += _matmul_flops(ev.name, ev.input_shapes)
            mm_us += ev.self_cpu_time_total
    total = sum(self_us.values())
    others = sorted(((us, name) for name, us in self_us.items() if name not in MATMUL_OPS), reverse=True)[:10]
    lines = [
        "# Where embedding time goes (one worker, one thread)",
        "",
        f"Command: `.venv/bin/python benchmarks/profile_embed.py --docs {args.docs}`",
        f"Reader {emb.reader.model_id} ({emb.reader.dtype_name}, onednn={getattr(emb.reader._fused, 'onednn', False)}); "
        f"{len(texts)} Rotten Tomatoes snippets; unprofiled wall time {wall:.2f} s, profiled op time {total / 1e6:.2f} s",
        "",
        f"- matmuls: {mm_us / total:.0%} of profiled op time, at {mm_flops / mm_us / 1e3:.0f} GFLOP/s inside the "
        f"embedder against {alone / 1e9:.0f} GFLOP/s for the best single-threaded matmul alone "
        f"({mm_flops / mm_us * 1e6 / alone:.0%})",
        "",
        "| other op | share of profiled op time |",
        "|---|---|",
        *(f"| {name} | {us / total:.1%} |" for us, name in others),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
