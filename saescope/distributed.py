"""Embedding on a Ray cluster: the reader's forward pass spread over a pool of actors.

Ray Data hands each missing shard's documents (one block per shard) to a pool of actors; each actor loads
the reader and SAE once and embeds a shard with the same :class:`~saescope.embed.engine.Embedder` as the
local path, so its rows are those the local path computes for that shard. Only the driver writes: the rows
come back to it, are put back in shard order and pass through :meth:`~saescope.store.dataset.Embedding.run`
(atomic shard commits, manifest, resume), so a store made on a cluster is the store made locally.

Ray Data restarts a dead actor and retries its tasks (its actor pools default to ``max_restarts=-1`` and
``max_task_retries=-1``); a shard's result is used once, by shard index, so a retried task never
duplicates rows. A killed driver loses only its uncommitted shards: the next run embeds those.

``ray`` is an optional extra (``pip install 'saescope[ray]'``) and is imported only here, inside functions.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from saescope.errors import InputError, MissingAssetError, SaescopeError, clip
from saescope.store.dataset import Dataset, EmbeddingManifest, EmbeddingSpec, EmbedFn, ShardProgress

if TYPE_CHECKING:
    from types import ModuleType

    from saescope.embed.engine import EmbedConfig
    from saescope.workspace import SAEChoice

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "default"
"""``--ray`` without an address: ``$RAY_ADDRESS``, else a cluster started on this machine, else a new local one."""
RAY_MISSING = "Ray is not installed: `pip install 'saescope[ray]'` (on the driver and on every node of the cluster)"
_ACTOR_CLASS = "ShardEmbedder"
_ALIVE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 5.0
"""How long a ``host:port`` address gets to accept a TCP connection before ``connect`` gives up on it (Ray's
own client waits minutes on an address where nothing listens)."""


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide to run an embedding on Ray.

    Raises:
        InputError: a count or resource amount is out of range.
    """

    address: str = DEFAULT_ADDRESS
    """:data:`DEFAULT_ADDRESS`, ``auto`` (a running cluster), ``host:6379`` or ``ray://host:10001``."""
    actors: int | None = None
    """Actors (copies of the reader); None: one per GPU with GPU actors, else one per ``cpus_per_actor`` CPUs."""
    gpus_per_actor: float | None = None
    """GPUs each actor reserves; None: 1 when the cluster has GPUs, else 0 (CPU actors)."""
    cpus_per_actor: float = 1.0
    """CPUs each actor reserves; Ray sets its torch threads to this many."""

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise InputError(f"a Ray address must be a non-empty string, got {self.address!r}")
        if self.actors is not None and not 1 <= self.actors <= 10_000:
            raise InputError(f"ray_actors must be from 1 to 10,000, got {self.actors}")
        if self.gpus_per_actor is not None and not 0 <= self.gpus_per_actor <= 64:
            raise InputError(f"gpus_per_actor must be from 0 to 64, got {self.gpus_per_actor}")
        if not 0 < self.cpus_per_actor <= 1024:
            raise InputError(f"cpus_per_actor must be above 0 and at most 1,024, got {self.cpus_per_actor}")


def import_ray() -> ModuleType:
    """The ``ray`` module, with Ray Data.

    Raises:
        MissingAssetError: Ray (with its ``data`` extra) is not installed.
    """
    try:
        import ray
        import ray.data  # Ray Data comes with the [data] extra only
    except ImportError as exc:
        raise MissingAssetError(f"{RAY_MISSING} ({exc})") from exc
    return ray


