"""The CLI as a person uses it: real subprocesses, real files, a killed embed resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = [sys.executable, "-m", "saescope.cli"]


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAESCOPE_HOME": str(home)}
    out = subprocess.run([*BIN, *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"saescope {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out


def _corpus(path: Path, n: int) -> Path:
    topics = ["the weather today", "a football match", "my new phone", "a cooking recipe", "a tax form"]
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "id": f"d{i}",
                        "text": f"Document {i} is about {topics[i % 5]}. " * (1 + i % 3),
                        "topic": topics[i % 5],
                    }
                )
                + "\n"
            )
    return path


def test_ingest_info_and_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = _corpus(tmp_path / "c.jsonl", 12)
    out = run(home, "ingest", "docs", str(src), "--id-column", "id", "--json")
    info = json.loads(out.stdout)
    assert info["n_docs"] == 12 and info["columns"] == ["topic"]
    listing = json.loads(run(home, "info", "--json").stdout)
    assert [d["name"] for d in listing["datasets"]] == ["docs"]
    bad = run(home, "info", "nope", check=False)
    assert bad.returncode == 2 and "unknown dataset 'nope'; known datasets: ['docs']" in bad.stderr
    dup = run(home, "ingest", "docs", str(src), check=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": \n')
    err = run(home, "ingest", "other", str(broken), check=False)
    assert err.returncode == 2 and "line 2" in err.stderr
    assert json.loads(run(home, "info", "--json").stdout)["datasets"][0]["name"] == "docs"


@pytest.mark.slow
def test_killed_or_interrupted_embed_resumes_byte_identical(tmp_path: Path, random_sae_dir: Path) -> None:
    src = _corpus(tmp_path / "c.jsonl", 96)
    homes = [tmp_path / "killed", tmp_path / "clean"]
    for home in homes:
        run(home, "ingest", "docs", str(src), "--id-column", "id")
    args = ["embed", "docs", "--sae", str(random_sae_dir), "--shard-size", "4", "--token-budget", "512"]
    env = {**os.environ, "SAESCOPE_HOME": str(homes[0])}
    proc = subprocess.Popen([*BIN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emb_root = homes[0] / "datasets" / "docs" / "embeddings"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(emb_root.rglob("shard-*.safetensors"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(emb_root.rglob("shard-*.safetensors")))
    assert 3 <= done_at_kill < 24, "the kill should land mid-run"
    info = json.loads(run(homes[0], "info", "docs", "--json").stdout)
    assert info["embeddings"][0]["complete"] is False
    # Ctrl-C (SIGINT) mid-run in a third home: a short message and exit code 130, no traceback.
    homes.append(tmp_path / "interrupted")
    run(homes[2], "ingest", "docs", str(src), "--id-column", "id")
    int_root = homes[2] / "datasets" / "docs" / "embeddings"
    with (tmp_path / "stderr.txt").open("w") as err:
        env_int = {**os.environ, "SAESCOPE_HOME": str(homes[2])}
        # a runner started in the background (nohup, `&`) ignores SIGINT and its children inherit that, so
        # the child gets the default disposition back, as a terminal's Ctrl-C would find it
        proc = subprocess.Popen(
            [*BIN, *args],
            env=env_int,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        while time.time() < deadline and len(list(int_root.rglob("shard-*.safetensors"))) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    message = (tmp_path / "stderr.txt").read_text()
    assert "interrupted; finished shards are kept: run the same command again to resume" in message
    assert "Traceback" not in message
    for home in homes:
        run(home, *args)
    shards = [sorted((h / "datasets" / "docs" / "embeddings").rglob("shard-*.safetensors")) for h in homes]
    assert len(shards[0]) == len(shards[1]) == len(shards[2]) == 24
    for a, b, c in zip(*shards, strict=True):
        assert a.name == b.name == c.name and a.read_bytes() == b.read_bytes() == c.read_bytes()
    assert not list(emb_root.rglob("*.tmp"))
    info = json.loads(run(homes[0], "info", "docs", "--json").stdout)
    assert info["embeddings"][0]["complete"] is True and info["embeddings"][0]["n_docs"] == 96
    top = json.loads(run(homes[0], "top-features", "docs", "d5", "-k", "3", "--evidence", "1", "--json").stdout)
    assert len(top["features"]) == 3 and top["n_active"] > 0
    assert top["evidence"][str(top["features"][0]["latent"])], "the top latent fires on some token"
