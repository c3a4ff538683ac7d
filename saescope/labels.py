"""Latent labels: several sources per latent (shipped token labels, provider files, LLM labels).

A latent is identified by (SAE id, index). Each carries a list of :class:`FeatureLabel`; the
preferred one is the best-scored label from the most trusted source.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from saescope.errors import InputError

MAX_LABEL_FILE_BYTES = 1 << 30
"""Most bytes (after decompression) read from one label file."""

# Earlier sources win when choosing the label to show: an LLM label that was scored on held-out
# examples beats a provider's label, which beats an LLM-free concept description, which beats a surface-form
# description (the kind of token and place it fires on: saescope.forms), which beats the tokens a latent
# fires on. Scored sources compete by score: a concept description that predicts where the latent fires
# better than an LLM label does is shown instead of it.
SOURCE_PRIORITY: tuple[str, ...] = ("llm", "neuronpedia", "provider", "concept", "form", "top-tokens")
CONCEPT_MIN_FIDELITY = 0.75
"""A concept description (``source="concept"``, score = held-out AUROC) is shown only from this fidelity."""
FORM_MIN_SHARE = 0.75
"""A surface-form description (``source="form"``, score = the share of the latent's strongest examples it
describes) is shown only from this share."""


class FeatureLabel(BaseModel):
    """One description of a latent and where it came from."""

    source: str = Field(description="who made it: top-tokens, form, concept, neuronpedia, provider, llm")
    text: str
    score: float | None = Field(default=None, description="detection score on held-out examples, if measured")
    model: str | None = Field(default=None, description="the model that wrote it, for LLM labels")


class LatentExample(BaseModel):
    """A strong activation: the text around the token, with the token in «»."""

    text: str
    activation: float
    source: str | None = None


class LatentLabels(BaseModel):
    """Everything known about one latent without running the reader."""

    latent: int
    labels: list[FeatureLabel] = Field(default_factory=list)
    top_tokens: list[tuple[str, int]] = Field(default_factory=list)
    examples: list[LatentExample] = Field(default_factory=list)
    token_frequency: float | None = None

    def best(self) -> str:
        """The label to show: highest-priority source, then highest score. Concept descriptions below
        :data:`CONCEPT_MIN_FIDELITY` and form descriptions below :data:`FORM_MIN_SHARE` are never shown; a
        concept description that scores higher than every LLM label wins."""
        floor = {"concept": CONCEPT_MIN_FIDELITY, "form": FORM_MIN_SHARE}
        usable = [
            lab
            for lab in self.labels
            if lab.source not in floor or (lab.score is not None and lab.score >= floor[lab.source])
        ]
        if not usable:
            return f"latent {self.latent} (unlabelled)"

        def rank(lab: FeatureLabel) -> tuple[int, float]:
            prio = SOURCE_PRIORITY.index(lab.source) if lab.source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
            return (prio, -(lab.score if lab.score is not None else -1.0))

        chosen = min(usable, key=rank)
        concepts = [lab for lab in usable if lab.source == "concept"]
        if chosen.source == "llm" and concepts:
            top = max(concepts, key=lambda lab: lab.score or 0.0)
            if chosen.score is not None and (top.score or 0.0) > chosen.score:
                return top.text
        return chosen.text


class LabelBook:
    """All labels of one SAE, keyed by latent index."""

    def __init__(self, sae_id: str, d_sae: int, latents: Mapping[int, LatentLabels] | None = None) -> None:
        self.sae_id = sae_id
        self.d_sae = d_sae
        self.latents: dict[int, LatentLabels] = dict(latents or {})

    def __contains__(self, latent: object) -> bool:
        return latent in self.latents

    def get(self, latent: int) -> LatentLabels:
        """Labels of ``latent`` (an empty record when it has none).

        Raises:
            InputError: ``latent`` is outside the SAE.
        """
        if not 0 <= latent < self.d_sae:
            raise InputError(f"latent {latent} is out of range for {self.sae_id} (0..{self.d_sae - 1})")
        return self.latents.get(latent) or LatentLabels(latent=latent)

    def text(self, latent: int) -> str:
        """The preferred label text of ``latent``."""
        return self.get(latent).best()

    def texts(self) -> dict[int, str]:
        """Preferred label of every labelled latent."""
        return {i: rec.best() for i, rec in self.latents.items()}

    def add(self, latent: int, label: FeatureLabel) -> None:
        """Attach another label to ``latent``, replacing one from the same source and model."""
        rec = self.latents.setdefault(latent, LatentLabels(latent=latent))
        rec.labels = [lab for lab in rec.labels if (lab.source, lab.model) != (label.source, label.model)]
        rec.labels.append(label)

    def merge(self, records: Iterable[LatentLabels]) -> None:
        for rec in records:
            for lab in rec.labels:
                self.add(rec.latent, lab)

    @classmethod
    def load_jsonl(cls, path: Path, sae_id: str, d_sae: int) -> LabelBook:
        """Read a ``labels.jsonl(.gz)`` file: one :class:`LatentLabels` object per line.

        Raises:
            InputError: a line is not a valid label record (with its line number).
        """
        book = cls(sae_id, d_sae)
        for n, line in enumerate(_read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = LatentLabels.model_validate(json.loads(line))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError and ValidationError are ValueErrors
                raise InputError(f"{path}:{n}: not a label record: {_first_line(exc)}") from exc
            book.latents[rec.latent] = rec
        return book

    def save_jsonl(self, path: Path) -> None:
        """Write the book atomically as JSON lines (gzip when the name ends in .gz)."""
        tmp = path.with_name(path.name + ".tmp")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(tmp, "wt", encoding="utf-8") as fh:
            for i in sorted(self.latents):
                fh.write(self.latents[i].model_dump_json() + "\n")
        tmp.replace(path)


def read_label_file(path: Path, *, source: str | None = None) -> list[LatentLabels]:
    """Read labels made elsewhere: Neuronpedia explanation exports or a provider's ``{index: label}`` JSON.

    Accepted: a Neuronpedia export (``.jsonl``/``.jsonl.gz`` lines or a ``.json`` list of objects with
    ``index`` and ``description``, optionally ``explanationModelName`` and ``score``), a folder of such
    batch files, a ``{"12": "label", ...}`` mapping, or saescope's own ``labels.jsonl``.

    Raises:
        InputError: the file is missing or in none of these shapes (with the line or key at fault).
    """
    if path.is_dir():
        out: list[LatentLabels] = []
        files = sorted(p for p in path.iterdir() if p.name.endswith((".json", ".jsonl", ".jsonl.gz", ".json.gz")))
        if not files:
            raise InputError(f"{path}: no .json/.jsonl(.gz) label files inside")
        for f in files:
            out.extend(read_label_file(f, source=source))
        return out
    if not path.exists():
        raise InputError(f"label file {path} does not exist")
    raw = _read_text(path)
    records: list[object]
    try:
        whole = json.loads(raw)
        records = whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        records = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                records.append(_loads(line, f"{path}:{n}"))
    except (RecursionError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON ({_first_line(exc)})") from exc
    by_latent: dict[int, LatentLabels] = {}
    for n, rec in enumerate(records, 1):
        try:
            _add_record(path, n, rec, source, by_latent)
        except ValidationError as exc:
            raise InputError(f"{path}: record {n} is not a valid label: {_first_line(exc)}") from exc
    return [by_latent[i] for i in sorted(by_latent)]


def _read_text(path: Path) -> str:
    """The text of a label file: a regular file, ``.gz`` decompressed, UTF-8, within the size limit.

    Raises:
        InputError: it is not a regular file, is corrupt, too large, or not UTF-8.
    """
    from saescope.store.ingest import read_file_bytes

    data = read_file_bytes(path, MAX_LABEL_FILE_BYTES)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: invalid UTF-8 at byte {exc.start}; re-save the file as UTF-8") from exc


def _loads(line: str, where: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc.msg})") from exc
    except (RecursionError, ValueError) as exc:
        raise InputError(f"{where}: not readable JSON ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    """A one-line reason for a parse or validation error."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "digits" in text and "integer string conversion" in text:
        return "a number has more than 4,300 digits"
    return text[:300]


