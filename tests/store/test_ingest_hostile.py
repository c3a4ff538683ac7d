"""Hostile and malformed inputs to ingest: each gives an InputError or a per-row report, never a traceback,
and nothing is stored."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import socket
import threading
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saescope.errors import InputError
from saescope.store.dataset import Store
from saescope.store.ingest import IngestOptions, documents_from_list, read_documents


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _store(tmp_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Store the table and read it back, as ingest does."""
    ds = Store(tmp_path / "home").create("d", frame, source="test", overwrite=True)
    return ds.documents()


def test_decompressed_size_is_bounded_while_reading(tmp_path: Path) -> None:
    line = json.dumps({"text": "a" * 1000}).encode() + b"\n"
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as fh:
        for _ in range(20_000):  # 20 MB of text in ~60 KB
            fh.write(line)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InputError, match=r"larger than the limit of 1,000,000 bytes \(counted after decompression\)"):
        read_documents(bomb, IngestOptions(max_bytes=1_000_000))
    small = tmp_path / "small.csv.bz2"
    small.write_bytes(bz2.compress(b"text\n" + b"hello world\n" * 10_000))
    with pytest.raises(InputError, match="larger than the limit"):
        read_documents(small, IngestOptions(max_bytes=50_000))
    frame, _ = read_documents(small, IngestOptions(max_bytes=200_000))
    assert len(frame) == 10_000
    folder = tmp_path / "txt"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text("x" * 400)
    with pytest.raises(InputError, match="larger than the limit"):
        read_documents(folder, IngestOptions(max_bytes=1000))  # counted over all files together
    pd.DataFrame({"text": ["y" * 10_000] * 50}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(InputError, match="larger than the limit"):
        read_documents(tmp_path / "d.parquet", IngestOptions(max_bytes=100_000))
    with pytest.raises(InputError, match="max_bytes must be a positive whole number"):
        read_documents(small, IngestOptions(max_bytes=0))


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"is a FIFO \(named pipe\), not a regular file"):
        read_documents(fifo)  # would block forever if opened for a blocking read
    with pytest.raises(InputError, match="FIFO"):
        read_documents(fifo, IngestOptions(format="txt"))
    with pytest.raises(InputError, match="is a character device, not a regular file"):
        read_documents(Path("/dev/zero"), IngestOptions(format="jsonl"))
    sock_path = tmp_path / "s.csv"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(InputError, match="is a socket, not a regular file"):
            read_documents(sock_path)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    with pytest.raises(InputError, match="is a folder; only format txt reads a folder"):
        read_documents(folder, IngestOptions(format="jsonl"))


