"""The hostile-input corpus through the real MCP server (in-memory client), on the shared embedded data root.

Every tool call must end in an ``is_error`` result whose text names the problem and is not an "internal
error"; every resource or prompt in a protocol error. Nothing may hang, no embedding job may start, and no
stored file may change.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.server.mcpserver import MCPServer

from saescope.llm.providers import LLMSettings
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from tests.hostile.corpus import McpCase, bad_sae_folders, changes, fill, mcp_cases, places_for, snapshot
from tests.server.shared import Data

pytestmark = pytest.mark.anyio

CASES = mcp_cases()
CALL_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def saes(tmp_path_factory: pytest.TempPathFactory, data: Data) -> tuple[Path, dict[str, str]]:
    """A folder of broken SAEs (an allowed root of the server) and the placeholders of the corpus."""
    base = tmp_path_factory.mktemp("hostile-mcp")
    bad = bad_sae_folders(base / "saes", data.sae_dir)
    return base, places_for(data.sae_dir, bad, base)


def make_server(data: Data, extra_root: Path) -> MCPServer:
    config = ServerConfig(
        home=data.root,
        roots=[data.files, data.sae_dir, extra_root],
        sae=str(data.sae_dir),
        device="cpu",
        llm=LLMSettings(provider="auto"),
    )
    return build_server(config, workspace=data.ws)


async def answer(client: Client, case: McpCase, arguments: dict[str, Any]) -> tuple[bool, str]:
    """``(is_error, text)`` of one case; a protocol error counts as an error with its message."""
    with anyio.fail_after(CALL_TIMEOUT_S):
        try:
            if case.kind == "tool":
                result = await client.call_tool(case.target, arguments)
                return bool(result.is_error), " ".join(getattr(c, "text", "") for c in result.content)
            if case.kind == "resource":
                await client.read_resource(case.target)
            else:
                await client.get_prompt(case.target, arguments)
        except MCPError as exc:
            return True, str(exc)
    return False, "answered without an error"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_mcp_refuses_clearly_and_stores_nothing(
    case: McpCase, data: Data, saes: tuple[Path, dict[str, str]]
) -> None:
    root, places = saes
    before = snapshot(data.root)
    async with Client(make_server(data, root)) as client:
        is_error, text = await answer(client, case, fill(case.arguments, places))
        jobs = await client.call_tool("embed_status", {})
    assert is_error, text[:3000]
    if not case.protocol_error_ok:
        assert "internal error" not in text.lower(), text[:3000]
        assert re.search(case.expect, text, re.IGNORECASE | re.DOTALL), f"expected /{case.expect}/: {text[:3000]}"
    assert len(text) < 20_000, "the error echoes a huge input back"
    assert jobs.structured_content == {"jobs": []}, jobs.structured_content
    assert not changes(before, snapshot(data.root)), changes(before, snapshot(data.root))[:10]


STDIO_CASES = (
    "ingest_mb_path",
    "unknown_argument",
    "filter_deep_not",
    "feature_latent_huge",
    "sae_garbage_cfg",
    "resource_latent_superscript",
    "prompt_no_dataset_a",
)


async def test_stdio_server_refuses_and_keeps_answering(data: Data, saes: tuple[Path, dict[str, str]]) -> None:
    """A few cases over a real ``saescope serve`` process (stdio): errors, and the server still answers after."""
    root, places = saes
    args = ["-m", "saescope.cli", "--home", str(data.root), "serve", "--root", str(data.files), "--root", str(root)]
    params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ), cwd=str(data.files))
    before = snapshot(data.root)
    by_name = {c.name: c for c in CASES}
    async with Client(params) as client:
        for name in STDIO_CASES:
            case = by_name[name]
            is_error, text = await answer(client, case, fill(case.arguments, places))
            assert is_error, (name, text[:2000])
            assert case.protocol_error_ok or "internal error" not in text.lower(), (name, text[:2000])
        with anyio.fail_after(CALL_TIMEOUT_S):
            listed = await client.call_tool("list_datasets", {})
    assert not listed.is_error and listed.structured_content is not None
    assert "reviews" in {d["name"] for d in listed.structured_content["datasets"]}
    assert not changes(before, snapshot(data.root))
