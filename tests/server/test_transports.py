"""`saescope serve` as a real process: over stdio, and over HTTP with and without the bearer token."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.server.shared import Data

pytestmark = pytest.mark.anyio

HEAVY = ("torch", "transformers", "sae_lens", "sklearn")


def serve_args(data: Data, *extra: str) -> list[str]:
    return ["-m", "saescope.cli", "--home", str(data.root), "serve", "--root", str(data.files), *extra]


def test_server_module_imports_no_model_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import saescope.server.app"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)


async def test_stdio_server_lists_tools_and_answers(data: Data) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=serve_args(data), env=dict(os.environ), cwd=str(data.files)
    )
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"diff_datasets", "embed_dataset", "label_latents"} <= tools
        result = await client.call_tool("list_datasets", {})
        assert not result.is_error
        assert "reviews" in {d["name"] for d in result.structured_content["datasets"]}  # type: ignore[index]
        bad = await client.call_tool("describe_dataset", {"dataset": "missing"})
        assert bad.is_error and "reviews" in bad.content[0].text  # type: ignore[union-attr]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(data: Data, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A `saescope serve --transport http` process with a generated token; yields (url, token)."""
    port = free_port()
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, *serve_args(data, "--transport", "http", "--port", str(port))],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "SAESCOPE_TOKEN": ""},
        )
    try:
        deadline = time.monotonic() + 90
        token = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"Bearer (\S+)'", log.read_text())
            if found:
                token = found.group(1)
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            pytest.fail(f"the HTTP server did not start: {log.read_text()[-2000:]}")
        assert token
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url: str, headers: dict[str, str]) -> tuple[int, str]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_http_refuses_requests_without_the_token(http_server: tuple[str, str]) -> None:
    url, token = http_server
    status, body = post(url, {})
    assert status == 401 and "bearer token" in body
    assert post(url, {"Authorization": "Bearer wrong"})[0] == 401
    assert post(url, {"Authorization": token})[0] == 401

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "diff_datasets" in tools
        result = await client.call_tool("list_datasets", {})
        assert not result.is_error and "reviews" in result.content[0].text  # type: ignore[union-attr]
