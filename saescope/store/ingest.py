"""Read documents from JSONL, CSV, parquet, a folder of .txt files or an inline list into a table.

Every problem found is reported together, with line numbers, and nothing is stored unless the
whole input is valid (or the caller asks to skip invalid rows, which are then listed).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import json
import math
import os
import stat
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import numpy as np
import pandas as pd

from saescope.errors import InputError, clip

MAX_DOC_CHARS = 2_000_000
MAX_REPORTED = 12
FORMATS = ("jsonl", "csv", "parquet", "txt")
MAX_NESTING = 64
"""Deepest nesting of lists and objects accepted in a metadata value."""
MAX_NODES = 1_000_000
"""Most list items and object fields accepted in one row's metadata, all nesting levels together."""
_READ_CHUNK = 1 << 20
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
    max_bytes: int | None = None
    """Most bytes read from the source after decompression (all files of a folder together; for
    parquet, the uncompressed column data); None: no limit. Reading stops with an
    :class:`~saescope.errors.InputError` as soon as it is passed, so a small ``.gz`` that expands to
    gigabytes is refused without being expanded."""
    roots: tuple[Path, ...] | None = None
    """Folders the files read must lie in, checked on each opened descriptor (not only on the path given),
    so a symbolic link swapped in between a check and the open cannot lead outside; None: anywhere."""


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

    Only regular files are read (never FIFOs, devices or sockets), ``.gz``/``.bz2`` are decompressed
    on the fly, and ``options.max_bytes`` bounds the decompressed bytes read.

    Raises:
        InputError: the file is missing, not a regular file, unreadable, corrupt, over ``max_bytes``,
            or has invalid rows (all listed with line numbers), duplicate ids, or no text column.
    """
    opts = options or IngestOptions()
    _check_options(opts)
    try:
        if not path.exists():
            raise InputError(f"{str(path)[:300]} does not exist")
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise _not_regular(path, mode)  # before its name is taken for a format (checked again when opened)
        fmt = opts.format or guess_format(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{str(path)[:300]} cannot be read ({reason}); check the path") from None
    budget = _Budget(str(path), opts.max_bytes, opts.roots)
    if fmt == "jsonl":
        rows = _jsonl_rows(path, budget, _max_line_bytes(opts))
    elif fmt == "csv":
        rows = _csv_rows(path, budget)
    elif fmt == "parquet":
        rows = _parquet_rows(path, budget)
    elif fmt == "txt":
        id_key = opts.id_column or ("id" if opts.text_column != "id" else "path")
        opts = replace(opts, id_column=id_key)
        rows = _txt_rows(path, opts, budget)
    else:  # pragma: no cover - _check_options refuses other formats
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _build_table(str(path), rows, opts)


def documents_from_list(
    items: Sequence[str | Mapping[str, Any]], options: IngestOptions | None = None
) -> tuple[pd.DataFrame, IngestReport]:
    """Build the table from inline documents: strings, or dicts with the text column and metadata.

    Raises:
        InputError: as :func:`read_documents`.
    """
    opts = options or IngestOptions()
    _check_options(opts)
    rows: list[tuple[str, dict[str, Any] | str]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            rows.append((f"item {i}", {opts.text_column: item}))
        elif isinstance(item, Mapping):
            rows.append((f"item {i}", dict(item)))
        else:
            rows.append((f"item {i}", f"expected a string or an object, got {type(item).__name__}"))
    return _build_table("inline documents", rows, opts)


def _check_options(opts: IngestOptions) -> None:
    """Refuse options that cannot work, before anything is read.

    Raises:
        InputError: a column name is empty, the id and text columns are the same, or a limit is not a
            positive whole number.
    """
    if not isinstance(opts.text_column, str) or not opts.text_column:
        raise InputError(f"text_column must be a field name, got {clip(opts.text_column)!r}")
    if opts.id_column is not None:
        if not isinstance(opts.id_column, str) or not opts.id_column:
            raise InputError(f"id_column must be a field name or omitted, got {opts.id_column!r}")
        if opts.id_column == opts.text_column:
            raise InputError(
                f"id_column and text_column are both {clip(opts.text_column)!r}: a document's id cannot be its text. "
                "Name the field with ids as id_column (CLI: --id-column), or omit it to number the documents 0, 1, ..."
            )
    for name in ("max_doc_chars", "max_bytes"):
        value = getattr(opts, name)
        if value is None and name == "max_bytes":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive whole number, got {value!r}")
    if opts.format is not None and opts.format not in FORMATS:
        raise InputError(f"unknown format {opts.format!r}; choose one of {', '.join(FORMATS)}")


# --- reading bytes safely ---------------------------------------------------------------------------


class _Budget:
    """Bytes read from one source so far, against an optional limit."""

    def __init__(self, source: str, max_bytes: int | None, roots: Sequence[Path] | None = None) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.roots = roots
        """Where the files of the source may lie (see :attr:`IngestOptions.roots`)."""
        self.used = 0

    def take(self, n: int) -> None:
        """Count ``n`` more bytes.

        Raises:
            InputError: the limit is passed.
        """
        self.check(n)
        self.used += n

    def check(self, n: int) -> None:
        """Refuse now if ``n`` more bytes would pass the limit.

        Raises:
            InputError: they would.
        """
        if self.max_bytes is not None and self.used + n > self.max_bytes:
            raise InputError(
                f"{self.source}: the input is larger than the limit of {self.max_bytes:,} bytes "
                "(counted after decompression); nothing was stored. Split it into smaller files, "
                "or raise the limit (max_bytes)."
            )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path: Path, mode: int) -> InputError:
    kind = _kind(mode)
    if stat.S_ISDIR(mode):
        return InputError(
            f"{path} is a folder; only format txt reads a folder (of .txt files). Give a file, "
            "or use format txt (CLI: --format txt)."
        )
    return InputError(
        f"{path} is {kind}, not a regular file; documents are read only from regular files. "
        "Save the data to a file first."
    )


def open_regular(path: Path, roots: Sequence[Path] | None = None) -> BinaryIO:
    """Open ``path`` for reading bytes, if it is a regular file (symbolic links are followed) that lies, as
    opened, under one of ``roots`` (when given).

    The file is opened without blocking and checked on the open descriptor, so a FIFO never hangs
    the caller, a device such as ``/dev/zero`` is never read, and a path swapped for a symbolic link
    after it was checked is still caught.

    Raises:
        InputError: it cannot be opened, is a folder, FIFO, device or socket, or lies outside ``roots``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode) from exc
        raise InputError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        if roots is not None:
            _check_under(fd, path, roots)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _opened_path(fd: int, path: Path) -> Path:
    """The real path of the file open on ``fd`` (from /proc where there is one)."""
    try:
        return Path(f"/proc/self/fd/{fd}").readlink()
    except OSError:
        real = Path(os.path.realpath(path))
        opened, now = os.fstat(fd), real.stat()
        if (opened.st_dev, opened.st_ino) != (now.st_dev, now.st_ino):
            raise InputError(f"{path} changed while it was being opened; try again") from None
        return real


