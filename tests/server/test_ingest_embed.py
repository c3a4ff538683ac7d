"""Ingest (inline, files under the allowed roots, limits) and background embedding with progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from saescope.errors import InputError
from saescope.ops.files import files_to_read, resolve_under_roots
from tests.server.shared import Data, demo_rows
from tests.server.test_tools import call, error, make_server

pytestmark = pytest.mark.anyio


async def test_ingest_inline_and_from_a_file(data: Data) -> None:
    async with Client(make_server(data)) as client:
        out = await call(
            client,
            "ingest_documents",
            name="inline-docs",
            overwrite=True,
            documents=["plain text", {"text": "with metadata", "model": "m1"}],
        )
        assert out["dataset"]["n_docs"] == 2 and out["dataset"]["columns"] == ["model"]
        assert "embed_dataset" in out["next_step"]
        out = await call(client, "ingest_documents", name="from-file", path="small.jsonl", overwrite=True)
        assert out["dataset"]["n_docs"] == 8 and out["source"] == str(data.files / "small.jsonl")
        text = await error(client, "ingest_documents", name="from-file", path="small.jsonl")
        assert "already exists" in text and "overwrite" in text
        assert "exactly one" in await error(client, "ingest_documents", name="x")
        assert "no column 'body'" in await error(
            client, "ingest_documents", name="x", documents=[{"text": "a"}], text_column="body"
        )
        assert "invalid dataset name" in await error(client, "ingest_documents", name="../x", documents=["a"])


async def test_ingest_reads_only_under_the_roots(data: Data, tmp_path: Path) -> None:
    outside = tmp_path / "secret.jsonl"
    outside.write_text(json.dumps({"text": "secret"}) + "\n", encoding="utf-8")
    link = data.files / "link.jsonl"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    folder = data.files / "texts"
    folder.mkdir(exist_ok=True)
    (folder / "ok.txt").write_text("fine", encoding="utf-8")
    sneaky = folder / "sneaky.txt"
    sneaky.unlink(missing_ok=True)
    sneaky.symlink_to(tmp_path / "secret.txt")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    async with Client(make_server(data)) as client:
        for path in (str(outside), "../" * 8 + str(outside).lstrip("/"), "link.jsonl", "/etc/hostname"):
            text = await error(client, "ingest_documents", name="leak", path=path)
            assert "outside the allowed roots" in text or "does not exist" in text, text
        assert "outside the allowed roots" in await error(client, "ingest_documents", name="leak", path="texts")
        assert "does not exist" in await error(client, "ingest_documents", name="leak", path="nope.jsonl")
    assert not (data.root / "datasets" / "leak").exists()
    with pytest.raises(InputError, match="outside"):
        files_to_read(resolve_under_roots("texts", [data.files]), [data.files])
    assert resolve_under_roots("small.jsonl", [data.files]) == data.files / "small.jsonl"


async def test_ingest_limits(data: Data) -> None:
    async with Client(make_server(data, max_bytes=100, max_documents=2)) as client:
        assert "over this server's limit" in await error(client, "ingest_documents", name="big", path="small.jsonl")
        text = await error(client, "ingest_documents", name="many", documents=["a", "b", "c"])
        assert "over this server's limit of 2" in text
        assert "over this server's limit of 100" in await error(
            client, "ingest_documents", name="long", documents=["x" * 200]
        )


async def test_embedding_runs_in_the_background_with_progress(data: Data) -> None:
    rows = demo_rows()[5::10]
    (data.files / "bg.jsonl").write_text(
        "".join(json.dumps({"text": r["text"], "kind": r["category"]}) + "\n" for r in rows), encoding="utf-8"
    )
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(make_server(data)) as client:
        await call(client, "ingest_documents", name="background", path="bg.jsonl", overwrite=True)
        job = await call(client, "embed_dataset", dataset="background", sae=str(data.sae_dir))
        assert job["state"] in ("queued", "running") and job["docs_total"] == 40
        listed = await call(client, "list_datasets")
        active = {j["job_id"]: j for j in listed["active_jobs"]}
        assert active[job["job_id"]]["state"] in ("queued", "running")
        again = await call(client, "embed_dataset", dataset="background", sae=str(data.sae_dir))
        assert again["job_id"] == job["job_id"]
        assert "is being embedded" in await error(
            client, "ingest_documents", name="background", path="bg.jsonl", overwrite=True
        )

        result = await client.call_tool(
            "embed_status", {"job_id": job["job_id"], "wait_seconds": 240}, progress_callback=on_progress
        )
        status = result.structured_content["jobs"][0]  # type: ignore[index]
        assert status["state"] == "done", status
        assert status["docs_done"] == 40 and status["embedding_key"]
        assert progress and progress[-1][0] == 40
        everything = await call(client, "embed_status")
        assert job["job_id"] in {j["job_id"] for j in everything["jobs"]}
        described = await call(client, "describe_dataset", dataset="background")
        assert described["embeddings"][0]["complete"]
        diff = await call(
            client,
            "diff_datasets",
            dataset_a="background",
            where_a="kind == 'fresh'",
            where_b="kind != 'fresh'",
            top_k=3,
            min_support=2,
        )
        assert diff["sets"]["n_a"] + diff["sets"]["n_b"] == 40
        assert "unknown job" in await error(client, "embed_status", job_id="embed-999")
        assert "unknown dataset" in await error(client, "embed_dataset", dataset="nothing-here")
        assert "outside the allowed roots" in await error(client, "embed_dataset", dataset="background", sae="/tmp")


async def test_a_failed_job_reports_its_error(data: Data, tmp_path: Path) -> None:
    broken = tmp_path / "broken-sae"
    broken.mkdir()
    (broken / "cfg.json").write_text("{not json")
    (broken / "sae_weights.safetensors").write_bytes(b"garbage")
    async with Client(make_server(data, sae=str(broken))) as client:
        await call(client, "ingest_documents", name="broken-sae", documents=["a b c"], overwrite=True)
        result = await client.call_tool("embed_dataset", {"dataset": "broken-sae", "sae": str(broken)})
        if result.is_error:  # refused before a job was started: also a clear failure
            assert "broken-sae" in result.content[0].text or "cfg" in result.content[0].text  # type: ignore[union-attr]
            return
        job = result.structured_content
        status_result = await client.call_tool("embed_status", {"job_id": job["job_id"], "wait_seconds": 120})  # type: ignore[index]
        status = status_result.structured_content["jobs"][0]  # type: ignore[index]
    assert status["state"] == "failed" and status["error"]
