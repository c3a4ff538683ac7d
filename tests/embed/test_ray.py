"""The Ray path on a real local cluster (2 CPUs) with the default reader: the same store as the local path,
every row once when an actor is killed mid-run, and a resume after the driver is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from saescope.store.dataset import ShardProgress
from saescope.workspace import Workspace

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'saescope[ray]')")

from saescope.distributed import RaySettings  # noqa: E402 - only once Ray is known to be there

N_DOCS = 100
SHARD = 10
TOPICS = ["the harbour at dawn", "a recipe for bread", "tax law in 1990", "a chess opening", "rain on a tin roof"]


def _documents() -> pd.DataFrame:
    texts = [
        f"Note {i}: {TOPICS[i % len(TOPICS)]}. " + " ".join(TOPICS[(i + j) % len(TOPICS)] for j in range(i % 4))
        for i in range(N_DOCS)
    ]
    return pd.DataFrame({"doc_id": [f"d{i:03d}" for i in range(N_DOCS)], "text": texts})


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster of 2 CPUs for this module; its address, for drivers in other processes."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray_home")


@pytest.fixture(scope="module")
def local(root: Path) -> tuple[str, sp.csr_matrix, np.ndarray]:
    """The local path's embedding of the documents: its key, matrix and tokens per document."""
    ws = Workspace(root, device="cpu")
    ws.store.create("local", _documents(), source="inline")
    manifest = ws.embed("local", shard_size=SHARD)
    emb = ws.embedding("local")
    return manifest.key, emb.matrix(), emb.n_tokens()


def _same_rows(got: sp.csr_matrix, want: sp.csr_matrix) -> None:
    """Equal to the local rows within the tolerance of the engine's serial-vs-workers test."""
    assert got.shape == want.shape
    assert want.nnz > 0
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.data, want.data, rtol=1e-5, atol=1e-5)


def _actors() -> list[dict[str, Any]]:
    from ray._private import state

    return [a for a in state.actors().values() if "ShardEmbedder" in str(a.get("ActorClassName"))]


def test_ray_path_writes_the_local_store(
    cluster: str, root: Path, local: tuple[str, sp.csr_matrix, np.ndarray]
) -> None:
    ws = Workspace(root, device="cpu")
    ws.store.create("same", _documents(), source="inline")
    seen: list[ShardProgress] = []
    manifest = ws.embed("same", shard_size=SHARD, ray=RaySettings(actors=2), progress=seen.append)
    key, matrix, n_tokens = local
    assert manifest.key == key and manifest.complete
    emb = ws.embedding("same")
    _same_rows(emb.matrix(), matrix)
    np.testing.assert_array_equal(emb.n_tokens(), n_tokens)
    assert manifest.stats == ws.embedding("local").manifest.stats
    assert [p.docs_done for p in seen] == list(range(SHARD, N_DOCS + 1, SHARD))
    assert seen[-1].tokens_done == int(n_tokens.sum())
    assert any(p.actors_alive for p in seen)
    # A complete embedding is left as it is, without starting an actor.
    assert ws.embed("same", shard_size=SHARD, ray=RaySettings(actors=2)) == manifest


def test_a_killed_actor_is_restarted_and_every_row_comes_once(
    cluster: str, root: Path, local: tuple[str, sp.csr_matrix, np.ndarray]
) -> None:
    ws = Workspace(root, device="cpu")
    ws.store.create("killed_actor", _documents(), source="inline")
    killed: list[int] = []

    def kill_one(p: ShardProgress) -> None:
        if killed:
            return
        alive = [a for a in _actors() if a["State"] == "ALIVE"]
        if alive:
            killed.append(int(alive[0]["Pid"]))
            os.kill(killed[0], signal.SIGKILL)

    manifest = ws.embed("killed_actor", shard_size=SHARD, ray=RaySettings(actors=2), progress=kill_one)
    assert killed, "no actor was alive to kill"
    assert manifest.complete
    restarted = [a for a in _actors() if a.get("NumRestarts", 0) >= 1]
    assert restarted, "Ray did not restart the killed actor"
    _same_rows(ws.embedding("killed_actor").matrix(), local[1])