def _check_under(fd: int, path: Path, roots: Sequence[Path]) -> None:
    real = _opened_path(fd, path)
    if not any(real == r or r in real.parents for r in roots):
        raise InputError(
            f"{path} resolves to {real}, outside the allowed roots {[str(r) for r in roots]}; nothing was read"
        )


def _compression(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".bz2"):
        return "bzip2"
    return None


@contextlib.contextmanager
def open_source(path: Path, roots: Sequence[Path] | None = None) -> Iterator[IO[bytes]]:
    """The bytes of a regular file, decompressing ``.gz`` and ``.bz2`` on the fly.

    Read errors and corrupt or truncated compressed data raise :class:`InputError` while reading.

    Raises:
        InputError: as :func:`open_regular`, or the data is corrupt, truncated or unreadable.
    """
    raw = open_regular(path, roots)
    kind = _compression(path)
    try:
        if kind == "gzip":
            fh: IO[bytes] = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        elif kind == "bzip2":
            fh = cast(IO[bytes], bz2.BZ2File(raw, "rb"))
        else:
            fh = raw
        with fh:
            yield fh
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        if kind is None:
            raise InputError(f"{path}: cannot be read ({exc}); nothing was stored") from exc
        tool = "gzip" if kind == "gzip" else "bzip2"
        raise InputError(
            f"{path}: the {kind} data is corrupt or truncated ({exc}); nothing was stored. "
            f"Check it with `{tool} -t {path.name}`, or re-create the file."
        ) from exc
    finally:
        raw.close()


