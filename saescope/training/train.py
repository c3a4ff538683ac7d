"""Train, evaluate and ship a TopK SAE on a reader's residual stream with SAELens' trainer.

``saescope train-sae`` runs :func:`train_default_sae`: build the offline corpus (the reader's own
answers included), extract activations at one block, train, measure on held-out tokens, set
per-latent document thresholds, derive token labels, and write the SAE folder in half precision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saescope.training.activations import ActivationFile

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that decides the trained SAE; recorded in its ``saescope.json``."""

    layer: int = 15
    """Block whose output the SAE reads (0-based; SmolLM2-135M has 30)."""
    d_sae: int = 4096
    """Dictionary size."""
    k: int = 64
    """Latents active per token (TopK)."""
    training_samples: int = 4_000_000
    """Token vectors seen in training (about two passes over the corpus)."""
    batch_size: int = 4096
    lr: float = 4e-4
    lr_end: float = 4e-5
    warmup_steps: int = 50
    aux_loss_coefficient: float = 1.0 / 4
    """Weight of SAELens' AuxK loss, which revives latents that stopped firing. The usual 1/32 is tuned
    for runs of billions of tokens; over 4M samples it left 12.2% of latents dead on held-out tokens."""
    dead_feature_window: int = 24
    """Steps without firing after which a latent counts as dead for the AuxK loss: 24 batches of 4096 is
    about 98k tokens, the size of the held-out set on which dead latents are counted."""
    window: int = 256
    """Tokens per extraction window."""
    n_prompts: int = 1700
    """Prompts answered by the reader for the corpus."""
    seed: int = 0
    threshold_fraction: float = 0.7
    """A latent counts in a pooled document only above this fraction of its 99.9th-percentile activation."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SAEQuality:
    """Held-out measurements of a trained SAE."""

    fvu: float
    l0: float
    dead_fraction: float
    d_sae: int
    held_out_tokens: int
    train_tokens: int
    train_samples: int
    corpus_tokens_by_source: dict[str, int]


def _batches(data: np.ndarray, batch_size: int, seed: int, scale: float) -> Iterator[Any]:
    import torch

    rng = np.random.default_rng(seed)
    n = data.shape[0]
    while True:
        order = rng.permutation(n)
        for lo in range(0, n - batch_size + 1, batch_size):
            idx = np.sort(order[lo : lo + batch_size])
            yield torch.from_numpy(np.asarray(data[idx], dtype=np.float32))


def train_topk_sae(train: ActivationFile, cfg: TrainConfig, *, hook_name: str, model_name: str) -> Any:
    """Train a TopK SAE on the activations in ``train`` with SAELens' ``SAETrainer``."""
    import torch
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.manual_seed(cfg.seed)
    data = np.asarray(train.load())
    sample = data[np.random.default_rng(cfg.seed).choice(len(data), min(len(data), 100_000), replace=False)]
    sample = sample.astype(np.float32)
    mean = sample.mean(axis=0)
    # Normalise inputs to mean norm sqrt(d_in) while training; SAELens folds it into the weights after.
    scale = float(np.sqrt(data.shape[1]) / np.linalg.norm(sample, axis=1).mean())
    sae_cfg = TopKTrainingSAEConfig(
        d_in=int(data.shape[1]),
        d_sae=cfg.d_sae,
        k=cfg.k,
        aux_loss_coefficient=cfg.aux_loss_coefficient,
        normalize_activations="expected_average_only_in",
        dtype="float32",
        device="cpu",
    )
    sae_cfg.metadata.hook_name = hook_name
    sae_cfg.metadata.model_name = model_name
    sae = TopKTrainingSAE(sae_cfg)
    with torch.no_grad():
        sae.b_dec.copy_(torch.from_numpy(mean * scale))
    trainer_cfg = SAETrainerConfig(
        total_training_samples=cfg.training_samples,
        train_batch_size_samples=cfg.batch_size,
        lr=cfg.lr,
        lr_end=cfg.lr_end,
        lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=cfg.warmup_steps,
        lr_decay_steps=0,
        dead_feature_window=cfg.dead_feature_window,
        feature_sampling_window=10_000,
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=1,
    )
    trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=_batches(data, cfg.batch_size, cfg.seed, scale))
    trainer.activation_scaler.scaling_factor = scale
    start = time.perf_counter()
    trained = trainer.fit()
    log.info("trained %d samples in %.0f s", cfg.training_samples, time.perf_counter() - start)
    return trained


