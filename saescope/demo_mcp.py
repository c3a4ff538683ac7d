"""``saescope demo --mcp``: the demo as an agent sees it, through a real MCP client over stdio.

Starts ``saescope serve`` as a subprocess, then ingests the demo corpus, embeds it in the background
while following its progress, diffs positive against negative reviews, inspects the top latent with
its firing tokens, and verifies the difference — printing each tool's text answer.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from saescope.demo import DEMO_CORPUS

DATASET = "demo-reviews"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _text(result: Any, limit: int = 2500) -> str:
    parts = [getattr(c, "text", "") for c in result.content]
    out = "\n".join(p for p in parts if p)
    return out if len(out) <= limit else out[:limit] + "\n..."


async def _run(home: Path) -> int:
    from mcp import Client, StdioServerParameters

    files = Path(tempfile.mkdtemp(prefix="saescope-demo-files-"))
    shutil.copy(DEMO_CORPUS, files / DEMO_CORPUS.name)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "saescope.cli", "--home", str(home), "serve", "--root", str(files)],
        cwd=str(files),
    )
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        _say(f"> connected to saescope over stdio; {len(tools)} tools: {', '.join(tools)}\n")

        async def call(name: str, args: dict[str, Any], **kw: Any) -> Any:
            _say(f"> {name}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
            result = await client.call_tool(name, args, **kw)
            _say(_text(result))
            _say()
            if result.is_error:
                raise RuntimeError(f"{name} failed")
            return result

        await call(
            "ingest_documents", {"name": DATASET, "path": DEMO_CORPUS.name, "id_column": "id", "overwrite": True}
        )
        job = await call("embed_dataset", {"dataset": DATASET})
        job_id = (job.structured_content or {}).get("job_id")

        last = [-1.0]

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if done != last[0]:
                last[0] = done
                _say(f"  progress {done:.0f}/{total or 0:.0f} {message or ''}")

        if job_id:
            await call("embed_status", {"job_id": job_id, "wait_seconds": 300}, progress_callback=progress)
        sides = {"dataset_a": DATASET, "where_a": "category == 'fresh'", "where_b": "category == 'rotten'"}
        diff = await call("diff_datasets", {**sides, "top_k": 8})
        rows = ((diff.structured_content or {}).get("sets") or {}).get("rows") or []
        if rows:
            top = int(rows[0]["latent"])
            await call("feature_details", {"dataset": DATASET, "latent": top, "n_top": 3})
            cited = [int(r["latent"]) for r in rows[:3] if r["diff"] < 0]
            if cited:
                await call(
                    "verify_hypothesis",
                    {
                        **sides,
                        "latents": cited,
                        "hypothesis": "negative reviews end more sentences on a note of complaint",
                    },
                )
    shutil.rmtree(files, ignore_errors=True)
    return 0


def run_mcp_demo(home: Path) -> int:
    """Run the demo through ``saescope serve`` over stdio; return the exit code."""
    return anyio.run(_run, home)
