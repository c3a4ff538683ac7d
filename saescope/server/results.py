"""The result model of every tool, and the output schemas published for them.

Importing the analyses takes most of a second (scikit-learn), so the server does not import this module
to answer ``tools/list``: it publishes the schemas stored in ``schemas.json``, which
``python -m saescope.server.results`` regenerates (a test checks they match these models).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from saescope import analyses as an
from saescope.llm.autointerp import LabelingResult
from saescope.llm.hypotheses import DiffSummary
from saescope.llm.ledger import UsageTotals
from saescope.llm.verify import Verification
from saescope.ops.analyses import CorrelationResult, DiffResult, Retrieval, TrendResult
from saescope.ops.datasets import DatasetDetails, DatasetList, DocumentsPage, IngestResult
from saescope.ops.describe import DescribeResult
from saescope.ops.features import ExplainResult, FeatureDetails
from saescope.ops.jobs import EmbedJob, JobList

SCHEMAS_PATH = Path(__file__).resolve().parent / "schemas.json"


TOOL_OUTPUTS: dict[str, type[BaseModel]] = {
    "list_datasets": DatasetList,
    "describe_dataset": DatasetDetails,
    "read_documents": DocumentsPage,
    "ingest_documents": IngestResult,
    "embed_dataset": EmbedJob,
    "embed_status": JobList,
    "diff_datasets": DiffResult,
    "find_trends": TrendResult,
    "correlations": CorrelationResult,
    "cluster_documents": an.Clustering,
    "retrieve_documents": Retrieval,
    "search_features": an.LatentMatches,
    "describe_latents": DescribeResult,
    "feature_details": FeatureDetails,
    "explain_document": ExplainResult,
    "label_latents": LabelingResult,
    "summarise_diff": DiffSummary,
    "verify_hypothesis": Verification,
    "llm_usage": UsageTotals,
}


def output_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each tool's structured result, as the results are dumped (excluded fields omitted)."""
    return {name: model.model_json_schema(mode="serialization") for name, model in sorted(TOOL_OUTPUTS.items())}


def write_schemas(path: Path = SCHEMAS_PATH) -> None:
    path.write_text(json.dumps(output_schemas(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_schemas()
    sys.stderr.write(f"wrote {SCHEMAS_PATH}\n")
