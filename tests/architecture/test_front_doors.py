"""The MCP server and the CLI take their arguments, defaults and help from the same request types."""

from __future__ import annotations

import argparse
from typing import Any, get_type_hints

import pytest
from mcp import Client

from saescope.cli import build_parser
from saescope.cli_options import request_from
from saescope.ops.requests import DiffRequest, Request, operator_only
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from saescope.server.tools import TOOLS

pytestmark = pytest.mark.anyio


def _request_of(fn: Any) -> type[Request] | None:
    req: type[Request] | None = get_type_hints(fn).get("req")
    return req


async def test_tool_arguments_are_the_request_fields(tmp_path: Any) -> None:
    server = build_server(ServerConfig(home=tmp_path / "home", roots=[tmp_path]))
    async with Client(server) as client:
        listed = {t.name: t.input_schema for t in (await client.list_tools()).tools}
    assert set(listed) == {fn.__name__ for fn in TOOLS}
    for fn in TOOLS:
        schema = listed[fn.__name__]
        req = _request_of(fn)
        fields = {} if req is None else {n: f for n, f in req.model_fields.items() if not operator_only(f)}
        assert set(schema.get("properties", {})) == set(fields), fn.__name__
        assert set(schema.get("required", [])) == {n for n, f in fields.items() if f.is_required()}, fn.__name__
        for name, field in fields.items():
            prop = schema["properties"][name]
            assert prop.get("description") == field.description, (fn.__name__, name)
            if not field.is_required():
                assert prop.get("default") == field.get_default(call_default_factory=True), (fn.__name__, name)


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_cli_defaults_are_the_request_defaults() -> None:
    parser = build_parser()
    args = parser.parse_args(["diff", "runs", "--where-a", "m == 'x'", "--where-b", "m == 'y'"])
    assert request_from(args, DiffRequest) == DiffRequest(dataset_a="runs", where_a="m == 'x'", where_b="m == 'y'")
    args = parser.parse_args(["diff", "runs", "other", "--top-k", "7", "--rank-by", "p", "--paired-by", "k"])
    req = request_from(args, DiffRequest, mode="paired")
    assert (req.dataset_b, req.top_k, req.rank_by, req.pair_key) == ("other", 7, "p", "k")
    help_text = _subparser(parser, "diff").format_help()
    assert "(default: 20)" in help_text and DiffRequest.model_fields["min_support"].description in " ".join(
        help_text.split()
    )


def test_cli_refuses_out_of_bounds_values_as_the_server_does(capsys: pytest.CaptureFixture[str]) -> None:
    from saescope.cli import main

    code = main(["diff", "runs", "--where-a", "a == 1", "--where-b", "a == 2", "--top-k", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "top_k" in err and "greater than or equal to 1" in err