def connect(address: str) -> ModuleType:
    """Connect this process to Ray at ``address`` (once; a process already connected stays connected).

    Raises:
        MissingAssetError: Ray is not installed.
        InputError: nothing answers at ``address``.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    target = None if address == DEFAULT_ADDRESS else address
    if target is not None and target not in ("auto", "local"):
        probe_address(target)
    try:
        # Workers' logs stay in Ray's session folder (/tmp/ray/session_latest/logs): the terminal keeps
        # saescope's progress line, and a worker's error still comes back as the exception it raised.
        ray.init(address=target, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(
            f"cannot connect to a Ray cluster at {clip(address)!r} ({type(exc).__name__}: {clip(str(exc), 400)}); "
            "give the head's address (host:6379, or ray://host:10001 for Ray Client), 'auto' for a cluster this "
            "machine belongs to, or --ray alone to start a local one"
        ) from exc
    return ray


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Check that something accepts a TCP connection at a ``host:port`` or ``ray://host:port`` address (an IPv6
    host in brackets). Resolving a host name is not bounded by ``timeout_s``.

    Raises:
        InputError: the address has no port, or nothing answers within ``timeout_s``.
    """
    hostport = address.removeprefix("ray://").strip()
    host, sep, port = hostport.rpartition(":")
    ipv6_unbracketed = ":" in host and not (host.startswith("[") and host.endswith("]"))
    if (
        not sep
        or not host
        or ipv6_unbracketed
        or not (port.isascii() and port.isdecimal())
        or not 0 < int(port) < 65536
    ):
        raise InputError(
            f"a Ray address is host:port (the head's GCS, usually host:6379) or ray://host:port (Ray Client, "
            f"usually 10001), 'auto' or --ray alone; got {clip(address)!r}"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InputError(
            f"nothing answers at {clip(address)!r} ({type(exc).__name__}: {clip(str(exc), 200)}, after at most "
            f"{timeout_s:g} s): start the cluster's head there (ray start --head), check the host and port, or "
            "run --ray alone for a local cluster"
        ) from exc


@dataclass(frozen=True)
class ActorPlan:
    """What an actor needs to build the embedder the driver chose; it travels to every actor."""

    root: str
    choice: SAEChoice
    config: EmbedConfig
    reader: str | None
    device: str
    dtype: str | None = None
    """The reader's dtype; None: the default for ``device`` on the probing worker (then fixed for all actors)."""
    key: str | None = None
    """The embedding key every actor must reproduce (None while probing)."""


def _probe(plan: ActorPlan) -> tuple[dict[str, Any], int]:
    """On a worker like the actors: the embedding's spec and width, loading the SAE but not the reader."""
    from saescope.embed.reader import default_dtype
    from saescope.workspace import Workspace, spec_of

    ws = Workspace(Path(plan.root), device=plan.device)
    sae = ws.sae(plan.choice)
    _, model_id = ws.reader_source(sae, plan.reader)
    if sae.layer is None:
        raise InputError(f"SAE {sae.id} does not name its hook point; cannot tell which layer to read")
    dtype = plan.dtype or default_dtype(plan.device)
    return spec_of(model_id, sae.layer, dtype, sae, plan.config).model_dump(), sae.d_sae


class ShardEmbedder:
    """A Ray Data actor: loads the reader and SAE once, then embeds one shard's documents per call."""

    def __init__(self, plan: ActorPlan) -> None:
        from saescope.workspace import Workspace

        ws = Workspace(Path(plan.root), device=plan.device, dtype=plan.dtype)
        self.embedder = ws.embedder(plan.choice, plan.config, plan.reader)
        key = ws.spec_for(self.embedder).key
        if key != plan.key:
            raise SaescopeError(
                f"an actor on {os.uname().nodename} would embed with settings {ws.spec_for(self.embedder)} "
                f"(key {key}), not those of the run (key {plan.key}): install the same saescope, torch and model "
                "files on every node"
            )
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in ("shard", "indptr", "indices", "data", "n_tokens", "pid")}
        for shard, texts in zip(batch["shard"], batch["texts"], strict=True):
            matrix, n_tok = self.embedder.embed([str(t) for t in texts])
            out["shard"].append(int(shard))
            out["indptr"].append(np.asarray(matrix.indptr, dtype=np.int64).tobytes())
            out["indices"].append(np.asarray(matrix.indices, dtype=np.int32).tobytes())
            out["data"].append(np.asarray(matrix.data, dtype=np.float32).tobytes())
            out["n_tokens"].append(np.asarray(n_tok, dtype=np.int64).tobytes())
            out["pid"].append(self.pid)
        return {
            k: np.array(v, dtype=object if k in ("indptr", "indices", "data", "n_tokens") else np.int64)
            for k, v in out.items()
        }


