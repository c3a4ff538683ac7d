"""The request of every operation: its arguments with their types, defaults, bounds and help.

Each request is a frozen pydantic model. The MCP server publishes its fields as a tool's input schema and
the CLI builds its options from them, so a default, a choice or a description lives here once and the
two front doors cannot drift apart. This module imports only pydantic: the server reads it at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from saescope.errors import InputError

Pooling = Literal["max", "mean", "sum", "count", "binary"]
DiffMode = Literal["sets", "paired", "one_vs_many"]
RankBy = Literal["effect", "z", "diff", "ratio", "p"]
Direction = Literal["both", "a", "b"]
IngestFormat = Literal["jsonl", "csv", "parquet", "txt"]
ClassGuide = Literal["both", "dense", "labels"]

DatasetArg = Annotated[str, Field(description="dataset name, as listed by list_datasets")]
WhereArg = Annotated[
    str | None,
    Field(
        description="optional filter on metadata columns, e.g. \"model == 'gpt-4o' and score >= 3\" (==, !=, <, "
        "<=, >, >=, in [...], and, or, not; text in quotes). Null: all documents"
    ),
]
SaeArg = Annotated[
    str | None,
    Field(
        description="embedding key or SAE id, only needed when the dataset has several embeddings (see "
        "describe_dataset)"
    ),
]
CursorArg = Annotated[int, Field(ge=0, description="index of the first row: 0, or next_cursor from the previous page")]
LatentsArg = Annotated[
    list[int],
    Field(min_length=1, max_length=20, description="latent ids (from diff_datasets, search_features, ...)"),
]
ModeArg = Annotated[
    DiffMode,
    Field(
        description="sets: documents of A vs documents of B (independent); paired: A and B matched one-to-one by "
        "pair_key (e.g. two models answering the same prompts; McNemar test); one_vs_many: in dataset_a, "
        "documents whose `column` equals `target` vs each other value of that column"
    ),
]
DatasetAArg = Annotated[str, Field(description="dataset of set A (in one_vs_many, the dataset holding all groups)")]
DatasetBArg = Annotated[
    str | None,
    Field(description="dataset of set B; null: the same as dataset_a (then give different where_a / where_b)"),
]
WhereAArg = Annotated[str | None, Field(description="filter selecting set A within dataset_a, e.g. \"model == 'x'\"")]
WhereBArg = Annotated[str | None, Field(description="filter selecting set B within dataset_b")]
PairKeyArg = Annotated[str | None, Field(description="paired mode: metadata column matching A to B (e.g. prompt_id)")]
ColumnArg = Annotated[str | None, Field(description="one_vs_many mode: the column whose values are compared")]
TargetArg = Annotated[str | None, Field(description="one_vs_many mode: the value compared against all others")]
MinSupportArg = Annotated[
    int, Field(ge=1, description="test only latents firing in at least this many documents of A and B together")
]
DirectionArg = Annotated[
    Direction,
    Field(description="both, or only latents more frequent in A (a) / in B (b); ignored by one_vs_many"),
]

R = TypeVar("R", bound="Request")


class _OperatorOnly:
    """Marks a field that the CLI offers and the MCP server does not (a setting for whoever runs the server)."""

    def __repr__(self) -> str:
        return "OPERATOR_ONLY"


OPERATOR_ONLY = _OperatorOnly()


def operator_only(annotation: Any) -> bool:
    """Whether a field's metadata carries :data:`OPERATOR_ONLY`."""
    return any(m is OPERATOR_ONLY for m in getattr(annotation, "metadata", ()))


