"""Result models of every tool, and the output schemas published for them.

Importing the analyses takes most of a second (scikit-learn), so the server does not import this module
to answer ``tools/list``: it publishes the schemas stored in ``schemas.json``, which
``python -m saescope.server.results`` regenerates (a test checks they match these models).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from saescope import analyses as an
from saescope.llm.autointerp import LabelingResult
from saescope.llm.hypotheses import DiffSummary
from saescope.llm.ledger import UsageTotals
from saescope.llm.verify import Verification
from saescope.queries import FeatureDetails, Retrieval
from saescope.server.jobs import EmbedJob, JobList
from saescope.server.models import DatasetDetails, DatasetList, DocumentsPage, IngestResult

SCHEMAS_PATH = Path(__file__).resolve().parent / "schemas.json"


class DiffResult(BaseModel):
    """A diff of two document sets; exactly one of sets / paired / one_vs_many is filled, per mode."""

    mode: Literal["sets", "paired", "one_vs_many"]
    sets: an.SetDiff | None = Field(default=None, description="mode sets: two independent document sets")
    paired: an.PairedDiff | None = Field(default=None, description="mode paired: documents matched by pair_key")
    one_vs_many: an.OneVsMany | None = Field(default=None, description="mode one_vs_many: a column value vs the rest")

    def to_text(self) -> str:
        inner = self.sets or self.paired or self.one_vs_many
        return inner.to_text() if inner is not None else "(empty)"


class CorrelationResult(BaseModel):
    """Latent co-occurrence (no column given) or latents that track a metadata column."""

    kind: Literal["cooccurrence", "metadata"]
    cooccurrence: an.Cooccurrence | None = None
    metadata: an.MetadataAssociation | None = None

    def to_text(self) -> str:
        inner = self.cooccurrence or self.metadata
        return inner.to_text() if inner is not None else "(empty)"


class ExplainResult(BaseModel):
    """A document's most distinctive latents, with the start of its text."""

    explanation: an.DocumentExplanation
    text: str = Field(description="the document's text, cut to 1,500 characters")
    truncated: bool

    def to_text(self) -> str:
        return f"{self.explanation.to_text()}\ntext: {self.text!r}"


TOOL_OUTPUTS: dict[str, type[BaseModel]] = {
    "list_datasets": DatasetList,
    "describe_dataset": DatasetDetails,
    "read_documents": DocumentsPage,
    "ingest_documents": IngestResult,
    "embed_dataset": EmbedJob,
    "embed_status": JobList,
    "diff_datasets": DiffResult,
    "correlations": CorrelationResult,
    "cluster_documents": an.Clustering,
    "retrieve_documents": Retrieval,
    "search_features": an.LatentMatches,
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