def _read_all(path: Path, budget: _Budget, cap: int | None = None) -> tuple[bytes, bool]:
    """The (decompressed) bytes of ``path``, and whether there were more than ``cap``."""
    parts: list[bytes] = []
    got = 0
    with open_source(path, budget.roots) as fh:
        while True:
            want = _READ_CHUNK if cap is None else min(_READ_CHUNK, cap + 1 - got)
            chunk = fh.read(want)
            if not chunk:
                return b"".join(parts), False
            budget.take(len(chunk))
            parts.append(chunk)
            got += len(chunk)
            if cap is not None and got > cap:
                return b"".join(parts)[:cap], True


def _max_line_bytes(opts: IngestOptions) -> int:
    """The longest JSON line read: room for a document at the limit, all escaped, plus metadata."""
    return opts.max_doc_chars * 6 + (64 << 20)


def _lines(path: Path, budget: _Budget, max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each line; ``None`` for a line over ``max_line`` bytes (skipped unread)."""
    with open_source(path, budget.roots) as fh:
        n = 0
        while True:
            raw = fh.readline(max_line + 1)
            if not raw:
                return
            budget.take(len(raw))
            n += 1
            if len(raw) > max_line and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(_READ_CHUNK)
                    budget.take(len(raw))
                yield n, None
                continue
            yield n, raw


# A row is (where, record) or (where, error message).
Row = tuple[str, "dict[str, Any] | str"]


def _jsonl_rows(path: Path, budget: _Budget, max_line: int) -> list[Row]:
    rows: list[Row] = []
    for n, raw in _lines(path, budget, max_line):
        where = f"line {n}"
        if raw is None:
            rows.append((where, f"longer than {max_line:,} bytes; split the record or shorten its document"))
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.append((where, f"invalid UTF-8 at byte {exc.start} of the line"))
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
        except RecursionError:
            rows.append((where, f"JSON nested too deeply to read (the limit is {MAX_NESTING} levels)"))
            continue
        except ValueError as exc:
            msg = str(exc)
            if "digits" in msg:
                msg = "a number has more than 4,300 digits; write it as a string"
            rows.append((where, f"not readable JSON ({msg})"))
            continue
        if not isinstance(obj, dict):
            rows.append((where, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        rows.append((where, obj))
    return rows


def _csv_rows(path: Path, budget: _Budget) -> list[Row]:
    raw, _ = _read_all(path, budget)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: invalid UTF-8 at line {line} (byte {exc.start}); nothing was stored. "
            "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from exc
    # No field can be longer than the whole text: lift csv's default cap of 131,072 characters, which
    # is below the document limit, so that long documents reach the document-length check.
    if csv.field_size_limit() <= len(text):
        csv.field_size_limit(len(text) + 1)
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


def _parquet_rows(path: Path, budget: _Budget) -> list[Row]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    with contextlib.ExitStack() as stack:
        if _compression(path) is None:
            source: Any = stack.enter_context(open_regular(path, budget.roots))
        else:
            data, _ = _read_all(path, budget)
            source = pa.BufferReader(data)
        try:
            pf = pq.ParquetFile(source)
            meta = pf.metadata
            if budget.max_bytes is not None:
                size = sum(
                    meta.row_group(g).column(c).total_uncompressed_size
                    for g in range(meta.num_row_groups)
                    for c in range(meta.num_columns)
                )
                budget.check(size)  # the batches below are counted as they are read
            batches = []
            for batch in pf.iter_batches(batch_size=256):
                budget.take(batch.nbytes)
                batches.append(batch)
            frame = pa.Table.from_batches(batches, schema=pf.schema_arrow).to_pandas()
        except InputError:
            raise
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
    return [(f"row {i}", rec) for i, rec in enumerate(frame.to_dict("records"))]


def _txt_rows(path: Path, opts: IngestOptions, budget: _Budget) -> list[Row]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        base = path
    else:
        files, base = [path], path.parent
    if not files:
        raise InputError(f"{path}: no .txt files found")
    rows: list[Row] = []
    # A UTF-8 character takes at most 4 bytes: a file over this is a document over the limit.
    cap = opts.max_doc_chars * 4 + 3
    for f in files:
        rel = str(f.relative_to(base).with_suffix(""))
        raw, over = _read_all(f, budget, cap)
        if over:
            rows.append((rel, f"file is over {cap:,} bytes, longer than the document limit of {opts.max_doc_chars:,}"))
            continue
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            rows.append((rel, f"invalid UTF-8 at byte {exc.start}"))
            continue
        rows.append((rel, {opts.text_column: text, opts.id_column or "id": rel}))
    return rows


# --- checking rows and building the table -----------------------------------------------------------


def read_file_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """All bytes of a regular file, ``.gz``/``.bz2`` decompressed, refusing more than ``max_bytes``.

    Raises:
        InputError: as :func:`open_source`, or the (decompressed) data is over ``max_bytes``.
    """
    data, _ = _read_all(path, _Budget(str(path), max_bytes))
    return data


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (valid in JSON escapes and Python, not in UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(text: str) -> str:
    """``text`` quoted and safe to print: lone surrogates and control characters escaped."""
    return ascii(text[:80])


def _row_problem(rec: dict[Any, Any]) -> str | None:
    """Why a record with a text field cannot be stored, or None."""
    for key, value in rec.items():
        if not isinstance(key, str):
            return f"field names must be text, got {key!r}"
        if has_surrogate(key):
            return (
                f"field name {_shown(key)} has a lone surrogate (an unpaired \\ud800-\\udfff escape), which is "
                "not valid Unicode; fix or drop it"
            )
        if isinstance(value, str):
            if has_surrogate(value):
                return (
                    f"field {_shown(key)} has a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not "
                    "valid Unicode; fix the text (e.g. replace it with \\ufffd) or drop the row"
                )
        elif isinstance(value, dict | list | tuple | set | frozenset) or (
            isinstance(value, np.ndarray) and value.dtype == object
        ):
            problem = _nesting_problem(value)
            if problem:
                return f"field {_shown(key)} is {problem}"
    return None


def _nesting_problem(value: Any) -> str | None:
    """Whether a nested metadata value is too deep or too large to store, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        v, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list | tuple | set | frozenset) or (isinstance(v, np.ndarray) and v.dtype == object):
            children = v
        else:
            continue
        if depth > MAX_NESTING:
            return f"nested more than {MAX_NESTING} levels deep; flatten it"
        items = list(children)
        nodes += len(items)
        if nodes > MAX_NODES:
            return f"larger than {MAX_NODES:,} items; store less metadata per document"
        stack.extend((c, depth + 1) for c in items)
    return None


