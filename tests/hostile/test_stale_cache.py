"""A running server whose workspace holds a dataset's matrix in memory, while another process (the CLI)
re-ingests and re-embeds that dataset: the server must answer with the new data, never the cached matrix
(nor fail with "doc_ids has N entries but matrix has M rows")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcp import Client

from saescope.llm.providers import LLMSettings
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from saescope.workspace import Workspace
from tests.hostile.conftest import World, cli, write_docs
from tests.hostile.corpus import copy_home

pytestmark = pytest.mark.anyio


def replace_dataset(home: Path, source: Path, sae: Path) -> None:
    """What another person does meanwhile: ``saescope ingest --overwrite`` and ``saescope embed``, as processes."""
    for args in (
        ("ingest", "docs", str(source), "--id-column", "id", "--overwrite"),
        ("embed", "docs", "--sae", str(sae)),
    ):
        out = cli(home, *args, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def truth(home: Path) -> tuple[list[str], Any]:
    """The stored documents and matrix, read by a fresh workspace (no cache)."""
    ws = Workspace(home, device="cpu")
    _, matrix = ws.matrix("docs")
    return [str(d) for d in ws.dataset("docs").documents(["doc_id"])["doc_id"]], matrix


async def check_server_sees(client: Client, home: Path) -> None:
    ids, matrix = truth(home)
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    latent = int(np.argmax((counts > 0) & (counts < len(ids))) or np.argmax(counts))
    details = await call(client, "feature_details", dataset="docs", latent=latent, n_top=20, token_evidence=False)
    summary = details["summary"]
    assert (summary["n_docs"], summary["count"]) == (len(ids), int(counts[latent]))
    assert {d["doc_id"] for d in summary["top_docs"]} <= set(ids)
    half = len(ids) // 2
    diff = await call(client, "diff_datasets", dataset_a="docs", where_a=f"n < {half}", where_b=f"n >= {half}")
    assert (diff["sets"]["n_a"], diff["sets"]["n_b"]) == (half, len(ids) - half)
    listed = await call(client, "list_datasets")
    assert listed["datasets"][0]["n_docs"] == len(ids)


async def test_server_answers_with_data_replaced_by_another_process(tmp_path: Path, world: World) -> None:
    home = copy_home(world.home, tmp_path / "home")  # docs: 20 documents d0..d19, embedded
    topics = ["the weather", "a football match", "my phone", "a recipe", "a tax form"]
    # Fewer documents, other ids and texts; then as many documents as v2 with other texts (same shape).
    v2 = write_docs(tmp_path / "v2.jsonl", "b", [f"A long complaint about {t}, written in anger!" for t in topics * 2])
    v3 = write_docs(tmp_path / "v3.jsonl", "c", [f"{i} + {i} = {2 * i}" for i in range(10)])
    ws = Workspace(home, device="cpu")
    config = ServerConfig(home=home, roots=[tmp_path], sae=str(world.sae), device="cpu", llm=LLMSettings())
    async with Client(build_server(config, workspace=ws)) as client:
        await check_server_sees(client, home)  # the workspace now caches v1's matrix
        cli_out = cli(home, "ingest", "docs", str(v2), "--id-column", "id", "--overwrite")
        assert cli_out.returncode == 0, cli_out.stderr
        # Re-ingested and not embedded yet: no embedding to answer from, rather than v1's.
        result = await client.call_tool("feature_details", {"dataset": "docs", "latent": 0, "token_evidence": False})
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error and "embedding" in text and "internal error" not in text, text
        for source in (v2, v3):
            replace_dataset(home, source, world.sae)
            await check_server_sees(client, home)
