"""Embedding speed on the embedded default, against this machine's matmul roofline and the research code.

Run: ``.venv/bin/python benchmarks/embed.py [--docs 1000] [--baseline-docs 200]``

Prints and writes ``benchmarks/results/embed.md``: real (non-padding) tokens/s, documents/s, peak
memory, bytes per stored document, and the fraction of the roofline reached, where the roofline is
matmul FLOP/s measured in the same run (the better of one matmul on all threads and one single-threaded
matmul per thread at once, and the better of float32 and bfloat16: the dtypes the embedder could have
computed in) divided by FLOPs per token (2 x parameters of the blocks run, attention scores, SAE
encoder). It also prints the CPU model and flags, and the dtype the embedder chose with the probe's
rates (:mod:`saescope.embed.dtype_probe`). Machines here drift by up to 2x over minutes, so only same-run ratios
are meaningful. The baseline re-creates interp-embed 0.1.0's ``LocalSAE.encode`` procedure on the same
reader, SAE and documents: batches of 8 in input order, a full forward with the LM head, every
token's activations kept per document and pickled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pickle
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rotten_tomatoes_texts(n: int) -> list[str]:
    from saescope.training.corpus import rotten_tomatoes

    rows = [r for r in rotten_tomatoes(full=False) if r["category"] in ("fresh", "rotten")]
    rng = np.random.default_rng(0)
    return [rows[i]["text"] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)]


def reader_answers(n: int) -> list[str]:
    """SmolLM2's own answers to varied prompts (the shipped training responses): 135 tokens on average."""
    from saescope.training.corpus import reader_responses
    from saescope.training.pipeline import SHIPPED_RESPONSES

    rows = [d.text for d in reader_responses(SHIPPED_RESPONSES)]
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)]


PEAK_DTYPES = ("float32", "bfloat16")
"""The dtypes the embedder may compute in on CPU; the roofline is the best of their peaks."""


def matmul_flops(seconds: float = 3.0, dtype: str = "float32") -> float:
    """Sustained matmul FLOP/s in the reader's dtype on shapes like the reader's (tokens x d_model x d_ff).

    The best of two ways to use the cores: one matmul on all of torch's threads, and one single-threaded
    matmul per thread at once (how the embedder's workers run). The higher is the roofline.
    """
    import threading

    import torch

    shapes = ((2048, 576, 1536), (2048, 1536, 576), (2048, 576, 4096))
    threads = torch.get_num_threads()

    def rate(m: int, k: int, n: int, budget: float) -> float:
        a, b = torch.randn(m, k, dtype=getattr(torch, dtype)), torch.randn(k, n, dtype=getattr(torch, dtype))
        a @ b  # warm-up (one call: a bfloat16 matmul without native support takes seconds)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget:
            a @ b
            reps += 1
        return 2 * m * k * n * reps / (time.perf_counter() - start)

    best = max(rate(*shape, seconds / 6) for shape in shapes)
    torch.set_num_threads(1)
    try:
        for shape in shapes:
            rates = [0.0] * threads

            def work(i: int, shape: tuple[int, int, int] = shape, rates: list[float] = rates) -> None:
                torch.set_num_threads(1)  # a new thread's OpenMP count starts at the machine default
                rates[i] = rate(*shape, seconds / 6)

            pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            best = max(best, sum(rates))
    finally:
        torch.set_num_threads(threads)
    return best


