"""``saescope demo --mcp``: the whole agent workflow through a real MCP client over stdio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_mcp_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "SAESCOPE_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "saescope.cli", "demo", "--mcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for step in (
        "> ingest_documents(",
        "> embed_dataset(",
        "> embed_status(",
        "> diff_datasets(",
        "> feature_details(",
        "> verify_hypothesis(",
    ):
        assert step in text, text[-2000:]
    assert "progress 400/400" in text
    assert "stored 400 documents" in text
    assert "any fires in A" in text and "«" in text
