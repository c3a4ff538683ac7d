"""The default reader's MLP with oneDNN epilogues against plain matmuls, on one block.

Run: ``.venv/bin/python benchmarks/mlp_epilogues.py [--tokens 1800]``

Times ``residual + down(silu(gate(x)) * up(x))`` of block 0 through :class:`FusedDecoder` both ways
(packed oneDNN weights with SiLU, the product and the residual add in the epilogues; or one gate|up
matmul, SiLU and the product in place, and ``addmm``), on one thread and on all of torch's threads.
Prints and writes ``benchmarks/results/mlp_epilogues.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1800)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mlp_epilogues.md"))
    args = parser.parse_args()

    import torch

    from saescope.embed.default import DEFAULT_LAYER, DEFAULT_READER_ID, default_reader_dir
    from saescope.embed.fused import FusedDecoder
    from saescope.embed.reader import Reader

    reader = Reader(default_reader_dir(), DEFAULT_LAYER, device="cpu", model_id=DEFAULT_READER_ID)
    packed = reader._fused
    plain = FusedDecoder(reader.net, onednn=False)
    if not packed.onednn:
        raise SystemExit("oneDNN epilogues are not available in this torch build")
    x = torch.randn(args.tokens, reader.d_model, dtype=getattr(torch, reader.dtype_name))
    residual = torch.randn_like(x)

    def ms(decoder: FusedDecoder) -> float:
        blk = decoder.blocks[0]
        with torch.inference_mode():
            for _ in range(3):
                decoder._mlp(x, residual, blk)
            start = time.perf_counter()
            for _ in range(args.reps):
                decoder._mlp(x, residual, blk)
        return float((time.perf_counter() - start) / args.reps * 1e3)

    threads = torch.get_num_threads()
    rows = []
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        a, b = ms(plain), ms(packed)
        rows.append(f"| {n} | {a:.2f} | {b:.2f} | {(a - b) / a:.0%} |")
    torch.set_num_threads(threads)
    text = "\n".join(
        [
            "# MLP of one block: oneDNN epilogues vs plain matmuls",
            "",
            f"Command: `.venv/bin/python benchmarks/mlp_epilogues.py --tokens {args.tokens}`",
            f"Reader {reader.model_id} ({reader.dtype_name}), block 0, {args.tokens} tokens, {args.reps} repetitions",
            "",
            "| threads | plain (ms) | oneDNN epilogues (ms) | time saved |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