class Request(BaseModel):
    """Base of every request: immutable, and unknown fields are refused rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def build(cls: type[R], **values: Any) -> R:
        """The request for ``values``, with a plain error for bad values.

        Raises:
            InputError: a value is missing, of the wrong type or out of its bounds.
        """
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise InputError(f"bad arguments for {cls.__name__}: {problems}") from None


class FilteredRequest(Request):
    """A request with a metadata filter, where an empty filter means all documents."""

    @field_validator("where", "where_a", "where_b", mode="before", check_fields=False)
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


# --- datasets -------------------------------------------------------------------------------------
class DescribeRequest(Request):
    dataset: DatasetArg
    n_examples: Annotated[int, Field(ge=0, le=10, description="example documents to show")] = 3


class ReadRequest(Request):
    dataset: DatasetArg
    doc_ids: Annotated[list[str], Field(min_length=1, max_length=20, description="document ids to read")]
    max_chars: Annotated[int, Field(ge=100, le=20000, description="cut each text to this many characters")] = 2000


class IngestRequest(Request):
    name: Annotated[str, Field(description="new dataset name: letters, digits, '_', '.', '-' (max 64)")]
    path: Annotated[
        str | None,
        Field(
            description="a .jsonl/.json/.csv/.tsv/.parquet file (optionally .gz/.bz2) or a folder of .txt files, "
            "under the server's allowed roots; relative paths start at the first root"
        ),
    ] = None
    documents: Annotated[
        list[str | dict[str, Any]] | None,
        Field(
            description="inline documents instead of a path: strings, or objects with a text field plus "
            'metadata fields (e.g. {"text": "...", "model": "gpt-4o", "prompt_id": 3})'
        ),
    ] = None
    text_column: Annotated[str, Field(description="field or column holding the text")] = "text"
    id_column: Annotated[str | None, Field(description="field with stable document ids; null: row numbers")] = None
    format: Annotated[IngestFormat | None, Field(description="input format; null: guessed from the file name")] = None
    skip_invalid: Annotated[bool, Field(description="skip (and list) bad rows instead of failing")] = False
    overwrite: Annotated[bool, Field(description="replace an existing dataset of this name")] = False

    @model_validator(mode="after")
    def _one_source(self) -> IngestRequest:
        if (self.path is None) == (self.documents is None):
            raise InputError(
                "give exactly one of path (a file or folder under the allowed roots) or documents "
                "(a list of strings or of objects with a text field)"
            )
        return self


# --- embedding ------------------------------------------------------------------------------------
class EmbedRequest(Request):
    dataset: DatasetArg
    sae: Annotated[
        str | None,
        Field(
            description="SAE to use: null for the server's default, 'default' for saescope's shipped SAE, a "
            "SAELens folder under an allowed root, or RELEASE:SAE_ID of a SAELens pretrained SAE"
        ),
    ] = None
    pooling: Annotated[Pooling, Field(description="how token activations become one value per document and latent")] = (
        "max"
    )
    chat_template: Annotated[
        bool,
        Field(description="read each document as an assistant reply in the reader's chat template (for model outputs)"),
    ] = False
    threshold: Annotated[
        float,
        Field(ge=0, le=1e6, allow_inf_nan=False, description="activation floor below which a token does not count"),
    ] = 0.0
    window: Annotated[
        int,
        Field(ge=8, le=8192, description="tokens per window; longer documents are split and pooled across windows"),
    ] = 512
    sae_release: Annotated[
        str | None,
        Field(description="SAELens pretrained release, e.g. gemma-scope-2b-pt-res-canonical"),
        OPERATOR_ONLY,
    ] = None
    sae_id: Annotated[
        str | None, Field(description="SAE id within the release, e.g. layer_20/width_16k/canonical"), OPERATOR_ONLY
    ] = None
    reader: Annotated[
        str | None, Field(description="HF model id or folder (default: the model the SAE names)"), OPERATOR_ONLY
    ] = None
    use_sae_thresholds: Annotated[
        bool, Field(description="apply the SAE's per-latent document thresholds"), OPERATOR_ONLY
    ] = True
    token_budget: Annotated[int, Field(ge=0, description="tokens per forward batch (0: by device)"), OPERATOR_ONLY] = 0
    shard_size: Annotated[int, Field(ge=1, description="documents per committed shard"), OPERATOR_ONLY] = 256
    ray: Annotated[
        str | None,
        Field(
            description="embed on a Ray cluster: 'default' ($RAY_ADDRESS, else a cluster started on this machine, "
            "else a new local one), 'auto', host:6379 or ray://host:10001; null: in this process. Needs "
            "saescope[ray]; the data root must be on a filesystem the driver writes (only the driver writes)",
            min_length=1,
            max_length=500,
        ),
        OPERATOR_ONLY,
    ] = None
    ray_actors: Annotated[
        int | None,
        Field(
            ge=1,
            le=10_000,
            description="with ray: actors, each holding one copy of the reader (null: one per GPU, or one per "
            "cpus_per_actor CPUs on a cluster without GPUs)",
        ),
        OPERATOR_ONLY,
    ] = None
    gpus_per_actor: Annotated[
        float | None,
        Field(ge=0, le=64, description="with ray: GPUs each actor reserves (null: 1 if the cluster has GPUs, else 0)"),
        OPERATOR_ONLY,
    ] = None
    cpus_per_actor: Annotated[
        float,
        Field(gt=0, le=1024, description="with ray: CPUs each actor reserves (its torch threads)"),
        OPERATOR_ONLY,
    ] = 1.0


class JobStatusRequest(Request):
    job_id: Annotated[str | None, Field(description="job id from embed_dataset; null lists every job")] = None
    wait_seconds: Annotated[
        float,
        Field(ge=0, le=300, description="wait up to this long for the job to finish, sending progress notifications"),
    ] = 0


# --- analyses -------------------------------------------------------------------------------------
class DiffSpec(FilteredRequest):
    """Which documents are compared: A against B (two sets, paired documents, or one value against the rest)."""

    dataset_a: DatasetAArg
    where_a: WhereAArg = None
    dataset_b: DatasetBArg = None
    where_b: WhereBArg = None
    mode: ModeArg = "sets"
    pair_key: PairKeyArg = None
    column: ColumnArg = None
    target: TargetArg = None
    sae: SaeArg = None

    @field_validator("dataset_b", "pair_key", "column", mode="before")
    @classmethod
    def _blank_name_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_mode(self) -> DiffSpec:
        if self.mode == "paired" and not self.pair_key:
            raise InputError(
                "mode 'paired' needs pair_key: the metadata column that matches a document of A to "
                "one of B (e.g. a prompt id)"
            )
        if self.mode == "one_vs_many":
            if not (self.column and self.target is not None):
                raise InputError(
                    "mode 'one_vs_many' needs column and target: the documents of dataset_a whose "
                    "column equals target are compared with each other value of the column"
                )
            if self.dataset_b or self.where_b:
                raise InputError(
                    "mode 'one_vs_many' compares values of one column within dataset_a (filtered by "
                    "where_a); leave dataset_b and where_b empty"
                )
        elif self.column or self.target is not None:
            raise InputError(f"column/target only apply to mode 'one_vs_many' (mode is {self.mode!r})")
        if self.mode != "one_vs_many" and self.dataset_b in (None, self.dataset_a) and self.where_a == self.where_b:
            raise InputError(
                "A and B are the same documents: give dataset_b, or different where_a / where_b "
                "filters (e.g. where_a=\"label == 'x'\", where_b=\"label != 'x'\")"
            )
        return self

    @property
    def b(self) -> str:
        return self.dataset_b or self.dataset_a

    @property
    def spec(self) -> DiffSpec:
        """Only the sides, without a subclass's options."""
        return DiffSpec.model_construct(**{k: getattr(self, k) for k in DiffSpec.model_fields})


