"""Case studies: the per-latent findings (frequencies, detector matches, artefact flags), the marked example,
the report text; and one tiny real run on the shared answers (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from evals import case_studies as cs
from evals.detectors import NAMES
from evals.real_responses import DATA_DIR
from saescope.ops.reports import CardDoc as Doc
from saescope.ops.reports import Chart, LatentCard, Report, Segment


def _data() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """40 answers of two models. Latent 0 fires exactly on bold answers (all of model b's); latent 1 on the
    20 longest answers; latent 2 on every other answer (matches nothing)."""
    n = 40
    models = np.array(["a"] * 20 + ["b"] * 20)
    flags = np.zeros((n, len(NAMES)), bool)
    flags[20:, NAMES.index("bold")] = True
    chars = np.arange(n) * 10 + 100
    rng = np.random.default_rng(0)
    chars = chars[rng.permutation(n)]
    X = np.zeros((n, 3))
    X[20:, 0] = 1.0
    X[chars >= np.sort(chars)[20], 1] = 2.0
    X[::2, 2] = 0.5
    return sp.csr_matrix(X), flags, chars, models


def test_findings_frequencies_matches_and_artefacts() -> None:
    X, flags, chars, models = _data()
    rows = [(0, "'**'", "z 5"), (1, "'and'", "z 3"), (2, "'the'", "z 1")]
    found = cs.findings_for(X, flags, chars, models, ["a", "b"], rows, verified=["bold"])
    bold, long_, none = found
    assert bold.freqs == {"a": 0.0, "b": 1.0} and bold.detector == "bold" and bold.mcc == pytest.approx(1.0)
    assert bold.verified and "formatting (bold)" in bold.notes
    assert long_.length_rho > 0.8 and any(n.startswith("length artefact") for n in long_.notes)
    assert long_.freqs == {
        "a": float((X[:20, 1].toarray() > 0).mean()),
        "b": float((X[20:, 1].toarray() > 0).mean()),
    }
    assert none.freqs == {"a": 0.5, "b": 0.5} and none.detector is None and not none.verified
    assert abs(none.length_rho) < cs.LENGTH_RHO or none.notes


def _report() -> Report:
    doc = Doc(
        side="a",
        doc_id="d1",
        activation=1.0,
        segments=[
            Segment(text="Here is "),
            Segment(text="**", activation=2.0),
            Segment(text="bold"),
            Segment(text="**", activation=1.0),
            Segment(text=" text."),
        ],
        cut_before=False,
        cut_after=False,
    )
    card = LatentCard(latent=7, label="'**'", frequencies=[], docs=[doc])
    return Report(
        kind="diff",
        title="t",
        command="c",
        dataset="d",
        embedding={},
        summary="",
        chart=Chart(kind="bars", title="", axis=""),
        cards=[card],
    )


def test_example_marks_the_firing_tokens() -> None:
    assert cs.example_text(_report(), 7) == "…Here is «**»bold«**» text.…"
    assert cs.example_text(_report(), 8) == ""


def test_render_says_what_matches_and_what_is_missed() -> None:
    X, flags, chars, models = _data()
    found = cs.findings_for(
        X, flags, chars, models, ["a", "b"], [(0, "'**'", "z 5"), (2, "'the'", "z 1")], ["bold", "header"]
    )
    study = cs.Study("Title", "Question?", ["a", "b"], "x.html", ["bold", "header"], found, "summary line")
    text = cs.render([study], ["# Head"])
    assert "## Title" in text and "[x.html](x.html)" in text
    assert "bold (MCC 1.00, verified)" in text
    assert "Rule-verified differences no top latent matches: header." in text
    assert "of the top 2 latents, 1 match a detector, 1 a rule-verified difference (bold)" in text


@pytest.mark.slow
@pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"the shared AlpacaEval answers are not at {DATA_DIR}")
def test_end_to_end_on_a_tiny_sample(tmp_path: Path) -> None:
    """4 instructions x 21 models through the real reader and SAE: both studies, their HTML pages, the report."""
    out = tmp_path / "out"
    assert cs.main(["--home", str(tmp_path / "home"), "--out", str(out), "--instructions", "4", "--top", "3"]) == 0
    text = (out / "report.md").read_text()
    assert "## What changed across OpenAI models" in text and text.count("## What sets") == 3
    for page in ("openai-trend.html", *(f"family-{m}.html" for m in cs.FAMILIES)):
        assert (out / page).read_text().startswith("<!doctype html>")


def test_pick_sets_length_artefacts_aside_beyond_the_top() -> None:
    def finding(latent: int, length: bool) -> cs.LatentFinding:
        notes = ["length artefact (rho +0.50 with length)"] if length else []
        return cs.LatentFinding(latent, "x", "z", {}, None, 0.0, False, 0.5 if length else 0.0, notes=notes)

    found = [finding(0, True), finding(1, False), finding(2, True), finding(3, False), finding(4, False)]
    first, beyond = cs.pick(found, 2)
    assert [f.latent for f in first] == [0, 1] and [f.latent for f in beyond] == [3, 4]
    study = cs.Study("T", "Q", [], "x.html", [], first, "s", beyond)
    assert "Beyond length: the next 2 latents" in cs.render([study], [])
