"""Tools for datasets and embedding: list, describe, read, ingest, embed (a background job) and its status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult

from saescope import ops
from saescope.errors import InputError
from saescope.ops.jobs import JobList
from saescope.ops.requests import DescribeRequest, EmbedRequest, IngestRequest, JobStatusRequest, ReadRequest
from saescope.server.state import ServerState
from saescope.server.tooling import READ_ONLY, REPLACES, WRITES, tool

if TYPE_CHECKING:
    from saescope.server.jobs import JobProgress
    from saescope.store.dataset import ShardProgress


@tool("List datasets", READ_ONLY)
async def list_datasets(state: ServerState) -> CallToolResult:
    """List every stored dataset: name, number of documents, metadata columns (usable in filters), and its
    embeddings (which SAE; complete or not), plus embedding jobs still running. Start here."""
    return state.result(await state.run(lambda: ops.list_datasets(state.ws, state.jobs.active())))


@tool("Describe a dataset", READ_ONLY)
async def describe_dataset(state: ServerState, req: DescribeRequest) -> CallToolResult:
    """Describe one dataset: where it came from, each metadata column (type, distinct values, most frequent
    values or range - use these to write filters), its embeddings with their settings, and a few documents."""
    return state.result(await state.run(lambda: ops.describe_dataset(state.ws, req)))


@tool("Read documents", READ_ONLY)
async def read_documents(state: ServerState, req: ReadRequest) -> CallToolResult:
    """Read the text and metadata of documents by id - e.g. the example ids that diff_datasets,
    feature_details or retrieve_documents return - to check what a latent really picks up."""
    return state.result(await state.run(lambda: ops.read_documents_by_id(state.ws, req)))


@tool("Ingest documents", REPLACES)
async def ingest_documents(state: ServerState, req: IngestRequest) -> CallToolResult:
    """Store documents as a new dataset, from a file under the server's allowed roots or inline. Every field
    besides the text becomes a metadata column usable in filters. Nothing is stored if any row is invalid
    (all problems are listed) unless skip_invalid. overwrite=true replaces an existing dataset of that name and
    deletes its embeddings. Next: embed_dataset."""
    busy = {j.dataset for j in state.jobs.active()}
    return state.result(
        await state.run(lambda: ops.ingest_documents(state.ws, req, limits=state.config.ingest_limits, busy=busy))
    )


@tool("Embed a dataset (background)", WRITES)
async def embed_dataset(state: ServerState, req: EmbedRequest) -> CallToolResult:
    """Start computing SAE vectors for every document of a dataset, in the background. Returns at once with
    a job id: poll embed_status (wait_seconds > 0 waits and reports progress). Other tools keep working
    meanwhile. Calling it again for the same dataset and settings returns the running job, or resumes an
    interrupted one where it stopped; once complete, it returns immediately."""
    config = state.config
    if config.ray is not None:
        req = req.model_copy(update={"ray": config.ray})
    choice = await state.run(lambda: ops.sae_choice(req, fallback=config.sae, roots=config.roots))
    n_docs = (await state.run(lambda: state.ws.dataset(req.dataset))).info.n_docs
    ws = state.ws

    def work(progress: JobProgress) -> str:
        def report(p: ShardProgress) -> None:
            progress(p.docs_done, p.docs_total, p.tokens_done, p.elapsed_s, p.actors_alive)

        # No lock on the reader: token-evidence calls share it with the job meanwhile (see state.Lock).
        return ops.embed_dataset(ws, req, choice, progress=report).key

    key = f"{choice.cache_key}|{ops.embed_config(req).as_dict()}"
    return state.result(state.jobs.submit(req.dataset, req.sae or config.sae, n_docs, work, key=key))


@tool("Embedding job status", READ_ONLY)
async def embed_status(state: ServerState, req: JobStatusRequest, ctx: Context) -> CallToolResult:
    """Show embedding jobs: state (queued, running, done, failed), documents done of total, tokens, time, and
    the error of a failed job. With a job_id and wait_seconds, waits for it (reporting MCP progress) and
    returns when it finishes or the time is up - call again to keep waiting."""
    if req.job_id is None:
        return state.result(JobList(jobs=state.jobs.all()))
    job = state.jobs.get(req.job_id)
    if job is None:
        known = [j.job_id for j in state.jobs.all()]
        raise InputError(
            f"unknown job {req.job_id!r}; jobs of this server: {known or 'none'} (jobs do not survive "
            "a server restart: call embed_dataset again to resume)"
        )
    deadline = anyio.current_time() + req.wait_seconds
    while job.active and anyio.current_time() < deadline:
        message = f"{job.state}: {job.docs_done}/{job.docs_total} documents of {job.dataset}{job.rates}"
        await ctx.report_progress(job.docs_done, job.docs_total or None, message)
        await anyio.sleep(min(0.5, max(0.0, deadline - anyio.current_time())))
        job = state.jobs.get(req.job_id) or job
    if not job.active:
        await ctx.report_progress(job.docs_done, job.docs_total or None, job.state)
    return state.result(JobList(jobs=[job]))
