"""Safe document selection: a small filter language over metadata columns, parsed with ``ast``, never evaluated.

Grammar (Python expression syntax, restricted)::

    expr     := expr and expr | expr or expr | not expr | ( expr ) | compare
    compare  := operand op operand [op operand ...]      op: == != < <= > >=
              | operand [not] in [literal, ...]
    operand  := column | literal
    column   := name | `any column name`
    literal  := 'text' | "text" | 12 | -3.5 | true | false | null

SQL habits are accepted: ``=`` for ``==``, ``<>`` for ``!=``, ``AND``/``OR``/``NOT``/``IN`` in any
case, ``TRUE``/``FALSE``/``NULL``. ``col == null`` (or ``col is null``) selects missing values,
``col != null`` (``col is not null``) present ones.
The text is parsed into a tree of :class:`Filter` nodes; only whitelisted AST node types are read,
and column names are looked up in a dict of the frame's columns, so no user text is ever executed
or used as an attribute name.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from saescope.errors import InputError, clip

MAX_EXPR_CHARS = 4000
MAX_DEPTH = 60
MAX_LIST = 10_000

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
Scalar: TypeAlias = str | int | float | bool | None

_OPS: dict[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FLIP: dict[CompareOp, CompareOp] = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_KEYWORDS = {
    "and": "and",
    "or": "or",
    "not": "not",
    "in": "in",
    "is": "is",
    "true": "True",
    "false": "False",
    "null": "None",
    "none": "None",
}
_BACKTICK_PREFIX = "_bq"


@dataclass(frozen=True)
class Column:
    """A reference to a metadata column."""

    name: str

    def __str__(self) -> str:
        return self.name if self.name.isidentifier() and self.name.lower() not in _KEYWORDS else f"`{self.name}`"


@dataclass(frozen=True)
class Value:
    """A literal: string, number, boolean or null."""

    value: Scalar

    def __str__(self) -> str:
        return "null" if self.value is None else repr(self.value)


Operand: TypeAlias = Column | Value


@dataclass(frozen=True)
class Compare:
    """``left op right``."""

    left: Operand
    op: CompareOp
    right: Operand

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class InList:
    """``column in [values]`` (or ``not in`` when ``negate``)."""

    column: Column
    values: tuple[Scalar, ...]
    negate: bool = False

    def __str__(self) -> str:
        vals = ", ".join(str(Value(v)) for v in self.values)
        return f"{self.column} {'not in' if self.negate else 'in'} [{vals}]"


@dataclass(frozen=True)
class And:
    parts: tuple[Filter, ...]

    def __str__(self) -> str:
        return " and ".join(f"({p})" if isinstance(p, Or) else str(p) for p in self.parts)


@dataclass(frozen=True)
class Or:
    parts: tuple[Filter, ...]

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Not:
    part: Filter

    def __str__(self) -> str:
        return f"not ({self.part})"


Filter: TypeAlias = Compare | InList | And | Or | Not
"""A parsed filter expression; ``str(f)`` gives back a normalised expression."""


def filter_columns(f: Filter) -> set[str]:
    """Names of the columns a filter reads."""
    if isinstance(f, Compare):
        return {o.name for o in (f.left, f.right) if isinstance(o, Column)}
    if isinstance(f, InList):
        return {f.column.name}
    if isinstance(f, Not):
        return filter_columns(f.part)
    return set().union(*(filter_columns(p) for p in f.parts))


def parse_filter(expr: str, columns: list[str] | None = None) -> Filter:
    """Parse a filter expression (see the module docstring) into a :class:`Filter` tree.

    When ``columns`` is given, column names are checked against it right away.

    Raises:
        InputError: the expression is empty, too long, not valid syntax, uses anything outside the
            grammar (calls, attributes, subscripts, arithmetic, dunder names, ...), or names an unknown column.
    """
    if not isinstance(expr, str):
        raise InputError(f"a filter must be a string, got {type(expr).__name__}")
    if not expr.strip():
        raise InputError("the filter is empty; omit it to select every document")
    if len(expr) > MAX_EXPR_CHARS:
        raise InputError(f"the filter is {len(expr)} characters long; the limit is {MAX_EXPR_CHARS}")
    source, quoted = _normalise(expr)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError(f"cannot parse filter {expr!r}: {exc.msg}. {_HINT}") from exc
    except (RecursionError, MemoryError, ValueError) as exc:
        raise InputError(f"cannot parse filter {expr!r}: too deeply nested or malformed") from exc
    try:
        result = _Converter(quoted).convert(tree.body, 0)
    except RecursionError as exc:
        raise InputError("the filter is too deeply nested") from exc
    if columns is not None:
        for name in sorted(filter_columns(result)):
            _resolve_column(name, columns)
    return result


def select_rows(meta: pd.DataFrame, expr: str | None) -> npt.NDArray[np.int64]:
    """Positions (0-based, ascending) of the rows of ``meta`` matching ``expr``; all rows when ``expr`` is None.

    Raises:
        InputError: the expression is empty or blank (pass None to select every row), invalid, names
            an unknown column (the message lists the columns), or compares a column with a value of
            an incompatible type.
    """
    if expr is None:
        return np.arange(len(meta), dtype=np.int64)
    f = parse_filter(expr)
    return np.flatnonzero(evaluate_filter(f, meta)).astype(np.int64)


def evaluate_filter(f: Filter, meta: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Boolean mask of the rows of ``meta`` that satisfy ``f``.

    Raises:
        InputError: an unknown column, or a comparison between incompatible types.
    """
    columns = [str(c) for c in meta.columns]
    lookup = {str(c): c for c in meta.columns}
    return _mask(f, meta, columns, lookup)


