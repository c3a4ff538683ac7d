"""Documents → pooled SAE vectors: window, batch by token budget, read, encode, pool on the device.

Only the non-zero entries of each pooled window leave the device; windows of one document are then
combined on the CPU (max of maxima, sum of sums, ...), so long documents are never truncated.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from saescope.embed.reader import Reader, Window, split_windows
from saescope.embed.sae import SparseAutoencoder
from saescope.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Pooling = Literal["max", "mean", "sum", "count", "binary"]
POOLINGS: tuple[str, ...] = ("max", "mean", "sum", "count", "binary")
MAX_THRESHOLD = 1e6
"""Highest activation floor accepted; SAE activations are far below it."""
MAX_WINDOW = 1 << 20
MAX_TOKEN_BUDGET = 1 << 24
MAX_BATCH = 1 << 16


@dataclass(frozen=True)
class EmbedConfig:
    """How documents are read and pooled. Every field is recorded in an embedding's manifest."""

    pooling: Pooling = "max"
    """max (default), mean, sum, count (tokens above threshold) or binary (fires anywhere)."""
    threshold: float = 0.0
    """Global activation floor: a token counts for a latent only above it."""
    use_sae_thresholds: bool = True
    """Also apply the SAE's per-latent document thresholds when it ships them (the floor is the max)."""
    chat_template: bool = False
    """Read each document as an assistant message in the reader's chat template."""
    window: int = 512
    """Most tokens per window; longer documents are split and pooled across windows."""
    overlap: int = 32
    """Tokens of left context repeated at the start of each later window (not pooled twice); at most window/4."""
    token_budget: int = 0
    """Most tokens (padding included) per forward batch; 0 picks by device (2,048 CPU, 16,384 GPU)."""
    max_batch: int = 64
    """Most windows per batch, so that one batch never spans very different lengths."""

    def __post_init__(self) -> None:
        if not isinstance(self.pooling, str) or self.pooling not in POOLINGS:
            raise InputError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        for flag in ("use_sae_thresholds", "chat_template"):
            value = getattr(self, flag)
            if not isinstance(value, bool | np.bool_):
                raise InputError(f"{flag} must be true or false, got {value!r}")
            if not isinstance(value, bool):
                object.__setattr__(self, flag, bool(value))
        t = self.threshold
        if isinstance(t, bool | np.bool_) or not isinstance(t, numbers.Real):
            raise InputError(f"threshold must be a number, got {t!r}")
        if not math.isfinite(float(t)) or not 0 <= float(t) <= MAX_THRESHOLD:
            raise InputError(
                f"threshold must be a number from 0 to {MAX_THRESHOLD:g} (an activation floor: 0 keeps every "
                f"positive activation; a floor above every activation would leave every document empty), got {t!r}"
            )
        if type(t) not in (int, float):
            object.__setattr__(self, "threshold", float(t))
        for name, low, high in (
            ("window", 8, MAX_WINDOW),
            ("overlap", 0, MAX_WINDOW),
            ("token_budget", 0, MAX_TOKEN_BUDGET),
            ("max_batch", 1, MAX_BATCH),
        ):
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
                raise InputError(f"{name} must be a whole number, got {value!r}")
            if not low <= int(value) <= high:
                unit = "tokens" if name != "max_batch" else "windows"
                raise InputError(f"{name} must be from {low:,} to {high:,} {unit}, got {value!r}")
            if type(value) is not int:
                object.__setattr__(self, name, int(value))
        if self.token_budget and self.token_budget < self.window:
            raise InputError(f"token_budget ({self.token_budget}) must be at least window ({self.window}), or 0")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EmbedProgress:
    """Counts reported after each batch."""

    docs_done: int
    docs_total: int
    tokens_done: int
    elapsed_s: float


@dataclass(frozen=True)
class TokenEvidence:
    """One token of a document and its activation on one latent."""

    position: int
    token: str
    activation: float


