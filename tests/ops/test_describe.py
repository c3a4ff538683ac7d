"""describe_latents on real embeddings: descriptions are measured, saved as concept labels, and shown only
when their fidelity is high enough; vocabulary files are checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from saescope import ops
from saescope.errors import InputError
from saescope.labels import CONCEPT_MIN_FIDELITY
from saescope.ops.describe import parse_vocabulary, shipped_vocabulary
from saescope.ops.requests import DescribeLatentsRequest
from saescope.workspace import Workspace
from tests.ops.helpers import matrix
from tests.server.shared import Data


@pytest.fixture
def ws(data: Data, tmp_path: Path) -> Workspace:
    """A copy of the session data, so the saved labels do not leak into other tests."""
    root = tmp_path / "home"
    shutil.copytree(data.root, root)
    return Workspace(root, device="cpu")


def test_describe_saves_measured_concept_labels(ws: Workspace, data: Data) -> None:
    res = ops.describe_latents(ws, DescribeLatentsRequest.build(dataset="reviews", min_fires=3, top_k=50))
    assert res.n_docs == 48 and res.n_concepts == len(shipped_vocabulary().texts)
    assert 0 < res.n_described <= res.n_tested
    fid = [d.fidelity for d in res.top]
    assert fid == sorted(fid, reverse=True) and all(0.0 <= f <= 1.0 for f in fid)
    assert res.n_shown == sum(d.fidelity >= CONCEPT_MIN_FIDELITY for d in res.top) or res.n_described > 50
    emb = ws.dataset("reviews").embedding()
    book = ws.labels(ws.sae_of(emb))
    M = matrix(data)
    for d in res.top[:5]:
        rec = book.get(d.latent)
        concept = [lab for lab in rec.labels if lab.source == "concept"]
        assert [lab.text for lab in concept] == [d.description] and concept[0].model == "probe:reviews"
        assert concept[0].score == pytest.approx(d.fidelity, abs=1e-4)
        shown = book.text(d.latent)
        assert (shown == d.description) == (d.fidelity >= CONCEPT_MIN_FIDELITY)
        assert int((M[:, d.latent].toarray() > 0).sum()) >= 3
    assert "described on reviews" in res.to_text()


def test_describe_with_a_vocabulary_file_and_bad_ones(ws: Workspace, tmp_path: Path) -> None:
    vocab = tmp_path / "v.txt"
    vocab.write_text("# mine\nsentiment: praise\ncriticism of a film\n\nsentiment: praise\n", encoding="utf-8")
    res = ops.describe_latents(ws, DescribeLatentsRequest.build(dataset="reviews", vocabulary=str(vocab), min_fires=3))
    assert res.n_concepts == 2 and {d.description for d in res.top} <= {"praise", "criticism of a film"}
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 talk\n".encode("latin-1"))
    for path, needle in ((empty, "no description"), (latin1, "cannot read"), (tmp_path / "missing.txt", "not a file")):
        with pytest.raises(InputError, match=needle):
            ops.describe_latents(ws, DescribeLatentsRequest.build(dataset="reviews", vocabulary=str(path)))
    with pytest.raises(InputError, match="at least 20"):
        ops.describe_latents(ws, DescribeLatentsRequest.build(dataset="inject"))


def test_parse_vocabulary_keeps_categories_and_drops_repeats() -> None:
    v = parse_vocabulary("tone: sarcasm\nsarcasm\nlanguage: French\nnot a category: text\n", "t")
    assert v.texts == ["sarcasm", "French", "not a category: text"] and v.categories == ["tone", "language", ""]
    shipped = shipped_vocabulary()
    assert len(shipped.texts) > 200 and len(set(shipped.texts)) == len(shipped.texts)
    assert {c for c in shipped.categories} >= {"sentiment", "tone", "format", "topic", "language", "programming"}
    assert np.all([t.strip() == t and t for t in shipped.texts])