def evaluate_sae(sae: Any, held_out: ActivationFile, batch: int = 8192) -> tuple[float, float, float, np.ndarray]:
    """``(fvu, l0, dead_fraction, fires_per_latent)`` of an inference SAE on held-out activations."""
    import torch

    data = held_out.load()
    n, d = data.shape
    mean = np.zeros(d, dtype=np.float64)
    for lo in range(0, n, batch):
        mean += np.asarray(data[lo : lo + batch], dtype=np.float64).sum(axis=0)
    mean /= n
    sse = sst = 0.0
    l0: float = 0.0
    fires = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    with torch.inference_mode():
        for lo in range(0, n, batch):
            x = torch.from_numpy(np.asarray(data[lo : lo + batch], dtype=np.float32))
            z = sae.encode(x)
            rec = sae.decode(z)
            sse += float(((rec - x) ** 2).sum())
            sst += float(((x - torch.from_numpy(mean).float()) ** 2).sum())
            active = z > 0
            l0 += float(active.sum())
            fires += active.sum(dim=0)
    fvu = sse / sst
    return fvu, l0 / n, float((fires == 0).float().mean()), fires.numpy()


def document_thresholds(sae: Any, data: np.ndarray, fraction: float, batch: int = 8192) -> np.ndarray:
    """Per latent, ``fraction`` of its 99.9th-percentile activation over ``data`` (0 for dead latents).

    Max-pooling over a document turns any weak firing into "present"; a floor relative to each
    latent's own scale keeps a document's vector to the concepts it clearly expresses.
    """
    import torch

    per_latent: list[list[np.ndarray]] = [[] for _ in range(sae.cfg.d_sae)]
    with torch.inference_mode():
        for lo in range(0, data.shape[0], batch):
            z = sae.encode(torch.from_numpy(np.asarray(data[lo : lo + batch], dtype=np.float32)))
            rows, cols = z.nonzero(as_tuple=True)
            vals = z[rows, cols].numpy()
            cols_np = cols.numpy()
            order = np.argsort(cols_np, kind="stable")
            cols_sorted, vals_sorted = cols_np[order], vals[order]
            bounds = np.searchsorted(cols_sorted, np.arange(sae.cfg.d_sae + 1))
            for col in np.flatnonzero(np.diff(bounds)):
                per_latent[col].append(vals_sorted[bounds[col] : bounds[col + 1]])
    out = np.zeros(sae.cfg.d_sae, dtype=np.float32)
    for j, parts in enumerate(per_latent):
        if parts:
            out[j] = fraction * float(np.quantile(np.concatenate(parts), 0.999))
    return out


@dataclass
class LatentExamples:
    """Top-activating tokens of one latent, with the text around them."""

    examples: list[tuple[float, int, int]] = field(default_factory=list)
    """(activation, row in the activation file, doc index) of the strongest tokens, best first."""


