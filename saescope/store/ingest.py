"""Read documents from JSONL, CSV, parquet, a folder of .txt files or an inline list into a table.

Every problem found is reported together, with line numbers, and nothing is stored unless the
whole input is valid (or the caller asks to skip invalid rows, which are then listed).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd

from saescope.errors import InputError

MAX_DOC_CHARS = 2_000_000
MAX_REPORTED = 12
FORMATS = ("jsonl", "csv", "parquet", "txt")


@dataclass
class IngestOptions:
    """How to read a source."""

    text_column: str = "text"
    id_column: str | None = None
    """Column with stable document ids; when absent, ids are row numbers (0, 1, ...) in file order."""
    skip_invalid: bool = False
    """Skip empty, undecodable, malformed or oversized rows (they are listed) instead of failing."""
    max_doc_chars: int = MAX_DOC_CHARS
    format: str | None = None
    """jsonl, csv, parquet or txt (a folder); guessed from the path when omitted."""


@dataclass
class IngestReport:
    """What was read and what was skipped (only with ``skip_invalid``)."""

    n_docs: int = 0
    skipped: list[str] = field(default_factory=list)


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []
        self.count = 0

    def add(self, where: str, what: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append(f"{where}: {what}")

    def raise_if_any(self, hint: str = "") -> None:
        if not self.count:
            return
        more = f"\n  ... and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
        raise InputError(
            f"{self.source}: {self.count} problem(s), nothing was stored:\n  "
            + "\n  ".join(self.items)
            + more
            + (f"\n{hint}" if hint else "")
        )


def guess_format(path: Path) -> str:
    """The input format from the path: a folder is ``txt``; otherwise by extension.

    Raises:
        InputError: the extension is not one saescope reads.
    """
    if path.is_dir():
        return "txt"
    name = path.name.lower().removesuffix(".gz").removesuffix(".bz2")
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".tsv", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".txt", "txt"),
    ):
        if name.endswith(ext):
            return fmt
    raise InputError(f"cannot tell the format of {path.name}; pass format= one of {', '.join(FORMATS)}")


def read_documents(path: Path, options: IngestOptions | None = None) -> tuple[pd.DataFrame, IngestReport]:
    """Read a file or folder into a table with ``doc_id``, ``text`` and the metadata columns.

    Raises:
        InputError: the file is missing or unreadable, or has invalid rows (all listed with line
            numbers), duplicate ids, or no text column.
    """
    opts = options or IngestOptions()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    fmt = opts.format or guess_format(path)
    if fmt == "jsonl":
        rows = _jsonl_rows(path)
    elif fmt == "csv":
        rows = _csv_rows(path)
    elif fmt == "parquet":
        rows = _parquet_rows(path)
    elif fmt == "txt":
        rows = _txt_rows(path, opts)
        opts = replace(opts, id_column=opts.id_column or "id")
    else:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _build_table(str(path), rows, opts)


def documents_from_list(
    items: Sequence[str | Mapping[str, Any]], options: IngestOptions | None = None
) -> tuple[pd.DataFrame, IngestReport]:
    """Build the table from inline documents: strings, or dicts with the text column and metadata.

    Raises:
        InputError: as :func:`read_documents`.
    """
    rows: list[tuple[str, dict[str, Any] | str]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            rows.append((f"item {i}", {(options or IngestOptions()).text_column: item}))
        elif isinstance(item, Mapping):
            rows.append((f"item {i}", dict(item)))
        else:
            rows.append((f"item {i}", f"expected a string or an object, got {type(item).__name__}"))
    return _build_table("inline documents", rows, options or IngestOptions())


def _open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing ``.gz`` and ``.bz2`` transparently."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if name.endswith(".bz2"):
        return cast(IO[bytes], bz2.open(path, "rb"))
    return path.open("rb")


# A row is (where, record) or (where, error message).
Row = tuple[str, "dict[str, Any] | str"]


def _decode_lines(path: Path) -> Iterable[tuple[int, str | None, str]]:
    """Yield (line number, text or None when undecodable, error) for each line of a UTF-8 file."""
    with _open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield n, raw.decode("utf-8"), ""
            except UnicodeDecodeError as exc:
                yield n, None, f"invalid UTF-8 at byte {exc.start} of the line"


def _jsonl_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    for n, line, err in _decode_lines(path):
        where = f"line {n}"
        if line is None:
            rows.append((where, err))
            continue
        if not line.strip():
            continue
        if n == 1:
            line = line.lstrip("\ufeff")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((where, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            rows.append((where, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        rows.append((where, obj))
    return rows


def _csv_rows(path: Path) -> list[Row]:
    with _open_binary(path) as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: invalid UTF-8 at line {line} (byte {exc.start}); nothing was stored. "
            "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from exc
    tsv = path.name.lower().removesuffix(".gz").removesuffix(".bz2").endswith(".tsv")
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab if tsv else csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[Row] = []
    try:
        header = next(reader)
    except StopIteration:
        return rows
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV header: {exc}") from exc
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise InputError(f"{path}: duplicate column names in the header: {header}")
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append((f"line {start}", f"malformed CSV ({exc})"))
            continue
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        where = f"line {start}"
        if len(values) != len(header):
            rows.append((where, f"has {len(values)} fields, the header has {len(header)}"))
            continue
        rows.append((where, dict(zip(header, values, strict=True))))
    return rows


def _parquet_rows(path: Path) -> list[Row]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
    return [(f"row {i}", rec) for i, rec in enumerate(frame.to_dict("records"))]


def _txt_rows(path: Path, opts: IngestOptions) -> list[Row]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise InputError(f"{path}: no .txt files found")
    rows: list[Row] = []
    base = path.parent if path.is_file() else path
    for f in files:
        rel = str(f.relative_to(base).with_suffix(""))
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            rows.append((rel, f"invalid UTF-8 at byte {exc.start}"))
            continue
        rows.append((rel, {opts.text_column: text, opts.id_column or "id": rel}))
    return rows


def _build_table(source: str, rows: list[Row], opts: IngestOptions) -> tuple[pd.DataFrame, IngestReport]:
    problems = _Problems(source)
    report = IngestReport()
    records: list[dict[str, Any]] = []
    id_col = opts.id_column
    seen_columns: set[str] = set()
    for where, rec in rows:
        if isinstance(rec, str):
            _problem(problems, report, opts, where, rec)
            continue
        seen_columns.update(rec)
        if opts.text_column not in rec:
            _problem(problems, report, opts, where, f"no {opts.text_column!r} field")
            continue
        text = rec[opts.text_column]
        if not isinstance(text, str):
            _problem(problems, report, opts, where, f"{opts.text_column!r} is {type(text).__name__}, not text")
            continue
        if not text.strip():
            _problem(problems, report, opts, where, "empty or whitespace-only document")
            continue
        if len(text) > opts.max_doc_chars:
            _problem(
                problems,
                report,
                opts,
                where,
                f"document has {len(text):,} characters, over the limit of {opts.max_doc_chars:,}",
            )
            continue
        records.append({"_where": where, **rec})
    if not records and not problems.count:
        raise InputError(f"{source}: no documents found")
    if rows and all(isinstance(r, dict) and opts.text_column not in r for _, r in rows):
        cols = sorted(seen_columns)
        raise InputError(
            f"{source}: no column {opts.text_column!r}; available columns: {cols}. "
            "Choose the text column with text_column= (CLI: --text-column)."
        )
    problems.raise_if_any("Fix these rows, or pass skip_invalid (CLI: --skip-invalid) to drop them.")
    if not records:
        raise InputError(f"{source}: every row was invalid; nothing to store")
    frame = pd.DataFrame.from_records(records)
    where = frame.pop("_where")
    if id_col is not None:
        if id_col not in frame.columns:
            raise InputError(f"{source}: no id column {id_col!r}; available columns: {sorted(frame.columns)}")
        missing = frame[id_col].isna()
        if missing.any():
            raise InputError(f"{source}: {int(missing.sum())} row(s) have no {id_col!r}, e.g. {where[missing].iloc[0]}")
        ids = frame.pop(id_col).map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    else:
        ids = pd.Series([str(i) for i in range(len(frame))])
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        first = {v: list(where[dup.index[dup == v]])[:3] for v in list(dict.fromkeys(dup))[:MAX_REPORTED]}
        raise InputError(
            f"{source}: {dup.nunique()} duplicate document id(s), nothing was stored: "
            + "; ".join(f"{k!r} at {', '.join(v)}" for k, v in first.items())
        )
    text = frame.pop(opts.text_column).astype(str)
    if "doc_id" in frame.columns:
        frame = frame.rename(columns={"doc_id": "doc_id_original"})
    if "text" in frame.columns:
        frame = frame.rename(columns={"text": "text_original"})
    out = pd.concat([pd.DataFrame({"doc_id": ids.values, "text": text.values}), _clean_metadata(frame)], axis=1)
    report.n_docs = len(out)
    return out, report


def _problem(problems: _Problems, report: IngestReport, opts: IngestOptions, where: str, what: str) -> None:
    if opts.skip_invalid:
        report.skipped.append(f"{where}: {what}")
    else:
        problems.add(where, what)


def _clean_metadata(frame: pd.DataFrame) -> pd.DataFrame:
    """Make metadata storable in parquet: nested values become JSON, numeric-looking text numbers."""
    out = frame.reset_index(drop=True).copy()
    for col in out.columns:
        series = out[col]
        if series.map(lambda v: isinstance(v, dict | list)).any():
            out[col] = series.map(lambda v: json.dumps(v) if isinstance(v, dict | list) else v)
            series = out[col]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            non_null = series.dropna()
            if len(non_null) and non_null.map(lambda v: isinstance(v, str)).all():
                numeric = pd.to_numeric(non_null, errors="coerce")
                if numeric.notna().all() and non_null.str.strip().ne("").all():
                    out[col] = pd.to_numeric(series, errors="coerce")
                    continue
            if not non_null.map(lambda v: isinstance(v, str | int | float | bool)).all() or (
                non_null.map(type).nunique() > 1
            ):
                out[col] = series.map(lambda v: None if v is None or v != v else str(v))
    return out
