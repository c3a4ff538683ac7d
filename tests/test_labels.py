from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from saescope.errors import InputError
from saescope.labels import FeatureLabel, LabelBook, LatentLabels, read_label_file


def test_best_label_prefers_llm_then_provider_then_tokens() -> None:
    rec = LatentLabels(latent=3, labels=[FeatureLabel(source="top-tokens", text="'refund'")])
    assert rec.best() == "'refund'"
    rec.labels.append(FeatureLabel(source="neuronpedia", text="money back requests"))
    assert rec.best() == "money back requests"
    rec.labels.append(FeatureLabel(source="llm", text="low", score=0.2, model="m1"))
    rec.labels.append(FeatureLabel(source="llm", text="high", score=0.9, model="m2"))
    assert rec.best() == "high"


def test_book_roundtrip_and_add_replaces_same_source(tmp_path: Path) -> None:
    book = LabelBook("s", 10)
    book.add(1, FeatureLabel(source="llm", text="a", model="m"))
    book.add(1, FeatureLabel(source="llm", text="b", model="m"))
    book.add(1, FeatureLabel(source="top-tokens", text="c"))
    assert [lab.text for lab in book.get(1).labels] == ["b", "c"]
    book.save_jsonl(tmp_path / "l.jsonl.gz")
    back = LabelBook.load_jsonl(tmp_path / "l.jsonl.gz", "s", 10)
    assert back.text(1) == "b"
    assert back.text(2) == "latent 2 (unlabelled)"
    with pytest.raises(InputError, match="out of range"):
        back.get(10)


def test_neuronpedia_export_provider_mapping_and_errors(tmp_path: Path) -> None:
    batch = tmp_path / "explanations"
    batch.mkdir()
    rows = [
        {
            "modelId": "gemma-2-2b",
            "layer": "20-gemmascope-res-16k",
            "index": "5",
            "description": " dates and times",
            "explanationModelName": "gpt-4o-mini",
            "typeName": "oai_token-act-pair",
        },
        {"modelId": "gemma-2-2b", "layer": "20-gemmascope-res-16k", "index": "7", "description": "legal language"},
    ]
    with gzip.open(batch / "batch-0.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    recs = read_label_file(batch)
    assert [(r.latent, r.labels[0].text, r.labels[0].source) for r in recs] == [
        (5, "dates and times", "neuronpedia"),
        (7, "legal language", "neuronpedia"),
    ]
    assert recs[0].labels[0].model == "gpt-4o-mini"
    provider = tmp_path / "goodfire.json"
    provider.write_text(json.dumps({"0": "greetings", "12": "refusals"}))
    assert [(r.latent, r.labels[0].text, r.labels[0].source) for r in read_label_file(provider)] == [
        (0, "greetings", "provider"),
        (12, "refusals", "provider"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(InputError, match="record 1 is not a label"):
        read_label_file(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_label_file(tmp_path / "nope.json")


def test_best_label_weighs_concept_descriptions_by_fidelity() -> None:
    from saescope.labels import CONCEPT_MIN_FIDELITY, FeatureLabel, LatentLabels

    tokens = FeatureLabel(source="top-tokens", text="'.'")
    weak = FeatureLabel(source="concept", text="film review", score=CONCEPT_MIN_FIDELITY - 0.01)
    strong = FeatureLabel(source="concept", text="praise and enthusiasm", score=0.9)
    assert LatentLabels(latent=1, labels=[tokens, weak]).best() == "'.'"  # a weak description is never shown
    assert LatentLabels(latent=1, labels=[tokens, weak, strong]).best() == "praise and enthusiasm"
    assert LatentLabels(latent=1, labels=[weak]).best() == "latent 1 (unlabelled)"
    llm_low = FeatureLabel(source="llm", text="enthusiastic praise of acting", score=0.8, model="m")
    llm_high = llm_low.model_copy(update={"score": 0.95})
    assert LatentLabels(latent=1, labels=[tokens, strong, llm_low]).best() == "praise and enthusiasm"
    assert LatentLabels(latent=1, labels=[tokens, strong, llm_high]).best() == "enthusiastic praise of acting"
    provider = FeatureLabel(source="neuronpedia", text="positive sentiment")
    assert LatentLabels(latent=1, labels=[tokens, strong, provider]).best() == "positive sentiment"