def collect_top_examples(
    sae: Any, data: np.ndarray, thresholds: np.ndarray, per_latent: int = 24, batch: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each latent, the rows of its ``per_latent`` strongest activations and their values.

    Returns ``(rows, acts, fire_counts)`` where ``rows``/``acts`` are ``(d_sae, per_latent)``
    (``-1`` / ``0`` where fewer exist) and ``fire_counts`` counts tokens above the threshold.
    """
    import torch

    d_sae = sae.cfg.d_sae
    best_acts = torch.zeros((d_sae, per_latent))
    best_rows = torch.full((d_sae, per_latent), -1, dtype=torch.long)
    counts = torch.zeros(d_sae, dtype=torch.long)
    floor = torch.from_numpy(thresholds)
    with torch.inference_mode():
        for lo in range(0, data.shape[0], batch):
            z = sae.encode(torch.from_numpy(np.asarray(data[lo : lo + batch], dtype=np.float32)))
            counts += (z > floor).sum(dim=0)
            k = min(per_latent, z.shape[0])
            vals, idx = z.T.topk(k, dim=1)
            cand_acts = torch.cat([best_acts, vals], dim=1)
            cand_rows = torch.cat([best_rows, idx + lo], dim=1)
            top_vals, top_idx = cand_acts.topk(per_latent, dim=1)
            best_acts = top_vals
            best_rows = cand_rows.gather(1, top_idx)
        best_rows = torch.where(best_acts > 0, best_rows, torch.full_like(best_rows, -1))
    return best_rows.numpy(), best_acts.numpy(), counts.numpy()


def token_labels(
    tokenizer: Any,
    act_file: ActivationFile,
    rows: np.ndarray,
    acts: np.ndarray,
    counts: np.ndarray,
    doc_sources: list[str],
    n_tokens: int,
    context: int = 10,
) -> list[dict[str, Any]]:
    """Label records for every live latent: its top tokens, contexts and a short label derived from them."""
    doc_of, _pos_of, tok_of = act_file.rows()
    records: list[dict[str, Any]] = []
    for latent in range(rows.shape[0]):
        valid = rows[latent] >= 0
        if not valid.any():
            continue
        r = rows[latent][valid]
        a = acts[latent][valid]
        toks = [tokenizer.decode([int(tok_of[i])]) for i in r]
        token_counts = Counter(toks)
        sources = Counter(doc_sources[int(doc_of[i])] for i in r)
        examples = []
        for i, act in zip(r[:8], a[:8], strict=False):
            lo = max(int(i) - context, 0)
            while lo < i and doc_of[lo] != doc_of[i]:
                lo += 1
            hi = min(int(i) + 4, len(tok_of) - 1)
            while hi > i and doc_of[hi] != doc_of[i]:
                hi -= 1
            before = tokenizer.decode([int(t) for t in tok_of[lo:i]])
            after = tokenizer.decode([int(t) for t in tok_of[i + 1 : hi + 1]])
            examples.append(
                {
                    "text": f"{before}«{tokenizer.decode([int(tok_of[i])])}»{after}",
                    "activation": round(float(act), 3),
                    "source": doc_sources[int(doc_of[i])],
                }
            )
        label = label_from_tokens(token_counts, sources, len(r))
        records.append(
            {
                "latent": latent,
                "labels": [{"source": "top-tokens", "text": label, "score": None, "model": None}],
                "top_tokens": token_counts.most_common(8),
                "sources": dict(sources.most_common()),
                "token_frequency": round(float(counts[latent]) / max(n_tokens, 1), 6),
                "examples": examples,
            }
        )
    return add_context_to_labels(records)


def label_from_tokens(token_counts: Counter[str], sources: Counter[str], n: int, context: Sequence[str] = ()) -> str:
    """A short label: the dominant firing tokens, distinctive context words, and the dominant source."""
    top = [(t, c) for t, c in token_counts.most_common(4) if c / n >= 0.1] or token_counts.most_common(2)
    words = ", ".join(repr(t.strip() or t) for t, _ in top[:3])
    ctx = f" (context: {', '.join(context[:3])})" if context else ""
    source, count = sources.most_common(1)[0]
    tag = f" [{source}]" if count / n >= 0.6 else ""
    return f"{words}{ctx}{tag}"


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "this",
        "with",
        "was",
        "are",
        "but",
        "not",
        "you",
        "your",
        "have",
        "has",
        "had",
        "from",
        "they",
        "their",
        "them",
        "his",
        "her",
        "she",
        "him",
        "its",
        "it's",
        "our",
        "out",
        "all",
        "can",
        "will",
        "would",
        "could",
        "should",
        "there",
        "what",
        "when",
        "which",
        "who",
        "whom",
        "how",
        "why",
        "been",
        "being",
        "into",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "more",
        "most",
        "some",
        "such",
        "only",
        "own",
        "same",
        "any",
        "each",
        "few",
        "other",
        "over",
        "under",
        "again",
        "about",
        "above",
        "after",
        "before",
        "between",
        "through",
        "during",
        "here",
        "were",
        "does",
        "did",
        "doing",
        "these",
        "those",
        "because",
        "until",
        "while",
        "off",
        "upon",
        "one",
        "two",
        "let",
        "may",
        "might",
        "must",
        "shall",
        "yet",
        "nor",
        "per",
        "via",
        "get",
        "got",
    ]
)


def context_words(records: list[dict[str, Any]], per_latent: int = 3) -> dict[int, list[str]]:
    """Per latent, the words around its strongest activations that are rare around other latents' (tf-idf).

    A latent that fires on '.' at the end of negative reviews is then labelled with the words that
    made those sentences negative, not only with the full stop.
    """
    bags: dict[int, Counter[str]] = {}
    for rec in records:
        bag: Counter[str] = Counter()
        for ex in rec.get("examples", []):
            before = str(ex["text"]).split("«", 1)[0]
            bag.update({w.lower() for w in _WORD.findall(before)} - _STOP)
        bags[int(rec["latent"])] = bag
    df: Counter[str] = Counter()
    for bag in bags.values():
        df.update(bag.keys())
    n = max(len(bags), 1)
    out: dict[int, list[str]] = {}
    for latent, bag in bags.items():
        scored = sorted(((c * np.log(n / df[w]), w) for w, c in bag.items() if c >= 2), reverse=True)
        out[latent] = [w for _, w in scored[:per_latent]]
    return out


def add_context_to_labels(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rewrite each record's top-tokens label to include its distinctive context words."""
    ctx = context_words(records)
    for rec in records:
        counts = Counter({str(t): int(c) for t, c in rec["top_tokens"]})
        sources = Counter({str(k): int(v) for k, v in rec["sources"].items()})
        n = sum(sources.values())
        text = label_from_tokens(counts, sources, n, ctx.get(int(rec["latent"]), []))
        rec["labels"] = [lab for lab in rec["labels"] if lab["source"] != "top-tokens"] + [
            {"source": "top-tokens", "text": text, "score": None, "model": None}
        ]
    return records


def save_inference_sae(
    sae: Any, out: Path, thresholds: np.ndarray, meta: dict[str, Any], labels: list[dict[str, Any]]
) -> None:
    """Write the SAE folder atomically: fp16 weights, cfg, thresholds, labels and ``saescope.json``."""
    import gzip

    import torch
    from safetensors.torch import save_file

    from saescope.embed.sae import SAESCOPE_META_FILE, THRESHOLDS_FILE

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    sae.save_model(str(tmp))
    weights = tmp / "sae_weights.safetensors"
    from safetensors.torch import load_file

    state = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights))
    if "sae_id" in meta:
        # Retrains give new weights under the same recipe name: the id carries a digest of the weights so
        # that embeddings (keyed by SAE id) and label caches of different weights never mix.
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
        meta = {**meta, "sae_id": f"{meta['sae_id']}-{digest}"}
    cfg = json.loads((tmp / "cfg.json").read_text())
    cfg["dtype"] = "float16"
    (tmp / "cfg.json").write_text(json.dumps(cfg, indent=2))
    save_file({"thresholds": torch.from_numpy(thresholds).to(torch.float16)}, str(tmp / THRESHOLDS_FILE))
    (tmp / SAESCOPE_META_FILE).write_text(json.dumps(meta, indent=2))
    with gzip.open(tmp / "labels.jsonl.gz", "wt", encoding="utf-8") as fh:
        for rec in labels:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def quality_dict(q: SAEQuality) -> dict[str, Any]:
    return asdict(q)