def _shard_of(row: dict[str, Any], n_docs: int, d_sae: int) -> tuple[sp.csr_matrix, np.ndarray]:
    indptr = np.frombuffer(row["indptr"], dtype=np.int64)
    indices = np.frombuffer(row["indices"], dtype=np.int32)
    data = np.frombuffer(row["data"], dtype=np.float32)
    n_tok = np.frombuffer(row["n_tokens"], dtype=np.int64).copy()
    matrix = sp.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=(n_docs, d_sae))
    return matrix, n_tok


def _rows(ds: Any) -> Iterator[dict[str, Any]]:
    """The rows of ``ds`` as they come; an actor's failure becomes a :class:`SaescopeError` saying what to do.

    Raises:
        SaescopeError: an actor could not load the models or embed a shard (the actor's own error when it
            raised one of saescope's, whose message says what to do).
    """
    try:
        yield from ds.iter_rows()
    except SaescopeError:
        raise
    except Exception as exc:  # Ray wraps a worker's exception in its own types, varying by release
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, SaescopeError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, SaescopeError):
            raise type(cause)(str(cause).splitlines()[-1] if str(cause) else repr(cause)) from exc
        raise SaescopeError(
            f"the Ray embedding failed ({type(exc).__name__}: {clip(str(exc), 1500)}); shards finished so far are "
            "kept: fix the cause and run the same command again (workers' logs: /tmp/ray/session_latest/logs "
            "on each node)"
        ) from exc


