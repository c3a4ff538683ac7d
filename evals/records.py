"""The records of one evaluation run, shared by :mod:`evals.run` (which fills them) and :mod:`evals.report`
(which renders them): the settings, each case's result, the environment, and the whole run."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from evals.methods import Cost, LatentScore
from evals.retrieval import ClusterScore, RetrievalScore

if TYPE_CHECKING:
    from saescope.embed.sae import SparseAutoencoder
    from saescope.store.dataset import EmbeddingManifest


class Settings(BaseModel):
    """How the methods were run and scored."""

    top_k: int = Field(description="latents of each diff that are scored")
    alpha: float = Field(description="false discovery rate: latents with q <= alpha are significant")
    f1_min: float = Field(description="planted/paired: a latent recovers the property when F1 >= f1_min")
    mcc_min: float = Field(description="real cases: a latent recovers the difference when MCC >= mcc_min")
    n_latents: int = Field(description="significant latents the SAE pipeline gives the LLM")
    n_hypotheses: int
    baseline_docs: int = Field(description="documents (or pairs) per side the LLM-only baseline reads")
    batch_docs: int = Field(description="documents per side in one baseline call")
    pairs_per_call: int
    price_model: str
    llm: str = Field(description="the LLM used, or 'none (dry run)'")
    tokenizer: str = Field(description="how prompt tokens were counted in a dry run")


class CaseResult(BaseModel):
    """Both methods on one case."""

    case_id: str
    column: str = Field(description="membership column in the dataset: A is `column in ['a','ab']`, B `in ['b','ab']`")
    group: str
    corpus: str
    prop: str | None
    kind: str | None
    fraction: float | None
    paired: bool
    n_a: int
    n_b: int
    n_positive: int
    tokens: int = Field(description="reader tokens of the case's documents")
    embed_seconds: float = Field(description="embedding compute for the case's documents at the measured rate")
    diff_seconds: float
    n_tested: int
    n_significant: int
    top: list[LatentScore]
    first_recovered: int | None = Field(description="rank of the first top latent that recovers the property")
    first_significant: int | None = Field(description="rank of the first that recovers it and has q <= alpha")
    sae_hypotheses: list[str] = Field(default_factory=list)
    sae_cost: Cost = Field(default_factory=Cost)
    baseline_hypotheses: list[str] = Field(default_factory=list)
    baseline_cost: Cost = Field(default_factory=Cost)
    sae_judged: list[bool] | None = None
    baseline_judged: list[bool] | None = None
    judge_cost: Cost = Field(default_factory=Cost)


class Environment(BaseModel):
    command: str
    started: str
    wall_seconds: float
    python: str
    platform: str
    cpus: int
    versions: dict[str, str]
    dataset: str
    home: str
    n_docs: int
    reader: dict[str, Any]
    sae: dict[str, Any]
    embed_config: dict[str, Any]
    embed_seconds: float = Field(description="embedding time in this run (0 when the embedding was reused)")
    embed_seconds_per_1k_tokens: float | None
    tokens_total: int
    price_table_date: str
    price: dict[str, float] | None


def package_versions() -> dict[str, str]:
    """Versions of the packages a run's numbers depend on."""
    out = {}
    for pkg in ("saescope", "torch", "transformers", "sae-lens", "numpy", "scikit-learn", "mcp", "openai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def run_environment(
    module: str,
    argv: Sequence[str] | None,
    started: datetime,
    t_start: float,
    sae: SparseAutoencoder,
    manifest: EmbeddingManifest,
) -> dict[str, Any]:
    """The :class:`Environment` fields every eval fills the same way: the command, the machine, the versions,
    and the reader, SAE and settings of the embedding."""
    args = argv if argv is not None else sys.argv[1:]
    return {
        "command": shlex.join([Path(sys.executable).name, "-m", module, *args]),
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": time.perf_counter() - t_start,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
        "versions": package_versions(),
        "reader": manifest.spec.reader,
        "sae": {"id": sae.id, "d_sae": sae.d_sae, **{k: v for k, v in manifest.spec.sae.items() if k != "source"}},
        "embed_config": manifest.spec.config,
    }


class RunResults(BaseModel):
    benchmark: dict[str, Any]
    settings: Settings
    environment: Environment
    cases: list[CaseResult]
    retrieval: list[RetrievalScore]
    clustering: list[ClusterScore]
