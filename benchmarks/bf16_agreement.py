"""How closely bf16 embeddings on CPU agree with fp32 ones, for each bf16 forward path.

Run: ``.venv/bin/python benchmarks/bf16_agreement.py [--docs 400]``

Embeds Rotten Tomatoes snippets with the default reader and SAE in fp32 (Hugging Face forward: the
reference) and in bf16 three ways: the fused forward with oneDNN epilogues and packed SAE encoder (the
default), the fused forward with plain matmuls, and Hugging Face's forward. Prints and writes
``benchmarks/results/bf16_agreement.md``: the mean Jaccard of each document's active latents against
fp32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def jaccard(a: sp.csr_matrix, b: sp.csr_matrix) -> float:
    scores = []
    for i in range(a.shape[0]):
        x, y = set(a[i].indices), set(b[i].indices)
        scores.append(len(x & y) / max(1, len(x | y)))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bf16_agreement.md"))
    args = parser.parse_args()

    from embed import rotten_tomatoes_texts  # benchmarks/embed.py

    from saescope.embed.default import DEFAULT_LAYER, DEFAULT_SAE_DIR, default_reader_dir
    from saescope.embed.engine import Embedder
    from saescope.embed.fused import FusedDecoder
    from saescope.embed.reader import Reader
    from saescope.embed.sae import SparseAutoencoder

    texts = rotten_tomatoes_texts(args.docs)
    folder = default_reader_dir()
    fp32_reader = Reader(folder, DEFAULT_LAYER, device="cpu", dtype="float32", fused=False)
    truth = Embedder(fp32_reader, SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, dtype="float32")).embed(texts)[0]
    reader = Reader(folder, DEFAULT_LAYER, device="cpu", dtype="bfloat16")
    sae = SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, dtype="bfloat16")
    rows = [("fused forward, oneDNN epilogues, packed SAE encoder (default)", Embedder(reader, sae).embed(texts)[0])]
    reader._fused = FusedDecoder(reader.net, onednn=False)
    plain_sae = SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, dtype="bfloat16")
    plain_sae._encoder_packed = lambda: None  # type: ignore[method-assign]
    rows.append(("fused forward, plain matmuls", Embedder(reader, plain_sae).embed(texts)[0]))
    hf_reader = Reader(folder, DEFAULT_LAYER, device="cpu", dtype="bfloat16", fused=False)
    rows.append(("Hugging Face forward", Embedder(hf_reader, plain_sae).embed(texts)[0]))
    lines = [
        "# bf16 against fp32 (default reader and SAE)",
        "",
        f"Command: `.venv/bin/python benchmarks/bf16_agreement.py --docs {args.docs}`",
        f"Documents: {len(texts)} Rotten Tomatoes snippets. Reference: fp32, Hugging Face forward.",
        "",
        "| bf16 path | mean Jaccard of active latents vs fp32 |",
        "|---|---|",
        *(f"| {name} | {jaccard(m, truth):.3f} |" for name, m in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
