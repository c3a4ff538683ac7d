"""The hostile-input corpus through the real CLI (``python -m saescope.cli`` subprocesses).

Every case must end with exit code 2 and a line starting ``error:`` that names the problem, no traceback,
and no stored file changed. Each case runs on its own copy of a small embedded data root, several at a time,
so that a case that did write something is caught by name.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.conftest import TIMEOUT_S, World, cli
from tests.hostile.corpus import CliCase, changes, cli_cases, copy_home, fill, snapshot

CASES = cli_cases()
WORKERS = 3


@dataclass(frozen=True)
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    changed: list[str]
    seconds: float


def run_case(world: World, case: CliCase) -> Outcome:
    home = copy_home(world.home, world.runs / case.name / "home")
    before = snapshot(home)
    argv = [str(a) for a in fill(case.argv, world.places)]
    start = time.monotonic()
    try:
        out = cli(home, *argv, cwd=Path(world.places["tmp"]))
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout, stderr = None, str(exc.stdout or ""), f"timed out after {TIMEOUT_S}s: {exc.stderr!r}"
    return Outcome(code, stdout, stderr, changes(before, snapshot(home)), time.monotonic() - start)


def _selected(session: pytest.Session) -> set[str]:
    names = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.module.__name__ == __name__ and callspec is not None and "case" in callspec.params:  # type: ignore[attr-defined]
            names.add(callspec.params["case"].name)
    return names


@pytest.fixture(scope="module")
def outcomes(world: World, request: pytest.FixtureRequest) -> dict[str, Outcome]:
    """Every selected case's outcome, run ``WORKERS`` at a time (each on its own data root)."""
    wanted = [c for c in CASES if c.name in _selected(request.session)]
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip([c.name for c in wanted], pool.map(lambda c: run_case(world, c), wanted), strict=True))


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]
)
def test_cli_refuses_clearly_and_stores_nothing(case: CliCase, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[case.name]
    shown = f"exit {out.code} after {out.seconds:.1f}s\nstdout: {out.stdout[-1500:]}\nstderr: {out.stderr[-3000:]}"
    assert out.code == 2, shown
    assert "Traceback" not in out.stderr, shown
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors, shown
    assert re.search(case.expect, out.stderr, re.IGNORECASE | re.DOTALL), f"expected /{case.expect}/\n{shown}"
    assert len(out.stderr) < 20_000, "the error echoes a huge input back"
    assert not out.changed, f"stored files changed: {out.changed[:10]}"
