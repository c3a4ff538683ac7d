"""Fixtures of the hostile-input tests: the shared embedded data root of tests/server (MCP side), and a small
data root made by the real CLI (CLI side and the stale-cache test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.corpus import bad_sae_folders, places_for
from tests.server.shared import anyio_backend, data

__all__ = ["anyio_backend", "data"]

BIN = [sys.executable, "-m", "saescope.cli"]
TIMEOUT_S = 120
TOPICS = ["the weather today", "a football match", "my new phone", "a cooking recipe", "a tax form"]


def cli(
    home: Path, *args: str, cwd: Path | None = None, timeout: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``saescope ARGS`` as a process, with ``SAESCOPE_HOME=home``."""
    env = {**os.environ, "SAESCOPE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*BIN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def write_docs(path: Path, prefix: str, texts: list[str], **columns: list[object]) -> Path:
    """A JSONL file of documents ``{prefix}{i}`` with these texts, a column ``n`` (0, 1, ...) and ``columns``."""
    rows = [
        {"id": f"{prefix}{i}", "text": t, "n": i, **{k: v[i] for k, v in columns.items()}} for i, t in enumerate(texts)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@dataclass(frozen=True)
class World:
    """A data root holding ``docs`` (ids d0..d19, columns topic and n) embedded with the random SAE, the
    corpus's placeholders (good and broken SAE folders, a scratch folder) and a folder for per-case copies."""

    home: Path
    sae: Path
    runs: Path
    places: dict[str, str]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, random_sae_dir: Path) -> World:
    base = tmp_path_factory.mktemp("hostile-cli")
    scratch = base / "scratch"
    scratch.mkdir()
    topics = [TOPICS[i % 5] for i in range(20)]
    src = write_docs(
        scratch / "c.jsonl", "d", [f"Document {i} is about {t}." for i, t in enumerate(topics)], topic=topics
    )
    home = base / "home"
    for args in (("ingest", "docs", str(src), "--id-column", "id"), ("embed", "docs", "--sae", str(random_sae_dir))):
        out = cli(home, *args, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
    bad = bad_sae_folders(base / "saes", random_sae_dir)
    runs = base / "runs"
    runs.mkdir()
    return World(home=home, sae=random_sae_dir, runs=runs, places=places_for(random_sae_dir, bad, scratch))
