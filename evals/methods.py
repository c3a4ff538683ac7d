"""The methods compared on each case, and the LLM judge that grades their hypotheses.

- SAE pipeline: ``ops.analyses.run_diff`` (sets, or paired) on the stored embedding, then, with an LLM, the
  library's own relabel-and-summarise step (:func:`saescope.llm.hypotheses.summarise_diff`) on the
  latents that pass the false discovery rate. No significant latent means "no difference" and no LLM call.
- LLM-only baseline, as the research ran it: the LLM reads batches of documents from both sets (pairs
  row by row for paired data), proposes differences, and a last call merges them into hypotheses.

Without an LLM both methods run through :class:`DryRunProvider`, which builds every real prompt and
counts it, so the cost comparison holds without an endpoint (accuracy then comes from the LLM-free
latent match only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field

from evals.benchmark import Case, rng_for
from evals.metrics import firing_match
from saescope.llm.ledger import ModelPrice
from saescope.llm.providers import ChatReply, ChatRequest, LLMProvider
from saescope.llm.quoting import DATA_RULES, clean_text, parse_int_list, parse_json_object, quote_document, quote_tag
from saescope.ops.requests import DiffSpec

if TYPE_CHECKING:
    from saescope import analyses as an
    from saescope.workspace import Workspace

MESSAGE_OVERHEAD = 4
"""Tokens a chat API adds per message (role and separators), as OpenAI's counting guide gives it."""


