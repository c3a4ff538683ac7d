"""saescope's MCP server: SAE embeddings of text corpora, as tools for agents.

Tools
    datasets   list_datasets · describe_dataset · read_documents · ingest_documents (a file under an
               allowed root, or inline documents)
    embedding  embed_dataset (returns a job id at once; runs in the background) · embed_status (progress;
               can wait, sending MCP progress notifications)
    analyses   diff_datasets (mode sets | paired | one_vs_many) · find_trends (across ordered groups) ·
               correlations (NPMI co-occurrence, or latents tracking a metadata column) · cluster_documents (along an axis) · retrieve_documents
               (by a property in words) · search_features (by label) · feature_details (with the tokens that
               fire) · explain_document
    LLM        label_latents (autointerp, scored by detection) · summarise_diff (hypotheses citing latents,
               frequencies counted by code) · verify_hypothesis (counts and a test; optional LLM judge) ·
               llm_usage (tokens and price so far)
Resources: ``saescope://datasets``, ``saescope://datasets/{name}``, ``saescope://latents/{dataset}/{latent}``,
``saescope://llm/usage``. Prompt: ``investigate_difference``. MCP Apps views (:mod:`saescope.server.views`):
diff_datasets, feature_details and retrieve_documents render as interactive charts and latent cards in hosts
that support the extension.

The server is a thin layer over :mod:`saescope.ops`: each tool (:mod:`saescope.server.tools`) turns its
arguments into the operation's request, runs it in a worker thread and answers with the result model as
structured content (schemas published from ``schemas.json``) plus a compact text of at most ~8k
characters. Library errors become ``is_error`` results carrying their actionable message. Nothing heavy is
imported until a tool needs it, so the server answers ``initialize`` and ``tools/list`` at once; the reader
and SAE load on first use, once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer

from saescope.server.config import ServerConfig
from saescope.server.resources import add_prompts, add_resources
from saescope.server.state import ServerState
from saescope.server.tooling import mcp_tool
from saescope.server.tools import TOOLS
from saescope.server.views import apps_extension

if TYPE_CHECKING:
    from saescope.workspace import Workspace

SCHEMAS_PATH = Path(__file__).resolve().parent / "schemas.json"
log = logging.getLogger(__name__)

INSTRUCTIONS = """\
saescope finds what differs between collections of texts (e.g. the outputs of two models) with a sparse
autoencoder (SAE): each document becomes a sparse vector of "latents" (features with human-readable labels).
Typical flow: list_datasets -> ingest_documents (if needed) -> embed_dataset (background; poll embed_status)
-> diff_datasets / find_trends / correlations / cluster_documents / retrieve_documents -> feature_details and
read_documents to check latents against real text -> summarise_diff / verify_hypothesis to state and test
findings. Filters (where_a, where) use metadata columns: "model == 'gpt-4o' and length > 100".
Numbers in results are measured on the data; labels may be imperfect, so check examples before concluding."""


def output_schemas() -> dict[str, dict[str, Any]]:
    """Each tool's published result schema: from ``schemas.json``, or derived from the result models when an
    install lacks the generated file (slower start, same result)."""
    try:
        schemas: dict[str, dict[str, Any]] = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from saescope.server.results import output_schemas as derive

        log.warning("%s is missing; deriving output schemas from the result models", SCHEMAS_PATH)
        schemas = derive()
    return schemas


def build_server(config: ServerConfig | None = None, *, workspace: Workspace | None = None) -> MCPServer:
    """The saescope MCP server for ``config`` (``workspace`` lets tests share already loaded models)."""
    state = ServerState(config or ServerConfig(), workspace)
    tools = [mcp_tool(fn, state) for fn in TOOLS]
    schemas = output_schemas()
    for t in tools:
        t.fn_metadata.output_schema = schemas.get(t.name)
    server = MCPServer(
        "saescope",
        title="saescope",
        instructions=INSTRUCTIONS,
        tools=tools,
        extensions=[apps_extension(tools)],
        log_level="WARNING",
    )
    add_resources(server, state)
    add_prompts(server)
    return server
