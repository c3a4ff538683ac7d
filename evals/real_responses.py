"""``python -m evals.real_responses``: the SAE pipeline on real chat-model answers, scored by rules.

    python -m evals.real_responses --home DIR                        # 160 instructions per model (default)
    python -m evals.real_responses --home DIR --instructions 40      # smaller and faster
    python -m evals.real_responses --home DIR --cases 'cv_*,null_*' --skip trend,retrieval

The answers are AlpacaEval outputs of 21 model variants to the same instructions
(``../shared/data/alpaca_eval/``, CC BY-NC: read at run time, never copied into the package). The same
seeded sample of instructions is taken for every model; each answer is read by the reader as an
assistant message (chat template) after being shortened to ``--max-chars`` (its start, ``[…]``, and its
last ``--tail-chars`` characters, so closing offers and conclusions stay visible). The ground truth is
rule-based (:mod:`evals.detectors`), computed on the text as embedded.

Cases: (a) concise vs verbose answers of one model, paired by instruction; (b) an older vs a newer
OpenAI model, paired; (c) one model against three others (one-vs-many); (d) null controls, two random
halves of one model's answers. A case's known differences are the detectors whose frequency differs
by at least ``--min-diff`` between its sides; one is recovered when a latent among the diff's top
``--top-k`` moves the same way and its firing set has MCC >= ``--mcc-min`` with the detector over the
case's documents. Also: (e) a trend over ten OpenAI models in release order, (f) property retrieval,
SAE vs dense MiniLM, against the detectors, (g) LLM tokens of the SAE pipeline vs the LLM-only baseline,
counted on their real prompts without calling an LLM (as :mod:`evals.run` does without an endpoint).
The report goes to ``evals/results/<date>-real/``.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import scipy.stats as sps

from evals.benchmark import Case, rng_for
from evals.detectors import DETECTORS, NAMES, detect_all
from evals.methods import Cost, DryRunProvider, TokenCounter, run_baseline
from evals.metrics import average_precision
from evals.real_records import (
    DetectorDiff,
    DetectorTrend,
    RealCaseResult,
    RealEnvironment,
    RealRun,
    RealSettings,
    Recovery,
    RetrievalRecord,
    TopLatent,
    TrendResultRecord,
)
from evals.records import run_environment
from evals.retrieval import method_orders
from saescope.ops.requests import DiffSpec

if TYPE_CHECKING:
    from saescope.labels import LabelBook
    from saescope.llm.providers import LLMProvider
    from saescope.workspace import Workspace

log = logging.getLogger("evals.real")
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "alpaca_eval"
RESULTS = Path(__file__).resolve().parent / "results"
MARK = "\n\n[…]\n\n"
FLAG_PREFIX = "det_"
PAIR_KEY = "instruction_id"

Group = Literal["concise_verbose", "versions", "one_vs_many", "null"]
Mode = Literal["paired", "sets", "one_vs_many"]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CaseSpec:
    """Which models' answers a case compares. ``a`` is side A (the target in one-vs-many, the halved model
    in a null); ``b`` is side B's model (paired) or the other models (one-vs-many), empty for a null."""

    case_id: str
    group: Group
    a: str
    b: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        want = {"null": (0, 0), "one_vs_many": (1, 20)}.get(self.group, (1, 1))
        if not want[0] <= len(self.b) <= want[1] or self.a in self.b or len(set(self.b)) != len(self.b):
            raise ValueError(f"{self.case_id}: a {self.group} case needs {want} distinct other model(s), got {self.b}")

    @property
    def mode(self) -> Mode:
        if self.group == "null":
            return "sets"
        return "one_vs_many" if self.group == "one_vs_many" else "paired"

    @property
    def models(self) -> tuple[str, ...]:
        return (self.a, *self.b)

    @property
    def name_a(self) -> str:
        return f"{self.a} (half 1)" if self.group == "null" else self.a

    @property
    def name_b(self) -> str:
        if self.group == "null":
            return f"{self.a} (half 2)"
        return self.b[0] if self.mode == "paired" else "{" + ", ".join(self.b) + "}"


DEFAULT_CASES: tuple[CaseSpec, ...] = (
    CaseSpec("cv_gpt4", "concise_verbose", "gpt4_0613_concise", ("gpt4_0613_verbose",)),
    CaseSpec("cv_gpt35", "concise_verbose", "gpt-3.5-turbo-1106_concise", ("gpt-3.5-turbo-1106_verbose",)),
    CaseSpec("cv_claude2", "concise_verbose", "claude-2.1_concise", ("claude-2.1_verbose",)),
    CaseSpec(
        "cv_mixtral", "concise_verbose", "Mixtral-8x7B-Instruct-v0.1_concise", ("Mixtral-8x7B-Instruct-v0.1_verbose",)
    ),
    CaseSpec("ver_gpt35_0301_gpt4o", "versions", "gpt-3.5-turbo-0301", ("gpt-4o-2024-05-13",)),
    CaseSpec("ver_gpt4_0314_1106", "versions", "gpt4_0314", ("gpt4_1106_preview",)),
    CaseSpec("ver_gpt4_0613_gpt4o", "versions", "gpt4_0613", ("gpt-4o-2024-05-13",)),
    CaseSpec(
        "ovm_claude2", "one_vs_many", "claude-2.1", ("gpt4_0613", "llama-2-70b-chat-hf", "Meta-Llama-3-70B-Instruct")
    ),
    CaseSpec(
        "ovm_llama3", "one_vs_many", "Meta-Llama-3-70B-Instruct", ("gpt4_0613", "claude-2.1", "llama-2-70b-chat-hf")
    ),
    CaseSpec("null_gpt4", "null", "gpt4_0613"),
    CaseSpec("null_claude2", "null", "claude-2.1"),
    CaseSpec("null_gpt4o", "null", "gpt-4o-2024-05-13"),
)
TREND_ORDER: tuple[str, ...] = (
    "text_davinci_001",
    "text_davinci_003",
    "gpt-3.5-turbo-0301",
    "gpt-3.5-turbo-0613",
    "gpt-3.5-turbo-1106",
    "gpt4_0314",
    "gpt4_0613",
    "gpt4_1106_preview",
    "gpt-4-turbo-2024-04-09",
    "gpt-4o-2024-05-13",
)
"""OpenAI models in release order (the trend's groups)."""


