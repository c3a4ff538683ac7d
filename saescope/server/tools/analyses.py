"""Tools for the analyses: diff, correlations, clustering, retrieval, and latents (search, details, explain)."""

from __future__ import annotations

from mcp_types import CallToolResult

from saescope import ops
from saescope.ops.requests import (
    ClusterRequest,
    CorrelationsRequest,
    DescribeLatentsRequest,
    DiffRequest,
    ExplainRequest,
    FeatureRequest,
    RetrieveRequest,
    SearchFeaturesRequest,
    TrendRequest,
)
from saescope.server.state import Lock, ServerState
from saescope.server.tooling import READ_ONLY, WRITES, tool


@tool("Diff two document sets", READ_ONLY)
async def diff_datasets(state: ServerState, req: DiffRequest) -> CallToolResult:
    """Which SAE latents (concepts) fire in a larger fraction of documents in set A than in set B, or the
    reverse: per latent, its label, freq_a and freq_b, their difference with a 95% interval, a p-value
    (z / Fisher, or McNemar when paired) and a BH-adjusted q, and example document ids from each side.
    Follow up with feature_details (what a latent is), read_documents (the examples), summarise_diff."""
    return state.result(await state.run(lambda: ops.diff(state.ws, req)))


@tool("Trends across ordered groups", READ_ONLY)
async def find_trends(state: ServerState, req: TrendRequest) -> CallToolResult:
    """Which SAE latents fire more (or less) often along the ordered values of a metadata column - model
    releases in order, dates, length buckets: per latent, its frequency in each group with a 95% interval,
    the change per step, a Cochran-Armitage trend test (stratified by pair_key when the groups answer the same
    prompts) with a BH-adjusted q, and example documents from the first and last groups."""
    return state.result(await state.run(lambda: ops.trend(state.ws, req)))


@tool("Latent correlations", READ_ONLY)
async def correlations(state: ServerState, req: CorrelationsRequest) -> CallToolResult:
    """Concept correlations within a dataset: with no column, latent pairs that co-occur more than chance
    (normalised PMI; optionally only pairs with unrelated labels); with a metadata column, the latents that
    track it (per-category enrichment with q-values, or Spearman correlation for numbers and dates)."""
    lock: Lock = "encoder" if req.dissimilar_labels is not None else None
    return state.result(await state.run(lambda: ops.correlations(state.ws, req), lock))


@tool("Cluster documents", READ_ONLY)
async def cluster_documents(state: ServerState, req: ClusterRequest) -> CallToolResult:
    """Group documents along an axis of interest: latents relevant to the axis (or given latents) become
    binary features, documents are clustered on them, and each cluster is described by its most distinctive
    latents and example documents. Documents where none of the latents fire are left unassigned."""
    lock: Lock = "encoder" if (req.axis or req.dense) else None
    return state.result(await state.run(lambda: ops.cluster(state.ws, req), lock))


@tool("Retrieve documents by a property", READ_ONLY)
async def retrieve_documents(state: ServerState, req: RetrieveRequest) -> CallToolResult:
    """Find documents that have a property described in words: latents whose labels match the query (refined
    by positive examples) are weighted, and documents are ranked by those latents' activations. Returns the
    chosen latents with weights and the ranked documents with each latent's contribution."""
    return state.result(await state.run(lambda: ops.retrieve(state.ws, req), "encoder"))


@tool("Search latents by label", READ_ONLY)
async def search_features(state: ServerState, req: SearchFeaturesRequest) -> CallToolResult:
    """Find latents (SAE features) by their labels: whole-query and word matches, plus semantic similarity.
    Use the ids with feature_details, retrieve_documents(latents=...), cluster_documents or verify_hypothesis.
    Latents without a label are found only semantically; label_latents can name them."""
    lock: Lock = "encoder" if req.semantic else None
    return state.result(await state.run(lambda: ops.search_features(state.ws, req), lock))


@tool("Describe latents without an LLM", WRITES)
async def describe_latents(state: ServerState, req: DescribeLatentsRequest) -> CallToolResult:
    """Give the dataset's SAE latents descriptions a person can read, without an LLM: each latent's firing
    over the dataset's documents is matched against a vocabulary of concepts (sentiment, tone, style, format,
    topics, programming, languages ...) by sentence similarity, and scored by how well the concept predicts
    where it fires on held-out documents (AUROC fidelity). Descriptions with fidelity >= 0.75 become the
    labels every tool shows; the result lists the best ones next to their token labels. Run once per SAE."""
    return state.result(await state.run(lambda: ops.describe_latents(state.ws, req), "encoder"))


@tool("Latent details with token evidence", READ_ONLY)
async def feature_details(state: ServerState, req: FeatureRequest) -> CallToolResult:
    """Everything about one latent in one dataset: its labels (with source and score), how many documents it
    fires in, the documents where it fires most with the firing tokens marked «like this», and random
    documents where it does not fire - to judge what the latent really detects."""
    return state.result(await state.run(lambda: ops.feature_details(state.ws, req)))


@tool("Explain a document", READ_ONLY)
async def explain_document(state: ServerState, req: ExplainRequest) -> CallToolResult:
    """The latents that characterise one document: strong in it and rare in the dataset first (activation x
    idf), with labels and how often each fires in the dataset, plus the document's text."""
    return state.result(await state.run(lambda: ops.explain_document(state.ws, req)))
