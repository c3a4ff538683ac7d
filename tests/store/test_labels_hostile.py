"""Hostile label files (imported with `saescope labels import`): InputErrors, never tracebacks or hangs."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from saescope.errors import InputError
from saescope.labels import LabelBook, read_label_file


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_only_regular_readable_files(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        read_label_file(fifo)
    packed = gzip.compress(json.dumps({"3": "refunds"}).encode() * 50)
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_label_file(_write(tmp_path / "t.json.gz", packed[: len(packed) // 2]))
    with pytest.raises(InputError, match="invalid UTF-8 at byte 8"):
        read_label_file(_write(tmp_path / "u.json", b'{"3": "a\xff"}'))
    with pytest.raises(InputError, match="does not exist"):
        read_label_file(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}\n{}", "nested too deeply"),
        ('{"' + "7" * 5000 + '": "label"}', "non-integer latent index"),
        ('{"3": 1, "x": ' + "9" * 5000 + "}", "more than 4,300 digits"),
        ('{"index": Infinity, "description": "d"}', "non-integer latent index"),
        ('{"index": -1, "description": "d"}', "outside 0..2,147,483,647"),
        ('{"index": 1, "description": "bad \\ud800"}', "lone surrogate"),
        ('{"²": "superscript digit"}', "is not a label"),
        ('{"latent": "x", "labels": []}', "record 1 is not a valid label"),
        ('{"latent": 1, "labels": [{"source": "llm"}]}', "record 1 is not a valid label"),
        ('{"latent": 1, "labels": [{"source": "llm", "text": "\\udc00"}]}', "lone surrogate"),
        ("[1, 2]", "record 1 is not an object"),
    ],
)
def test_malformed_label_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_label_file(_write(tmp_path / "l.json", content))


def test_odd_but_valid_values_are_read(tmp_path: Path) -> None:
    rows = [
        {"index": 2, "description": "huge score", "score": 1e400, "explanationModelName": 5},
        {"index": "3", "description": "ok", "score": 0.5},
    ]
    p = _write(tmp_path / "n.jsonl", "\n".join(json.dumps(r) for r in rows))
    got = {r.latent: r.labels[0] for r in read_label_file(p)}
    assert got[2].score is None and got[2].model is None and got[3].score == 0.5


def test_book_with_a_bad_line_is_an_input_error(tmp_path: Path) -> None:
    p = _write(tmp_path / "b.jsonl", '{"latent": 1, "labels": []}\n' + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(InputError, match=r"b.jsonl:2: not a label record: nested too deeply"):
        LabelBook.load_jsonl(p, "s", 10)
