"""MCP Apps views: the diff, latent and retrieval tools render as interactive views in hosts that support
the MCP Apps extension (charts and latent cards; a click on a latent calls ``feature_details``, "Next page"
calls the tool again with the next cursor).

The views are ``ui://`` resources served as ``text/html;profile=mcp-app``; each bound tool carries
``_meta.ui.resourceUri``. The tools' results are the same for every client, so a client that does not
negotiate the extension gets exactly today's text and structured results.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mcp.server.apps import Apps
from mcp.server.mcpserver.tools import Tool

TEMPLATE = Path(__file__).resolve().parent / "static" / "view.html"

VIEWS: dict[str, tuple[str, str]] = {
    "diff_datasets": ("diff", "ui://saescope/diff.html"),
    "feature_details": ("feature", "ui://saescope/feature.html"),
    "retrieve_documents": ("retrieval", "ui://saescope/retrieval.html"),
}
"""Tool name -> (the view's kind, its resource URI)."""


def view_html(kind: str) -> str:
    """The page of one view: the shared template, told which result it shows."""
    return TEMPLATE.read_text(encoding="utf-8").replace('"__VIEW__"', f'"{kind}"', 1)


def apps_extension(tools: Sequence[Tool]) -> Apps:
    """The MCP Apps extension serving the views, with each bound tool's ``_meta.ui.resourceUri`` set."""
    apps = Apps()
    for kind, uri in VIEWS.values():
        apps.add_html_resource(uri, view_html(kind), name=f"saescope {kind} view", prefers_border=True)
    for t in tools:
        if t.name in VIEWS:
            t.meta = {**(t.meta or {}), "ui": {"resourceUri": VIEWS[t.name][1]}}
    return apps
