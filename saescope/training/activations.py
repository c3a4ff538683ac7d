"""Residual-stream activations of a corpus, written to disk as float16 for SAE training."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from saescope.embed.engine import batch_by_budget
from saescope.embed.reader import Reader, Window, split_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivationFile:
    """A ``(n_tokens, d_model)`` float16 matrix on disk with, per row, its document and token id."""

    path: Path

    @property
    def meta(self) -> dict[str, int]:
        return dict(json.loads(self.path.with_suffix(".json").read_text()))

    def load(self) -> np.memmap:
        m = self.meta
        return np.memmap(self.path, dtype=np.float16, mode="r", shape=(m["n_tokens"], m["d_model"]))

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(doc index, position in document, token id)`` of every row."""
        z = np.load(self.path.with_suffix(".index.npz"))
        return z["doc"], z["pos"], z["token"]

    @property
    def complete(self) -> bool:
        return self.path.with_suffix(".json").is_file()


def extract_activations(
    reader: Reader,
    texts: Sequence[str],
    out: Path,
    *,
    window: int = 256,
    token_budget: int = 8192,
    progress: Callable[[int, int], None] | None = None,
) -> ActivationFile:
    """Write the hooked block's residual stream for every pooled token of ``texts`` to ``out``.

    Tokens are the same ones an embedding pools (no sink, padding or template tokens). The
    ``.json`` sidecar is written last, so a file without it is an incomplete run.
    """
    result = ActivationFile(out)
    if result.complete:
        return result
    token_ids = reader.tokenize(list(texts))
    length = reader.window_length(window, chat_template=False)
    windows: list[Window] = []
    for doc, ids in enumerate(token_ids):
        windows.extend(split_windows(doc, ids, length, min(32, length // 4)))
    n_tokens = sum(w.n_pooled for w in windows)
    out.parent.mkdir(parents=True, exist_ok=True)
    mm = np.memmap(out, dtype=np.float16, mode="w+", shape=(n_tokens, reader.d_model))
    doc_of = np.empty(n_tokens, dtype=np.int32)
    pos_of = np.empty(n_tokens, dtype=np.int32)
    tok_of = np.empty(n_tokens, dtype=np.int32)
    # Rows go in window order so that a document's tokens are contiguous.
    starts = np.cumsum([0] + [w.n_pooled for w in windows])
    doc_offset: dict[int, int] = {}
    first_pos = []
    for w in windows:
        first_pos.append(doc_offset.get(w.doc, 0))
        doc_offset[w.doc] = first_pos[-1] + w.n_pooled
    done = 0
    for batch in batch_by_budget([len(w.token_ids) for w in windows], token_budget):
        bw = [windows[i] for i in batch]
        acts, widx, pos = reader.forward(bw, chat_template=False)
        a = acts.float().cpu().numpy().astype(np.float16)
        widx_np, pos_np = widx.cpu().numpy(), pos.cpu().numpy()
        for j, wi in enumerate(batch):
            sel = widx_np == j
            w = windows[wi]
            lo, hi = starts[wi], starts[wi + 1]
            mm[lo:hi] = a[sel]
            doc_of[lo:hi] = w.doc
            local = pos_np[sel] - w.n_context
            pos_of[lo:hi] = first_pos[wi] + local
            tok_of[lo:hi] = np.asarray(w.token_ids, dtype=np.int32)[pos_np[sel]]
        done += sum(w.n_pooled for w in bw)
        if progress is not None:
            progress(done, n_tokens)
    mm.flush()
    np.savez(out.with_suffix(".index.npz"), doc=doc_of, pos=pos_of, token=tok_of)
    out.with_suffix(".json").write_text(json.dumps({"n_tokens": int(n_tokens), "d_model": reader.d_model}))
    return result