class DiffRequest(DiffSpec):
    rank_by: Annotated[
        RankBy,
        Field(
            description="effect (default): large, well-supported differences first; z; diff (|freq_a-freq_b|); ratio; p"
        ),
    ] = "effect"
    direction: DirectionArg = "both"
    min_support: MinSupportArg = 5
    alpha: Annotated[float, Field(gt=0, lt=1, description="false discovery rate for n_significant")] = 0.05
    top_k: Annotated[int, Field(ge=1, le=50, description="rows per page")] = 20
    cursor: CursorArg = 0


class CorrelationsRequest(FilteredRequest):
    dataset: DatasetArg
    where: WhereArg = None
    column: Annotated[
        str | None,
        Field(
            description="a metadata column: latents enriched in each category (text columns) or correlated with "
            "it (numbers, dates). Null: latent pairs that fire together (NPMI)"
        ),
    ] = None
    latent: Annotated[
        int | None,
        Field(
            description="co-occurrence only: pairs that include this latent (with against: a latent of this dataset)"
        ),
    ] = None
    min_cooc: Annotated[
        int, Field(ge=1, description="co-occurrence only: minimum documents where a pair fires together")
    ] = 5
    dissimilar_labels: Annotated[
        float | None,
        Field(
            ge=-1,
            le=1,
            description="co-occurrence only: keep pairs whose labels' cosine similarity is below this "
            "(surprising pairs, not near-duplicates)",
        ),
    ] = None
    against: Annotated[
        str | None,
        Field(
            description="a second dataset whose documents belong to this one's (e.g. the responses to these "
            "prompts), matched through join_on: pairs (latent here, latent there) that fire together across the "
            "matched rows (NPMI, with a q-value)"
        ),
    ] = None
    join_on: Annotated[
        str | None,
        Field(
            description="with against: the column both datasets share (e.g. prompt_id); unique in this dataset, "
            "repeatable in the other (several responses per prompt)"
        ),
    ] = None
    where_against: Annotated[
        str | None, Field(description="with against: filter on the second dataset, e.g. \"model == 'x'\"")
    ] = None
    skip_echoes: Annotated[
        bool,
        Field(
            description="with against: leave out pairs of a latent with itself (the second text repeating the "
            "first's words), to see what the first text triggers rather than what is copied"
        ),
    ] = False
    top_k: Annotated[int, Field(ge=1, le=50, description="rows per page (per category for columns)")] = 20
    cursor: CursorArg = 0
    sae: SaeArg = None

    @field_validator("against", "join_on", "where_against", mode="before")
    @classmethod
    def _blank_cross_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _column_options(self) -> CorrelationsRequest:
        if self.column and (self.latent is not None or self.dissimilar_labels is not None or self.cursor):
            raise InputError("latent, dissimilar_labels and cursor apply to co-occurrence only (no column)")
        if (self.against is None) != (self.join_on is None):
            raise InputError("against and join_on go together: the second dataset and the column that matches rows")
        if self.skip_echoes and self.against is None:
            raise InputError("skip_echoes applies across two datasets: give against and join_on too")
        if self.where_against is not None and self.against is None:
            raise InputError("where_against filters the against dataset: give against and join_on too")
        if self.against is not None and (self.column or self.dissimilar_labels is not None):
            raise InputError("column and dissimilar_labels do not apply across two datasets (against)")
        return self