def _build_table(source: str, rows: list[Row], opts: IngestOptions) -> tuple[pd.DataFrame, IngestReport]:
    problems = _Problems(source)
    report = IngestReport()
    records: list[dict[str, Any]] = []
    wheres: list[str] = []
    id_col = opts.id_column
    seen_columns: set[str] = set()
    n_objects = n_with_text = 0
    for where, rec in rows:
        if isinstance(rec, str):
            _problem(problems, report, opts, where, rec)
            continue
        n_objects += 1
        seen_columns.update(str(k) for k in rec)
        if opts.text_column not in rec:
            _problem(problems, report, opts, where, f"no {clip(opts.text_column)!r} field")
            continue
        n_with_text += 1
        text = rec[opts.text_column]
        if not isinstance(text, str):
            _problem(problems, report, opts, where, f"{clip(opts.text_column)!r} is {type(text).__name__}, not text")
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
        bad = _row_problem(rec)
        if bad:
            _problem(problems, report, opts, where, bad)
            continue
        records.append(rec)
        wheres.append(where)
    if rows and n_objects == len(rows) and not n_with_text:
        cols = sorted(seen_columns)
        raise InputError(
            f"{source}: no column {clip(opts.text_column)!r}; available columns: {cols}. "
            "Choose the text column with text_column= (CLI: --text-column)."
        )
    if not records and report.skipped:
        shown = "\n  ".join(report.skipped[:MAX_REPORTED])
        more = f"\n  ... and {len(report.skipped) - MAX_REPORTED} more" if len(report.skipped) > MAX_REPORTED else ""
        raise InputError(
            f"{source}: every row was skipped as invalid ({len(report.skipped)} row(s)), so nothing was stored. "
            f"The first reasons:\n  {shown}{more}\nFix these rows; skip_invalid only drops some bad rows."
        )
    if not records and not problems.count:
        raise InputError(f"{source}: no documents found")
    problems.raise_if_any("Fix these rows, or pass skip_invalid (CLI: --skip-invalid) to drop them.")
    frame = pd.DataFrame.from_records(records)
    where = pd.Series(wheres)
    if id_col is not None:
        if id_col not in frame.columns:
            raise InputError(f"{source}: no id column {id_col!r}; available columns: {sorted(frame.columns)}")
        missing = frame[id_col].isna().to_numpy(dtype=bool)
        if missing.any():
            raise InputError(f"{source}: {int(missing.sum())} row(s) have no {id_col!r}, e.g. {where[missing].iloc[0]}")
        ids = frame.pop(id_col).map(_id_text)
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
    taken = {str(c) for c in frame.columns} | {"doc_id", "text"}
    for reserved in ("doc_id", "text"):
        if reserved in frame.columns:
            frame = frame.rename(columns={reserved: _free_name(f"{reserved}_original", taken)})
    out = pd.concat([pd.DataFrame({"doc_id": ids.values, "text": text.values}), _clean_metadata(frame)], axis=1)
    report.n_docs = len(out)
    return out, report