@pytest.mark.slow
def test_a_killed_driver_resumes_where_it_stopped(
    cluster: str, root: Path, local: tuple[str, sp.csr_matrix, np.ndarray]
) -> None:
    ws = Workspace(root, device="cpu")
    ws.store.create("killed_driver", _documents(), source="inline")
    folder = ws.dataset("killed_driver").path / "embeddings" / local[0]
    command = [
        *(sys.executable, "-c", "import sys; from saescope.cli import main; sys.exit(main(sys.argv[1:]))"),
        *("--home", str(root), "embed", "killed_driver", "--shard-size", str(SHARD // 2), "--ray", cluster),
    ]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (folder / "shard-00000.safetensors").exists():
            assert driver.poll() is None, "the driver ended before committing a shard"
            assert time.monotonic() < deadline, "no shard committed within 240 s"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    committed = len(list(folder.glob("shard-*.safetensors")))
    assert 1 <= committed < N_DOCS // (SHARD // 2), committed
    # The rerun keeps the committed shards (their files are not rewritten) and embeds only the rest.
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.safetensors")}
    manifest = ws.embed("killed_driver", shard_size=SHARD // 2, ray=RaySettings(actors=2))
    assert manifest.complete and manifest.key == local[0]
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.safetensors")}
    assert all(after[name] == t for name, t in before.items())
    assert len(after) == N_DOCS // (SHARD // 2)
    _same_rows(ws.embedding("killed_driver").matrix(), local[1])


def test_ray_settings_are_checked() -> None:
    from saescope.errors import InputError
    from saescope.ops.embedding import ray_settings
    from saescope.ops.requests import EmbedRequest

    with pytest.raises(InputError, match="ray_actors"):
        RaySettings(actors=0)
    with pytest.raises(InputError, match="only with ray"):
        ray_settings(EmbedRequest(dataset="x", ray_actors=2))
    assert ray_settings(EmbedRequest(dataset="x")) is None
    got = ray_settings(EmbedRequest(dataset="x", ray=" auto ", gpus_per_actor=1))
    assert got == RaySettings(address="auto", gpus_per_actor=1)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_bad_address_is_refused_at_once_not_after_rays_timeout() -> None:
    """Ray's own client waits minutes where nothing listens (over 200 s here); the probe answers in seconds."""
    import socket

    from saescope.distributed import probe_address
    from saescope.errors import InputError

    port = _closed_port()
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"nothing answers at '127\.0\.0\.1:\d+'.*ray start --head"):
        probe_address(f"127.0.0.1:{port}")
    with pytest.raises(InputError, match="nothing answers at 'ray://127"):
        probe_address(f"ray://127.0.0.1:{port}")
    assert time.perf_counter() - start < 60  # a refused connection, not a timeout (generous for a busy CI)
    for bad in ("head", "head:", ":6379", "head:port", "head:0", "head:70000", "head:\u00b2", "::1:6379"):
        with pytest.raises(InputError, match="a Ray address is host:port"):
            probe_address(bad)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        probe_address(f"127.0.0.1:{listening.getsockname()[1]}")  # something answers: no error


def test_the_cli_refuses_a_bad_ray_address_with_a_message(tmp_path: Path) -> None:
    """The whole CLI in a fresh process (not connected to Ray): exit 2 and the message, no traceback."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "one document"}\n{"id": "b", "text": "another"}\n')
    env = {**os.environ, "SAESCOPE_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "saescope.cli", *args], capture_output=True, text=True, timeout=300, env=env
        )

    assert cli("ingest", "docs", str(docs), "--id-column", "id").returncode == 0
    proc = cli("embed", "docs", "--ray", f"127.0.0.1:{_closed_port()}")
    assert proc.returncode == 2, proc.stderr
    assert "nothing answers at '127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from saescope.distributed import import_ray
    from saescope.errors import MissingAssetError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingAssetError, match=r"pip install 'saescope\[ray\]'"):
        import_ray()


def test_cli_takes_ray_with_or_without_an_address() -> None:
    from saescope.cli import build_parser
    from saescope.cli_options import request_from
    from saescope.ops.requests import EmbedRequest

    parser = build_parser()
    bare = request_from(parser.parse_args(["embed", "docs", "--ray"]), EmbedRequest)
    given = request_from(
        parser.parse_args(["embed", "docs", "--ray", "ray://head:10001", "--ray-actors", "4"]), EmbedRequest
    )
    plain = request_from(parser.parse_args(["embed", "docs"]), EmbedRequest)
    assert (bare.ray, given.ray, given.ray_actors, plain.ray) == ("default", "ray://head:10001", 4, None)


def test_the_local_path_does_not_import_ray() -> None:
    code = (
        "import sys; import saescope.cli, saescope.workspace, saescope.distributed; "
        "from saescope.ops.embedding import ray_settings; from saescope.ops.requests import EmbedRequest; "
        "assert ray_settings(EmbedRequest(dataset='x')) is None; "
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_an_actor_error_comes_back_as_saescope_error() -> None:
    from saescope.distributed import _rows
    from saescope.errors import MissingAssetError, SaescopeError

    class Failing:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def iter_rows(self) -> Iterator[dict[str, Any]]:
            raise self.exc
            yield {}

    def wrapped(inner: Exception) -> Exception:
        try:
            try:
                raise inner
            except Exception as exc:
                raise RuntimeError("ray wrapper") from exc
        except RuntimeError as outer:
            return outer

    with pytest.raises(MissingAssetError, match="cannot load reader"):
        list(_rows(Failing(wrapped(MissingAssetError("cannot load reader 'x'")))))
    with pytest.raises(SaescopeError, match="run the same command again"):
        list(_rows(Failing(wrapped(ValueError("boom")))))


def test_job_progress_carries_rates_and_actors() -> None:
    from saescope.ops.jobs import EmbedJob

    job = EmbedJob(
        job_id="embed-1",
        dataset="d",
        sae="default",
        state="running",
        docs_done=10,
        docs_total=20,
        tokens_done=1000,
        elapsed_s=2.0,
        actors_alive=2,
        submitted="now",
    )
    assert job.rates == ", 5.0 docs/s, 500 tokens/s, 2 Ray actors alive"
    assert job.rates in job.to_text()
    assert job.model_copy(update={"actors_alive": None}).rates == ", 5.0 docs/s, 500 tokens/s"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_mcp_embed_job_runs_on_the_servers_ray_cluster(
    cluster: str, root: Path, local: tuple[str, sp.csr_matrix, np.ndarray]
) -> None:
    """``serve --ray ADDRESS``: an agent's embed_dataset job runs on the operator's cluster (the agent cannot
    choose one) and stores the local path's rows."""
    from mcp import Client

    from saescope.server.app import build_server
    from saescope.server.config import ServerConfig

    ws = Workspace(root, device="cpu")
    ws.store.create("via-mcp", _documents(), source="inline")
    server = build_server(ServerConfig(home=root, device="cpu", ray=cluster), workspace=ws)
    async with Client(server) as client:
        refused = await client.call_tool("embed_dataset", {"dataset": "via-mcp", "ray": "10.0.0.1:6379"})
        assert refused.is_error and "ray" in str(refused.content[0].text)  # type: ignore[union-attr]
        started = await client.call_tool("embed_dataset", {"dataset": "via-mcp"})
        assert not started.is_error, started.content
        job_id = (started.structured_content or {})["job_id"]
        for _ in range(60):
            status = await client.call_tool("embed_status", {"job_id": job_id, "wait_seconds": 10})
            got = status.structured_content or {}
            state = got.get("state") or got.get("jobs", [{}])[0].get("state")
            if state in ("done", "failed"):
                break
        assert state == "done", status.content
    _same_rows(ws.embedding("via-mcp").matrix(), local[1])