@dataclass(frozen=True)
class RealConfig:
    """What to sample and build. The same config (seed included) always gives the same documents and cases."""

    n_instructions: int = 160
    """Instructions sampled; every model answers the same ones, so a model contributes this many documents."""
    seed: int = 0
    max_chars: int = 1500
    """Answers longer than this are shortened to at most this many characters (see :func:`shorten`)."""
    tail_chars: int = 400
    """Characters of a shortened answer's end that are kept (0: only its start)."""
    cases: tuple[CaseSpec, ...] = DEFAULT_CASES
    trend: tuple[str, ...] = TREND_ORDER
    """Models of the trend, in order; empty for no trend."""

    def __post_init__(self) -> None:
        if self.n_instructions < 4:
            raise ValueError("n_instructions must be at least 4")
        if self.max_chars < 100 or not 0 <= self.tail_chars <= self.max_chars // 2:
            raise ValueError("max_chars must be >= 100 and tail_chars between 0 and max_chars / 2")
        ids = [c.case_id for c in self.cases]
        if len(set(ids)) != len(ids):
            raise ValueError(f"case ids repeat: {ids}")
        if self.trend and len(self.trend) < 2:
            raise ValueError("a trend needs at least two models")

    def models(self) -> list[str]:
        """Every model a case or the trend needs, each once, cases first."""
        return list(dict.fromkeys([m for c in self.cases for m in c.models] + list(self.trend)))


# --- data ---------------------------------------------------------------------------------------------


