"""Concurrent MCP clients over real streamable HTTP while a background embedding job runs.

Run: ``.venv/bin/python benchmarks/soak_http.py [--clients 8] [--seconds 60] [--copies 6] [--out FILE]``

It starts ``saescope serve --transport http`` on 127.0.0.1 (a free port, a fresh bearer token, a temporary
data root and allowed root), ingests the shipped demo corpus (400 reviews) as ``reviews`` and embeds it with
the default reader and SAE. Then it ingests ``--copies`` copies of the corpus as ``reviews_more`` and starts
embedding that in the background; once that job runs, ``--clients`` MCP clients, each with its own HTTP
session, loop for ``--seconds`` over a mix of read-only calls on ``reviews``: list_datasets,
describe_dataset, diff_datasets, search_features (semantic=false), read_documents, feature_details with
token_evidence=true (runs the reader), explain_document and correlations. A monitor polls the job meanwhile.
``--copies 0`` runs the same clients with no background job: the control.

Reported (printed and written as markdown to ``--out``): calls, errors (count and first messages), latency
p50/p95/p99/max per tool and overall, whether the embedding job ran through the window and its progress.
Every loop is bounded: clients start no call after the window, a call gives up after ``--call-timeout``
seconds, and the server is stopped at the end. The benchmark's clients share the machine's cores with
the server, as a local agent would.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import random
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import numpy as np
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "saescope" / "data" / "demo" / "reviews.jsonl.gz"
DATASET = "reviews"
BACKGROUND = "reviews_more"
TOOLS = (
    "list_datasets",
    "describe_dataset",
    "diff_datasets",
    "search_features",
    "read_documents",
    "feature_details",
    "explain_document",
    "correlations",
)
WORDS = ("praise", "boring", "funny", "actor", "music", "plot", "love", "violence", "film", "story")
SETUP_TIMEOUT_S = 900.0


@dataclass
class Call:
    """One tool call of a client: when it started (seconds into the window), how long it took, its error."""

    tool: str
    start: float
    latency: float
    error: str | None = None


@dataclass
class Sample:
    """The background job as the monitor saw it."""

    t: float
    state: str
    docs_done: int
    docs_total: int


@dataclass
class Setup:
    """What the clients ask about: document ids and latents that fire in the embedded dataset."""

    doc_ids: list[str]
    latents: list[int]
    job_id: str
    """The background job ('' in the control run, without one)."""
    embed_s: float
    """Seconds to ingest and embed ``reviews``."""


# --- the server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(home: Path, root: Path, port: int, token: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``saescope serve --transport http`` on 127.0.0.1:port, up and accepting connections; stopped on exit."""
    cmd = [sys.executable, "-m", "saescope.cli", "--home", str(home), "serve", "--transport", "http"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--token", token, "--root", str(root)]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false"}
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start in 120 s: {log.read_text(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def write_inputs(root: Path, copies: int) -> list[str]:
    """The demo corpus under ``root`` as it ships, and ``copies`` copies of it (fresh ids) for the background
    job; returns the corpus's document ids."""
    shutil.copy(DEMO, root / "reviews.jsonl.gz")
    with gzip.open(DEMO, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    with (root / "reviews_more.jsonl").open("w", encoding="utf-8") as out:
        for k in range(copies):
            for r in rows:
                out.write(json.dumps({**r, "id": f"{r['id']}-{k}"}) + "\n")
    return [str(r["id"]) for r in rows]


# --- the clients ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connect(url: str, token: str, timeout: float) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


def text_of(result: Any) -> str:
    """The first text of a tool result (where an error result says what went wrong)."""
    return str(getattr(result.content[0], "text", "(not text)")) if result.content else "(no content)"


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    if result.is_error:
        raise RuntimeError(f"{tool}: {text_of(result)}")
    out: dict[str, Any] = result.structured_content
    return out


async def wait_for_job(client: Client, job_id: str, until: tuple[str, ...], limit_s: float) -> dict[str, Any]:
    """Poll ``job_id`` until its state is one of ``until`` (or it failed)."""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"job {job_id} not {until} after {limit_s:.0f} s")
        wait = min(30.0, left) if "done" in until else 0
        job: dict[str, Any] = (await call(client, "embed_status", {"job_id": job_id, "wait_seconds": wait}))["jobs"][0]
        if job["state"] == "failed":
            raise RuntimeError(f"job {job_id} failed: {job.get('error')}")
        if job["state"] in until:
            return job
        await anyio.sleep(0.2)


async def prepare(url: str, token: str, doc_ids: list[str], copies: int) -> Setup:
    """Ingest and embed ``reviews``; find latents to ask about; start the background job (if ``copies``)."""
    async with connect(url, token, SETUP_TIMEOUT_S) as client:
        t0 = time.perf_counter()
        await call(
            client,
            "ingest_documents",
            {"name": DATASET, "path": "reviews.jsonl.gz", "id_column": "id", "overwrite": True},
        )
        job = await call(client, "embed_dataset", {"dataset": DATASET})
        await wait_for_job(client, job["job_id"], ("done",), SETUP_TIMEOUT_S)
        t1 = time.perf_counter()
        latents: list[int] = []
        for doc_id in doc_ids[::40]:
            out = await call(client, "explain_document", {"dataset": DATASET, "doc_id": doc_id, "top_k": 3})
            latents += [int(lat["latent"]) for lat in out["explanation"]["latents"]]
        if not latents:
            raise RuntimeError("no latent fires in the sampled documents: nothing for feature_details to show")
        if copies:
            await call(
                client,
                "ingest_documents",
                {"name": BACKGROUND, "path": "reviews_more.jsonl", "id_column": "id", "overwrite": True},
            )
        job_id = ""
        if copies:
            job_id = (await call(client, "embed_dataset", {"dataset": BACKGROUND}))["job_id"]
            await wait_for_job(client, job_id, ("running", "done"), 120)
        return Setup(doc_ids=doc_ids, latents=sorted(set(latents)), job_id=job_id, embed_s=t1 - t0)


def arguments(tool: str, rng: random.Random, setup: Setup, turn: int) -> dict[str, Any]:
    """The arguments of one call of ``tool``: varied by a seeded generator so repeated calls differ."""
    if tool == "list_datasets":
        return {}
    if tool == "describe_dataset":
        return {"dataset": DATASET}
    if tool == "diff_datasets":
        return {"dataset_a": DATASET, "where_a": "category == 'fresh'", "where_b": "category == 'rotten'", "top_k": 10}
    if tool == "search_features":
        return {"dataset": DATASET, "query": rng.choice(WORDS), "semantic": False, "top_k": 10}
    if tool == "read_documents":
        return {"dataset": DATASET, "doc_ids": rng.sample(setup.doc_ids, 3)}
    if tool == "feature_details":
        return {"dataset": DATASET, "latent": rng.choice(setup.latents), "token_evidence": True}
    if tool == "explain_document":
        return {"dataset": DATASET, "doc_id": rng.choice(setup.doc_ids)}
    if tool == "correlations":
        return (
            {"dataset": DATASET, "column": "category", "top_k": 10} if turn % 2 else {"dataset": DATASET, "top_k": 10}
        )
    raise ValueError(tool)


async def client_loop(
    index: int, url: str, token: str, setup: Setup, start: float, end: float, call_timeout: float, calls: list[Call]
) -> None:
    """One client: its own HTTP session, calling the tools in turn (from its own offset) until ``end``."""
    rng = random.Random(index)
    turn = index
    while time.monotonic() < end:
        try:
            async with connect(url, token, call_timeout + 30) as client:
                while time.monotonic() < end:
                    tool = TOOLS[turn % len(TOOLS)]
                    args = arguments(tool, rng, setup, turn // len(TOOLS))
                    turn += 1
                    t0 = time.monotonic()
                    error: str | None = None
                    try:
                        with anyio.fail_after(call_timeout):
                            result = await client.call_tool(tool, args)
                        if result.is_error:
                            error = text_of(result)
                    except TimeoutError:
                        error = f"no answer in {call_timeout:.0f} s (client timeout)"
                    calls.append(Call(tool, t0 - start, time.monotonic() - t0, error))
        except Exception as exc:  # noqa: BLE001 - a broken session is a result: record it and reconnect
            calls.append(Call("(session)", time.monotonic() - start, 0.0, f"{type(exc).__name__}: {exc}"))
            await anyio.sleep(0.5)


async def monitor(url: str, token: str, job_id: str, start: float, stop: anyio.Event, out: list[Sample]) -> None:
    """Poll the background job about once a second until ``stop``."""
    async with connect(url, token, 60) as client:
        while not stop.is_set():
            job = (await call(client, "embed_status", {"job_id": job_id}))["jobs"][0]
            out.append(Sample(time.monotonic() - start, job["state"], int(job["docs_done"]), int(job["docs_total"])))
            with anyio.move_on_after(1.0):
                await stop.wait()


async def soak(args: argparse.Namespace, url: str, token: str, doc_ids: list[str]) -> dict[str, Any]:
    setup = await prepare(url, token, doc_ids, args.copies)
    calls: list[Call] = []
    samples: list[Sample] = []
    stop = anyio.Event()
    start = time.monotonic()
    end = start + args.seconds
    async with anyio.create_task_group() as tg:
        if setup.job_id:
            tg.start_soon(monitor, url, token, setup.job_id, start, stop, samples)
        async with anyio.create_task_group() as clients:
            for i in range(args.clients):
                clients.start_soon(client_loop, i, url, token, setup, start, end, args.call_timeout, calls)
        stop.set()
    return {"setup": setup, "calls": calls, "samples": samples, "drained_s": time.monotonic() - start}


# --- the report -----------------------------------------------------------------------------------------


def cpu() -> tuple[str, str]:
    """The CPU's model name, and which of the flags that matter for bf16 matmuls it has."""
    model, flags = "unknown", set[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    wanted = ("avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    return model, ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def git(*cmd: str) -> str | None:
    """The output of a git command in this checkout, or None where there is no git or no repository."""
    try:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def latency_rows(calls: list[Call]) -> list[str]:
    by_tool: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        by_tool[c.tool].append(c)
    rows = ["| tool | calls | errors | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in [*TOOLS, "(session)", "all"]:
        group = calls if name == "all" else by_tool.get(name, [])
        if not group:
            continue
        lat = np.array([c.latency for c in group])
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        errors = sum(c.error is not None for c in group)
        label = f"**{name}**" if name == "all" else name
        rows.append(f"| {label} | {len(group)} | {errors} | {ms(p50)} | {ms(p95)} | {ms(p99)} | {ms(lat.max())} |")
    return rows


def job_lines(samples: list[Sample], seconds: float) -> list[str]:
    inside = [s for s in samples if s.t <= seconds]
    if not inside:
        return ["- background job: none sampled during the window"]
    running = sum(s.state == "running" for s in inside)
    first, last = inside[0], inside[-1]
    final = samples[-1]
    rate = (last.docs_done - first.docs_done) / max(last.t - first.t, 1e-9)
    return [
        f"- background job running in {running} of {len(inside)} status samples taken during the window "
        f"({'the whole window' if running == len(inside) else 'not the whole window'})",
        f"- its progress: {first.docs_done:,} of {first.docs_total:,} documents at {first.t:.0f} s, "
        f"{last.docs_done:,} at {last.t:.0f} s ({rate:.1f} documents/s under load); "
        f"last seen {final.state}, {final.docs_done:,} of {final.docs_total:,}",
    ]


def report(args: argparse.Namespace, result: dict[str, Any], command: str, load: tuple[str, str]) -> str:
    setup: Setup = result["setup"]
    calls: list[Call] = result["calls"]
    model, flags = cpu()
    errors = Counter((c.tool, re.sub(r"\d+", "N", c.error)) for c in calls if c.error)
    first = {(c.tool, re.sub(r"\d+", "N", c.error)): c.error for c in reversed(calls) if c.error}
    commit, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", "saescope")
    lines = [
        "# Soak: concurrent MCP clients over streamable HTTP during a background embed",
        "",
        f"Command: `{command}`",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit or '(not a git checkout)'}"
        + (" (with uncommitted changes under saescope/)" if dirty else ""),
        f"- CPU: {model}; {os.cpu_count()} cores; flags: {flags}",
        f"- load average (1/5/15 min) before setup: {load[0]}; after the window: {load[1]}",
        f"- server: `saescope serve --transport http` on 127.0.0.1, default reader and SAE; dataset `{DATASET}` "
        f"(the demo corpus, {len(setup.doc_ids)} documents) ingested and embedded during setup in {setup.embed_s:.0f} s",
        (
            f"- background: `{BACKGROUND}` ({len(setup.doc_ids) * args.copies:,} documents: {args.copies} copies "
            f"of the corpus) embedding as job {setup.job_id} while {args.clients} clients call for {args.seconds:.0f} s"
            if setup.job_id
            else f"- background: none (the control run); {args.clients} clients call for {args.seconds:.0f} s"
        ),
        f"- latents asked about by feature_details: {len(setup.latents)}; calls cut off after {args.call_timeout:.0f} s; "
        f"last call answered {result['drained_s']:.0f} s after the window opened",
        *(job_lines(result["samples"], args.seconds) if setup.job_id else []),
        "",
        f"{len(calls)} calls, {sum(c.error is not None for c in calls)} errors.",
        "",
        *latency_rows(calls),
        "",
    ]
    if errors:
        lines += ["Errors (first messages):", ""]
        lines += [f"- {n} x {key[0]}: {first[key][:400]}" for key, n in errors.most_common(5)]
        lines.append("")
    return "\n".join(lines)


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent MCP clients (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients call (default 60)")
    parser.add_argument(
        "--copies",
        type=int,
        default=6,
        help="copies of the 400-document corpus the background job embeds (0: no background job, the control)",
    )
    parser.add_argument("--call-timeout", type=float, default=180.0, help="a call gives up after this many seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak_http.md")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.seconds <= 3600 or not 0 <= args.copies <= 100:
        parser.error("--clients must be 1..64, --seconds 1..3600, --copies 0..100")
    python = Path(sys.executable)
    shown = ".venv/bin/python" if python.parent.parent.resolve() == (ROOT / ".venv").resolve() else str(python)
    command = " ".join([shown, "benchmarks/soak_http.py", *(shlex.quote(a) for a in sys.argv[1:])])
    load_before = loadavg()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="saescope-soak-") as tmp:
        base = Path(tmp)
        (base / "root").mkdir()
        doc_ids = write_inputs(base / "root", args.copies)
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        with server(base / "home", base / "root", port, token, base / "server.log"):
            result = anyio.run(soak, args, url, token, doc_ids)
    text = report(args, result, command, (load_before, loadavg()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
