"""The sentence encoder shared by every operation that matches words against latents or documents.

One :class:`~saescope.embed.sentence.SentenceEncoder` per process (the model loads on first use), and the
label embeddings of each SAE's labels, cached on disk by the labels' digest.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import numpy as np
import numpy.typing as npt

from saescope.embed.sentence import SENTENCE_DIM, SentenceEncoder
from saescope.paths import cache_home
from saescope.store.dataset import Embedding
from saescope.workspace import Workspace

Vectors = npt.NDArray[np.float32]
log = logging.getLogger(__name__)

_ENCODER: SentenceEncoder | None = None
_ENCODER_LOCK = threading.Lock()


def sentence_encoder() -> SentenceEncoder:
    """The process's sentence encoder (created once; its model loads on the first ``encode``)."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            _ENCODER = SentenceEncoder()
        return _ENCODER


def encode(texts: list[str]) -> Vectors:
    """L2-normalised sentence embeddings of ``texts``."""
    return np.asarray(sentence_encoder().encode(texts), dtype=np.float32)


def label_embeddings(ws: Workspace, emb: Embedding) -> Vectors:
    """Sentence embeddings of every latent's preferred label (zeros for unlabelled), cached on disk."""
    book = ws.labels(ws.sae_of(emb))
    d_sae = emb.manifest.d_sae
    texts = book.texts()
    digest = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()[:16]
    path = cache_home() / "label-embeddings" / f"{digest}-{d_sae}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    ids = sorted(texts)
    out = np.zeros((d_sae, SENTENCE_DIM), dtype=np.float32)
    if ids:
        out[ids] = encode([texts[i] for i in ids])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def context_embeddings(ws: Workspace, emb: Embedding, *, per_latent: int = 4, window: int = 24) -> Vectors:
    """Sentence embeddings of each latent's activating contexts: the text within ``window`` characters of the
    marked token in its strongest label-book examples (up to ``per_latent`` distinct ones, joined); zeros
    for a latent without examples. Short windows keep encoding every latent affordable on a CPU. Cached on
    disk by the contexts' digest, so a changed label book is re-encoded once."""
    book = ws.labels(ws.sae_of(emb))
    d_sae = emb.manifest.d_sae
    texts = {}
    for i, rec in book.latents.items():
        snippets = dict.fromkeys(_around_marker(ex.text, window) for ex in rec.examples)
        snippets.pop("", None)
        if snippets and 0 <= i < d_sae:
            texts[i] = " … ".join(list(snippets)[:per_latent])
    digest = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()[:16]
    path = cache_home() / "context-embeddings" / f"{digest}-{d_sae}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    ids = sorted(texts)
    out = np.zeros((d_sae, SENTENCE_DIM), dtype=np.float32)
    for lo in range(0, len(ids), 512):
        part = ids[lo : lo + 512]
        out[part] = encode([texts[i] for i in part])
        log.info("context embeddings of %s: %d/%d latents", book.sae_id, lo + len(part), len(ids))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def _around_marker(text: str, window: int) -> str:
    """The text within ``window`` characters of the «marked» token, markers removed and spaces squeezed."""
    lo, hi = text.find("«"), text.find("»")
    if lo >= 0 and hi > lo:
        text = text[max(0, lo - window) : hi + 1 + window]
    return " ".join(text.replace("«", "").replace("»", "").split())


def axis_scores(ws: Workspace, emb: Embedding, text: str) -> Vectors:
    """Cosine similarity between each latent's label and ``text``."""
    scores: Vectors = label_embeddings(ws, emb) @ encode([text])[0]
    return scores


def dataset_vectors(ws: Workspace, dataset: str, *, batch: int = 256) -> Vectors:
    """Sentence embeddings of every document of ``dataset``, in its row order: the dense baseline and the
    probe set of concept descriptions. Cached on disk by the dataset's fingerprint (a hash of its ids and
    texts), so a re-ingested dataset is re-encoded and an unchanged one never is; encoded in batches, with
    progress logged.

    Raises:
        NotFoundError: unknown dataset.
    """
    ds = ws.dataset(dataset)
    info = ds.info
    path = cache_home() / "dense" / f"minilm-{info.fingerprint}-{info.n_docs}.npy"
    if path.is_file():
        try:
            cached = np.load(path)
            if cached.shape == (info.n_docs, SENTENCE_DIM):
                return np.asarray(cached, dtype=np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    texts = [str(t) for t in ds.documents(["text"])["text"]]
    out = np.zeros((len(texts), SENTENCE_DIM), dtype=np.float32)
    for lo in range(0, len(texts), batch):
        out[lo : lo + batch] = encode(texts[lo : lo + batch])
        if len(texts) > batch:
            log.info("dense embeddings of %s: %d/%d documents", dataset, min(lo + batch, len(texts)), len(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out
