"""The describe operation: LLM-free descriptions of an SAE's latents, measured and saved as labels.

Over a dataset's documents (the probe set), each latent's firing pattern is matched against the similarity
of every document to every concept of a vocabulary (:func:`saescope.analyses.describe.match_concepts`). The
best concept becomes a ``concept`` label of the SAE, scored by its held-out fidelity (AUROC), next to the
token labels; the label shown is chosen by :meth:`saescope.labels.LatentLabels.best`, so a description
that predicts poorly where its latent fires is never preferred.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from saescope import analyses as an
from saescope.analyses.common import render_table
from saescope.analyses.describe import MIN_PROBE_DOCS
from saescope.errors import InputError, clip
from saescope.labels import CONCEPT_MIN_FIDELITY, FeatureLabel, LatentLabels
from saescope.ops.docsets import DocSet, resolve
from saescope.ops.encoder import Vectors, dataset_vectors, encode
from saescope.ops.requests import DescribeLatentsRequest
from saescope.paths import cache_home
from saescope.workspace import Workspace

MAX_CONCEPTS = 5000
_LOCK = threading.Lock()


class Vocabulary(BaseModel):
    """Concept descriptions, each with its category (empty when the file gives none)."""

    name: str
    texts: list[str]
    categories: list[str]


def parse_vocabulary(text: str, name: str) -> Vocabulary:
    """Lines ``category: description`` or ``description``; blank lines and ``#`` comments are skipped.

    Raises:
        InputError: no description, or more than 5,000.
    """
    texts, cats = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cat, sep, desc = line.partition(":")
        if sep and desc.strip() and " " not in cat.strip():
            texts.append(desc.strip())
            cats.append(cat.strip())
        else:
            texts.append(line)
            cats.append("")
    texts_seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        texts_seen.setdefault(t, i)
    keep = sorted(texts_seen.values())
    if not keep:
        raise InputError(f"vocabulary {clip(name)!r} has no description (one per line, e.g. 'tone: sarcasm')")
    if len(keep) > MAX_CONCEPTS:
        raise InputError(f"vocabulary {clip(name)!r} has {len(keep)} descriptions; at most {MAX_CONCEPTS}")
    return Vocabulary(name=name, texts=[texts[i] for i in keep], categories=[cats[i] for i in keep])


@cache
def shipped_vocabulary() -> Vocabulary:
    """The vocabulary shipped in ``saescope/data/concepts.txt``."""
    text = (files("saescope") / "data" / "concepts.txt").read_text(encoding="utf-8")
    return parse_vocabulary(text, "shipped")


def load_vocabulary(path: str | None) -> Vocabulary:
    """The shipped vocabulary, or the file at ``path``.

    Raises:
        InputError: unreadable, not UTF-8, too large, or empty.
    """
    if path is None:
        return shipped_vocabulary()
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            raise InputError(f"vocabulary {clip(str(p))!r} is not a file (one description per line)")
        if p.stat().st_size > 16 << 20:
            raise InputError(f"vocabulary {clip(str(p))!r} is over 16 MiB")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read vocabulary {clip(str(p))!r}: {type(exc).__name__}: {clip(str(exc))}") from exc
    return parse_vocabulary(text, p.name)


def concept_vectors(vocab: Vocabulary) -> Vectors:
    """Sentence embeddings of the vocabulary's descriptions, cached on disk by their digest."""
    digest = hashlib.sha256("\n".join(vocab.texts).encode()).hexdigest()[:16]
    path = cache_home() / "concepts" / f"minilm-{digest}.npy"
    with _LOCK:
        if path.is_file():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(vocab.texts):
                    return np.asarray(cached, dtype=np.float32)
            except (OSError, ValueError):
                pass
        out = encode(vocab.texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out


class Description(BaseModel):
    latent: int
    description: str
    category: str
    fidelity: float = Field(description="held-out AUROC of the description for where the latent fires")
    runner_up: str | None
    tokens: str = Field(description="the latent's token label, for comparison")


class DescribeResult(BaseModel):
    """What describing an SAE's latents on one dataset found."""

    dataset: str
    sae: str
    vocabulary: str
    n_docs: int
    n_concepts: int
    n_tested: int = Field(description="latents firing in at least min_fires documents, and not in all")
    n_described: int = Field(description="latents given a description (positive correlation)")
    n_shown: int = Field(description=f"descriptions with fidelity >= {CONCEPT_MIN_FIDELITY}, preferred over tokens")
    fidelity_quartiles: list[float] = Field(description="25th, 50th and 75th percentile of fidelity")
    top: list[Description]

    def to_text(self) -> str:
        q = ", ".join(f"{v:.2f}" for v in self.fidelity_quartiles)
        head = (
            f"{self.n_described} of {self.n_tested} testable latents of {self.sae} described on {self.dataset} "
            f"({self.n_docs} documents, {self.n_concepts} concepts of the {self.vocabulary} vocabulary); "
            f"fidelity quartiles {q or '-'}; {self.n_shown} with fidelity >= {CONCEPT_MIN_FIDELITY} are now shown "
            "instead of their tokens"
        )
        table = render_table(
            ["latent", "fidelity", "description", "category", "tokens"],
            [[d.latent, d.fidelity, d.description, d.category, d.tokens] for d in self.top],
            max_cell=48,
        )
        return f"{head}\n{table}"


def describe_latents(ws: Workspace, req: DescribeLatentsRequest) -> DescribeResult:
    """Describe the latents of ``req.dataset``'s SAE from their firing over its documents, and save the
    descriptions as ``concept`` labels of that SAE (kept per probe dataset; the best-scored one is shown).

    Raises:
        InputError, NotFoundError: unknown dataset or SAE, a bad filter, fewer than 20 documents, or a bad
            vocabulary file.
    """
    vocab = load_vocabulary(req.vocabulary)
    r = resolve(ws, DocSet(req.dataset, req.where, req.sae), min_docs=MIN_PROBE_DOCS)
    strata = None
    if req.stratify_by is not None:
        strata = r.column(req.stratify_by).astype(str).to_numpy()
    sae = ws.sae_of(r.embedding)
    book = ws.labels(sae)
    sims = dataset_vectors(ws, req.dataset)[r.rows] @ concept_vectors(vocab).T
    matches = an.match_concepts(
        r.X, sims, vocab.texts, held_out=req.held_out, seed=req.seed, min_fires=req.min_fires, strata=strata
    )
    probe = f"probe:{req.dataset}" + (f"[{req.where}]" if req.where else "")
    ws.save_labels(
        sae,
        [
            LatentLabels(
                latent=m.latent,
                labels=[FeatureLabel(source="concept", text=m.concept, score=round(m.fidelity, 4), model=probe)],
            )
            for m in matches
        ],
    )
    category = dict(zip(vocab.texts, vocab.categories, strict=True))
    fid = np.array([m.fidelity for m in matches])
    top = sorted(matches, key=lambda m: (-m.fidelity, m.latent))[: req.top_k]
    counts = an.common.column_counts(r.X)
    testable = int(((counts >= req.min_fires) & (counts < len(r.rows))).sum())
    return DescribeResult(
        dataset=req.dataset,
        sae=sae.id,
        vocabulary=vocab.name,
        n_docs=len(r.rows),
        n_concepts=len(vocab.texts),
        n_tested=testable,
        n_described=len(matches),
        n_shown=int((fid >= CONCEPT_MIN_FIDELITY).sum()),
        fidelity_quartiles=[float(v) for v in np.percentile(fid, [25, 50, 75])] if len(fid) else [],
        top=[
            Description(
                latent=m.latent,
                description=m.concept,
                category=category.get(m.concept, ""),
                fidelity=m.fidelity,
                runner_up=m.runner_up,
                tokens=next((lab.text for lab in book.get(m.latent).labels if lab.source == "top-tokens"), ""),
            )
            for m in top
        ],
    )
