"""The house's shape, checked on the source: floors import only downwards, the front doors stay thin, and
every request field carries the help text that the CLI and the MCP schemas show."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from saescope.ops import requests

PACKAGE = Path(__file__).resolve().parents[2] / "saescope"

# What each floor may not import (module prefixes), at module level or inside functions.
FORBIDDEN = {
    "analyses": (
        "torch",
        "transformers",
        "sae_lens",
        "saescope.store",
        "saescope.embed",
        "saescope.workspace",
        "saescope.ops",
        "saescope.llm",
        "saescope.server",
        "saescope.cli",
    ),
    "embed": ("saescope.store", "saescope.workspace", "saescope.ops", "saescope.server", "saescope.cli"),
    "store": ("saescope.embed", "saescope.workspace", "saescope.ops", "saescope.server", "saescope.cli"),
    "llm": ("saescope.ops", "saescope.server", "saescope.cli", "saescope.workspace"),
    "ops": ("saescope.server", "saescope.cli"),
}
FRONT_DOORS = ("server", "cli.py", "cli_options.py")
MAX_FRONT_DOOR_FUNCTION_LINES = 60


def _files(part: str) -> Iterator[Path]:
    where = PACKAGE / part
    yield from sorted(where.rglob("*.py")) if where.is_dir() else [where]


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_floors_import_only_downwards(floor: str) -> None:
    bad = [
        f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        for path in _files(floor)
        for line, name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[floor])
    ]
    assert not bad, bad


def test_front_door_functions_stay_short() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for part in FRONT_DOORS
        for path in _files(part)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FRONT_DOOR_FUNCTION_LINES
    ]
    assert not long, long


def test_every_request_field_has_help() -> None:
    types = [t for t in vars(requests).values() if isinstance(t, type) and issubclass(t, requests.Request)]
    assert len(types) > 15
    missing = [f"{t.__name__}.{name}" for t in types for name, f in t.model_fields.items() if not f.description]
    assert not missing, missing