class ClusterRequest(FilteredRequest):
    dataset: DatasetArg
    axis: Annotated[
        str | None,
        Field(
            description="what to group by, in words (e.g. 'tone', 'programming language'): latents whose labels "
            "match it become the clustering features"
        ),
    ] = None
    latents: Annotated[
        list[Annotated[int, Field(ge=0)]] | None,
        Field(max_length=200, description="latent ids to cluster on (instead of, or with, axis)"),
    ] = None
    classes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=300)]] | None,
        Field(
            min_length=2,
            max_length=20,
            description="the axis as its classes in words (e.g. ['formal register', 'casual chat']): the "
            "recommended way. Each document's sentence-embedding similarity to each class guides the choice of "
            "latents (those whose firing correlates with it), documents are grouped by k-means on them, and each "
            "cluster is matched to the class it leans to; k defaults to the number of classes",
        ),
    ] = None
    guide: Annotated[
        ClassGuide,
        Field(
            description="with classes, what says how much each document looks like each class: 'both' (default) "
            "adds the documents' sentence-embedding similarity to each class and the firing of the latents whose "
            "descriptions match it (which sees formatting the sentence embedder misses); 'dense' or 'labels' "
            "uses one alone"
        ),
    ] = "both"
    where: WhereArg = None
    k: Annotated[
        int | None,
        Field(ge=2, le=20, description="number of clusters; null: the number of classes, else chosen by silhouette"),
    ] = None
    dense: Annotated[
        bool, Field(description="cluster dense sentence embeddings instead (a baseline without latents)")
    ] = False
    sae: SaeArg = None
    seed: Annotated[int, Field(description="random seed of the clustering"), OPERATOR_ONLY] = 0

    @model_validator(mode="after")
    def _has_axis(self) -> ClusterRequest:
        if not (self.axis or self.latents or self.dense or self.classes):
            raise InputError(
                "give the axis's classes in words (classes=['formal', 'casual']), name an axis (axis='tone'), "
                "give latent ids (latents=[...]) or set dense=true"
            )
        if self.classes and (self.axis or self.latents or self.dense):
            raise InputError("classes choose their own latents: give classes alone, or axis/latents/dense instead")
        if self.guide != "both" and not self.classes:
            raise InputError("guide applies to clustering by classes: give classes too")
        if self.classes and any(not c.strip() for c in self.classes):
            raise InputError("a class is blank: describe each class in words")
        if self.classes and len({c.strip().lower() for c in self.classes}) < len(self.classes):
            raise InputError("the classes must differ")
        return self