def test_fifo_never_hangs_even_with_a_writer_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    done = threading.Event()

    def reader() -> None:
        with pytest.raises(InputError):
            read_documents(fifo)
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(10)
    assert done.is_set()


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".csv.bz2"])
def test_corrupt_or_truncated_compressed_files(tmp_path: Path, suffix: str) -> None:
    body = b'{"text": "a"}\n' * 2000 if "jsonl" in suffix else b"text\n" + b"a\n" * 2000
    packed = gzip.compress(body) if suffix.endswith(".gz") else bz2.compress(body)
    truncated = _write(tmp_path / f"t{suffix}", packed[: len(packed) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_documents(truncated)
    garbage = _write(tmp_path / f"g{suffix}", b"this is not compressed at all")
    with pytest.raises(InputError, match=r"corrupt or truncated.*-t g"):
        read_documents(garbage, IngestOptions(skip_invalid=True))


def test_deeply_nested_json_is_a_row_problem(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    p = _write(tmp_path / "d.jsonl", '{"text": "fine"}\n{"text": "x", "m": ' + deep + "}\n" + deep + "\n")
    with pytest.raises(InputError) as err:
        read_documents(p)
    assert "line 2: JSON nested too deeply" in str(err.value) and "line 3" in str(err.value)
    frame, report = read_documents(p, IngestOptions(skip_invalid=True))
    assert frame["text"].tolist() == ["fine"] and len(report.skipped) == 2
    medium = _write(tmp_path / "m.jsonl", '{"text": "x", "m": ' + "[" * 500 + "]" * 500 + "}\n")
    with pytest.raises(InputError, match="nested more than 64 levels deep"):
        read_documents(medium)
    cycle: list[object] = []
    cycle.append(cycle)
    cycle.append(cycle)
    with pytest.raises(InputError, match="nested more than 64 levels"):
        documents_from_list([{"text": "t", "loop": cycle}])


def test_huge_integers_in_metadata(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"text": "a", "n": ' + "7" * 5000 + "}\n")
    with pytest.raises(InputError, match=r"line 1: .*more than 4,300 digits; write it as a string"):
        read_documents(p)
    q = _write(
        tmp_path / "e.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": 2**70, "text": "a", "n": 1, "big": 2**64 + 1},
                {"id": 1, "text": "b", "n": 2**70, "big": -(2**63) - 1},
            ]
        ),
    )
    frame, _ = read_documents(q, IngestOptions(id_column="id"))
    back = _store(tmp_path, frame)
    assert back["doc_id"].tolist() == [str(2**70), "1"]
    assert back["n"].tolist() == ["1", str(2**70)]
    assert back["big"].tolist() == [str(2**64 + 1), str(-(2**63) - 1)]


def test_lone_surrogates_are_reported_per_row(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "d.jsonl",
        '{"text": "fine"}\n'
        '{"text": "bad \\ud800 text"}\n'
        '{"text": "x", "meta": "\\udc00"}\n'
        '{"text": "y", "\\ud800key": 1}\n'
        '{"text": "z", "id": "\\udfff"}\n',
    )
    with pytest.raises(InputError) as err:
        read_documents(p)
    msg = str(err.value)
    assert "4 problem(s)" in msg and "lone surrogate" in msg
    msg.encode("utf-8")  # the message itself is printable
    frame, report = read_documents(p, IngestOptions(skip_invalid=True))
    assert frame["text"].tolist() == ["fine"] and len(report.skipped) == 4
    _store(tmp_path, frame)
    with pytest.raises(InputError, match="lone surrogate"):
        documents_from_list(["ok", "bad \udc80"])


def test_reserved_column_names_never_collide(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "d.jsonl",
        json.dumps({"text": "a", "doc_id": "x", "doc_id_original": "y", "text_original": "z", "_where": "w"}) + "\n",
    )
    frame, _ = read_documents(p)
    assert list(frame.columns) == ["doc_id", "text", "doc_id_original_2", "doc_id_original", "text_original", "_where"]
    back = _store(tmp_path, frame)
    assert back.iloc[0].to_dict() == {
        "doc_id": "0",
        "text": "a",
        "doc_id_original_2": "x",
        "doc_id_original": "y",
        "text_original": "z",
        "_where": "w",
    }


def test_list_typed_parquet_metadata_is_accepted(tmp_path: Path) -> None:
    pd.DataFrame(
        {"text": ["one", "two"], "tags": [["a", "b"], []], "obj": [{"k": 1}, {"k": 2}], "n": [[1, 2], None]}
    ).to_parquet(tmp_path / "d.parquet")
    frame, _ = read_documents(tmp_path / "d.parquet")
    back = _store(tmp_path, frame)
    assert back["tags"].tolist() == ['["a", "b"]', "[]"]
    assert back["obj"].tolist() == ['{"k": 1}', '{"k": 2}']
    assert back["n"].iloc[0] == "[1, 2]" and pd.isna(back["n"].iloc[1])


def test_id_column_cannot_be_the_text_column(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"text": "a"}\n')
    with pytest.raises(InputError, match="id_column and text_column are both 'text'"):
        read_documents(p, IngestOptions(id_column="text"))
    with pytest.raises(InputError, match="id_column and text_column are both 'body'"):
        documents_from_list([{"body": "a"}], IngestOptions(text_column="body", id_column="body"))
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    frame, _ = read_documents(folder, IngestOptions(text_column="id"))
    assert frame["doc_id"].tolist() == ["a"] and frame["text"].tolist() == ["alpha"]


def test_csv_reads_documents_up_to_the_document_limit(tmp_path: Path) -> None:
    long = "w" * 500_000  # over csv's default field limit of 131,072 characters
    p = _write(tmp_path / "d.csv", f'text,label\n"{long}",x\nshort,y\n')
    frame, _ = read_documents(p)
    assert frame["text"].str.len().tolist() == [500_000, 5]
    with pytest.raises(InputError, match="line 2: document has 500,000 characters, over the limit of 1,000"):
        read_documents(p, IngestOptions(max_doc_chars=1000))


def test_overlong_jsonl_line_and_txt_file_are_skipped_unread(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", json.dumps({"text": "z" * 10_000}) + "\n" + '{"text": "ok"}\n')
    opts = IngestOptions(max_doc_chars=100, skip_invalid=True)
    frame, report = read_documents(p, opts)
    assert frame["text"].tolist() == ["ok"] and report.skipped[0].startswith("line 1: document has 10,000")
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "big.txt").write_text("b" * 10_000)
    (folder / "small.txt").write_text("s")
    frame, report = read_documents(folder, opts)
    assert frame["doc_id"].tolist() == ["small"] and "longer than the document limit of 100" in report.skipped[0]


def test_every_row_skipped_says_so_with_reasons(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"text": ""}\n{"text": 3}\nnot json\n')
    with pytest.raises(InputError) as err:
        read_documents(p, IngestOptions(skip_invalid=True))
    msg = str(err.value)
    assert "every row was skipped as invalid (3 row(s))" in msg
    assert "line 1: empty or whitespace-only document" in msg and "line 3: not valid JSON" in msg
    empty = _write(tmp_path / "e.jsonl", "\n\n")
    with pytest.raises(InputError, match="no documents found"):
        read_documents(empty, IngestOptions(skip_invalid=True))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
_records = st.dictionaries(
    st.sampled_from(["text", "doc_id", "doc_id_original", "text_original", "id", "m", "n", "\ud800", ""]),
    _values,
    max_size=6,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_records, min_size=0, max_size=6), skip=st.booleans(), ids=st.booleans())
def test_any_jsonl_either_stores_or_raises_input_error(
    tmp_path: Path, records: list[dict[str, object]], skip: bool, ids: bool
) -> None:
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    opts = IngestOptions(skip_invalid=skip, id_column="id" if ids else None)
    try:
        frame, _ = read_documents(p, opts)
    except InputError as exc:
        str(exc).encode("utf-8")
        return
    back = _store(tmp_path, frame)
    assert len(back) == len(frame) and back["doc_id"].is_unique


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), name=st.sampled_from(["h.jsonl", "h.csv", "h.tsv", "h.jsonl.gz", "h.csv.bz2"]))
def test_any_bytes_either_store_or_raise_input_error(tmp_path: Path, data: bytes, name: str) -> None:
    p = _write(tmp_path / name, data)
    try:
        frame, _ = read_documents(p, IngestOptions(skip_invalid=True))
    except InputError:
        return
    _store(tmp_path, frame)
