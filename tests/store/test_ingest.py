from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from saescope.errors import InputError
from saescope.store.ingest import IngestOptions, documents_from_list, read_documents


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_jsonl_with_ids_and_metadata(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "d.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "a", "text": "first", "model": "x", "score": 1.5, "tags": ["t1"]},
                {"id": "b", "text": "second", "model": "y", "score": 2},
            ]
        )
        + "\n\n",
    )
    frame, report = read_documents(p, IngestOptions(id_column="id"))
    assert frame["doc_id"].tolist() == ["a", "b"]
    assert frame["text"].tolist() == ["first", "second"]
    assert frame["model"].tolist() == ["x", "y"]
    assert frame["score"].tolist() == [1.5, 2.0]
    assert frame["tags"].iloc[0] == '["t1"]'
    assert report.n_docs == 2 and report.skipped == []


def test_malformed_jsonl_lines_are_all_reported_with_line_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"text": "ok"}\n{"text": broken}\n[1, 2]\n{"text": "   "}\n{"other": 1}\n')
    with pytest.raises(InputError) as err:
        read_documents(p)
    msg = str(err.value)
    assert "4 problem(s)" in msg and "nothing was stored" in msg
    for line in ("line 2", "line 3", "line 4", "line 5"):
        assert line in msg
    assert "empty or whitespace" in msg


def test_skip_invalid_keeps_good_rows_and_lists_the_rest(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"text": "ok"}\n{"text": broken}\n{"text": "also ok"}\n')
    frame, report = read_documents(p, IngestOptions(skip_invalid=True))
    assert frame["text"].tolist() == ["ok", "also ok"]
    assert frame["doc_id"].tolist() == ["0", "1"]
    assert len(report.skipped) == 1 and report.skipped[0].startswith("line 2")


def test_invalid_utf8(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", b'{"text": "fine"}\n{"text": "bad \xff byte"}\n')
    with pytest.raises(InputError, match="line 2: invalid UTF-8"):
        read_documents(p)
    c = _write(tmp_path / "d.csv", b"text\nfine\nbad \xfe\n")
    with pytest.raises(InputError, match="invalid UTF-8 at line 3"):
        read_documents(c)


def test_csv_wrong_field_count_and_missing_text_column(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.csv", 'text,label\n"hello, world",pos\nonly-one-field\n"a","b","c"\n')
    with pytest.raises(InputError) as err:
        read_documents(p)
    assert "line 3" in str(err.value) and "line 4" in str(err.value)
    q = _write(tmp_path / "e.csv", "body,label\nhello,pos\n")
    with pytest.raises(InputError, match=r"no column 'text'.*body"):
        read_documents(q)
    frame, _ = read_documents(q, IngestOptions(text_column="body"))
    assert frame["text"].tolist() == ["hello"] and frame["label"].tolist() == ["pos"]


def test_csv_numeric_columns_become_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.csv", "text,n,when\na,1,2024-01-01\nb,2.5,2024-02-01\n")
    frame, _ = read_documents(p)
    assert frame["n"].tolist() == [1.0, 2.5]
    assert frame["when"].tolist() == ["2024-01-01", "2024-02-01"]


def test_duplicate_ids(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", '{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n{"id": 1, "text": "c"}\n')
    with pytest.raises(InputError, match=r"duplicate document id.*'1' at line 1, line 3"):
        read_documents(p, IngestOptions(id_column="id"))


def test_oversized_document(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", json.dumps({"text": "x" * 50}) + "\n")
    with pytest.raises(InputError, match="over the limit"):
        read_documents(p, IngestOptions(max_doc_chars=10))


def test_parquet_and_txt_folder(tmp_path: Path) -> None:
    pd.DataFrame({"text": ["one", "two"], "k": [1, 2]}).to_parquet(tmp_path / "d.parquet")
    frame, _ = read_documents(tmp_path / "d.parquet")
    assert frame["text"].tolist() == ["one", "two"] and frame["k"].tolist() == [1, 2]
    folder = tmp_path / "txt"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    frame, _ = read_documents(folder)
    assert frame["doc_id"].tolist() == ["a", "sub/b"]
    assert frame["text"].tolist() == ["alpha", "beta"]


def test_inline_list_and_unknown_format(tmp_path: Path) -> None:
    frame, _ = documents_from_list(["one", {"text": "two", "who": "me"}])
    assert frame["text"].tolist() == ["one", "two"]
    with pytest.raises(InputError, match="expected a string or an object"):
        documents_from_list(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputError, match="cannot tell the format"):
        read_documents(_write(tmp_path / "d.xlsx", "x"))
    with pytest.raises(InputError, match="does not exist"):
        read_documents(tmp_path / "missing.jsonl")