RetrievalMethod = Literal["sae", "sae-guided", "sae-research", "hybrid", "dense"]


class RetrieveRequest(FilteredRequest):
    dataset: DatasetArg
    query: Annotated[str, Field(description="the property in words, e.g. 'apologises to the user'")]
    where: WhereArg = None
    method: Annotated[
        RetrievalMethod,
        Field(
            description="sae: latents whose labels and activating contexts match the query (refined by positives); "
            "sae-guided: the 100 latents whose firing correlates best with how much each document looks like the "
            "query (its sentence-embedding similarity plus its best-matching latent by description); sae-research: the 100 latents whose labels match best, weighted by rank "
            "(arXiv 2512.10092); hybrid: the sae, sae-guided and dense rankings fused by reciprocal rank (k=60); "
            "dense: sentence-embedding cosine"
        ),
    ] = "sae"
    positives: Annotated[
        list[str],
        Field(
            max_length=50,
            description="ids of documents known to have the property: the latents most enriched in them join the "
            "query's, weighing half (with an empty query, they alone choose the latents)",
        ),
    ] = []
    latents: Annotated[
        list[Annotated[int, Field(ge=0)]], Field(max_length=50, description="latent ids to add to the query")
    ] = []
    n_latents: Annotated[
        int | None, Field(ge=1, le=200, description="latents chosen for the property; null: 100 (the method's default)")
    ] = None
    dense: Annotated[
        bool, Field(description="also return the dense sentence-similarity ranking beside the method's, to compare")
    ] = False
    top_k: Annotated[int, Field(ge=1, le=50, description="documents per page")] = 10
    cursor: CursorArg = 0
    sae: SaeArg = None

    @model_validator(mode="after")
    def _has_query(self) -> RetrieveRequest:
        if not self.query.strip() and not self.latents and not self.positives:
            raise InputError("give a property in words, positive example documents, or latent ids")
        if not self.query.strip() and self.method != "sae":
            raise InputError(f"method {self.method} needs a property in words")
        return self


class TrendRequest(FilteredRequest):
    dataset: DatasetArg
    column: Annotated[
        str,
        Field(description="metadata column whose values are the ordered groups (e.g. model, version, date, length)"),
    ]
    order: Annotated[
        list[str] | None,
        Field(
            max_length=200,
            description="the values of the column in order, e.g. ['gpt-3.5', 'gpt-4', 'gpt-4o']; documents with other "
            "values are left out. Null: numbers and dates in their own order (binned when there are many); text "
            "columns need an order",
        ),
    ] = None
    where: WhereArg = None
    pair_key: Annotated[
        str | None,
        Field(
            description="metadata column naming what each document answers (e.g. prompt_id): documents are compared "
            "only with those answering the same thing (stratified test)"
        ),
    ] = None
    n_bins: Annotated[
        int, Field(ge=2, le=50, description="number and date columns with more distinct values: quantile bins")
    ] = 10
    direction: Annotated[
        Literal["both", "rising", "falling"], Field(description="both, or only latents that rise / fall")
    ] = "both"
    rank_by: Annotated[
        Literal["z", "slope", "p"],
        Field(description="z (default): strongest trend evidence first; slope: largest change per step; p"),
    ] = "z"
    min_support: Annotated[int, Field(ge=1, description="test only latents firing in at least this many documents")] = 5
    alpha: Annotated[float, Field(gt=0, lt=1, description="false discovery rate for n_significant")] = 0.05
    top_k: Annotated[int, Field(ge=1, le=50, description="rows per page")] = 20
    cursor: CursorArg = 0
    sae: SaeArg = None


# --- latents --------------------------------------------------------------------------------------
class DescribeLatentsRequest(FilteredRequest):
    dataset: DatasetArg
    where: WhereArg = None
    vocabulary: Annotated[
        str | None,
        Field(
            description="a text file of concept descriptions, one per line ('category: description' or just the "
            "description); default: the shipped vocabulary (sentiment, tone, stance, style, register, format, "
            "discourse acts, topics, programming, languages)"
        ),
        OPERATOR_ONLY,
    ] = None
    held_out: Annotated[
        float, Field(gt=0, le=0.9, description="share of documents kept apart to measure each description's fidelity")
    ] = 0.3
    min_fires: Annotated[
        int, Field(ge=2, description="describe only latents firing in at least this many fit documents")
    ] = 5
    stratify_by: Annotated[
        str | None,
        Field(
            description="a metadata column (e.g. source) within whose values descriptions are fitted and scored, "
            "so a latent that only tells the values apart gets no credit; for datasets that mix sources"
        ),
    ] = None
    seed: Annotated[int, Field(ge=0, description="seed of the fit / held-out split")] = 0
    top_k: Annotated[int, Field(ge=1, le=50, description="descriptions shown, best fidelity first")] = 20
    sae: SaeArg = None


