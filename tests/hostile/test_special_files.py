"""A FIFO and a character device where documents are expected: ingest refuses them at once, never blocking on
the FIFO or reading /dev/zero forever, through the MCP server and through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from saescope.llm.providers import LLMSettings
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from saescope.workspace import Workspace

pytestmark = pytest.mark.anyio

PROMPT_S = 20
"""An answer later than this is a hang."""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder holding ``f.jsonl`` (a FIFO nobody writes to) and ``z.jsonl`` (a link to /dev/zero)."""
    folder = tmp_path / "root"
    folder.mkdir()
    os.mkfifo(folder / "f.jsonl")
    (folder / "z.jsonl").symlink_to("/dev/zero")
    (folder / "docs").mkdir()
    os.mkfifo(folder / "docs" / "pipe.txt")
    return folder


async def ingest_error(home: Path, roots: list[Path], path: str, **extra: object) -> str:
    config = ServerConfig(home=home, roots=roots, device="cpu", llm=LLMSettings(provider="none"))
    async with Client(build_server(config, workspace=Workspace(home))) as client:
        with anyio.fail_after(PROMPT_S):
            result = await client.call_tool("ingest_documents", {"name": "special", "path": path, **extra})
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error, text
    assert "internal error" not in text.lower(), text
    return text


async def test_mcp_ingest_refuses_a_fifo_and_a_device_promptly(root: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert "FIFO" in await ingest_error(home, [root], "f.jsonl")
    assert "FIFO" in await ingest_error(home, [root], str(root / "f.jsonl"), format="csv")
    # The link leads out of the allowed root: refused before anything is opened.
    assert "outside the allowed roots" in await ingest_error(home, [root], "z.jsonl")
    # With /dev allowed too, the device itself is refused when it is opened.
    assert "character device" in await ingest_error(home, [root, Path("/dev")], "z.jsonl")
    # A FIFO named like a text file in a folder of .txt files is passed over, not opened.
    assert "no .txt files found" in await ingest_error(home, [root], "docs", format="txt")
    assert not list(home.rglob("special*"))


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAESCOPE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "saescope.cli", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_ingest_refuses_a_fifo_and_a_device_promptly(root: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    for path, kind in (("f.jsonl", "FIFO"), ("z.jsonl", "character device")):
        out = cli(home, "ingest", "special", str(root / path))
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert any(line.startswith("error:") and kind in line for line in out.stderr.splitlines()), out.stderr
    assert not list(home.rglob("special*"))