def batch_by_budget(lengths: Sequence[int], budget: int, max_batch: int = 1 << 30) -> list[list[int]]:
    """Group item indices, longest first, so that ``len(batch) * longest_in_batch <= budget``.

    At most ``max_batch`` items go in one batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        w = max(width, lengths[i], 1)
        if current and (w * (len(current) + 1) > budget or len(current) >= max_batch):
            batches.append(current)
            current, w = [], max(lengths[i], 1)
        current.append(i)
        width = w
    if current:
        batches.append(current)
    return batches


_MAX_WORKERS = 8

_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op thread count, which is process-wide, to ``n`` while any caller is inside.

    The count saved by the first caller to enter is restored when the last one leaves.
    """
    import torch

    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(n)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def default_workers(device: str) -> int:
    """Batches run at once: one per intra-op thread (at most 8) on CPU, one on an accelerator.

    ``SAESCOPE_EMBED_WORKERS`` overrides it.

    Raises:
        InputError: ``SAESCOPE_EMBED_WORKERS`` is not a positive integer.
    """
    env = os.environ.get("SAESCOPE_EMBED_WORKERS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise InputError(f"SAESCOPE_EMBED_WORKERS must be a positive integer, got {env!r}")
        return int(env)
    if device != "cpu":
        return 1
    return max(1, min(_torch_threads(), _MAX_WORKERS))


def _set_worker_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _torch_threads() -> int:
    """torch's intra-op thread count outside any :func:`_intra_op_threads` section."""
    import torch

    with _threads_lock:
        return _threads_saved if _threads_users else torch.get_num_threads()


_BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray]


class _Deferred:
    """A batch that runs when its result is first asked for: the serial scheduler, so that progress
    is reported batch by batch as it is computed."""

    def __init__(self, fn: Callable[[list[Window]], _BatchResult], batch: list[Window]) -> None:
        self._fn, self._batch = fn, batch

    def result(self) -> _BatchResult:
        return self._fn(self._batch)


_Pending = Future[_BatchResult] | _Deferred


@dataclass
class _Group:
    """One group of :meth:`Embedder.embed_many`: its batches (started) and per-document counts."""

    n_docs: int
    n_tokens: np.ndarray
    remaining: np.ndarray
    """Windows of each document not yet collected."""
    batches: list[tuple[list[Window], _Pending]] = field(default_factory=list)


@dataclass
class _Counts:
    """Running totals over the groups of one :meth:`Embedder.embed_many` call."""

    start: float
    docs_total: int = 0
    docs_done: int = 0
    tokens_done: int = 0


