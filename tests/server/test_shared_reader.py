"""The reader is shared fairly: a token-evidence call answers while an embedding job is still running."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from tests.server.shared import Data, demo_rows
from tests.server.test_tools import call, make_server

pytestmark = pytest.mark.anyio


async def job_status(client: Client, job_id: str, wait_seconds: float = 0) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = (await call(client, "embed_status", job_id=job_id, wait_seconds=wait_seconds))["jobs"]
    return jobs[0]


async def test_token_evidence_answers_while_an_embedding_job_runs(data: Data) -> None:
    docs = [{"id": r["id"], "text": r["text"]} for r in demo_rows()]  # 400 short reviews
    latent = next(iter(data.labelled))
    async with Client(make_server(data)) as client:
        await call(client, "ingest_documents", name="busy-reader", documents=docs, id_column="id", overwrite=True)
        job = await call(client, "embed_dataset", dataset="busy-reader", sae=str(data.sae_dir))
        with anyio.fail_after(120):  # until the job has embedded a first batch: it is using the reader
            while (status := await job_status(client, job["job_id"]))["docs_done"] == 0 and status["state"] in (
                "queued",
                "running",
            ):
                await anyio.sleep(0.02)
        assert status["state"] == "running", status

        details = await call(client, "feature_details", dataset="reviews", latent=latent, token_evidence=True)
        during = await job_status(client, job["job_id"])
        # Before, the job held the reader to its end, so the evidence came only after the job was done.
        assert during["state"] == "running" and during["docs_done"] < len(docs), during
        assert details["evidence"] and any(e["tokens"] for e in details["evidence"]), details["evidence"]

        done = await job_status(client, job["job_id"], wait_seconds=300)
        assert done["state"] == "done" and done["docs_done"] == len(docs), done