def flops_per_token(reader: object, sae: object, mean_context: float) -> float:
    net = reader.net  # type: ignore[attr-defined]
    block_params = sum(p.numel() for name, p in net.named_parameters() if "embed" not in name)
    cfg = net.config
    n_layers = reader.layer + 1  # type: ignore[attr-defined]
    attention = 2 * 2 * n_layers * mean_context * cfg.num_attention_heads * (cfg.hidden_size // cfg.num_attention_heads)
    encoder = 2 * sae.d_in * sae.d_sae  # type: ignore[attr-defined]
    return float(2 * block_params + attention + encoder)


def research_baseline(texts: list[str], reader_dir: Path, sae: object, layer: int) -> tuple[float, int]:
    """interp-embed 0.1.0's encode loop, on our reader and SAE: returns (seconds, tokens)."""
    import torch
    from scipy.sparse import csr_matrix
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(reader_dir)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(reader_dir).eval()
    kept: list[csr_matrix] = []
    n_tokens = 0
    start = time.perf_counter()
    for lo in range(0, len(texts), 8):
        batch = [tok.bos_token + t for t in texts[lo : lo + 8]]
        enc = tok(batch, padding="longest", return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
            acts = sae.encode(out.hidden_states[layer + 1].reshape(-1, sae.d_in))  # type: ignore[attr-defined]
        acts_np = acts.reshape(len(batch), -1, acts.shape[-1]).cpu().numpy()
        mask = enc["attention_mask"].numpy().astype(bool)
        n_tokens += int(mask.sum())
        kept.extend(csr_matrix(acts_np[i][mask[i]]) for i in range(len(batch)))
    buf = io.BytesIO()
    pickle.dump(kept, buf)
    return time.perf_counter() - start, n_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--baseline-docs", type=int, default=200)
    parser.add_argument(
        "--corpus",
        choices=("reviews", "answers"),
        default="reviews",
        help="Rotten Tomatoes snippets (25 tokens) or the reader's own answers (135 tokens)",
    )
    parser.add_argument("--workers", type=int, default=0, help="batches run at once (default: one per core)")
    parser.add_argument("--out", default=None, help="default benchmarks/results/embed.md (embed-answers.md)")
    args = parser.parse_args()
    if args.workers:
        os.environ["SAESCOPE_EMBED_WORKERS"] = str(args.workers)
    suffix = "" if args.corpus == "reviews" else "-answers"
    args.out = args.out or str(ROOT / "benchmarks" / "results" / f"embed{suffix}.md")

    from saescope.embed.dtype_probe import cpu_dtype, cpu_info
    from saescope.embed.engine import EmbedConfig
    from saescope.store.ingest import documents_from_list
    from saescope.workspace import SAEChoice, Workspace

    texts = rotten_tomatoes_texts(args.docs) if args.corpus == "reviews" else reader_answers(args.docs)
    home = Path(tempfile.mkdtemp(prefix="saescope-bench-"))
    ws = Workspace(home, device="cpu")
    embedder = ws.embedder(SAEChoice(), EmbedConfig())
    reader, sae = embedder.reader, embedder.sae
    choice = cpu_dtype()  # the reader's choice, as cached by its own call above
    embedder.embed(texts[:16])  # warm-up
    frame, _ = documents_from_list(texts)
    ws.store.create("bench", frame, source="benchmark")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    rates: dict[str, tuple[float, int]] = {}
    peaks_before = {d: matmul_flops(dtype=d) for d in PEAK_DTYPES}
    for label, cfg in (("plain", EmbedConfig()), ("chat-template", EmbedConfig(chat_template=True))):
        start = time.perf_counter()
        manifest = ws.embed("bench", SAEChoice(), cfg)
        rates[label] = (time.perf_counter() - start, int(manifest.stats["tokens_total"]))
    peaks_after = {d: matmul_flops(dtype=d) for d in PEAK_DTYPES}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peaks = {d: (peaks_before[d] + peaks_after[d]) / 2 for d in PEAK_DTYPES}
    best_dtype = max(peaks, key=lambda d: peaks[d])
    flops = peaks[best_dtype]
    shard_bytes = sum(p.stat().st_size for p in (home / "datasets" / "bench" / "embeddings").rglob("shard-*"))
    n_embeddings = len(list((home / "datasets" / "bench" / "embeddings").iterdir()))
    bytes_per_doc = shard_bytes / n_embeddings / len(texts)
    seconds, tokens = rates["plain"]
    mean_len = tokens / len(texts)
    fpt = flops_per_token(reader, sae, mean_context=mean_len / 2 + 1)
    roofline = flops / fpt
    tok_s = tokens / seconds

    base_texts = texts[: args.baseline_docs]
    ours_start = time.perf_counter()
    embedder.embed(base_texts)
    ours_small = time.perf_counter() - ours_start
    from saescope.embed.default import DEFAULT_SAE_DIR, default_reader_dir
    from saescope.embed.sae import SparseAutoencoder

    # The research code runs SAELens' SAE as loaded: fp32 on CPU.
    base_sae = SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, dtype="float32")
    base_seconds, _ = research_baseline(base_texts, default_reader_dir(), base_sae, reader.layer)

    stats = manifest.stats
    cpu = cpu_info()
    flags = ", ".join(f"{f} {'yes' if has else 'no'}" for f, has in cpu.reported_flags().items())
    peak_rows = [
        f"| matmul peak {d} (same run, mean of before/after) | {peaks[d] / 1e9:,.1f} G (before "
        f"{peaks_before[d] / 1e9:.1f}, after {peaks_after[d] / 1e9:.1f}){' <- roofline' if d == best_dtype else ''} |"
        for d in PEAK_DTYPES
    ]
    lines = [
        "# Embedding benchmark (embedded default)",
        "",
        f"Command: `.venv/bin/python benchmarks/embed.py --docs {args.docs} --baseline-docs {args.baseline_docs}"
        f"{' --corpus answers' if args.corpus == 'answers' else ''}{f' --workers {args.workers}' if args.workers else ''}`",
        f"Date: {dt.date.today().isoformat()}; machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; torch threads {__import__('torch').get_num_threads()}; "
        f"embedding workers {embedder.workers}",
        f"CPU: {cpu.model}; flags: {flags}",
        f"Compute dtype: {choice.dtype} ({choice.reason})",
        f"Reader {reader.model_id} cut after block {reader.layer} ({reader.dtype_name}, "
        f"{'fused forward' if reader.fused else 'Hugging Face forward'}); SAE {sae.id} ({sae.d_in}->{sae.d_sae}, {sae.dtype_name})",
        f"Documents: {len(texts)} {'Rotten Tomatoes review snippets' if args.corpus == 'reviews' else 'answers by the reader'}, "
        f"{tokens:,} real tokens (mean {mean_len:.1f}/doc)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| real tokens/s | {tok_s:,.0f} |",
        f"| documents/s | {len(texts) / seconds:,.1f} |",
        f"| documents/s with chat template (cached prefix) | {len(texts) / rates['chat-template'][0]:,.1f} |",
        f"| CPU | {cpu.model} ({flags}) |",
        f"| dtype chosen by the embedder | {choice.dtype}: {choice.reason} |",
        *peak_rows,
        f"| FLOPs per token | {fpt / 1e6:,.1f} M |",
        f"| roofline tokens/s | {roofline:,.0f} |",
        f"| fraction of roofline | {tok_s / roofline:.0%} |",
        f"| peak RSS | {peak / 1024:,.0f} MB (after model load: {peak_before / 1024:,.0f} MB) |",
        f"| bytes per stored document | {bytes_per_doc:,.0f} |",
        f"| active latents per document | mean {stats['active_latents_mean']}, sd {stats['active_latents_std']} |",
        f"| research-code procedure, {len(base_texts)} docs | {len(base_texts) / base_seconds:,.1f} docs/s |",
        f"| saescope, same {len(base_texts)} docs | {len(base_texts) / ours_small:,.1f} docs/s "
        f"({base_seconds / ours_small:.1f}x) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
