"""MCP Apps views in headless Chromium, fed real tool results the way a host feeds them.

A small host page embeds the view in an iframe and speaks its side of the MCP Apps protocol over
postMessage: it answers ``ui/initialize``, sends the tool's arguments and result, and answers the view's
``tools/call`` requests with results the real server returned for those calls. The checks are on what the
person sees: the chart, the latent cards a click opens, the highlighted tokens, the next page.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from tests.reports.browser import _run, screenshot
from tests.server.shared import Data

pytestmark = pytest.mark.anyio

# The error catcher is the page's second script: the view has exactly one of its own.
CAPTURE = "<script>window.__errors=[];addEventListener('error',e=>window.__errors.push(String(e.message)));</script>"

HOST = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<iframe id="view" style="width:820px;height:1100px;border:0"></iframe>
<script>
const DATA = __DATA__;
const frame = document.getElementById('view');
const calls = [];
const post = m => frame.contentWindow.postMessage({jsonrpc: '2.0', ...m}, '*');
addEventListener('message', e => {
  const m = e.data;
  if (!m || m.jsonrpc !== '2.0' || e.source !== frame.contentWindow) return;
  if (m.method === 'ui/initialize') {
    post({id: m.id, result: {protocolVersion: m.params.protocolVersion, hostCapabilities: {}, hostInfo: {name: 'test', version: '0'}, hostContext: {}}});
  } else if (m.method === 'ui/notifications/initialized') {
    post({method: 'ui/notifications/tool-input', params: {arguments: DATA.args}});
    post({method: 'ui/notifications/tool-result', params: DATA.result});
  } else if (m.method === 'tools/call') {
    const a = m.params.arguments, key = m.params.name + ':' + (a.latent ?? a.cursor);
    calls.push(key);
    post({id: m.id, result: DATA.calls[key] || {isError: true, content: [{type: 'text', text: 'no answer for ' + key}]}});
  }
});
function probe() {
  const d = frame.contentDocument, box = s => { const r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  return {
    svgs: [...d.querySelectorAll('svg.chart')].map(s => ({size: box(s), rows: s.querySelectorAll('.row').length})),
    cards: [...d.querySelectorAll('.card')].map(c => c.dataset.latent),
    docs: [...d.querySelectorAll('.doc')].map(x => { const c = x.cloneNode(true); c.querySelector('.id')?.remove();
      return {id: x.dataset.docId, text: c.textContent, marks: [...x.querySelectorAll('mark')].map(m => m.textContent)}; }),
    scripts: d.querySelectorAll('script').length, errors: frame.contentWindow.__errors, calls: [...calls],
    next: !!d.getElementById('next'), title: d.querySelector('h1')?.textContent || '',
  };
}
const steps = DATA.steps, seen = [];
function run(i) {
  seen.push(probe());
  if (i === steps.length) { document.body.setAttribute('data-probe', JSON.stringify(seen)); return; }
  const target = frame.contentDocument.querySelector(steps[i]);
  if (target) target.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  setTimeout(() => run(i + 1), 700);
}
frame.addEventListener('load', () => setTimeout(() => run(0), 700));
frame.srcdoc = DATA.view;
</script></body></html>"""


def _host(
    tmp_path: Path,
    name: str,
    view: str,
    args: dict[str, Any],
    result: dict[str, Any],
    calls: dict[str, dict[str, Any]],
    steps: list[str],
) -> Path:
    data = {
        "view": view.replace("<head>", "<head>" + CAPTURE, 1),
        "args": args,
        "result": result,
        "calls": calls,
        "steps": steps,
    }
    page = tmp_path / f"host-{name}.html"
    page.write_text(HOST.replace("__DATA__", json.dumps(data).replace("</", "<\\/")), encoding="utf-8")
    return page


def _probe(page: Path) -> list[dict[str, Any]]:
    out = _run(["--virtual-time-budget=8000", "--dump-dom", page.as_uri()])
    found = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert found, out.stderr[-2000:]
    seen: list[dict[str, Any]] = json.loads(html.unescape(found.group(1)))
    return seen


async def _call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def _server(data: Data) -> Any:
    return build_server(ServerConfig(home=data.root, roots=[data.files], device="cpu"), workspace=data.ws)