_HINT = "Example: model == 'gpt-4o' and length > 100 or category in ['fresh', 'rotten']; quote names with `back ticks`."


def _normalise(expr: str) -> tuple[str, dict[str, str]]:
    """Rewrite SQL habits into Python syntax and backticked names into placeholder identifiers.

    Works on a character scan that skips over string literals, so nothing inside quotes changes.
    """
    out: list[str] = []
    quoted: dict[str, str] = {}
    taken = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"":
            j = i + 1
            while j < n and expr[j] != ch:
                j += 2 if expr[j] == "\\" else 1
            out.append(expr[i : j + 1])
            i = j + 1
        elif ch == "`":
            j = expr.find("`", i + 1)
            if j < 0:
                raise InputError(f"unclosed back tick in filter {expr!r}")
            name = expr[i + 1 : j]
            if not name:
                raise InputError("empty `` column name in filter")
            k = len(quoted)
            placeholder = f"{_BACKTICK_PREFIX}{k}"
            while placeholder in taken:
                k += 1
                placeholder = f"{_BACKTICK_PREFIX}{k}_"
            taken.add(placeholder)
            quoted[placeholder] = name
            out.append(f" {placeholder} ")
            i = j + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            word = expr[i:j]
            out.append(_KEYWORDS.get(word.lower(), word))
            i = j
        elif ch == "=" and (i == 0 or expr[i - 1] not in "=!<>") and (i + 1 >= n or expr[i + 1] != "="):
            out.append("==")
            i += 1
        elif expr.startswith("<>", i):
            out.append("!=")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out), quoted