class Embedder:
    """Reads documents with a :class:`Reader` and encodes them with a :class:`SparseAutoencoder`.

    Args:
        workers: batches run at once in threads, each with ``threads // workers`` intra-op threads;
            by default :func:`default_workers`. On a CPU, one single-threaded batch per core keeps the
            cores busy through the small element-wise kernels and Python glue that a multi-threaded
            batch runs half-idle (8% more tokens/s on 2 cores: ``benchmarks/embed.py --workers 1``
            against the default). Vectors agree to float rounding.

    Raises:
        InputError: the SAE's width does not match the reader, or it reads another layer.
    """

    def __init__(
        self,
        reader: Reader,
        sae: SparseAutoencoder,
        config: EmbedConfig | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        if sae.d_in != reader.d_model:
            raise InputError(f"SAE {sae.id} has d_in={sae.d_in} but reader {reader.model_id} has {reader.d_model}")
        if sae.layer is not None and sae.layer != reader.layer:
            raise InputError(f"SAE {sae.id} reads block {sae.layer} but the reader is cut at block {reader.layer}")
        self.reader = reader
        self.sae = sae
        self.config = config or EmbedConfig()
        self.workers = workers or default_workers(reader.device)
        self._floor = self._threshold_floor()

    def _threshold_floor(self) -> torch.Tensor:
        import torch

        floor = torch.full((self.sae.d_sae,), float(self.config.threshold), device=self.sae.device)
        if self.config.use_sae_thresholds and self.sae.thresholds is not None:
            floor = torch.maximum(floor, self.sae.thresholds.to(floor.device))
        return floor

    def windows(self, token_ids: list[list[int]]) -> list[Window]:
        length = self.reader.window_length(self.config.window, self.config.chat_template)
        overlap = min(self.config.overlap, length // 4)
        out: list[Window] = []
        for doc, ids in enumerate(token_ids):
            out.extend(split_windows(doc, ids, length, overlap))
        return out

    def _encode_tokens(self, acts: torch.Tensor) -> torch.Tensor:
        """SAE codes of ``acts`` with sub-threshold activations zeroed, in chunks to bound memory."""
        import torch

        chunk = max(256, 2**26 // self.sae.d_sae)
        parts = []
        for lo in range(0, acts.shape[0], chunk):
            z = self.sae.encode(acts[lo : lo + chunk]).float()
            parts.append(torch.where(z > self._floor, z, torch.zeros((), device=z.device)))
        return torch.cat(parts) if parts else acts.new_zeros((0, self.sae.d_sae))

    def _encode_pool(self, acts: torch.Tensor, widx: torch.Tensor, n_win: int) -> torch.Tensor:
        """Pooled, thresholded SAE codes ``(n_win, d_sae)`` of the token vectors ``acts`` of ``n_win`` windows.

        TopK SAEs are pooled from their ``(n, k)`` non-zeros; other SAEs from dense codes.
        """
        import torch

        if not self.sae.is_topk:
            return self._pool_windows(self._encode_tokens(acts), widx, n_win)
        d_sae = self.sae.d_sae
        out = torch.zeros(n_win * d_sae, device=self.sae.device, dtype=torch.float32)
        widx = widx.to(out.device)
        chunk = max(256, 2**26 // d_sae)
        pooling = self.config.pooling
        for lo in range(0, acts.shape[0], chunk):
            values, latents = self.sae.encode_topk(acts[lo : lo + chunk])
            values = values.float()
            values = torch.where(values > self._floor[latents], values, torch.zeros((), device=values.device))
            index = (widx[lo : lo + chunk, None] * d_sae + latents).reshape(-1)
            if pooling == "max":
                out.scatter_reduce_(0, index, values.reshape(-1), reduce="amax", include_self=True)
            elif pooling in ("sum", "mean"):
                out.index_add_(0, index, values.reshape(-1))
            else:
                out.index_add_(0, index, (values > 0).float().reshape(-1))
        return out.view(n_win, d_sae)

    def _pool_windows(self, z: torch.Tensor, widx: torch.Tensor, n_win: int) -> torch.Tensor:
        import torch

        out = torch.zeros((n_win, self.sae.d_sae), device=z.device, dtype=torch.float32)
        index = widx.to(z.device).unsqueeze(1).expand_as(z)
        pooling = self.config.pooling
        if pooling == "max":
            out.scatter_reduce_(0, index, z, reduce="amax", include_self=True)
        elif pooling in ("sum", "mean"):
            out.index_add_(0, widx.to(z.device), z)
        else:
            out.index_add_(0, widx.to(z.device), (z > 0).float())
        return out

    def embed(
        self,
        texts: Sequence[str],
        progress: Callable[[EmbedProgress], None] | None = None,
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """Pooled SAE vectors of ``texts`` as a CSR matrix ``(len(texts), d_sae)`` and tokens pooled per text.

        The result depends only on the texts and the configuration, not on how they are batched
        across calls, so an interrupted job that re-embeds a shard gets identical rows.
        """
        stream = self.embed_many([texts], progress)
        try:
            return next(stream)
        finally:
            stream.close()  # shut the workers down now, not when the generator is collected

    def embed_many(
        self,
        groups: Iterable[Sequence[str]],
        progress: Callable[[EmbedProgress], None] | None = None,
    ) -> Generator[tuple[sp.csr_matrix, np.ndarray]]:
        """:meth:`embed` of each group of texts (a store's shards), yielded in order.

        With several workers, the next group's batches are queued before a group's result is
        yielded, so no core idles at group boundaries; each group's result is the same as
        :meth:`embed` of it alone. ``progress`` counts documents and tokens over all groups so far.
        If the caller stops early (a cancelled job), queued batches are dropped.
        """
        with self._scheduler() as submit:
            lookahead = 1 if self.workers > 1 else 0
            pending: deque[_Group] = deque()
            counts = _Counts(time.perf_counter())
            for texts in groups:
                pending.append(self._submit(texts, submit, counts))
                while len(pending) > lookahead:
                    yield self._collect(pending.popleft(), counts, progress)
            while pending:
                yield self._collect(pending.popleft(), counts, progress)

    @contextmanager
    def _scheduler(self) -> Iterator[Callable[[list[Window]], _Pending]]:
        """A function that schedules one batch: on a pool of workers, or to run when its result is asked for."""
        if self.workers <= 1:
            yield lambda bw: _Deferred(self._embed_batch, bw)
            return
        self.reader.prepare(self.config.chat_template)  # the shared prefix, once, before the threads
        threads = max(1, _torch_threads() // self.workers)
        with _intra_op_threads(threads):
            # Each worker sets its own OpenMP thread count too: a new thread otherwise starts at the
            # machine default, which oneDNN's matmuls use until an aten op first initialises it.
            pool = ThreadPoolExecutor(
                max_workers=self.workers,
                thread_name_prefix="saescope-batch",
                initializer=_set_worker_threads,
                initargs=(threads,),
            )
            try:
                yield lambda bw: pool.submit(self._embed_batch, bw)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, texts: Sequence[str], submit: Callable[[list[Window]], _Pending], counts: _Counts) -> _Group:
        token_ids = self.reader.tokenize(list(texts))
        windows = self.windows(token_ids)
        n_docs = len(texts)
        budget = self.config.token_budget or (2048 if self.reader.device == "cpu" else 16384)
        budget = max(budget, max((len(w.token_ids) for w in windows), default=1))
        group = _Group(
            n_docs=n_docs,
            n_tokens=np.array([len(t) for t in token_ids], dtype=np.int64),
            remaining=np.bincount([w.doc for w in windows], minlength=n_docs),
        )
        counts.docs_total += n_docs
        for batch in batch_by_budget([len(w.token_ids) for w in windows], budget, self.config.max_batch):
            bw = [windows[i] for i in batch]
            group.batches.append((bw, submit(bw)))
        return group

    def _collect(
        self, group: _Group, counts: _Counts, progress: Callable[[EmbedProgress], None] | None
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for bw, future in group.batches:
            r, c, v = future.result()
            docs = np.array([w.doc for w in bw], dtype=np.int64)
            rows.append(docs[r])
            cols.append(c)
            vals.append(v)
            counts.tokens_done += sum(w.n_pooled for w in bw)
            np.subtract.at(group.remaining, docs, 1)
            if progress is not None:
                done = counts.docs_done + int((group.remaining == 0).sum())
                progress(EmbedProgress(done, counts.docs_total, counts.tokens_done, time.perf_counter() - counts.start))
        counts.docs_done += group.n_docs
        if progress is not None and not group.batches:  # no document had a token
            progress(
                EmbedProgress(
                    counts.docs_done, counts.docs_total, counts.tokens_done, time.perf_counter() - counts.start
                )
            )
        return self._combine(rows, cols, vals, group.n_docs, group.n_tokens), group.n_tokens

    def _embed_batch(self, bw: list[Window]) -> _BatchResult:
        """(window, latent, value) of the non-zero pooled entries of one batch of windows."""
        acts, widx, _ = self.reader.forward(bw, self.config.chat_template)
        pooled = self._encode_pool(acts, widx, len(bw))
        r, c = pooled.nonzero(as_tuple=True)
        v = pooled[r, c]
        return r.cpu().numpy(), c.cpu().numpy().astype(np.int64), v.cpu().numpy().astype(np.float32)

    def _combine(
        self,
        rows: list[np.ndarray],
        cols: list[np.ndarray],
        vals: list[np.ndarray],
        n_docs: int,
        n_tokens: np.ndarray,
    ) -> sp.csr_matrix:
        shape = (n_docs, self.sae.d_sae)
        if not sum(len(r) for r in rows):  # no batch, or no entry above the thresholds in any
            return sp.csr_matrix(shape, dtype=np.float32)
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        key = r * self.sae.d_sae + c
        order = np.argsort(key, kind="stable")
        key, v = key[order], v[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        pooling = self.config.pooling
        if pooling == "max":
            v = np.maximum.reduceat(v, starts)
        else:
            v = np.add.reduceat(v, starts)
        key = key[starts]
        r, c = key // self.sae.d_sae, key % self.sae.d_sae
        if pooling == "mean":
            v = v / np.maximum(n_tokens[r], 1).astype(np.float32)
        elif pooling == "binary":
            v = np.ones_like(v)
        matrix = sp.csr_matrix((v.astype(np.float32), (r, c)), shape=shape)
        matrix.sort_indices()
        return matrix

    def token_evidence(self, text: str, latents: Sequence[int]) -> dict[int, list[TokenEvidence]]:
        """Per latent, the tokens of ``text`` where it fires (above the document threshold), in order.

        Recomputed on demand: token-level activations are never stored.
        """
        bad = [i for i in latents if not 0 <= i < self.sae.d_sae]
        if bad:
            raise InputError(f"latent ids {bad} are out of range for {self.sae.id} (0..{self.sae.d_sae - 1})")
        ids = self.reader.tokenize([text])[0]
        windows = self.windows([ids])
        result: dict[int, list[TokenEvidence]] = {int(i): [] for i in latents}
        offset = 0
        for w in windows:
            acts, _, pos = self.reader.forward([w], self.config.chat_template)
            z = self._encode_tokens(acts)[:, list(latents)].cpu().numpy()
            pos_np = pos.cpu().numpy()
            for j, latent in enumerate(latents):
                for k in np.flatnonzero(z[:, j] > 0):
                    p = int(pos_np[k])
                    tok_id = w.token_ids[p]
                    result[int(latent)].append(
                        TokenEvidence(
                            position=offset + p - w.n_context,
                            token=str(self.reader.tokenizer.decode([tok_id])),
                            activation=float(z[k, j]),
                        )
                    )
            offset += w.n_pooled
        return result