async def test_diff_view_opens_latents_and_pages(data: Data, tmp_path: Path) -> None:
    args = {
        "dataset_a": "reviews",
        "where_a": "category == 'fresh'",
        "where_b": "category == 'rotten'",
        "top_k": 4,
        "min_support": 2,
    }
    async with Client(_server(data)) as client:
        view = (await client.read_resource("ui://saescope/diff.html")).contents[0]
        result = await _call(client, "diff_datasets", args)
        rows = result["structuredContent"]["sets"]["rows"]
        first = rows[0]["latent"]
        calls = {
            f"feature_details:{first}": await _call(
                client, "feature_details", {"dataset": "reviews", "latent": first, "n_top": 3, "token_evidence": True}
            )
        }
        page2 = await _call(client, "diff_datasets", {**args, "cursor": 4})
        calls["diff_datasets:4"] = page2
    assert view.mime_type == APP_MIME_TYPE
    page = _host(tmp_path, "diff", view.text, args, result, calls, [".row", "#next"])  # type: ignore[union-attr]
    before, opened, paged = _probe(page)
    assert before["errors"] == [] and before["scripts"] == 2
    assert before["svgs"] and before["svgs"][0]["size"][0] >= 600 and before["svgs"][0]["rows"] == len(rows)
    assert opened["cards"] == [str(first)] and opened["calls"] == [f"feature_details:{first}"]
    evidence = calls[f"feature_details:{first}"]["structuredContent"]["evidence"]
    assert [d["text"] for d in opened["docs"]] == [e["text"].replace("«", "").replace("»", "") for e in evidence]
    assert any(d["marks"] for d in opened["docs"]) and all(m in d["text"] for d in opened["docs"] for m in d["marks"])
    assert paged["calls"][-1] == "diff_datasets:4" and paged["svgs"][0]["rows"] == len(
        page2["structuredContent"]["sets"]["rows"]
    )
    assert paged["errors"] == []
    screenshot(page, Path(os.environ.get("SAESCOPE_TEST_ARTIFACTS") or tmp_path) / "app-view-diff.png")


async def test_retrieval_and_feature_views(data: Data, tmp_path: Path) -> None:
    args = {"dataset": "reviews", "query": "praise for the acting", "top_k": 6}
    async with Client(_server(data)) as client:
        view = (await client.read_resource("ui://saescope/retrieval.html")).contents[0]
        feature_view = (await client.read_resource("ui://saescope/feature.html")).contents[0]
        result = await _call(client, "retrieve_documents", args)
        latent = result["structuredContent"]["latents"]["latents"][0]["latent"]
        details = await _call(client, "feature_details", {"dataset": "reviews", "latent": latent, "n_top": 2})
    page = _host(
        tmp_path,
        "retrieval",
        view.text,
        args,
        result,
        {f"feature_details:{latent}": details},  # type: ignore[union-attr]
        [".latents span"],
    )
    before, opened = _probe(page)
    assert before["errors"] == [] and before["svgs"][0]["rows"] == len(result["structuredContent"]["ranking"]["docs"])
    assert opened["cards"] == [str(latent)] and opened["errors"] == []
    # A document that holds markup is shown as text, and nothing in it runs.
    hostile = json.loads(json.dumps(details))
    hostile["structuredContent"]["evidence"][0]["text"] = (
        "<script>parent.__owned=1</script> «<img src=x onerror=alert(1)>»"
    )
    page = _host(tmp_path, "feature", feature_view.text, {"dataset": "reviews", "latent": latent}, hostile, {}, [])  # type: ignore[union-attr]
    (shown,) = _probe(page)
    assert shown["scripts"] == 2 and shown["errors"] == []
    assert shown["docs"][0]["text"] == "<script>parent.__owned=1</script> <img src=x onerror=alert(1)>"
    assert shown["docs"][0]["marks"] == ["<img src=x onerror=alert(1)>"]


async def test_results_are_the_same_with_and_without_the_apps_extension(data: Data) -> None:
    args = {"dataset_a": "reviews", "where_a": "category == 'fresh'", "where_b": "category == 'rotten'", "top_k": 3}
    results = []
    for extensions in ([], [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]):
        async with Client(_server(data), extensions=extensions) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["diff_datasets"].meta == {"ui": {"resourceUri": "ui://saescope/diff.html"}}
            assert tools["list_datasets"].meta is None
            results.append(await _call(client, "diff_datasets", args))
    assert results[0] == results[1]
