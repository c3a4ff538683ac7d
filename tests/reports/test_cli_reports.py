"""`--html` on the CLI's analysis commands: the path is checked before the work, and the page holds the
chart and the cards (what the browser shows is checked in test_html_reports.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import run


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, random_sae_dir: Path) -> Path:
    home = tmp_path_factory.mktemp("cli-reports") / "home"
    src = home.parent / "docs.jsonl"
    rows = [
        {
            "id": f"d{i}",
            "text": f"Review {i}: " + ("a wonderful, moving film" if i % 2 else "a dull, tiresome mess"),
            "tone": "good" if i % 2 else "bad",
            "year": 2000 + i % 4,
        }
        for i in range(40)
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(home, "ingest", "docs", str(src), "--id-column", "id")
    run(home, "embed", "docs", "--sae", str(random_sae_dir))
    return home


@pytest.mark.parametrize(
    "args",
    [
        ["diff", "docs", "--where-a", "tone == 'good'", "--where-b", "tone == 'bad'", "--min-support", "2"],
        ["diff", "docs", "--by", "tone", "--target", "good", "--min-support", "2"],
        ["trend", "docs", "--column", "year", "--min-support", "2"],
        ["correlations", "docs", "--min-cooc", "2"],
        ["retrieve", "docs", "", "--latents", "1,2,3"],
    ],
)
def test_html_report_is_written(embedded: Path, args: list[str]) -> None:
    page = embedded.parent / f"{args[0]}-{len(args)}.html"
    out = run(embedded, *args, "--html", str(page))
    assert f"wrote {page}" in out.stderr
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and text.count('class="card"') >= 1 and "saescope " + args[0] in text


def test_bad_html_path_is_refused_before_the_work(embedded: Path) -> None:
    for target in [embedded.parent / "missing" / "r.html", embedded.parent, Path("/proc/version")]:
        out = run(
            embedded,
            "diff",
            "docs",
            "--where-a",
            "tone == 'good'",
            "--where-b",
            "tone == 'bad'",
            "--html",
            str(target),
            check=False,
        )
        last = out.stderr.strip().splitlines()[-1]
        assert out.returncode == 2 and last.startswith("error:") and "Traceback" not in out.stderr, out.stderr