class _Converter:
    """Turns a whitelisted Python AST into :class:`Filter` nodes; anything else is an error."""

    def __init__(self, quoted: dict[str, str]) -> None:
        self.quoted = quoted

    def convert(self, node: ast.expr, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise InputError(f"the filter is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.convert(v, depth + 1) for v in node.values)
            return And(parts) if isinstance(node.op, ast.And) else Or(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.convert(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name | ast.Constant):
            raise InputError(
                f"{_describe(node, self.quoted)} is not a condition; compare it, e.g. `flag == true` or `x > 0`. {_HINT}"
            )
        raise InputError(f"{_describe(node, self.quoted)} is not allowed in a filter. {_HINT}")

    def _compare(self, node: ast.Compare) -> Filter:
        parts: list[Filter] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                col = self._operand(left)
                if not isinstance(col, Column):
                    raise InputError("the left side of `in` must be a column name")
                parts.append(InList(col, self._values(right), negate=isinstance(op, ast.NotIn)))
            elif isinstance(op, ast.Is | ast.IsNot):
                col = self._operand(left)
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise InputError("`is` / `is not` only work with null, e.g. `score is not null`")
                parts.append(Compare(col, "==" if isinstance(op, ast.Is) else "!=", Value(None)))
            elif type(op) in _OPS:
                a, b = self._operand(left), self._operand(right)
                sym = _OPS[type(op)]
                if isinstance(a, Value) and isinstance(b, Value):
                    raise InputError(
                        f"`{a} {sym} {b}` compares two literals, so it is true or false for every document; "
                        "a condition must name a column, e.g. `model == 'gpt-4o'`. Omit the filter to select every document."
                    )
                if isinstance(a, Value) and isinstance(b, Column):
                    parts.append(Compare(b, _FLIP[sym], a))
                else:
                    parts.append(Compare(a, sym, b))
            else:
                raise InputError(f"operator {type(op).__name__} is not allowed; use == != < <= > >= in, not in")
            left = right
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _operand(self, node: ast.expr) -> Operand:
        if isinstance(node, ast.Name):
            if node.id in self.quoted:
                return Column(self.quoted[node.id])
            if node.id.startswith("__"):
                raise InputError(f"name {node.id!r} is not allowed; quote real column names in `back ticks`")
            return Column(node.id)
        return Value(self._literal(node))

    def _literal(self, node: ast.expr) -> Scalar:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float | bool)):
            value: Scalar = node.value
            return value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        raise InputError(f"{_describe(node, self.quoted)} is not a column name or a literal. {_HINT}")

    def _values(self, node: ast.expr) -> tuple[Scalar, ...]:
        if not isinstance(node, ast.List | ast.Tuple | ast.Set):
            raise InputError("`in` needs a list of literals, e.g. category in ['a', 'b']")
        if len(node.elts) > MAX_LIST:
            raise InputError(f"an `in` list may hold at most {MAX_LIST} values")
        return tuple(self._literal(e) for e in node.elts)


def _describe(node: ast.AST, quoted: dict[str, str]) -> str:
    kinds = {
        ast.Call: "a function call",
        ast.Attribute: "attribute access",
        ast.Subscript: "indexing",
        ast.BinOp: "arithmetic",
        ast.Lambda: "a lambda",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment",
        ast.JoinedStr: "an f-string",
        ast.Starred: "unpacking",
        ast.Dict: "a dict",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.Await: "await",
    }
    if isinstance(node, ast.Name):
        return f"column {quoted.get(node.id, node.id)!r}"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    return kinds.get(type(node), f"a {type(node).__name__} expression")


def _resolve_column(name: str, columns: list[str]) -> str:
    if name in columns:
        return name
    folded = [c for c in columns if c.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(name, columns, n=3)
    shown = ", ".join(columns[:50]) + (f", ... ({len(columns)} in all)" if len(columns) > 50 else "")
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"unknown column {clip(name)!r}.{hint} Columns: {shown}. Quote names with spaces in `back ticks`.")


def _series(col: Column, meta: pd.DataFrame, columns: list[str], lookup: dict[str, Any]) -> pd.Series:
    return meta[lookup[_resolve_column(col.name, columns)]]


def _mask(f: Filter, meta: pd.DataFrame, columns: list[str], lookup: dict[str, Any]) -> npt.NDArray[np.bool_]:
    if isinstance(f, And):
        mask = np.ones(len(meta), dtype=bool)
        for p in f.parts:
            mask &= _mask(p, meta, columns, lookup)
        return mask
    if isinstance(f, Or):
        mask = np.zeros(len(meta), dtype=bool)
        for p in f.parts:
            mask |= _mask(p, meta, columns, lookup)
        return mask
    if isinstance(f, Not):
        return ~_mask(f.part, meta, columns, lookup)
    if isinstance(f, InList):
        s = _series(f.column, meta, columns, lookup)
        values = [v for v in f.values if v is not None]
        try:
            # A copy: pandas may hand out a read-only view, and a null in the list ORs into it.
            m: npt.NDArray[np.bool_] = np.array(s.isin(values), dtype=bool)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot test {f}: {exc}") from exc
        if any(v is None for v in f.values):
            m |= np.asarray(s.isna(), dtype=bool)
        return ~m if f.negate else m
    return np.array(_compare(f, meta, columns, lookup), dtype=bool)


def _compare(f: Compare, meta: pd.DataFrame, columns: list[str], lookup: dict[str, Any]) -> npt.NDArray[np.bool_]:
    left: Any = _series(f.left, meta, columns, lookup) if isinstance(f.left, Column) else f.left.value
    right: Any = _series(f.right, meta, columns, lookup) if isinstance(f.right, Column) else f.right.value
    if isinstance(f.right, Value) and f.right.value is None:
        if f.op not in ("==", "!="):
            raise InputError(f"{f}: null can only be compared with == or !=")
        missing = left.isna().to_numpy(dtype=bool) if isinstance(left, pd.Series) else np.full(len(meta), left is None)
        return missing if f.op == "==" else ~missing
    if isinstance(left, pd.Series) and isinstance(right, str) and pd.api.types.is_datetime64_any_dtype(left):
        right = _timestamp(right, left, f)
    try:
        result = _apply(left, f.op, right)
    except (TypeError, ValueError) as exc:
        dtype = left.dtype if isinstance(left, pd.Series) else type(left).__name__
        raise InputError(f"cannot evaluate {f}: column of type {dtype} and {right!r} are not comparable") from exc
    if isinstance(result, pd.Series):
        mask: npt.NDArray[np.bool_] = result.fillna(False).to_numpy(dtype=bool)
        return mask
    return np.full(len(meta), bool(result))


def _apply(left: Any, op: CompareOp, right: Any) -> Any:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _timestamp(text: str, series: pd.Series, f: Compare) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{f}: {text!r} is not a date; use e.g. '2024-05-01'") from exc
    tz = getattr(series.dt, "tz", None)
    if tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    return ts
