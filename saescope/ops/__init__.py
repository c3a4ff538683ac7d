"""The operations layer: one typed function per user-visible operation, the only door to the library.

Each operation takes the :class:`~saescope.workspace.Workspace` and a request from
:mod:`saescope.ops.requests` (whose fields carry every default, bound and help text), resolves documents
through :mod:`saescope.ops.docsets`, calls :mod:`saescope.analyses`, :mod:`saescope.store`,
:mod:`saescope.embed` or :mod:`saescope.llm`, and returns a pydantic result with ``to_text()``. The MCP
server (:mod:`saescope.server`) and the CLI (:mod:`saescope.cli`) only turn arguments into requests and
results into answers.

The operations load on first use (``ops.diff`` imports :mod:`saescope.ops.analyses` then), so a front
door that imports this package starts fast; requests are plain pydantic and import at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saescope.ops.analyses import cluster, correlations, diff, retrieve, trend
    from saescope.ops.datasets import describe_dataset, ingest_documents, list_datasets, read_documents_by_id
    from saescope.ops.describe import describe_latents
    from saescope.ops.embedding import embed_config, embed_dataset, sae_choice
    from saescope.ops.features import explain_document, feature_details, search_features, top_features
    from saescope.ops.llm_steps import label_latents, summarise_diff, verify_hypothesis

_WHERE = {
    "list_datasets": "datasets",
    "describe_dataset": "datasets",
    "read_documents_by_id": "datasets",
    "ingest_documents": "datasets",
    "embed_dataset": "embedding",
    "sae_choice": "embedding",
    "embed_config": "embedding",
    "diff": "analyses",
    "correlations": "analyses",
    "cluster": "analyses",
    "retrieve": "analyses",
    "trend": "analyses",
    "search_features": "features",
    "feature_details": "features",
    "explain_document": "features",
    "top_features": "features",
    "describe_latents": "describe",
    "label_latents": "llm_steps",
    "summarise_diff": "llm_steps",
    "verify_hypothesis": "llm_steps",
}

__all__ = [
    "cluster",
    "correlations",
    "describe_dataset",
    "describe_latents",
    "diff",
    "embed_config",
    "embed_dataset",
    "explain_document",
    "feature_details",
    "ingest_documents",
    "label_latents",
    "list_datasets",
    "read_documents_by_id",
    "retrieve",
    "sae_choice",
    "search_features",
    "summarise_diff",
    "top_features",
    "trend",
    "verify_hypothesis",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'saescope.ops' has no attribute {name!r}")
    return getattr(importlib.import_module(f"saescope.ops.{module}"), name)
