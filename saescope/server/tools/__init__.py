"""Every tool of the server, in the order ``tools/list`` shows them: the one place tools are registered."""

from __future__ import annotations

from saescope.server.tooling import ToolFn
from saescope.server.tools import analyses, datasets, llm

TOOLS: tuple[ToolFn, ...] = (
    datasets.list_datasets,
    datasets.describe_dataset,
    datasets.read_documents,
    datasets.ingest_documents,
    datasets.embed_dataset,
    datasets.embed_status,
    analyses.diff_datasets,
    analyses.find_trends,
    analyses.correlations,
    analyses.cluster_documents,
    analyses.retrieve_documents,
    analyses.search_features,
    analyses.describe_latents,
    analyses.feature_details,
    analyses.explain_document,
    llm.label_latents,
    llm.summarise_diff,
    llm.verify_hypothesis,
    llm.llm_usage,
)