def _label_text(path: Path, n: int, text: str) -> str:
    from saescope.store.ingest import has_surrogate

    if has_surrogate(text):
        raise InputError(f"{path}: record {n} has a lone surrogate (an unpaired \\ud800-\\udfff escape) in a label")
    return text


def _latent_index(path: Path, n: int, value: object) -> int:
    try:
        latent: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{path}: record {n} has a non-integer latent index {str(value)[:40]!r}") from exc
    if not 0 <= latent < 2**31:
        raise InputError(f"{path}: record {n} has a latent index {latent} outside 0..2,147,483,647")
    return latent


def _score(value: object) -> float | None:
    """A label's score if it is a finite number, else None."""
    if not isinstance(value, int | float):
        return None
    try:
        score = float(value)
    except OverflowError:
        return None
    return score if math.isfinite(score) else None


def _add_record(path: Path, n: int, rec: object, source: str | None, by_latent: dict[int, LatentLabels]) -> None:
    """Add one record of a label file to ``by_latent``.

    Raises:
        InputError: it is in none of the accepted shapes, or has a bad index or text.
        ValidationError: a field has the wrong type.
    """
    if not isinstance(rec, dict):
        raise InputError(f"{path}: record {n} is not an object")
    if "latent" in rec and "labels" in rec:
        item = LatentLabels.model_validate(rec)
        _latent_index(path, n, item.latent)
        for lab in item.labels:
            _label_text(path, n, lab.text)
            _label_text(path, n, lab.model or "")
        by_latent.setdefault(item.latent, LatentLabels(latent=item.latent)).labels.extend(item.labels)
        return
    if "index" in rec and ("description" in rec or "explanation" in rec):
        latent = _latent_index(path, n, rec["index"])
        text = _label_text(path, n, str(rec.get("description") or rec.get("explanation") or "").strip())
        if not text:
            return
        score = rec.get("score")
        model = rec.get("explanationModelName") or rec.get("model")
        label = FeatureLabel(
            source=source or "neuronpedia",
            text=text,
            score=_score(score),
            model=_label_text(path, n, model) if isinstance(model, str) else None,
        )
        by_latent.setdefault(latent, LatentLabels(latent=latent)).labels.append(label)
        return
    if all(re.fullmatch(r"-?[0-9]+", str(k)) for k in rec):
        for key, value in rec.items():
            text = (
                value
                if isinstance(value, str)
                else str((value or {}).get("label", ""))
                if isinstance(value, dict)
                else ""
            )
            if text.strip():
                latent = _latent_index(path, n, key)
                by_latent.setdefault(latent, LatentLabels(latent=latent)).labels.append(
                    FeatureLabel(source=source or "provider", text=_label_text(path, n, text.strip()))
                )
        return
    raise InputError(
        f"{path}: record {n} is not a label: expected Neuronpedia fields (index, description), "
        "a {index: label} mapping, or saescope's {latent, labels}"
    )
