"""``saescope train-sae``: the whole reproducible recipe for the shipped default SAE."""

from __future__ import annotations

import gzip
import json
import logging
import platform
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from saescope.embed.default import DEFAULT_READER_ID, default_reader_dir
from saescope.embed.reader import Reader
from saescope.training.activations import extract_activations
from saescope.training.corpus import build_corpus
from saescope.training.prompts import build_prompts
from saescope.training.responses import generate_responses
from saescope.training.train import (
    SAEQuality,
    TrainConfig,
    collect_top_examples,
    document_thresholds,
    evaluate_sae,
    save_inference_sae,
    token_labels,
    train_topk_sae,
)

log = logging.getLogger(__name__)

SHIPPED_RESPONSES = Path(__file__).resolve().parent / "data" / "reader_responses.jsonl.gz"


def reader_responses_file(work: Path, cfg: TrainConfig, regenerate: bool) -> Path:
    """The reader's answers to the corpus prompts: the shipped copy, or generated afresh."""
    path = work / f"reader_responses-n{cfg.n_prompts}-s{cfg.seed}.jsonl"
    if path.exists() and not regenerate:
        return path
    if SHIPPED_RESPONSES.is_file() and not regenerate:
        with gzip.open(SHIPPED_RESPONSES, "rt", encoding="utf-8") as src:
            lines = src.readlines()
        if len(lines) >= cfg.n_prompts:
            path.write_text("".join(lines[: cfg.n_prompts]), encoding="utf-8")
            return path
    if path.exists():
        path.unlink()
    prompts = build_prompts(cfg.n_prompts, seed=cfg.seed)
    return generate_responses(default_reader_dir(), prompts, path, seed=cfg.seed)


def train_default_sae(
    out: Path, work: Path, cfg: TrainConfig, *, regenerate: bool = False, max_docs: int | None = None
) -> SAEQuality:
    """Build the corpus, extract activations, train, evaluate, label and save the SAE to ``out``.

    Intermediate files (responses, activations) are cached in ``work``; re-running reuses them.
    ``max_docs`` limits the corpus (for tests and quick trials).
    """
    import torch

    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    responses = reader_responses_file(work, cfg, regenerate)
    docs = build_corpus(responses)
    if max_docs is not None:
        rng = np.random.default_rng(cfg.seed)
        docs = [docs[i] for i in sorted(rng.choice(len(docs), min(max_docs, len(docs)), replace=False))]
    train_docs = [d for d in docs if not d.held_out]
    held_docs = [d for d in docs if d.held_out]
    reader = Reader(default_reader_dir(), cfg.layer, device="cpu", model_id=DEFAULT_READER_ID)
    tag = f"l{cfg.layer}-w{cfg.window}-n{len(docs)}"

    def report(done: int, total: int) -> None:
        log.info("extracted %d/%d tokens", done, total)

    train_file = extract_activations(
        reader, [d.text for d in train_docs], work / f"train-{tag}.f16", window=cfg.window, progress=report
    )
    held_file = extract_activations(
        reader, [d.text for d in held_docs], work / f"held-{tag}.f16", window=cfg.window, progress=report
    )
    doc_of, _, _ = train_file.rows()
    by_source: Counter[str] = Counter()
    for doc, n in zip(*np.unique(doc_of, return_counts=True), strict=True):
        by_source[train_docs[int(doc)].source] += int(n)
    held_doc, _, _ = held_file.rows()
    for doc, n in zip(*np.unique(held_doc, return_counts=True), strict=True):
        by_source[held_docs[int(doc)].source] += int(n)
    hook_name = f"blocks.{cfg.layer}.hook_resid_post"
    trained = train_topk_sae(train_file, cfg, hook_name=hook_name, model_name=DEFAULT_READER_ID)
    from sae_lens import SAE

    tmp = work / "inference-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    trained.save_inference_model(str(tmp))
    sae = SAE.load_from_disk(str(tmp), device="cpu", dtype="float32")
    # Evaluate what ships: the half-precision weights.
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(p.half().float())
    fvu, l0, dead, _ = evaluate_sae(sae, held_file)
    quality = SAEQuality(
        fvu=round(fvu, 4),
        l0=round(l0, 2),
        dead_fraction=round(dead, 4),
        d_sae=cfg.d_sae,
        held_out_tokens=held_file.meta["n_tokens"],
        train_tokens=train_file.meta["n_tokens"],
        train_samples=cfg.training_samples,
        corpus_tokens_by_source=dict(by_source.most_common()),
    )
    log.info("quality: %s", quality)
    data = train_file.load()
    sample_rows = np.sort(np.random.default_rng(cfg.seed).choice(len(data), min(len(data), 300_000), replace=False))
    thresholds = document_thresholds(sae, np.asarray(data[sample_rows]), cfg.threshold_fraction)
    rows, acts, counts = collect_top_examples(sae, data, thresholds)
    labels = token_labels(reader.tokenizer, train_file, rows, acts, counts, [d.source for d in train_docs], len(data))
    meta: dict[str, Any] = {
        "sae_id": f"saescope/{DEFAULT_READER_ID}-l{cfg.layer}-topk{cfg.k}-{cfg.d_sae}",
        "reader": DEFAULT_READER_ID,
        "layer": cfg.layer,
        "hook_name": hook_name,
        "train_config": asdict(cfg),
        "quality": asdict(quality),
        "thresholds": f"{cfg.threshold_fraction} x per-latent 99.9th percentile activation",
        "labels": "top-tokens: derived from top-activating tokens on the training corpus, no LLM",
        "versions": _versions(),
        "train_seconds": round(time.perf_counter() - started, 1),
        "command": "saescope train-sae",
    }
    save_inference_sae(sae, out, thresholds, meta, labels)
    shutil.rmtree(tmp, ignore_errors=True)
    (out / "quality.json").write_text(json.dumps(asdict(quality), indent=2))
    return quality


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "sae-lens", "saescope"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - an uninstalled package just has no version to record
            out[pkg] = "unknown"
    return out
