"""The records of one real-response run (:mod:`evals.real_responses` fills them, :mod:`evals.real_report`
renders them): per case the detectors' frequencies and which known differences a top latent recovered,
the trend, retrieval and cost."""

from __future__ import annotations

from pydantic import BaseModel, Field

from evals.methods import Cost
from evals.records import Environment


class RealSettings(BaseModel):
    """What was sampled, and how the methods were run and scored."""

    data_dir: str
    n_instructions: int = Field(description="instructions sampled (the same ones for every model)")
    n_common: int = Field(description="instructions every needed model answered (non-empty): the sampling frame")
    seed: int
    max_chars: int = Field(description="answers longer than this were shortened to at most this many characters")
    tail_chars: int = Field(description="characters of the answer's end kept after the cut (0: only the start)")
    models: list[str]
    top_k: int = Field(description="latents of each diff (and of the trend) that are scored")
    alpha: float
    mcc_min: float = Field(description="a latent recovers a detector when MCC(firing, detector) >= mcc_min")
    min_diff: float = Field(description="a detector is a known difference when its frequency differs by >= this")
    chat_template: bool
    baseline_docs: int = Field(description="documents (or pairs) per side the LLM-only baseline reads")
    batch_docs: int
    pairs_per_call: int
    n_latents: int = Field(description="significant latents the SAE pipeline gives the LLM")
    n_hypotheses: int
    price_model: str
    tokenizer: str


class DetectorDiff(BaseModel):
    """One detector on the two sides of a case."""

    detector: str
    freq_a: float = Field(description="share of A's documents (the target's, in one-vs-many) where it fires")
    freq_b: float = Field(description="share of B's documents (one-vs-many: the largest of the other sets' shares)")
    diff: float = Field(description="freq_a - freq_b")
    p: float = Field(description="McNemar (paired) or Fisher (sets, one-vs-many: target vs pooled others) p-value")
    known: bool = Field(description="a known difference: |diff| >= min_diff (one-vs-many: diff >= min_diff)")


class Recovery(BaseModel):
    """Whether a top latent of the diff recovers one known difference."""

    detector: str
    diff: float
    recovered: bool
    rank: int | None = Field(description="0-based rank of the first recovering latent among the top k")
    latent: int | None = Field(description="that latent, or (not recovered) the top latent with the best MCC")
    label: str | None
    mcc: float = Field(description="MCC of that latent's firing set with the detector over the case's documents")
    q: float | None = Field(description="its q in the diff")
    chance: float = Field(
        description="share of shuffles of the detector's labels over the case's documents that the same rule "
        "recovers with these top latents: the chance of recovering it by luck"
    )
    best_any: float = Field(description="best MCC of any latent of the SAE with the detector (an upper bound)")
    best_any_latent: int | None
    best_any_label: str | None
    best_any_chance: float = Field(description="mean best MCC of any latent with shuffled labels (its chance level)")
    specific: bool | None = Field(
        default=None, description="recovered: the recovering latent matches this detector best of all detectors"
    )
    also: list[str] = Field(
        default_factory=list, description="recovered: other detectors the recovering latent matches with MCC >= mcc_min"
    )


class TopLatent(BaseModel):
    latent: int
    label: str
    diff: float = Field(description="freq_a - freq_b (one-vs-many: the score, target minus largest other)")
    q: float


class RealCaseResult(BaseModel):
    case_id: str
    group: str = Field(description="concise_verbose, versions, one_vs_many or null")
    mode: str = Field(description="paired, sets or one_vs_many")
    name_a: str
    name_b: str
    column: str = Field(description="membership column: a / b (one-vs-many: a / o1, o2...)")
    n_a: int
    n_b: int
    detectors: list[DetectorDiff]
    recoveries: list[Recovery]
    n_tested: int
    n_significant: int
    top: list[TopLatent]
    tokens: int = Field(description="reader tokens of the case's documents")
    embed_seconds: float = Field(description="embedding compute for the case's documents at the measured rate")
    diff_seconds: float
    sae_cost: Cost = Field(default_factory=Cost)
    baseline_cost: Cost = Field(default_factory=Cost)


class DetectorTrend(BaseModel):
    detector: str
    freqs: list[float]
    slope: float
    z: float
    q: float
    trending: bool


class TrendResultRecord(BaseModel):
    models: list[str]
    n_docs: int
    n_tested: int
    n_significant: int = Field(description="latents with q <= alpha")
    detectors: list[DetectorTrend]
    recoveries: list[Recovery]
    top: list[TopLatent] = Field(description="the trend's top latents (diff holds z)")
    seconds: float


class RetrievalRecord(BaseModel):
    detector: str
    query: str
    n_docs: int
    n_relevant: int
    random_ap: float
    sae_ap: float = Field(description="sae: latents matched on labels and activating contexts")
    dense_ap: float
    research_ap: float | None = Field(default=None, description="sae-research: the arXiv 2512.10092 recipe")
    hybrid_ap: float | None = Field(
        default=None, description="hybrid: sae (and, since sae-guided exists, sae-guided) and dense fused by RRF"
    )
    guided_ap: float | None = Field(
        default=None, description="sae-guided: latents whose firing correlates with the dense + label guide"
    )
    sae_ranked: int = Field(description="documents the SAE scored above zero (the rest follow in random order)")
    sae_latents: list[str]


class RealEnvironment(Environment):
    """The run's :class:`~evals.records.Environment`, with what the real-response eval adds."""

    embed_seconds_total: float = Field(default=0.0, description="embedding time of this dataset over all runs")
    truncated_docs: int = Field(description="answers that were shortened to max_chars")
    dense_seconds: float = Field(description="encoding every document with MiniLM once, for retrieval")


class RealRun(BaseModel):
    settings: RealSettings
    environment: RealEnvironment
    detector_rates: dict[str, dict[str, float]] = Field(description="per model, each detector's share of its answers")
    cases: list[RealCaseResult]
    trend: TrendResultRecord | None
    retrieval: list[RetrievalRecord]
