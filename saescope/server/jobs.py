"""Background embedding jobs: one worker thread runs them in order, while the server keeps answering.

Jobs live in the server process, so a client that disconnects and comes back (over HTTP) finds its job;
and because the store commits each shard atomically, a job cut short by a restart resumes where it
stopped when ``embed_dataset`` is called again with the same settings.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from saescope.ops.jobs import EmbedJob

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# A job's progress: docs done, docs total, tokens done, seconds, Ray actors alive (None on the local path).
JobProgress = Callable[[int, int, int, float, int | None], None]
# The work a job runs: it receives a progress callback and returns the embedding key.
JobWork = Callable[[JobProgress], str]


class JobManager:
    """Runs embedding jobs one at a time on a daemon thread: two jobs never compete for the cores, while tool
    calls (token evidence included: the reader is thread-safe) run beside the job in their own threads."""

    def __init__(self) -> None:
        self._jobs: dict[str, EmbedJob] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, JobWork]] = queue.Queue()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None

    def submit(self, dataset: str, sae: str, docs_total: int, work: JobWork, *, key: str | None = None) -> EmbedJob:
        """Queue ``work``; an unfinished job for the same dataset and SAE (the same ``key`` when given, e.g. the
        resolved SAE, so two spellings of one folder are one job) is returned instead of a second one."""
        with self._lock:
            for job_id, job in self._jobs.items():
                if job.active and job.dataset == dataset and self._keys.get(job_id, job.sae) == (key or sae):
                    return job.model_copy()
            job = EmbedJob(
                job_id=f"embed-{next(self._ids)}",
                dataset=dataset,
                sae=sae,
                state="queued",
                docs_total=docs_total,
                submitted=_now(),
            )
            self._jobs[job.job_id] = job
            self._keys[job.job_id] = key or sae
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="saescope-embed", daemon=True)
                self._worker.start()
        self._queue.put((job.job_id, work))
        return job.model_copy()

    def get(self, job_id: str) -> EmbedJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.model_copy() if job else None

    def all(self) -> list[EmbedJob]:
        with self._lock:
            return [j.model_copy() for j in reversed(self._jobs.values())]

    def active(self) -> list[EmbedJob]:
        return [j for j in self.all() if j.active]

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            self._jobs[job_id] = job.model_copy(update=fields)

    def _run(self) -> None:
        while True:
            job_id, work = self._queue.get()
            start = time.perf_counter()
            self._update(job_id, state="running")

            def progress(
                done: int, total: int, tokens: int, elapsed: float, actors: int | None, job_id: str = job_id
            ) -> None:
                self._update(
                    job_id,
                    docs_done=done,
                    docs_total=total,
                    tokens_done=tokens,
                    elapsed_s=round(elapsed, 2),
                    actors_alive=actors,
                )

            try:
                key = work(progress)
            except Exception as exc:
                log.exception("embedding job %s failed", job_id)
                self._update(
                    job_id,
                    state="failed",
                    error=_explain(exc),
                    finished=_now(),
                    elapsed_s=round(time.perf_counter() - start, 2),
                )
            else:
                with self._lock:
                    total = self._jobs[job_id].docs_total
                self._update(
                    job_id,
                    state="done",
                    embedding_key=key,
                    docs_done=total,
                    finished=_now(),
                    elapsed_s=round(time.perf_counter() - start, 2),
                )
            finally:
                self._queue.task_done()


def _explain(exc: Exception) -> str:
    from saescope.errors import SaescopeError, clip

    if isinstance(exc, SaescopeError):
        return str(exc)
    return (
        f"{type(exc).__name__}: {clip(str(exc), 2000)}. Shards finished so far are kept: call embed_dataset again with the "
        "same settings to resume."
    )