class TokenCounter:
    """Counts prompt tokens with the default reader's tokenizer (SmolLM2, a 49k-entry BPE).

    Exact for that tokenizer; other vendors' tokenizers give different, usually similar counts for
    English. When the tokenizer cannot be loaded it falls back to characters / 4 (``name`` says which).
    """

    def __init__(self, tokenizer: Any = None, name: str = "characters/4") -> None:
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def default(cls) -> TokenCounter:
        try:
            from transformers import AutoTokenizer

            from saescope.embed.default import DEFAULT_READER_ID, default_reader_dir

            tok = AutoTokenizer.from_pretrained(str(default_reader_dir()))
            return cls(tok, f"{DEFAULT_READER_ID} tokenizer (exact for it; other tokenizers differ)")
        except Exception:  # noqa: BLE001 - any failure to load means the documented fallback
            return cls()

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self.tokenizer is None:
            return max(1, len(text) // 4)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def request(self, req: ChatRequest) -> int:
        return self.count(req.system) + self.count(req.user) + 2 * MESSAGE_OVERHEAD


class DryRunProvider:
    """Answers nothing but counts: prompt tokens exactly (:class:`TokenCounter`), completion tokens as
    each request's ``max_tokens`` cap, an upper bound. Lets the cost of both methods be measured without
    an LLM, through the same code that builds their prompts."""

    name = "dry-run"

    def __init__(self, counter: TokenCounter, model: str) -> None:
        self.counter = counter
        self.model = model

    async def complete(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        return [
            ChatReply(
                text="{}",
                model=self.model,
                provider=self.name,
                prompt_tokens=self.counter.request(r),
                completion_tokens=r.max_tokens,
                tokens_estimated=True,
            )
            for r in requests
        ]


class Cost(BaseModel):
    """LLM calls, tokens and time of one method on one case."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_is_cap: bool = Field(default=False, description="dry run: completion tokens are max_tokens caps")
    llm_seconds: float = 0.0

    def add(self, replies: Sequence[ChatReply], seconds: float = 0.0, extra_prompt_tokens: int = 0) -> None:
        self.calls += len(replies)
        self.prompt_tokens += sum(r.prompt_tokens for r in replies) + extra_prompt_tokens
        self.completion_tokens += sum(r.completion_tokens for r in replies)
        self.completion_is_cap = self.completion_is_cap or any(r.provider == DryRunProvider.name for r in replies)
        self.llm_seconds += seconds

    def dollars(self, price: ModelPrice | None) -> float | None:
        if price is None:
            return None
        return (self.prompt_tokens * price.prompt + self.completion_tokens * price.completion) / 1e6


# --- SAE pipeline ---------------------------------------------------------------------------------


class LatentScore(BaseModel):
    """One of a diff's top latents, matched against the documents that have the property."""

    latent: int
    label: str
    diff: float = Field(description="freq_a - freq_b from the diff")
    q: float
    precision: float
    recall: float
    f1: float
    mcc: float


def case_rows(doc_rows: dict[str, int], case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dataset rows of A∪B (each once), and for each whether it is a positive and whether it is in A."""
    ids = list(dict.fromkeys([*case.docs_a, *case.docs_b]))
    pos, in_a = set(case.positives), set(case.docs_a)
    rows = np.array([doc_rows[d] for d in ids], dtype=np.int64)
    return rows, np.array([d in pos for d in ids]), np.array([d in in_a for d in ids])


def score_latents(
    matrix: sp.csr_matrix, doc_rows: dict[str, int], case: Case, diff_rows: Sequence[Any]
) -> list[LatentScore]:
    """Precision, recall, F1 and MCC of each diff row's firing set over A∪B against the case's positives.

    Planted and paired cases: positives are the planted documents of B (every other document of A∪B is a
    negative, so a latent that fires everywhere scores low). Two-sided real cases: a latent more frequent
    in A is matched against A's documents, one more frequent in B against B's.
    """
    rows, truth_b, truth_a = case_rows(doc_rows, case)
    sub = matrix[rows].tocsc()
    out = []
    for r in diff_rows:
        fires = sub[:, int(r.latent)].toarray().ravel() > 0
        truth = truth_a if case.two_sided and r.diff > 0 else truth_b
        m = firing_match(fires, truth)
        out.append(
            LatentScore(
                latent=int(r.latent),
                label=str(r.label),
                diff=float(r.diff),
                q=float(r.q),
                precision=m.precision,
                recall=m.recall,
                f1=m.f1,
                mcc=m.mcc,
            )
        )
    return out


def sae_diff(
    ws: Workspace, dataset: str, case: Case, *, top_k: int, alpha: float, sae: str | None
) -> an.SetDiff | an.PairedDiff:
    """The library's diff of the case's two sides (paired by prompt for paired cases)."""
    from saescope import analyses as an
    from saescope.ops.analyses import run_diff

    diff = run_diff(ws, _spec(dataset, case, sae), top_k=top_k, alpha=alpha)
    assert not isinstance(diff, an.OneVsMany), "a case is two sets or pairs"
    return diff


def _spec(dataset: str, case: Case, sae: str | None) -> DiffSpec:
    return DiffSpec(
        mode="paired" if case.paired else "sets",
        dataset_a=dataset,
        where_a=case.where_a,
        where_b=case.where_b,
        pair_key=case.pair_key if case.paired else None,
        sae=sae,
    )


async def sae_summarise(
    ws: Workspace,
    dataset: str,
    case: Case,
    diff: Any,
    provider: LLMProvider,
    *,
    n_latents: int,
    n_hypotheses: int,
    alpha: float,
    sae: str | None,
) -> tuple[list[str], list[ChatReply]]:
    """Hypotheses from the diff's significant latents (q <= alpha) through the library's summarise step;
    none (and no LLM call) when no latent is significant."""
    from saescope.llm.ledger import MeteredProvider, PriceTable
    from saescope.ops.llm_steps import summarise_diff
    from saescope.ops.requests import SummariseRequest

    rows = [r for r in diff.rows if r.q <= alpha][:n_latents]
    if not rows:
        return [], []
    spec = _spec(dataset, case, sae)
    req = SummariseRequest(**spec.model_dump(), n_latents=len(rows), n_hypotheses=n_hypotheses)
    metered = MeteredProvider(provider, prices=PriceTable(date="-"))
    summary = await summarise_diff(ws, req, metered, diff=diff.model_copy(update={"rows": rows}))
    return [h.text for h in summary.hypotheses], metered.replies


# --- LLM-only baseline ----------------------------------------------------------------------------

PROPOSE_SYSTEM = (
    "You compare two sets of documents, A and B, and find how the documents of B differ from those of A: in "
    "content, style or format. You see a sample from each set. "
    + DATA_RULES
    + ' Answer with JSON only: {"differences": ["<one sentence: what B\'s documents do that A\'s do not, or do '
    'more often>", ...]} with at most 5 items; an empty list when you see no consistent difference.'
)
PROPOSE_PAIRED_SYSTEM = (
    "You compare two responses to the same prompt, A and B, and find how B differs from A: in content, style or "
    "format. "
    + DATA_RULES
    + ' Answer with JSON only: {"differences": ["<one sentence: what B does that A does not>", ...]} with at most '
    "5 items; an empty list when they do not differ."
)
MERGE_SYSTEM = (
    "You are given candidate differences between two sets of documents, A and B, each proposed from a separate "
    "sample. Merge them into a few hypotheses about how B differs from A, the best supported (proposed most "
    "often, from most samples) first; drop ones proposed only once when others recur. "
    + DATA_RULES
    + ' Answer with JSON only: {"hypotheses": ["<one sentence>", ...]}; an empty list when no difference recurs.'
)
MAX_MERGE_ITEMS = 300


def _docs(prefix: str, ids: Sequence[str], texts: dict[str, str], max_chars: int) -> str:
    return "\n".join(quote_document(texts[d], f"{prefix}{i}", max_chars) for i, d in enumerate(ids, 1))


def baseline_requests(
    case: Case,
    texts: dict[str, str],
    *,
    docs_per_side: int,
    batch_docs: int,
    pairs_per_call: int,
    seed: int,
    max_chars: int = 600,
) -> list[ChatRequest]:
    """The proposal prompts: ``batch_docs`` documents of each side per call (shuffled, up to
    ``docs_per_side`` each), or ``pairs_per_call`` pairs per call for paired cases. Documents are named
    A1.., B1.. (never by id, which could carry hints)."""
    rng = rng_for(seed, "baseline", case.case_id)
    out = []
    if case.paired:
        order = rng.permutation(len(case.docs_a))[:docs_per_side]
        pairs = [(case.docs_a[int(i)], case.docs_b[int(i)]) for i in order]
        for lo in range(0, len(pairs), pairs_per_call):
            body = "\n\n".join(
                f"Pair {n}:\n{quote_document(texts[a], 'A', max_chars)}\n{quote_document(texts[b], 'B', max_chars)}"
                for n, (a, b) in enumerate(pairs[lo : lo + pairs_per_call], 1)
            )
            out.append(
                ChatRequest(
                    system=PROPOSE_PAIRED_SYSTEM,
                    max_tokens=300,
                    user=(f"{body}\n\nHow does B differ from A? Answer as JSON."),
                )
            )
        return out
    a = [case.docs_a[int(i)] for i in rng.permutation(len(case.docs_a))[:docs_per_side]]
    b = [case.docs_b[int(i)] for i in rng.permutation(len(case.docs_b))[:docs_per_side]]
    for lo in range(0, max(len(a), len(b)), batch_docs):
        out.append(
            ChatRequest(
                system=PROPOSE_SYSTEM,
                max_tokens=300,
                user=(
                    f"Documents of A:\n{_docs('A', a[lo : lo + batch_docs], texts, max_chars)}\n\n"
                    f"Documents of B:\n{_docs('B', b[lo : lo + batch_docs], texts, max_chars)}\n\n"
                    "How do the documents of B differ from those of A? Answer as JSON."
                ),
            )
        )
    return out


def parse_list(text: str, key: str, limit: int) -> list[str]:
    """Up to ``limit`` non-empty strings from the JSON field ``key`` of a model's answer."""
    items = (parse_json_object(text) or {}).get(key)
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        s = clean_text(item, 300) if isinstance(item, str) else ""
        if s and len(out) < limit:
            out.append(s)
    return out


def merge_request(proposals: Sequence[str], n_hypotheses: int) -> ChatRequest:
    """The last baseline call: every distinct proposal (at most :data:`MAX_MERGE_ITEMS`) with its count."""
    counts: dict[str, int] = {}
    for p in proposals:
        counts[p.lower()] = counts.get(p.lower(), 0) + 1
    first = {p.lower(): p for p in reversed(proposals)}
    ranked = sorted(counts, key=lambda k: -counts[k])[:MAX_MERGE_ITEMS]
    lines = "\n".join(f"- ({counts[k]}x) {quote_tag('description', first[k])}" for k in ranked) or "(none)"
    return ChatRequest(
        system=MERGE_SYSTEM,
        max_tokens=700,
        user=(
            f"Candidate differences (how often each was proposed):\n{lines}\n\nWrite at most {n_hypotheses} hypotheses "
            "about how B differs from A. Answer as JSON."
        ),
    )


async def run_baseline(
    case: Case,
    texts: dict[str, str],
    provider: LLMProvider,
    *,
    docs_per_side: int,
    batch_docs: int,
    pairs_per_call: int,
    n_hypotheses: int,
    seed: int,
    max_concurrency: int = 8,
) -> tuple[list[str], Cost]:
    """The LLM-only method on one case: its hypotheses and what it cost.

    In a dry run the merge prompt lacks the proposals' text; their (capped) completion tokens are added
    to its prompt tokens instead, as that is what the merge call would read.
    """
    requests = baseline_requests(
        case, texts, docs_per_side=docs_per_side, batch_docs=batch_docs, pairs_per_call=pairs_per_call, seed=seed
    )
    cost = Cost()
    start = time.perf_counter()
    replies: list[ChatReply] = []
    for lo in range(0, len(requests), max_concurrency):
        replies += await provider.complete(requests[lo : lo + max_concurrency])
    proposals = [p for r in replies for p in parse_list(r.text, "differences", 5)]
    dry = isinstance(provider, DryRunProvider)
    merge = (await provider.complete([merge_request(proposals, n_hypotheses)]))[0]
    cost.add(
        [*replies, merge],
        time.perf_counter() - start,
        extra_prompt_tokens=sum(r.completion_tokens for r in replies) if dry else 0,
    )
    return parse_list(merge.text, "hypotheses", n_hypotheses), cost


# --- judge ------------------------------------------------------------------------------------------

JUDGE_SYSTEM = (
    "You grade hypotheses about how two sets of documents, A and B, differ, against the true difference. A "
    "hypothesis matches when it states the true difference, in any words; a vaguer statement that would not let "
    "a reader recognise the affected documents does not match. "
    + DATA_RULES
    + ' Answer with JSON only: {"matches": [<numbers of the hypotheses that state the true difference>]}.'
)


def truth_statement(case: Case) -> str:
    if case.two_sided:
        return f"{case.description}."
    return f"some documents of B (and none of A, beyond chance) {case.description}."


def judge_request(case: Case, hypotheses: Sequence[str]) -> ChatRequest:
    listed = "\n".join(f"{n}. {quote_tag('description', h, 400)}" for n, h in enumerate(hypotheses, 1))
    return ChatRequest(
        system=JUDGE_SYSTEM,
        max_tokens=100,
        user=(
            f"True difference: {truth_statement(case)}\n\nHypotheses:\n{listed}\n\n"
            "Which hypotheses state the true difference? Answer as JSON."
        ),
    )


async def judge(provider: LLMProvider, case: Case, hypotheses: Sequence[str]) -> tuple[list[bool], list[ChatReply]]:
    """For each hypothesis, whether the judge says it states the case's true difference."""
    if not hypotheses:
        return [], []
    reply = (await provider.complete([judge_request(case, hypotheses)]))[0]
    said = set(parse_int_list((parse_json_object(reply.text) or {}).get("matches"), 1, len(hypotheses)))
    return [n in said for n in range(1, len(hypotheses) + 1)], [reply]
