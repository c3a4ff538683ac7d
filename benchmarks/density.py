"""Active latents per pooled document on Rotten Tomatoes, for several document-threshold fractions.

Run: ``.venv/bin/python benchmarks/density.py [FRACTION ...]`` (default 0 0.25 0.4 0.55 0.7 0.85).
The shipped SAE's thresholds are ``f x p99.9`` of each latent's activation; this rescales them to
other fractions and reports the mean / sd / median of active latents per document, and how many
latents fire in over half (or 90%) of the documents.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from saescope.embed.default import DEFAULT_SAE_DIR, default_reader_dir
    from saescope.embed.engine import EmbedConfig, Embedder
    from saescope.embed.reader import Reader
    from saescope.embed.sae import SparseAutoencoder
    from saescope.training.corpus import rotten_tomatoes

    rows = [r for r in rotten_tomatoes(full=False) if r["category"] in ("fresh", "rotten")]
    texts = [rows[i]["text"] for i in np.random.default_rng(0).choice(len(rows), 400, replace=False)]
    sae = SparseAutoencoder.from_disk(DEFAULT_SAE_DIR)
    shipped = json.loads((DEFAULT_SAE_DIR / "saescope.json").read_text())["train_config"]["threshold_fraction"]
    assert sae.thresholds is not None
    p999 = sae.thresholds / shipped
    reader = Reader(default_reader_dir(), sae.layer or 0)
    print(f"400 Rotten Tomatoes snippets; reader dtype {reader.dtype_name}; shipped fraction {shipped}")
    for frac in [float(x) for x in sys.argv[1:]] or [0.0, 0.25, 0.4, 0.55, 0.7, 0.85]:
        sae.thresholds = p999 * frac
        matrix, _ = Embedder(reader, sae, EmbedConfig()).embed(texts)
        active = np.diff(matrix.indptr)
        doc_freq = (matrix > 0).sum(axis=0).A1 / matrix.shape[0]
        print(
            f"fraction {frac}: active latents/doc mean {active.mean():.1f}, sd {active.std():.1f}, "
            f"median {np.median(active):.0f}; latents in >50% of docs {int((doc_freq > 0.5).sum())}, "
            f">90% {int((doc_freq > 0.9).sum())}; latents firing anywhere {int((doc_freq > 0).sum())}"
        )


if __name__ == "__main__":
    main()