def _id_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict | list | tuple | np.ndarray):
        return _to_json(v)
    return str(v)


def _free_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... whichever is not in ``taken`` (which it is added to)."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _problem(problems: _Problems, report: IngestReport, opts: IngestOptions, where: str, what: str) -> None:
    if opts.skip_invalid:
        report.skipped.append(f"{where}: {what}")
    else:
        problems.add(where, what)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _to_json(value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _storable(value: Any) -> Any:
    """A metadata value parquet can store: nested values as JSON, integers beyond int64 as text."""
    if isinstance(value, dict | list | tuple | set | frozenset | np.ndarray):
        return _to_json(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)
    return value


def _clean_metadata(frame: pd.DataFrame) -> pd.DataFrame:
    """Make metadata storable in parquet: nested values become JSON, numeric-looking text numbers."""
    out = frame.reset_index(drop=True).copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            non_null = series[~series.map(_missing).to_numpy(dtype=bool)]
            if len(non_null) and non_null.map(lambda v: isinstance(v, str)).all():
                numeric = pd.to_numeric(non_null, errors="coerce")
                if numeric.notna().all() and non_null.str.strip().ne("").all():
                    out[col] = pd.to_numeric(series, errors="coerce")
                    continue
            if pd.api.types.is_object_dtype(series):
                series = out[col] = series.map(_storable)
                non_null = series[~series.map(_missing).to_numpy(dtype=bool)]
            if not non_null.map(lambda v: isinstance(v, str | int | float | bool)).all() or (
                non_null.map(type).nunique() > 1
            ):
                out[col] = series.map(lambda v: None if _missing(v) else str(v))
    return out