def load_answers(data_dir: Path, model: str) -> dict[str, tuple[str, str]]:
    """``{instruction: (output, subset)}`` of one model's file, in the file's order.

    Raises:
        FileNotFoundError: no ``<model>.jsonl.gz`` in ``data_dir``.
    """
    path = data_dir / f"{model}.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"no answers of {model!r}: {path} is missing (see {data_dir / 'README.md'})")
    out: dict[str, tuple[str, str]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.setdefault(str(row["instruction"]), (str(row["output"]), str(row.get("subset", ""))))
    return out


def sample_instructions(
    answers: Mapping[str, Mapping[str, tuple[str, str]]], n: int, seed: int
) -> tuple[list[str], int]:
    """``n`` instructions among those every model answered with non-empty text, in the first model's order;
    and how many such instructions there were. They are the first ``n`` of one seeded shuffle, so a smaller
    ``n`` takes a subset of a larger one's instructions (with the same models)."""
    first = next(iter(answers.values()))
    common = [i for i in first if all(i in a and a[i][0].strip() for a in answers.values())]
    rng = rng_for(seed, "real-responses", "instructions")
    pick = np.sort(rng.permutation(len(common))[:n])
    return [common[int(i)] for i in pick], len(common)


def _tail_start(tail: str) -> int:
    """Where a cut-off tail should start: after its first line break when that is in its first half,
    else after its first space (so it never opens mid-word)."""
    newline = tail.find("\n")
    if 0 <= newline < len(tail) // 2:
        return newline + 1
    space = tail.find(" ")
    return space + 1 if 0 <= space < len(tail) // 2 else 0


def shorten(text: str, max_chars: int, tail_chars: int = 0) -> str:
    """The answer as it is embedded: whole (stripped) when it fits in ``max_chars``; else its start, cut at
    a word boundary, then (with ``tail_chars``) the marker ``[…]`` and its last ``tail_chars`` characters,
    or (without) an ellipsis. Never longer than ``max_chars``."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    tail = ""
    if tail_chars > 0:
        raw = text[len(text) - tail_chars :]
        tail = raw[_tail_start(raw) :].lstrip()
    head_len = max_chars - (len(MARK) + len(tail) if tail else 1)
    head = text[:head_len]
    cut = max(head.rfind(" "), head.rfind("\n"))
    if cut >= head_len * 0.8:
        head = head[:cut]
    head = head.rstrip()
    return f"{head}{MARK}{tail}" if tail else f"{head}…"


@dataclass(frozen=True)
class RealCase:
    """A case made concrete: its documents, and its membership column (``a``/``b``; one-vs-many: the
    target ``a`` and the others ``o1``, ``o2``...; empty elsewhere). Paired sides list their documents
    in the same instruction order."""

    spec: CaseSpec
    column: str
    docs_a: tuple[str, ...]
    docs_b: tuple[str, ...]
    others: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """One-vs-many: (model, its documents) for each other model; B is all of them."""

    @property
    def case_id(self) -> str:
        return self.spec.case_id

    @property
    def group(self) -> Group:
        return self.spec.group

    @property
    def mode(self) -> Mode:
        return self.spec.mode

    def diff_spec(self, dataset: str, sae: str | None) -> DiffSpec:
        """The sides as the library compares them (filters name only the opaque membership column)."""
        col = self.column
        if self.mode == "one_vs_many":
            return DiffSpec(
                mode="one_vs_many", dataset_a=dataset, where_a=f"{col} != ''", column=col, target="a", sae=sae
            )
        return DiffSpec(
            mode=self.mode,
            dataset_a=dataset,
            where_a=f"{col} == 'a'",
            where_b=f"{col} == 'b'",
            pair_key=PAIR_KEY if self.mode == "paired" else None,
            sae=sae,
        )

    def as_case(self) -> Case:
        """The case in :mod:`evals.benchmark`'s form, for the LLM-only baseline (one-vs-many: A against all
        others pooled)."""
        return Case(
            case_id=self.case_id,
            column=self.column,
            group="null" if self.group == "null" else "real",
            corpus="alpaca_eval",
            name_a=self.spec.name_a,
            name_b=self.spec.name_b,
            docs_a=self.docs_a,
            docs_b=self.docs_b,
            kind="null" if self.group == "null" else "real",
            paired=self.mode == "paired",
            two_sided=True,
            pair_key=PAIR_KEY,
        )


@dataclass
class Corpus:
    config: RealConfig
    documents: pd.DataFrame
    """doc_id, text, model, instruction_id, subset, n_chars (of the full answer), truncated, one ``det_*``
    column per detector (0/1, on the text as embedded), and one membership column per case."""
    cases: list[RealCase] = field(default_factory=list)
    n_common: int = 0

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.documents, index=False).to_numpy().tobytes())
        h.update(json.dumps([asdict(c.spec) for c in self.cases], sort_keys=True).encode())
        return h.hexdigest()[:12]

    def flags(self) -> BoolArray:
        """(n_docs, n_detectors), rows in document order."""
        out: BoolArray = self.documents[[FLAG_PREFIX + n for n in NAMES]].to_numpy().astype(bool)
        return out

    def texts(self) -> dict[str, str]:
        return dict(zip(self.documents["doc_id"], self.documents["text"], strict=True))


def build_corpus(config: RealConfig, data_dir: Path = DATA_DIR) -> Corpus:
    """Sample the instructions, shorten every needed model's answers, run the detectors, and lay out the cases.

    Raises:
        FileNotFoundError: a needed model's file is missing.
    """
    models = config.models()
    answers = {m: load_answers(data_dir, m) for m in models}
    chosen, n_common = sample_instructions(answers, config.n_instructions, config.seed)
    position = {ins: i for i, ins in enumerate(answers[models[0]])}
    rows: list[dict[str, Any]] = []
    by: dict[tuple[str, int], str] = {}
    for m in models:
        for ins in chosen:
            output, subset = answers[m][ins]
            text = shorten(output, config.max_chars, config.tail_chars)
            doc_id = f"r{len(rows):05d}"
            by[(m, position[ins])] = doc_id
            rows.append(
                {
                    "doc_id": doc_id,
                    "text": text,
                    "model": m,
                    PAIR_KEY: position[ins],
                    "subset": subset,
                    "n_chars": len(output.strip()),
                    "truncated": int(text != output.strip()),
                }
            )
    frame = pd.DataFrame(rows)
    flags = detect_all(frame["text"].tolist())
    for j, name in enumerate(NAMES):
        frame[FLAG_PREFIX + name] = flags[:, j].astype(np.int64)
    ids = [position[i] for i in chosen]
    cases = []
    for n, spec in enumerate(config.cases, 1):
        col = f"c{n:02d}"
        docs_a = tuple(by[(spec.a, i)] for i in ids)
        member = dict.fromkeys(docs_a, "a")
        others: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if spec.mode == "paired":
            docs_b = tuple(by[(spec.b[0], i)] for i in ids)
        elif spec.mode == "sets":
            order = rng_for(config.seed, "null", spec.case_id).permutation(len(docs_a))
            half = set(order[: len(order) // 2].tolist())
            docs_b = tuple(d for k, d in enumerate(docs_a) if k not in half)
            docs_a = tuple(d for k, d in enumerate(docs_a) if k in half)
            member = {**dict.fromkeys(docs_a, "a"), **dict.fromkeys(docs_b, "b")}
        else:
            others = tuple((m, tuple(by[(m, i)] for i in ids)) for m in spec.b)
            docs_b = tuple(d for _, docs in others for d in docs)
            for k, (_, docs) in enumerate(others, 1):
                member.update(dict.fromkeys(docs, f"o{k}"))
        if spec.mode == "paired":
            member.update(dict.fromkeys(docs_b, "b"))
        frame[col] = frame["doc_id"].map(member).fillna("")
        cases.append(RealCase(spec, col, docs_a, docs_b, others))
    return Corpus(config, frame, cases, n_common)


# --- scoring (pure) -----------------------------------------------------------------------------------


def mcc_matrix(X: sp.spmatrix | npt.ArrayLike, truths: npt.ArrayLike) -> FloatArray:
    """Matthews correlation of each column's firing set (value > 0) with each column of ``truths``
    (rows x k, or one truth of one value per row): a (columns of X, k) array, 0 where undefined (a column or
    a truth constant). Column by column, equal to :func:`evals.metrics.firing_match` ``.mcc``.

    Raises:
        ValueError: ``truths`` does not have one row per row of ``X``.
    """
    M = sp.csc_matrix(X)
    T = np.asarray(truths, dtype=bool)
    T = T.reshape(-1, 1) if T.ndim == 1 else T
    if T.shape[0] != M.shape[0]:
        raise ValueError(f"truth has {T.shape[0]} values for {M.shape[0]} rows")
    B = (M > 0).astype(np.float64)
    n = float(T.shape[0])
    n_pos = T.sum(axis=0).astype(np.float64)[None, :]
    tp = np.asarray(B.T @ T.astype(np.float64))
    fires = np.asarray(B.sum(axis=0)).ravel()[:, None]
    fp, fn = fires - tp, n_pos - tp
    tn = n - tp - fp - fn
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
    return out


def mcc_columns(X: sp.spmatrix | npt.ArrayLike, truth: npt.ArrayLike) -> FloatArray:
    """:func:`mcc_matrix` for one truth: one MCC per column of ``X``.

    Raises:
        ValueError: ``truth`` does not have one value per row.
    """
    out: FloatArray = mcc_matrix(X, np.asarray(truth, dtype=bool).ravel())[:, 0]
    return out


def _mcnemar(a: BoolArray, b: BoolArray) -> float:
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return float(sps.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0


def _fisher(a: BoolArray, b: BoolArray) -> float:
    table = [[int(a.sum()), int(len(a) - a.sum())], [int(b.sum()), int(len(b) - b.sum())]]
    return float(sps.fisher_exact(table)[1])


def detector_diffs(
    flags_a: BoolArray,
    flags_b: BoolArray,
    *,
    mode: Mode,
    min_diff: float,
    others: Sequence[BoolArray] = (),
    names: Sequence[str] = NAMES,
) -> list[DetectorDiff]:
    """Each detector's frequency on both sides, its test, and whether it is a known difference.

    ``flags_*`` are (documents, detectors). Paired: rows of A and B are the same instructions (McNemar).
    Sets: Fisher's exact test. One-vs-many: ``flags_a`` is the target, ``others`` each other set's flags
    (``flags_b`` all of them pooled, for the test); ``freq_b`` is the largest other frequency, and only a
    detector more frequent in the target than in every other set by ``min_diff`` is known, because the
    one-vs-many diff lists only latents more frequent in the target.

    Raises:
        ValueError: paired sides of different lengths, or one-vs-many without the other sets.
    """
    if mode == "paired" and flags_a.shape != flags_b.shape:
        raise ValueError(f"paired sides differ in shape: {flags_a.shape} vs {flags_b.shape}")
    if mode == "one_vs_many" and not others:
        raise ValueError("one-vs-many needs the other sets' flags")
    eps = 1e-9
    out = []
    for j, name in enumerate(names):
        a, b = flags_a[:, j].astype(bool), flags_b[:, j].astype(bool)
        fa = float(a.mean()) if len(a) else 0.0
        if mode == "one_vs_many":
            fb = max(float(o[:, j].mean()) for o in others)
            known = fa - fb >= min_diff - eps
        else:
            fb = float(b.mean()) if len(b) else 0.0
            known = abs(fa - fb) >= min_diff - eps
        p = _mcnemar(a, b) if mode == "paired" else _fisher(a, b)
        out.append(DetectorDiff(detector=name, freq_a=fa, freq_b=fb, diff=fa - fb, p=p, known=known))
    return out


def recover(
    X: sp.spmatrix,
    truth: npt.ArrayLike,
    direction: float,
    top: Sequence[TopLatent],
    *,
    detector: str,
    diff: float,
    mcc_min: float,
    labels: Callable[[int], str],
    rng: np.random.Generator | None = None,
    n_shuffles: int = 200,
) -> Recovery:
    """Does a top latent recover the detector? The first of ``top`` (in rank order) whose ``diff`` has the
    sign of ``direction`` and whose firing set over the rows of ``X`` (the case's documents) has MCC >=
    ``mcc_min`` with ``truth``. Also the best MCC of any column of ``X`` (what the SAE could have offered).

    Chance levels, from ``n_shuffles`` shuffles of ``truth`` over the rows (with ``rng``): how often the same
    rule recovers shuffled labels, and the mean best MCC of any column with them. A detector with few
    positives among many latents is matched well by luck; these say how well.
    """
    t = np.asarray(truth, dtype=bool).ravel()
    M = sp.csc_matrix(X)
    mcc = mcc_columns(M, t)
    best_any = int(np.argmax(mcc)) if mcc.size else None
    best_any_mcc = float(mcc[best_any]) if best_any is not None else 0.0
    allowed = [k for k, row in enumerate(top) if direction != 0 and np.sign(row.diff) == np.sign(direction)]
    found = next(((k, top[k]) for k in allowed if mcc[top[k].latent] >= mcc_min), None)
    rank: int | None = None
    pick: TopLatent | None
    if found is not None:
        rank, pick = found
    else:
        pick = max(top, key=lambda row: mcc[row.latent], default=None)
    chance, any_chance = 0.0, 0.0
    if n_shuffles > 0 and len(t):
        gen = rng if rng is not None else np.random.default_rng(0)
        shuffled = np.column_stack([gen.permutation(t) for _ in range(n_shuffles)])
        null = mcc_matrix(M, shuffled)
        if allowed:
            chance = float((null[[top[k].latent for k in allowed]] >= mcc_min).any(axis=0).mean())
        any_chance = float(null.max(axis=0).mean()) if null.size else 0.0
    return Recovery(
        detector=detector,
        diff=diff,
        recovered=found is not None,
        rank=rank,
        latent=pick.latent if pick else None,
        label=pick.label if pick else None,
        mcc=float(mcc[pick.latent]) if pick else 0.0,
        q=pick.q if pick else None,
        chance=chance,
        best_any=best_any_mcc,
        best_any_latent=best_any if best_any_mcc > 0 else None,
        best_any_label=labels(best_any) if best_any is not None and best_any_mcc > 0 else None,
        best_any_chance=any_chance,
    )


def mark_specific(
    recoveries: Sequence[Recovery],
    X: sp.spmatrix,
    flags: BoolArray,
    *,
    mcc_min: float,
    names: Sequence[str] = NAMES,
) -> list[Recovery]:
    """For each recovered detector, whether its recovering latent matches it better than any other detector
    (``specific``), and which other detectors that latent also matches with MCC >= ``mcc_min`` (``also``),
    over the rows of ``X`` with their ``flags`` (rows x detectors). Detectors that co-occur (long answers
    with lists, bold and closing offers) are often all "recovered" by one latent that tracks their common
    cause; these say so.

    Raises:
        ValueError: not one name per flag column.
    """
    if flags.shape[1] != len(names):
        raise ValueError(f"{flags.shape[1]} flag columns but {len(names)} detector names")
    M = sp.csc_matrix(X)
    out = []
    for r in recoveries:
        if not r.recovered or r.latent is None:
            out.append(r)
            continue
        mcc = mcc_matrix(M[:, [r.latent]], flags)[0]
        mine = mcc[list(names).index(r.detector)]
        also = [n for n, m in zip(names, mcc, strict=True) if n != r.detector and m >= mcc_min]
        out.append(r.model_copy(update={"specific": bool(mine >= mcc.max() - 1e-12), "also": also}))
    return out


def top_latents(rows: Sequence[Any]) -> list[TopLatent]:
    """A diff's (or trend's) rows as :class:`TopLatent`: the signed effect is ``diff`` (set and paired),
    ``score`` (one-vs-many) or ``z`` (trend)."""
    out = []
    for r in rows:
        effect = r.diff if hasattr(r, "diff") else r.score if hasattr(r, "score") else r.z
        out.append(TopLatent(latent=int(r.latent), label=str(r.label), diff=float(effect), q=float(r.q)))
    return out


def detector_trends(
    flags: BoolArray,
    groups: npt.ArrayLike,
    names: Sequence[str],
    strata: npt.ArrayLike,
    *,
    alpha: float,
    detectors: Sequence[str] = NAMES,
) -> list[DetectorTrend]:
    """Cochran-Armitage trend of each detector over ordered groups, stratified by instruction (Mantel),
    with :func:`saescope.analyses.latent_trends` on the detector flags as if they were latents; BH over the
    detectors. A detector firing in fewer than 5 documents is not tested (q = 1, not trending).

    Raises:
        ValueError: not one name per flag column.
    """
    from saescope import analyses as an

    det_names = list(detectors)
    if len(det_names) != flags.shape[1]:
        raise ValueError(f"{flags.shape[1]} flag columns but {len(det_names)} detector names")
    res = an.latent_trends(
        sp.csr_matrix(flags.astype(np.float64)),
        groups,
        names,
        dict(enumerate(det_names)),
        strata=strata,
        top_k=flags.shape[1],
        alpha=alpha,
    )
    by = {r.latent: r for r in res.rows}
    g = np.asarray(groups)
    out = []
    for j, name in enumerate(det_names):
        r = by.get(j)
        freqs = [float(flags[g == k, j].mean()) if (g == k).any() else 0.0 for k in range(len(names))]
        if r is None:
            out.append(DetectorTrend(detector=name, freqs=freqs, slope=0.0, z=0.0, q=1.0, trending=False))
        else:
            out.append(DetectorTrend(detector=name, freqs=freqs, slope=r.slope, z=r.z, q=r.q, trending=r.q <= alpha))
    return out


# --- running ------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What every step of a run shares: the stored dataset, its matrix and labels, and the settings."""

    ws: Workspace
    corpus: Corpus
    dataset: str
    sae_key: str
    matrix: sp.csr_matrix
    doc_rows: dict[str, int]
    flags: BoolArray
    """(matrix rows, detectors): the stored ``det_*`` columns in the matrix's row order."""
    labels: LabelBook
    n_tokens: npt.NDArray[Any]
    rate: float | None
    settings: RealSettings
    provider: LLMProvider

    def rows(self, doc_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        return np.array([self.doc_rows[d] for d in doc_ids], dtype=np.int64)

    def label(self, latent: int) -> str:
        return self.labels.text(latent)


async def sae_llm_cost(
    ws: Workspace, spec: DiffSpec, diff: Any, provider: LLMProvider, *, n_latents: int, n_hypotheses: int, alpha: float
) -> Cost:
    """What the SAE pipeline's LLM steps cost on this diff: the library's relabel-and-summarise step on its
    significant latents (q <= alpha, up to ``n_latents``); nothing when none is significant (as
    :func:`evals.methods.sae_summarise`, for any of the three modes)."""
    from saescope.llm.ledger import MeteredProvider, PriceTable
    from saescope.ops.llm_steps import summarise_diff
    from saescope.ops.requests import SummariseRequest

    cost = Cost()
    rows = [r for r in diff.rows if r.q <= alpha][:n_latents]
    if not rows:
        return cost
    req = SummariseRequest(**spec.model_dump(), n_latents=len(rows), n_hypotheses=n_hypotheses)
    metered = MeteredProvider(provider, prices=PriceTable(date="-"))
    start = time.perf_counter()
    await summarise_diff(ws, req, metered, diff=diff.model_copy(update={"rows": rows}))
    cost.add(metered.replies, time.perf_counter() - start)
    return cost


def run_case(ctx: Context, case: RealCase, *, cost: bool = True) -> RealCaseResult:
    """The diff of one case, its detectors' known differences, which of them a top latent recovers, and
    (with ``cost``) both methods' LLM tokens."""
    from saescope import analyses as an
    from saescope.ops.analyses import run_diff

    s = ctx.settings
    spec = case.diff_spec(ctx.dataset, ctx.sae_key)
    start = time.perf_counter()
    diff = run_diff(ctx.ws, spec, top_k=s.top_k, alpha=s.alpha)
    diff_seconds = time.perf_counter() - start
    top = top_latents(diff.rows)
    rows_a, rows_b = ctx.rows(case.docs_a), ctx.rows(case.docs_b)
    others = [ctx.flags[ctx.rows(docs)] for _, docs in case.others]
    dets = detector_diffs(ctx.flags[rows_a], ctx.flags[rows_b], mode=case.mode, min_diff=s.min_diff, others=others)
    case_rows = np.concatenate([rows_a, rows_b])
    X = ctx.matrix[case_rows]
    recoveries = []
    if case.group != "null":
        for j, d in enumerate(dets):
            if d.known:
                recoveries.append(
                    recover(
                        X,
                        ctx.flags[case_rows, j],
                        d.diff,
                        top,
                        detector=d.detector,
                        diff=d.diff,
                        mcc_min=s.mcc_min,
                        labels=ctx.label,
                        rng=rng_for(ctx.corpus.config.seed, "shuffle", case.case_id, d.detector),
                    )
                )
        recoveries = mark_specific(recoveries, X, ctx.flags[case_rows], mcc_min=s.mcc_min)
    if isinstance(diff, an.PairedDiff):
        n_a = n_b = diff.n_pairs
    elif isinstance(diff, an.OneVsMany):
        n_a, n_b = diff.n_target, sum(diff.n_others.values())
    else:
        n_a, n_b = diff.n_a, diff.n_b
    tokens = int(ctx.n_tokens[case_rows].sum())
    result = RealCaseResult(
        case_id=case.case_id,
        group=case.group,
        mode=case.mode,
        name_a=case.spec.name_a,
        name_b=case.spec.name_b,
        column=case.column,
        n_a=n_a,
        n_b=n_b,
        detectors=dets,
        recoveries=recoveries,
        n_tested=diff.n_tested,
        n_significant=diff.n_significant,
        top=top,
        tokens=tokens,
        embed_seconds=tokens * ctx.rate / 1000 if ctx.rate else 0.0,
        diff_seconds=diff_seconds,
    )
    if cost:
        texts = ctx.corpus.texts()

        async def llm_steps() -> None:
            result.sae_cost = await sae_llm_cost(
                ctx.ws,
                spec,
                diff,
                ctx.provider,
                n_latents=s.n_latents,
                n_hypotheses=s.n_hypotheses,
                alpha=s.alpha,
            )
            _, result.baseline_cost = await run_baseline(
                case.as_case(),
                texts,
                ctx.provider,
                docs_per_side=s.baseline_docs,
                batch_docs=s.batch_docs,
                pairs_per_call=s.pairs_per_call,
                n_hypotheses=s.n_hypotheses,
                seed=ctx.corpus.config.seed,
            )

        anyio.run(llm_steps)
    return result


def run_trend(ctx: Context, order: Sequence[str]) -> TrendResultRecord:
    """Which detectors trend over the models in ``order`` (paired by instruction), and whether the library's
    trend (``ops.trend``) puts a latent tracking each of them among its top k."""
    from saescope.ops.analyses import trend
    from saescope.ops.requests import TrendRequest

    s = ctx.settings
    docs = ctx.corpus.documents
    sel = docs[docs["model"].isin(list(order))]
    rows = ctx.rows(sel["doc_id"].tolist())
    groups = np.array([list(order).index(m) for m in sel["model"]], dtype=np.int64)
    strata = pd.factorize(sel[PAIR_KEY])[0].astype(np.int64)
    flags = ctx.flags[rows]
    dets = detector_trends(flags, groups, list(order), strata, alpha=s.alpha)
    start = time.perf_counter()
    res = trend(
        ctx.ws,
        TrendRequest(
            dataset=ctx.dataset,
            column="model",
            order=list(order),
            pair_key=PAIR_KEY,
            top_k=s.top_k,
            alpha=s.alpha,
            sae=ctx.sae_key,
        ),
    )
    seconds = time.perf_counter() - start
    top = top_latents(res.trend.rows)
    X = ctx.matrix[rows]
    recoveries = [
        recover(
            X,
            flags[:, j],
            d.z,
            top,
            detector=d.detector,
            diff=d.slope,
            mcc_min=s.mcc_min,
            labels=ctx.label,
            rng=rng_for(ctx.corpus.config.seed, "shuffle", "trend", d.detector),
        )
        for j, d in enumerate(dets)
        if d.trending
    ]
    recoveries = mark_specific(recoveries, X, flags, mcc_min=s.mcc_min)
    return TrendResultRecord(
        models=list(order),
        n_docs=len(rows),
        n_tested=res.trend.n_tested,
        n_significant=res.trend.n_significant,
        detectors=dets,
        recoveries=recoveries,
        top=top,
        seconds=seconds,
    )


def run_retrieval(ctx: Context, seed: int) -> tuple[list[RetrievalRecord], float]:
    """Each detector's query ranks every document of the dataset by each of :data:`evals.retrieval.METHODS`
    (``rank_by_property``; documents a method does not score follow in a seeded random order); AP against the
    detector's labels. Also the seconds spent encoding the documents once (the dataset's dense vectors, then
    cached)."""
    from saescope.ops.docsets import DocSet, resolve
    from saescope.ops.encoder import dataset_vectors

    r = resolve(ctx.ws, DocSet(ctx.dataset, None, ctx.sae_key))
    all_ids = [str(d) for d in r.doc_ids]
    start = time.perf_counter()
    dataset_vectors(ctx.ws, ctx.dataset)
    dense_seconds = time.perf_counter() - start
    flags = ctx.flags[r.rows]
    out = []
    for j, det in enumerate(DETECTORS):
        truth = dict(zip(all_ids, flags[:, j].tolist(), strict=True))
        n_rel = int(flags[:, j].sum())
        if n_rel == 0:
            continue
        orders = method_orders(ctx.ws, r, det.query, seed=seed, key=f"real-retrieval-{det.name}")
        ap = {m: average_precision([truth[d] for d in o.order], n_rel) for m, o in orders.items()}
        out.append(
            RetrievalRecord(
                detector=det.name,
                query=det.query,
                n_docs=len(all_ids),
                n_relevant=n_rel,
                random_ap=n_rel / len(all_ids),
                sae_ap=ap["sae"],
                dense_ap=ap["dense"],
                research_ap=ap["sae-research"],
                hybrid_ap=ap["hybrid"],
                guided_ap=ap["sae-guided"],
                sae_ranked=orders["sae"].scored,
                sae_latents=orders["sae"].latents,
            )
        )
    return out, dense_seconds


def detector_rates(corpus: Corpus) -> dict[str, dict[str, float]]:
    """Per model, each detector's share of its (sampled, shortened) answers, and their mean length."""
    docs = corpus.documents
    out = {}
    for model, sub in docs.groupby("model", sort=False):
        rates = {n: float(sub[FLAG_PREFIX + n].mean()) for n in NAMES}
        rates["chars_full"] = float(sub["n_chars"].mean())
        rates["truncated"] = float(sub["truncated"].mean())
        out[str(model)] = rates
    return out


# --- command line -------------------------------------------------------------------------------------


def say(msg: str) -> None:
    """A time-stamped progress line on stderr."""
    sys.stderr.write(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _embed(ws: Workspace, name: str, args: argparse.Namespace) -> tuple[Any, float, float, float | None]:
    """Embed (or resume) the dataset through ``ops.embed_dataset`` (chat template on); the seconds spent now,
    the seconds over all runs, and the rate per 1k tokens over all runs (the models are loaded before the
    clock starts)."""
    from saescope.ops.embedding import embed_config, embed_dataset, sae_choice
    from saescope.ops.requests import EmbedRequest

    req = EmbedRequest(dataset=name, sae=args.sae, reader=args.reader, chat_template=True)
    choice = sae_choice(req)
    times_path = ws.store.root / "eval-embed-times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    done = {"tokens": 0}
    last = [0.0]

    def progress(p: Any) -> None:
        done["tokens"] = p.tokens_done
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            say(f"embedding {p.docs_done}/{p.docs_total} documents, {p.tokens_done:,} tokens, {p.elapsed_s:.0f}s")

    ws.embedder(choice, embed_config(req), req.reader)
    start = time.perf_counter()
    manifest = embed_dataset(ws, req, choice, progress=progress)
    seconds = time.perf_counter() - start
    entry = times.get(manifest.key, {"seconds": 0.0, "tokens": 0})
    if done["tokens"] > 0:
        entry = {"seconds": entry["seconds"] + seconds, "tokens": entry["tokens"] + done["tokens"]}
        times[manifest.key] = entry
        times_path.write_text(json.dumps(times, indent=1))
    rate = entry["seconds"] / entry["tokens"] * 1000 if entry["tokens"] else None
    return manifest, seconds if done["tokens"] else 0.0, float(entry["seconds"]), rate


def base_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The options every AlpacaEval eval shares: where the data and the answers are, the seed, and the SAE."""
    p = argparse.ArgumentParser(
        prog=prog, description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--home", help="data root for the datasets (default: the evals cache, as evals.run)")
    p.add_argument("--data", default=str(DATA_DIR), help="folder of <model>.jsonl.gz answer files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sae", default="default", help="'default', an SAELens folder, or RELEASE:SAE_ID")
    p.add_argument("--reader", help="reader model for that SAE (default: the one the SAE names)")
    p.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = base_parser("python -m evals.real_responses", __doc__)
    p.add_argument("--instructions", type=int, default=RealConfig.n_instructions, help="instructions sampled per model")
    p.add_argument("--max-chars", type=int, default=RealConfig.max_chars, help="longer answers are shortened")
    p.add_argument("--tail-chars", type=int, default=RealConfig.tail_chars, help="end characters kept (0: start only)")
    p.add_argument(
        "--cases",
        help="comma-separated case ids or groups, shell patterns allowed (cv_*, versions, null); default: all",
    )
    p.add_argument("--skip", default="", help="comma-separated: trend, retrieval, cost")
    p.add_argument("--out", help="report folder (default: evals/results/<date>-real)")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--mcc-min", type=float, default=0.3)
    p.add_argument("--min-diff", type=float, default=0.1)
    p.add_argument("--n-latents", type=int, default=10)
    p.add_argument("--n-hypotheses", type=int, default=5)
    p.add_argument("--baseline-docs", type=int, help="documents (pairs) per side the baseline reads (default: all)")
    p.add_argument("--batch-docs", type=int, default=10)
    p.add_argument("--pairs-per-call", type=int, default=1)
    p.add_argument("--price-model", default="gpt-4o-mini", help="model whose list price prices the tokens")
    return p


def select_cases(cases: Sequence[CaseSpec], patterns: str | None) -> tuple[CaseSpec, ...]:
    """The cases whose id or group matches one of the comma-separated shell patterns (all when none).

    Raises:
        ValueError: a pattern matches no case.
    """
    pats = [p.strip() for p in (patterns or "").split(",") if p.strip()]
    if not pats:
        return tuple(cases)
    for p in pats:
        if not any(fnmatch.fnmatchcase(c.case_id, p) or fnmatch.fnmatchcase(c.group, p) for c in cases):
            raise ValueError(f"no case matches {p!r}; cases: {[c.case_id for c in cases]}")
    return tuple(
        c for c in cases if any(fnmatch.fnmatchcase(c.case_id, p) or fnmatch.fnmatchcase(c.group, p) for p in pats)
    )


def config_from_args(args: argparse.Namespace) -> RealConfig:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return replace(
        RealConfig(),
        n_instructions=args.instructions,
        seed=args.seed,
        max_chars=args.max_chars,
        tail_chars=args.tail_chars,
        cases=select_cases(DEFAULT_CASES, args.cases),
        trend=() if "trend" in skip else TREND_ORDER,
    )


def main(argv: Sequence[str] | None = None, *, cases: Sequence[CaseSpec] | None = None) -> int:
    """The command line; ``cases`` replaces the selected cases (for callers that build their own)."""
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = {s.strip() for s in args.skip.split(",") if s.strip()} - {"trend", "retrieval", "cost"}
    if unknown:
        parser.error(f"--skip takes trend, retrieval and cost; got {sorted(unknown)}")
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    from evals.real_report import write_report
    from saescope.llm.ledger import PriceTable
    from saescope.ops.datasets import ingest_documents
    from saescope.ops.docsets import labels_for
    from saescope.ops.requests import IngestRequest
    from saescope.paths import cache_home
    from saescope.workspace import Workspace

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    cfg = config_from_args(args)
    if cases is not None:
        cfg = replace(cfg, cases=tuple(cases))
    data_dir = Path(args.data)
    corpus = build_corpus(cfg, data_dir)
    docs = corpus.documents
    say(
        f"{len(corpus.cases)} cases, {len(cfg.models())} models x {cfg.n_instructions} instructions = {len(docs)} "
        f"documents ({int(docs['truncated'].sum())} shortened to {cfg.max_chars} characters)"
    )
    home = Path(args.home) if args.home else cache_home() / "evals"
    ws = Workspace(home, device=args.device)
    name = f"real-{corpus.fingerprint()}"
    if name not in ws.store.names():
        records = docs.to_dict("records")
        ingest_documents(ws, IngestRequest(name=name, documents=records, id_column="doc_id"))
    manifest, embed_seconds, embed_seconds_total, rate = _embed(ws, name, args)
    say(f"embedded {name} ({embed_seconds:.0f}s this run)")
    emb, matrix = ws.matrix(name, manifest.key)
    meta = ws.dataset(name).metadata()
    doc_rows = {str(d): i for i, d in enumerate(meta["doc_id"].to_numpy())}
    flags = meta[[FLAG_PREFIX + n for n in NAMES]].to_numpy().astype(bool)
    counter = TokenCounter.default()
    prices = PriceTable.load()
    price = prices.price(args.price_model)
    settings = RealSettings(
        data_dir=str(data_dir),
        n_instructions=cfg.n_instructions,
        n_common=corpus.n_common,
        seed=cfg.seed,
        max_chars=cfg.max_chars,
        tail_chars=cfg.tail_chars,
        models=cfg.models(),
        top_k=args.top_k,
        alpha=args.alpha,
        mcc_min=args.mcc_min,
        min_diff=args.min_diff,
        chat_template=True,
        baseline_docs=args.baseline_docs or cfg.n_instructions,
        batch_docs=args.batch_docs,
        pairs_per_call=args.pairs_per_call,
        n_latents=args.n_latents,
        n_hypotheses=args.n_hypotheses,
        price_model=args.price_model,
        tokenizer=counter.name,
    )
    ctx = Context(
        ws=ws,
        corpus=corpus,
        dataset=name,
        sae_key=manifest.key,
        matrix=matrix,
        doc_rows=doc_rows,
        flags=flags,
        labels=labels_for(ws, emb),
        n_tokens=emb.n_tokens(),
        rate=rate,
        settings=settings,
        provider=DryRunProvider(counter, args.price_model),
    )
    results = []
    for i, case in enumerate(corpus.cases, 1):
        res = run_case(ctx, case, cost="cost" not in skip)
        results.append(res)
        got = sum(r.recovered for r in res.recoveries)
        say(
            f"case {i}/{len(corpus.cases)} {case.case_id}: {res.n_significant} significant, "
            f"{got}/{len(res.recoveries)} known differences recovered"
        )
    trend_rec = None
    if cfg.trend:
        trend_rec = run_trend(ctx, cfg.trend)
        say(f"trend: {sum(d.trending for d in trend_rec.detectors)} detectors trend")
    retrieval: list[RetrievalRecord] = []
    dense_seconds = 0.0
    if "retrieval" not in skip:
        retrieval, dense_seconds = run_retrieval(ctx, cfg.seed)
        say(f"retrieval: {len(retrieval)} detectors")
    env = RealEnvironment(
        **run_environment("evals.real_responses", argv, started, t_start, ws.sae_of(emb), manifest),
        dataset=name,
        home=str(home),
        n_docs=len(docs),
        embed_seconds=embed_seconds,
        embed_seconds_total=embed_seconds_total,
        embed_seconds_per_1k_tokens=rate,
        tokens_total=int(ctx.n_tokens.sum()),
        truncated_docs=int(docs["truncated"].sum()),
        price_table_date=prices.date,
        price=price.model_dump() if price else None,
        dense_seconds=dense_seconds,
    )
    run = RealRun(
        settings=settings,
        environment=env,
        detector_rates=detector_rates(corpus),
        cases=results,
        trend=trend_rec,
        retrieval=retrieval,
    )
    out = Path(args.out) if args.out else RESULTS / f"{date.today().isoformat()}-real"
    write_report(run, out)
    say(f"wrote {out / 'report.md'} in {time.perf_counter() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