class RayRun:
    """One embedding on Ray: the cluster's resources resolved into an actor pool, and its live actor count."""

    def __init__(self, settings: RaySettings) -> None:
        """Raises:
        MissingAssetError: Ray is not installed.
        InputError: the cluster cannot be reached, or it lacks the GPUs asked for."""
        self.ray = connect(settings.address)
        resources = self.ray.cluster_resources()
        gpus = float(resources.get("GPU", 0.0))
        cpus = float(resources.get("CPU", 0.0))
        per_gpu = settings.gpus_per_actor if settings.gpus_per_actor is not None else (1.0 if gpus else 0.0)
        if per_gpu > gpus:
            raise InputError(f"each actor asks for {per_gpu:g} GPUs but the Ray cluster has {gpus:g}")
        if settings.cpus_per_actor > cpus:
            raise InputError(f"each actor asks for {settings.cpus_per_actor:g} CPUs but the Ray cluster has {cpus:g}")
        fit = int(gpus // per_gpu) if per_gpu else int(cpus // settings.cpus_per_actor)
        self.settings = settings
        self.gpus_per_actor = per_gpu
        self.actors = max(1, settings.actors or fit)
        if self.actors > max(fit, 1):
            log.warning(
                "%d actors need %g CPUs and %g GPUs but the Ray cluster has %g and %g now: the pool waits for an "
                "autoscaler to add nodes, or lower --ray-actors",
                self.actors,
                self.actors * settings.cpus_per_actor,
                self.actors * per_gpu,
                cpus,
                gpus,
            )
        self.device = "cuda" if per_gpu else "cpu"
        self.pids: set[int] = set()
        self._alive: tuple[float, int | None] = (-_ALIVE_EVERY_S, None)

    def _remote_options(self) -> dict[str, Any]:
        return {"num_cpus": self.settings.cpus_per_actor, "num_gpus": self.gpus_per_actor or None}

    def probe(self, plan: ActorPlan) -> tuple[EmbeddingSpec, int]:
        """The embedding's spec and width, as a worker with an actor's resources sees them."""
        options = {k: v for k, v in self._remote_options().items() if v}
        task = self.ray.remote(**options)(_probe)
        spec, d_sae = self.ray.get(task.remote(plan))
        return EmbeddingSpec.model_validate(spec), int(d_sae)

    def alive(self) -> int | None:
        """Embedding actors of this job alive now (from Ray's actor table, at most every 2 s), or None if unknown."""
        now = time.monotonic()
        if now - self._alive[0] < _ALIVE_EVERY_S:
            return self._alive[1]
        count: int | None
        try:
            from ray._private import state  # the public state API needs Ray's dashboard, absent from ray[data]

            job = self.ray.get_runtime_context().get_job_id()
            count = sum(
                1
                for a in state.actors().values()
                if a.get("State") == "ALIVE" and _ACTOR_CLASS in str(a.get("ActorClassName")) and a.get("JobID") == job
            )
        except Exception:  # noqa: BLE001 - a progress figure must never stop the run
            count = None
        self._alive = (now, count)
        return count

    def embed_fn(self, plan: ActorPlan, d_sae: int) -> EmbedFn:
        """An :data:`~saescope.store.dataset.EmbedFn` that embeds the shards on the actor pool, yielding them in order."""

        def stream(
            shards: Iterator[list[str]], report: Callable[[int, int], None]
        ) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
            texts = list(shards)
            if not texts:
                return
            ray = self.ray
            ray.data.DataContext.get_current().enable_progress_bars = False
            items = [{"shard": i, "texts": t} for i, t in enumerate(texts)]
            # One block per shard, so that shards spread over the actors rather than one block feeding one actor.
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            out = ds.map_batches(
                ShardEmbedder,
                fn_constructor_kwargs={"plan": plan},
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(self.actors, len(items))),
                **self._remote_options(),
            )
            ready: dict[int, tuple[sp.csr_matrix, np.ndarray]] = {}
            nxt = docs = tokens = 0
            for row in _rows(out):
                i = int(row["shard"])
                if i in ready or i < nxt:
                    continue  # a retried task's second answer: the shard is already counted
                ready[i] = _shard_of(row, len(texts[i]), d_sae)
                self.pids.add(int(row["pid"]))
                docs += len(texts[i])
                tokens += int(ready[i][1].sum())
                report(docs, tokens)
                while nxt in ready:
                    yield ready.pop(nxt)
                    nxt += 1
            if nxt < len(texts):
                raise SaescopeError(f"Ray returned {nxt} of {len(texts)} shards; run again to finish")

        return stream


def embed_on_ray(
    dataset: Dataset,
    root: Path,
    choice: SAEChoice,
    config: EmbedConfig,
    settings: RaySettings,
    *,
    reader: str | None,
    shard_size: int,
    versions: dict[str, str],
    progress: Callable[[ShardProgress], None] | None = None,
) -> EmbeddingManifest:
    """Embed ``dataset`` on Ray (see the module's docstring), resuming a run with the same settings.

    Raises:
        MissingAssetError: Ray is not installed, or a worker cannot load the reader or SAE.
        InputError: the cluster cannot be reached or lacks the resources asked for.
        SaescopeError: another process is embedding it with the same settings, or actors disagree on them.
    """
    run = RayRun(settings)
    plan = ActorPlan(str(root), choice, config, reader, run.device)
    spec, d_sae = run.probe(plan)
    plan = replace(plan, dtype=str(spec.reader["dtype"]), key=spec.key)
    emb = dataset.prepare_embedding(spec, d_sae, shard_size=shard_size, versions=versions)
    log.info(
        "embedding %s on Ray: %d actor(s), %g GPU and %g CPU each, key %s",
        dataset.name,
        run.actors,
        run.gpus_per_actor,
        settings.cpus_per_actor,
        spec.key,
    )

    def report(p: ShardProgress) -> None:
        if progress is not None:
            progress(replace(p, actors_alive=run.alive()))

    return emb.run(run.embed_fn(plan, d_sae), report)
