from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saescope.analyses import parse_filter, select_rows
from saescope.analyses.select import And, Column, Compare, InList, Not, Or, Value, filter_columns
from saescope.errors import InputError

META = pd.DataFrame(
    {
        "doc_id": ["d0", "d1", "d2", "d3", "d4"],
        "model": ["gpt-4o", "llama", "gpt-4o", None, "claude"],
        "length": [50, 150, 200, 10, 120],
        "category": ["fresh", "rotten", "rotten", "fresh", "other"],
        "score card": [1.0, 2.0, np.nan, 4.0, 5.0],
        "flag": [True, False, True, False, True],
        "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01"]),
    }
)


@pytest.mark.parametrize(
    ("expr", "rows"),
    [
        ("model == 'gpt-4o' and length > 100", [2]),
        ("model = 'gpt-4o' AND length > 100", [2]),
        ("category in ['fresh','rotten']", [0, 1, 2, 3]),
        ("category not in ('fresh',)", [1, 2, 4]),
        ("category IN ['other'] OR length <= 10", [3, 4]),
        ("not (length < 100)", [1, 2, 4]),
        ("NOT length < 100 and flag == true", [2, 4]),
        ("100 < length <= 150", [1, 4]),
        ("length >= 100 and (model == 'llama' or model == 'claude')", [1, 4]),
        ("`score card` > 1.5", [1, 3, 4]),
        ("`score card` is null", [2]),
        ("model IS NOT NULL and model != 'gpt-4o'", [1, 4]),
        ("model == null", [3]),
        ("model <> 'gpt-4o'", [1, 3, 4]),
        ("date >= '2024-03-01'", [2, 3, 4]),
        ("flag = FALSE", [1, 3]),
        ("length > -5.5", [0, 1, 2, 3, 4]),
        ('model == "gpt-4o"', [0, 2]),
        ("category == 'a = b AND c'", []),
        ("length > 0 and category == `category`", [0, 1, 2, 3, 4]),
        ("Length > 100", [1, 2, 4]),
    ],
)
def test_select_rows_valid(expr: str, rows: list[int]) -> None:
    got = select_rows(META, expr)
    assert got.tolist() == rows
    assert got.dtype == np.int64


def test_no_filter_selects_everything() -> None:
    assert select_rows(META, None).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("expr", ["", "  ", "\n\t"])
def test_blank_filter_is_an_error_not_everything(expr: str) -> None:
    with pytest.raises(InputError, match="the filter is empty; omit it to select every document"):
        select_rows(META, expr)


@pytest.mark.parametrize("expr", ["null", "NULL", "None", "(null)", "not null", "null == null", "true"])
def test_a_bare_literal_is_not_a_filter(expr: str) -> None:
    with pytest.raises(InputError):
        select_rows(META, expr)


@pytest.mark.parametrize(
    ("expr", "rows"),
    [
        ("model in [null]", [3]),
        ("model in [null, 'llama']", [1, 3]),
        ("model not in [null]", [0, 1, 2, 4]),
        ("model not in [null, 'gpt-4o']", [1, 4]),
        ("`score card` in [null, 4]", [2, 3]),
        ("length > 100 and model in [null, 'claude']", [4]),
        ("not model in [NULL]", [0, 1, 2, 4]),
    ],
)
def test_in_list_with_null_selects_missing_values(expr: str, rows: list[int]) -> None:
    assert select_rows(META, expr).tolist() == rows


def test_parse_filter_tree_and_round_trip() -> None:
    f = parse_filter("model == 'gpt-4o' and (length > 100 or `score card` in [1, 2])")
    assert f == And(
        (
            Compare(Column("model"), "==", Value("gpt-4o")),
            Or((Compare(Column("length"), ">", Value(100)), InList(Column("score card"), (1, 2)))),
        )
    )
    assert filter_columns(f) == {"model", "length", "score card"}
    assert parse_filter(str(f)) == f
    assert parse_filter("5 < length") == Compare(Column("length"), ">", Value(5))
    assert parse_filter("not flag == true") == Not(Compare(Column("flag"), "==", Value(True)))


def test_unknown_column_lists_the_columns() -> None:
    with pytest.raises(InputError) as err:
        select_rows(META, "lenght > 3")
    msg = str(err.value)
    assert "lenght" in msg and "Did you mean length" in msg and "score card" in msg
    with pytest.raises(InputError, match="unknown column"):
        parse_filter("nope == 1", columns=list(META.columns))


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "().__class__.__bases__[0].__subclasses__()",
        "model.__class__ == 1",
        "model.upper() == 'X'",
        "length[0] == 1",
        "exec('1') == 1",
        "eval('1+1') == 2",
        "getattr(model, 'x') == 1",
        "length + 1 > 2",
        "length ** 99999999 > 1",
        "lambda: 1",
        "(x := 1) == 1",
        "f'{model}' == 'x'",
        "b'x' == model",
        "[c for c in model] == 1",
        "{'a': 1} == model",
        "model if length else flag",
        "length > 1; import os",
        "__builtins__ == 1",
        "model",
        "1",
        "model in length",
        "model is 'x'",
        "'unterminated",
        "`unterminated",
        "length > 1 and",
        "model == 'x' \x00",
        "(" * 500 + "length > 1" + ")" * 500,
        "not " * 2000 + "length > 1",
        "length > 1 and " * 1000 + "length > 1",
        "x" * 5000,
        "",
    ],
)
def test_rejected_expressions(expr: str) -> None:
    with pytest.raises(InputError):
        select_rows(META, expr) if expr else parse_filter(expr)


def test_type_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match="not comparable"):
        select_rows(META, "model > 3")
    with pytest.raises(InputError, match="not a date"):
        select_rows(META, "date > 'yesterday-ish'")
    with pytest.raises(InputError, match="null"):
        select_rows(META, "length > null")


_WORDS = st.sampled_from(
    [
        "model",
        "length",
        "`score card`",
        "flag",
        "date",
        "category",
        "nope",
        "null",
        "true",
        "'gpt-4o'",
        "'2024-03-01'",
        "3",
        "-1.5",
        "1e308",
        "[null]",
        "['fresh', null]",
        "(",
        ")",
        "[",
        "]",
        ",",
        "==",
        "=",
        "!=",
        "<>",
        "<",
        ">=",
        "in",
        "not",
        "and",
        "or",
        "is",
        "IS NOT",
        "`",
        "'",
        "__class__",
        ".",
        "*",
    ]
)


@settings(max_examples=400, deadline=None)
@given(words=st.lists(_WORDS, max_size=12))
def test_any_filter_selects_rows_or_raises_input_error(words: list[str]) -> None:
    expr = " ".join(words)
    try:
        rows = select_rows(META, expr)
    except InputError:
        return
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0) and (len(rows) == 0 or rows[-1] < len(META))
    again = select_rows(META, str(parse_filter(expr)))  # the normalised form selects the same rows
    assert again.tolist() == rows.tolist()


@settings(max_examples=300, deadline=None)
@given(expr=st.text(max_size=60))
def test_any_text_parses_or_raises_input_error(expr: str) -> None:
    with contextlib.suppress(InputError):
        select_rows(META, expr)