class SearchFeaturesRequest(Request):
    dataset: Annotated[str, Field(description="a dataset embedded with the SAE to search (it names the SAE)")]
    query: Annotated[str, Field(min_length=1, description="words to find in latent labels, e.g. 'apology'")]
    top_k: Annotated[int, Field(ge=1, le=50, description="latents to return")] = 20
    semantic: Annotated[bool, Field(description="also rank by embedding similarity of label and query")] = True
    guided: Annotated[
        bool,
        Field(
            description="rank latents by how their firing over the dataset follows how much each document looks "
            "like the query (its sentence-embedding similarity plus its best-matching latent by description), "
            "instead of by their labels: finds latents whose labels name tokens, not the concept (reads the "
            "dataset's matrix and dense vectors)"
        ),
    ] = False
    sae: SaeArg = None


class FeatureRequest(Request):
    dataset: DatasetArg
    latent: Annotated[int, Field(ge=0, description="latent id")]
    n_top: Annotated[int, Field(ge=1, le=20, description="top documents to show")] = 5
    token_evidence: Annotated[
        bool, Field(description="recompute which tokens fire in the top documents (runs the reader: slower)")
    ] = True
    sae: SaeArg = None


class ExplainRequest(Request):
    dataset: DatasetArg
    doc_id: Annotated[str, Field(description="document id")]
    top_k: Annotated[int, Field(ge=1, le=50, description="latents to show")] = 15
    sae: SaeArg = None


class TopFeaturesRequest(ExplainRequest):
    top_k: Annotated[int, Field(ge=1, le=50, description="latents to show")] = 10
    evidence: Annotated[
        int, Field(ge=0, le=50, description="show the firing tokens of the top N latents (runs the reader)")
    ] = 0


# --- LLM steps ------------------------------------------------------------------------------------
class LabelRequest(Request):
    dataset: DatasetArg
    latents: LatentsArg
    n_examples: Annotated[int, Field(ge=2, le=10, description="top documents shown to the LLM")] = 5
    n_held_out: Annotated[
        int, Field(ge=0, le=20, description="held-out documents (half firing) on which the label is scored")
    ] = 6
    token_evidence: Annotated[bool, Field(description="mark the firing tokens in the examples (runs the reader)")] = (
        True
    )
    save: Annotated[bool, Field(description="save the labels (source 'llm', model, score) for later results")] = True
    sae: SaeArg = None


class SummariseRequest(DiffSpec):
    n_latents: Annotated[int, Field(ge=1, le=40, description="top latents of the diff given to the LLM")] = 10
    n_hypotheses: Annotated[int, Field(ge=1, le=10, description="most hypotheses to return")] = 4
    relabel: Annotated[
        bool,
        Field(
            description="first relabel each latent from example documents of this comparison (one LLM call per latent)"
        ),
    ] = True
    min_support: Annotated[int, Field(ge=1, description="as in diff_datasets")] = 5
    direction: Annotated[Direction, Field(description="as in diff_datasets")] = "both"


class VerifyRequest(DiffSpec):
    latents: LatentsArg
    hypothesis: Annotated[
        str | None, Field(max_length=1000, description="the hypothesis in words (needed for the judge)")
    ] = None
    judge: Annotated[
        bool,
        Field(
            description="also have an LLM read random documents of each side (blind) and say which show the "
            "hypothesis. Needs an LLM"
        ),
    ] = False
    n_judge: Annotated[int, Field(ge=1, le=50, description="documents judged per side")] = 8

    @model_validator(mode="after")
    def _judge_needs_words(self) -> VerifyRequest:
        if self.judge and not (self.hypothesis and self.hypothesis.strip()):
            raise InputError("the LLM judge needs the hypothesis in words (hypothesis=...)")
        return self
