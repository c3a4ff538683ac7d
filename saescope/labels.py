"""Latent labels: several sources per latent (shipped token labels, provider files, LLM labels).

A latent is identified by (SAE id, index). Each carries a list of :class:`FeatureLabel`; the
preferred one is the best-scored label from the most trusted source.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, Field

from saescope.errors import InputError

# Earlier sources win when choosing the label to show: an LLM label that was scored on held-out
# examples beats a provider's label, which beats the tokens a latent fires on.
SOURCE_PRIORITY: tuple[str, ...] = ("llm", "neuronpedia", "provider", "top-tokens")


class FeatureLabel(BaseModel):
    """One description of a latent and where it came from."""

    source: str = Field(description="who made it: top-tokens, neuronpedia, provider, llm")
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
        """The label to show: highest-priority source, then highest score."""
        if not self.labels:
            return f"latent {self.latent} (unlabelled)"

        def rank(lab: FeatureLabel) -> tuple[int, float]:
            prio = SOURCE_PRIORITY.index(lab.source) if lab.source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
            return (prio, -(lab.score if lab.score is not None else -1.0))

        return min(self.labels, key=rank).text


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
        opener = gzip.open if path.suffix == ".gz" else open
        book = cls(sae_id, d_sae)
        with opener(path, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = LatentLabels.model_validate(json.loads(line))
                except (json.JSONDecodeError, ValueError) as exc:
                    raise InputError(f"{path}:{n}: not a label record: {exc}") from exc
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
    if not path.is_file():
        raise InputError(f"label file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        raw = fh.read()
    records: list[object]
    try:
        whole = json.loads(raw)
        records = whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        records = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from exc
    by_latent: dict[int, LatentLabels] = {}
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise InputError(f"{path}: record {n} is not an object")
        if "latent" in rec and "labels" in rec:
            item = LatentLabels.model_validate(rec)
            by_latent.setdefault(item.latent, LatentLabels(latent=item.latent)).labels.extend(item.labels)
            continue
        if "index" in rec and ("description" in rec or "explanation" in rec):
            try:
                latent = int(rec["index"])
            except (TypeError, ValueError) as exc:
                raise InputError(f"{path}: record {n} has a non-integer index {rec['index']!r}") from exc
            text = str(rec.get("description") or rec.get("explanation") or "").strip()
            if not text:
                continue
            score = rec.get("score")
            label = FeatureLabel(
                source=source or "neuronpedia",
                text=text,
                score=float(score) if isinstance(score, int | float) else None,
                model=rec.get("explanationModelName") or rec.get("model"),
            )
            by_latent.setdefault(latent, LatentLabels(latent=latent)).labels.append(label)
            continue
        if all(str(k).lstrip("-").isdigit() for k in rec):
            for key, value in rec.items():
                text = (
                    value
                    if isinstance(value, str)
                    else str((value or {}).get("label", ""))
                    if isinstance(value, dict)
                    else ""
                )
                if text.strip():
                    by_latent.setdefault(int(key), LatentLabels(latent=int(key))).labels.append(
                        FeatureLabel(source=source or "provider", text=text.strip())
                    )
            continue
        raise InputError(
            f"{path}: record {n} is not a label: expected Neuronpedia fields (index, description), "
            "a {index: label} mapping, or saescope's {latent, labels}"
        )
    return [by_latent[i] for i in sorted(by_latent)]
