"""The hostile-input corpus, generated (no committed binaries): bad numbers, unknown names, huge strings, broken
SAE folders, unavailable devices, unwritable report paths, malformed filters, odd resources and prompts.

Each case is an input that saescope must refuse with a clear, actionable error (the CLI: exit code 2 and a line
starting ``error:``; the MCP server: an ``is_error`` result or a protocol error, never "internal error") while
leaving every stored file as it was. ``expect`` is a regular expression (case-insensitive) that the error must
match: it names the problem, so a case that fails for an unrelated reason does not pass by accident.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

BIG = 10**30
MB_STRING = "a" * 1_000_000
"""A 1 MB string: longer than any path, name or filter saescope accepts (MCP only)."""
ARG_STRING = "a" * 100_000
"""The longest single argument Linux passes to a process is 128 KiB, so the CLI gets 100 kB."""
NUMBER_ERROR = r"greater than|less than|finite|valid (number|integer)|invalid (int|float)"


@dataclass(frozen=True)
class CliCase:
    """``saescope ARGV...``; ``{sae}`` and ``{bad:NAME}`` in an argument are replaced by the good SAE folder and a
    broken one (see :func:`bad_sae_folders`), ``{tmp}`` by a scratch folder outside the data root."""

    name: str
    argv: tuple[str, ...]
    expect: str
    slow: bool = False
    """Outside the core set (each case is a process start, seconds each): run with the slow tests."""


@dataclass(frozen=True)
class McpCase:
    """A tool call, a resource read or a prompt, with the same placeholders as :class:`CliCase` in strings."""

    name: str
    kind: Literal["tool", "resource", "prompt"]
    target: str
    expect: str
    arguments: dict[str, Any] = field(default_factory=dict)
    protocol_error_ok: bool = False
    """The MCP SDK answers this itself with a protocol error (before saescope's code runs); still no hang."""


# --- broken SAE folders -------------------------------------------------------------------------------------
def _weights_header(tensors: dict[str, list[int]]) -> bytes:
    """A safetensors file (float32 zeros) with these tensor shapes."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in tensors.items():
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + bytes(offset)


BAD_SAES = (
    "not_sae",
    "empty_cfg",
    "garbage_cfg",
    "cfg_list",
    "cfg_no_sizes",
    "cfg_bad_sizes",
    "cfg_bad_hook",
    "cfg_fifo",
    "no_weights",
    "empty_weights",
    "garbage_weights",
    "truncated_weights",
    "weights_folder",
    "weights_fifo",
    "mismatched_d_in",
    "mismatched_d_sae",
    "weights_no_encoder",
    "garbage_meta",
    "thresholds_wrong_size",
)


def bad_sae_folders(base: Path, good: Path) -> dict[str, Path]:
    """Broken copies of the SAE folder ``good`` under ``base``, one per name in :data:`BAD_SAES`."""
    cfg_text = (good / "cfg.json").read_text(encoding="utf-8")
    cfg = json.loads(cfg_text)
    weights = (good / "sae_weights.safetensors").read_bytes()
    d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    out: dict[str, Path] = {}
    for name in BAD_SAES:
        folder = base / f"sae_{name}"
        folder.mkdir(parents=True, exist_ok=True)
        out[name] = folder
        cfg_file, w_file = folder / "cfg.json", folder / "sae_weights.safetensors"
        if name == "not_sae":
            (folder / "notes.txt").write_text("no SAE here\n", encoding="utf-8")
            continue
        if name in ("no_weights",):
            cfg_file.write_text(cfg_text, encoding="utf-8")
            continue
        texts = {
            "empty_cfg": "",
            "garbage_cfg": "\x00\ufffd{not json at all",
            "cfg_list": "[1, 2, 3]",
            "cfg_no_sizes": json.dumps({k: v for k, v in cfg.items() if k not in ("d_in", "d_sae")}),
            "cfg_bad_sizes": json.dumps({**cfg, "d_in": "wide", "d_sae": -5}),
            "cfg_bad_hook": json.dumps({**cfg, "metadata": {**cfg.get("metadata", {}), "hook_name": "blocks.x.attn"}}),
            "mismatched_d_in": json.dumps({**cfg, "d_in": d_in + 7}),
            "mismatched_d_sae": json.dumps({**cfg, "d_sae": d_sae * 2}),
        }
        if name == "cfg_fifo":
            os.mkfifo(cfg_file)
        else:
            cfg_file.write_text(texts.get(name, cfg_text), encoding="utf-8")
        if name == "empty_weights":
            w_file.write_bytes(b"")
        elif name == "garbage_weights":
            w_file.write_bytes(b"\xff" * 64 + b"not safetensors" * 100)
        elif name == "truncated_weights":
            w_file.write_bytes(weights[: len(weights) // 2])
        elif name == "weights_folder":
            w_file.mkdir()
        elif name == "weights_fifo":
            os.mkfifo(w_file)
        elif name == "weights_no_encoder":
            w_file.write_bytes(_weights_header({"W_dec": [d_sae, d_in], "b_dec": [d_in]}))
        else:
            w_file.write_bytes(weights)
        if name == "garbage_meta":
            (folder / "saescope.json").write_text("{'sae_id': oops", encoding="utf-8")
        elif name == "thresholds_wrong_size":
            (folder / "doc_thresholds.safetensors").write_bytes(_weights_header({"thresholds": [d_sae + 1]}))
    return out


# --- what is stored -------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256 of its bytes; links and special files by kind)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = f"link:{path.readlink()}"
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            out[rel] = "special"
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two snapshots, as ``+added``, ``-removed`` and ``~changed`` paths."""
    return (
        [f"+{p}" for p in sorted(after.keys() - before.keys())]
        + [f"-{p}" for p in sorted(before.keys() - after.keys())]
        + [f"~{p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    )


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def fill(value: Any, places: dict[str, str]) -> Any:
    """``value`` with ``{placeholders}`` replaced in every string (lists and dicts followed)."""
    if isinstance(value, str):
        for key, real in places.items():
            value = value.replace("{" + key + "}", real)
        return value
    if isinstance(value, list | tuple):
        return type(value)(fill(v, places) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, places) for k, v in value.items()}
    return value


def places_for(sae: Path, bad: dict[str, Path], tmp: Path) -> dict[str, str]:
    return {"sae": str(sae), "tmp": str(tmp), **{f"bad:{k}": str(v) for k, v in bad.items()}}


# --- the CLI ----------------------------------------------------------------------------------------------
DOCS = "docs"
"""The CLI's dataset: ids d0..d19, columns topic (text) and n (0..19), embedded with the ``{sae}`` folder."""
SETS = ("--where-a", "n > 9", "--where-b", "n <= 9")


def filters(t: str, n: str) -> dict[str, tuple[str, str]]:
    """Malformed or hostile filters over a text column ``t`` and a number column ``n`` (each under the 4,000
    character limit unless named too_long), with what the error must say."""
    return {
        "unclosed_list": (f"{t} in [null", r"cannot parse filter|never closed"),
        "unbalanced_quote": (f"{t} == 'x", r"cannot parse filter|unterminated"),
        "function_call": ("__import__('os')", r"function call is not allowed"),
        "attribute": (f"{t}.__class__ == 1", r"attribute access is not"),
        "unknown_column": ("colour == 'red'", r"unknown column|colour"),
        "deep_parens": ("(" * 1500 + f"{n} > 2" + ")" * 1500, r"filter|nest"),
        "deep_not": ("not " * 900 + f"{n} > 2", r"filter|nest|deep"),
        "deep_minus": ("-" * 3500 + f"{n} < 2", r"filter|nest|deep"),
        "long_chain_cut": (f"{n} > 1 and " * 250 + f"{n} >", r"cannot parse filter"),
        "lambda": ("(lambda: 1)() == 1", r"function call is not"),
        "walrus": ("(x := 1) == 1", r"is not a column name|cannot parse"),
        "nan_literal": (f"{n} > nan", r"unknown column|nan"),
        "too_long": (f"{n} > 1 and " * 9_000 + f"{n} > 2", r"characters long|limit"),
    }


def _cli_filters() -> Iterator[CliCase]:
    for name, (text, expect) in filters("topic", "n").items():
        yield CliCase(f"filter_{name}", ("diff", DOCS, "--where-a", text, "--where-b", "n <= 9"), expect)


def _cli_numbers() -> Iterator[CliCase]:
    emb = ("embed", DOCS, "--sae", "{sae}")
    yield CliCase("diff_top_k_0", ("diff", DOCS, *SETS, "--top-k", "0"), r"top_k.*greater")
    yield CliCase("diff_top_k_huge", ("diff", DOCS, *SETS, "--top-k", str(BIG)), r"top_k.*less")
    yield CliCase("diff_top_k_text", ("diff", DOCS, *SETS, "--top-k", "many"), r"top-k.*invalid int")
    yield CliCase("diff_alpha_nan", ("diff", DOCS, *SETS, "--alpha", "nan"), r"alpha")
    yield CliCase("diff_cursor_negative", ("diff", DOCS, *SETS, "--cursor", "-1"), r"cursor.*greater")
    yield CliCase("diff_min_support_0", ("diff", DOCS, *SETS, "--min-support", "0"), r"min_support.*greater")
    yield CliCase("cluster_k_negative", ("cluster", DOCS, "--latents", "1,2", "-k", "-5"), r"\bk\b.*greater")
    yield CliCase("top_features_k_negative", ("top-features", DOCS, "d1", "-k", "-5"), r"top_k.*greater")
    yield CliCase("top_features_evidence_negative", ("top-features", DOCS, "d1", "--evidence", "-1"), r"evidence")
    yield CliCase("correlations_dissimilar_nan", ("correlations", DOCS, "--dissimilar", "nan"), r"dissimilar")
    yield CliCase("correlations_min_cooc_0", ("correlations", DOCS, "--min-cooc", "0"), r"min_cooc")
    for value in ("nan", "inf", "-inf", "1e308", "-1"):
        yield CliCase(f"embed_threshold_{value}", (*emb, "--threshold", value), r"threshold")
    for value in ("0", "-1", str(BIG)):
        yield CliCase(f"embed_shard_size_{value[:4]}", (*emb, "--shard-size", value), r"shard_size")
    yield CliCase("embed_window_3", (*emb, "--window", "3"), r"window.*greater")
    yield CliCase("embed_window_huge", (*emb, "--window", str(10**9)), r"window.*less")
    yield CliCase("embed_token_budget_negative", (*emb, "--token-budget", "-1"), r"token_budget")


def _cli_names() -> Iterator[CliCase]:
    unknown = r"unknown dataset 'nope'.*docs"
    yield CliCase("info_unknown_dataset", ("info", "nope"), unknown)
    yield CliCase("diff_unknown_dataset", ("diff", "nope", *SETS), unknown)
    yield CliCase("diff_unknown_dataset_b", ("diff", DOCS, "nope"), unknown)
    yield CliCase("embed_unknown_dataset", ("embed", "nope", "--sae", "{sae}"), unknown)
    yield CliCase("explain_unknown_doc", ("explain", DOCS, "nope"), r"no document.*nope")
    yield CliCase("top_features_unknown_doc", ("top-features", DOCS, "nope"), r"no document.*nope")
    yield CliCase("retrieve_unknown_positive", ("retrieve", DOCS, "weather", "--positive", "nope"), r"nope")
    yield CliCase("feature_unknown_sae", ("feature", "show", DOCS, "3", "--sae", "nope"), r"no complete embedding")
    yield CliCase("correlations_unknown_column", ("correlations", DOCS, "--column", "nope"), r"no column .nope.")
    yield CliCase("diff_by_unknown_column", ("diff", DOCS, "--by", "nope", "--target", "x"), r"nope")
    yield CliCase("diff_paired_unknown_column", ("diff", DOCS, *SETS, "--paired-by", "nope"), r"nope")
    yield CliCase("features_search_empty_query", ("features", "search", DOCS, ""), r"query")


def _cli_latents() -> Iterator[CliCase]:
    yield CliCase("feature_latent_huge", ("feature", "show", DOCS, str(BIG)), r"out of range")
    yield CliCase("feature_latent_negative", ("feature", "show", DOCS, "-1"), r"latent.*greater")
    yield CliCase("cluster_latents_huge", ("cluster", DOCS, "--latents", str(BIG)), r"outside the SAE")
    yield CliCase("cluster_latents_negative", ("cluster", DOCS, "--latents", "-1"), r"greater than")
    yield CliCase("cluster_latents_words", ("cluster", DOCS, "--latents", "a,b"), r"comma-separated integers")
    yield CliCase("retrieve_latents_huge", ("retrieve", DOCS, "x", "--latents", str(BIG)), r"outside the SAE")
    yield CliCase("correlations_latent_huge", ("correlations", DOCS, "--latent", str(BIG)), r"out of range")


def _cli_paths() -> Iterator[CliCase]:
    yield CliCase("ingest_long_path", ("ingest", "x", ARG_STRING), r"too long|cannot be read|does not exist")
    yield CliCase("ingest_empty_path", ("ingest", "x", ""), r"give a path|empty")
    yield CliCase("ingest_unknown_user", ("ingest", "x", "~nosuchuser9/x.jsonl"), r"no such user")
    yield CliCase("ingest_missing_path", ("ingest", "x", "{tmp}/missing.jsonl"), r"does not exist")
    yield CliCase("ingest_dev_zero", ("ingest", "x", "/dev/zero", "--format", "jsonl"), r"character device")
    yield CliCase("ingest_folder_as_jsonl", ("ingest", "x", "{tmp}", "--format", "jsonl"), r"is a folder")
    yield CliCase("ingest_bad_name", ("ingest", "../x", "{tmp}/missing.jsonl"), r"name")
    yield CliCase("ingest_long_name", ("ingest", "n" * 5000, "{tmp}/missing.jsonl"), r"name")
    yield CliCase("ingest_existing", ("ingest", DOCS, "{tmp}/c.jsonl"), r"already exists")
    yield CliCase("import_labels_missing", ("import-labels", "{tmp}/missing.json", "--sae", "{sae}"), r"missing")
    yield CliCase("html_missing_folder", ("diff", DOCS, *SETS, "--html", "{tmp}/no/such/r.html"), r"does not exist")
    yield CliCase("html_is_folder", ("diff", DOCS, *SETS, "--html", "{tmp}"), r"is a folder")
    yield CliCase("html_long_name", ("diff", DOCS, *SETS, "--html", "{tmp}/" + "r" * 300 + ".html"), r"too long")
    yield CliCase("html_dev_full", ("diff", DOCS, *SETS, "--html", "/dev/full"), r"/dev/full")


def _cli_saes() -> Iterator[CliCase]:
    emb = ("embed", DOCS)
    yield CliCase("sae_long", (*emb, "--sae", ARG_STRING), r"not an SAE folder|too long")
    yield CliCase("sae_colon", (*emb, "--sae", ":"), r"not a pretrained SAE name")
    yield CliCase("sae_half_pretrained", (*emb, "--sae-release", "x"), r"both a release and an SAE id")
    yield CliCase("sae_etc", (*emb, "--sae", "/etc"), r"not an SAE folder")
    yield CliCase("import_labels_bad_sae", ("import-labels", "{tmp}/missing.json", "--sae", "{bad:garbage_cfg}"), "cfg")
    for name in BAD_SAES:
        expect = r"not an SAE folder" if name == "not_sae" else r"sae_" + name
        yield CliCase(f"sae_{name}", (*emb, "--sae", "{bad:" + name + "}"), expect)
    yield CliCase("reader_etc", (*emb, "--sae", "{sae}", "--reader", "/etc"), r"reader.*/etc")
    yield CliCase("reader_file", (*emb, "--sae", "{sae}", "--reader", "{tmp}/c.jsonl"), r"reader")


def _cli_devices() -> Iterator[CliCase]:
    for device in ("cuda", "cuda:3", "tpu", "mps", "cpu:99", "gpu", "meta"):
        yield CliCase(f"device_{device}", ("embed", DOCS, "--sae", "{sae}", "--device", device), r"device.*cpu")
    yield CliCase("device_feature_show", ("feature", "show", DOCS, "3", "--device", "cuda"), r"device.*cpu")


CLI_CORE = {
    *("diff_top_k_0", "diff_top_k_text", "cluster_k_negative", "top_features_evidence_negative"),
    *("embed_threshold_nan", "embed_threshold_inf", "embed_threshold_1e308", "embed_window_3"),
    *("embed_shard_size_0", "embed_shard_size_-1", "info_unknown_dataset", "explain_unknown_doc"),
    *("feature_latent_huge", "cluster_latents_words", "filter_unclosed_list", "filter_deep_not", "filter_too_long"),
    *("ingest_long_path", "ingest_empty_path", "ingest_dev_zero", "html_missing_folder", "html_is_folder"),
    *("html_dev_full", "sae_long", "sae_colon", "sae_etc", "sae_empty_cfg", "sae_garbage_cfg"),
    *("sae_mismatched_d_in", "sae_weights_fifo", "reader_etc", "device_cuda", "device_tpu", "device_mps"),
    *("device_cpu:99", "html_long_name"),
}
"""The CLI cases run by default: at least one of each kind. The others are marked slow (CI runs them)."""


def cli_cases() -> list[CliCase]:
    """Every CLI case (names are unique), those outside :data:`CLI_CORE` marked slow."""
    cases = [
        *_cli_numbers(),
        *_cli_names(),
        *_cli_latents(),
        *_cli_filters(),
        *_cli_paths(),
        *_cli_saes(),
        *_cli_devices(),
    ]
    assert len({c.name for c in cases}) == len(cases) and {c.name for c in cases} >= CLI_CORE
    return [replace(c, slow=c.name not in CLI_CORE) for c in cases]


# --- the MCP server ----------------------------------------------------------------------------------------
RV = "reviews"
"""The MCP side's dataset (tests/server/shared.py): 48 reviews, ids like fresh-0000, columns category, half,
pair, length; embedded with the ``{sae}`` folder, which is also the server's default SAE."""
A_B = {"where_a": "category == 'fresh'", "where_b": "category == 'rotten'"}


def _tool(case: str, tool: str, expect: str, /, **arguments: Any) -> McpCase:
    return McpCase(case, "tool", tool, expect, arguments)


def _mcp_numbers() -> Iterator[McpCase]:
    for value in (0, -5, BIG):
        yield _tool(f"diff_top_k_{str(value)[:4]}", "diff_datasets", r"top_k", dataset_a=RV, **A_B, top_k=value)
    yield _tool("diff_top_k_text", "diff_datasets", r"top_k", dataset_a=RV, **A_B, top_k="many")
    yield _tool("diff_alpha_2", "diff_datasets", r"alpha", dataset_a=RV, **A_B, alpha=2)
    yield _tool("cluster_k_negative", "cluster_documents", r"\bk\b", dataset=RV, latents=[1, 2], k=-5)
    yield _tool("feature_n_top_0", "feature_details", r"n_top", dataset=RV, latent=1, n_top=0)
    yield _tool("explain_top_k_0", "explain_document", r"top_k", dataset=RV, doc_id="fresh-0000", top_k=0)
    yield _tool("describe_n_examples_negative", "describe_dataset", r"n_examples", dataset=RV, n_examples=-1)
    yield _tool("read_max_chars_huge", "read_documents", r"max_chars", dataset=RV, doc_ids=["x"], max_chars=BIG)
    yield _tool("read_no_ids", "read_documents", r"doc_ids", dataset=RV, doc_ids=[])
    yield _tool("read_many_ids", "read_documents", r"doc_ids", dataset=RV, doc_ids=["x"] * 21)
    yield _tool("correlations_min_cooc_0", "correlations", r"min_cooc", dataset=RV, min_cooc=0)
    yield _tool("embed_status_wait_negative", "embed_status", r"wait_seconds", wait_seconds=-1)
    yield _tool("embed_status_wait_huge", "embed_status", r"wait_seconds", wait_seconds=1e308)
    for value in (float("nan"), float("inf"), 1e308, -1.0):
        yield _tool(f"embed_threshold_{value}", "embed_dataset", r"threshold", dataset=RV, threshold=value)
    yield _tool("embed_window_3", "embed_dataset", r"window", dataset=RV, window=3)
    yield _tool("embed_pooling_bad", "embed_dataset", r"pooling", dataset=RV, pooling="median")
    yield _tool("feature_latent_text", "feature_details", r"latent", dataset=RV, latent="seven")
    yield _tool("feature_latent_float", "feature_details", r"latent", dataset=RV, latent=1.5)
    yield _tool("cluster_latents_string", "cluster_documents", r"latents", dataset=RV, latents="1,2")


def _mcp_names() -> Iterator[McpCase]:
    unknown = r"unknown dataset 'nope'.*reviews"
    yield _tool("describe_unknown", "describe_dataset", unknown, dataset="nope")
    yield _tool("read_unknown_dataset", "read_documents", unknown, dataset="nope", doc_ids=["x"])
    yield _tool("diff_unknown_b", "diff_datasets", unknown, dataset_a=RV, dataset_b="nope")
    yield _tool("embed_unknown", "embed_dataset", unknown, dataset="nope")
    yield _tool("explain_unknown_doc", "explain_document", r"no document.*nope", dataset=RV, doc_id="nope")
    yield _tool("feature_unknown_sae", "feature_details", r"no complete embedding", dataset=RV, latent=1, sae="nope")
    yield _tool("correlations_unknown_column", "correlations", r"no column|unknown column", dataset=RV, column="nope")
    yield _tool("embed_status_unknown_job", "embed_status", r"unknown job", job_id="nope")
    yield _tool("describe_mb_name", "describe_dataset", r"unknown dataset", dataset=MB_STRING)
    yield _tool("explain_mb_id", "explain_document", r"no document", dataset=RV, doc_id=MB_STRING)
    yield _tool("feature_mb_sae", "feature_details", r"no complete embedding", dataset=RV, latent=1, sae=MB_STRING)
    yield _tool("diff_mb_column", "diff_datasets", r"no column|unknown column", dataset_a=RV, mode="one_vs_many",
                column=MB_STRING, target="x")  # fmt: skip
    yield _tool("diff_mb_pair_key", "diff_datasets", r"pair", dataset_a=RV, **A_B, mode="paired", pair_key=MB_STRING)
    yield _tool("correlations_mb_column", "correlations", r"no column|unknown column", dataset=RV, column=MB_STRING)
    yield _tool("unknown_argument", "describe_dataset", r"bogus", dataset=RV, bogus=1)
    yield _tool("operator_only_argument", "embed_dataset", r"shard_size", dataset=RV, shard_size=0)
    yield _tool("misspelt_argument", "diff_datasets", r"top_kk", dataset_a=RV, **A_B, top_kk=5)


def _mcp_latents() -> Iterator[McpCase]:
    for value, expect in ((BIG, r"out of range|outside the SAE"), (-1, r"greater than|outside the SAE|out of range")):
        tag = "huge" if value == BIG else "negative"
        yield _tool(f"feature_latent_{tag}", "feature_details", expect, dataset=RV, latent=value)
        yield _tool(f"cluster_latents_{tag}", "cluster_documents", expect, dataset=RV, latents=[value])
        yield _tool(f"retrieve_latents_{tag}", "retrieve_documents", expect, dataset=RV, query="x", latents=[value])
        yield _tool(f"verify_latents_{tag}", "verify_hypothesis", expect, dataset_a=RV, **A_B, latents=[value],
                    hypothesis="x")  # fmt: skip
        yield _tool(f"correlations_latent_{tag}", "correlations", expect, dataset=RV, latent=value)


def _mcp_paths() -> Iterator[McpCase]:
    ingest = "ingest_documents"
    yield _tool("ingest_mb_path", ingest, r"does not exist|too long|cannot be read", name="x", path=MB_STRING)
    yield _tool("ingest_empty_path", ingest, r"give a path", name="x", path="")
    yield _tool("ingest_blank_path", ingest, r"give a path", name="x", path="   ")
    yield _tool("ingest_nul_path", ingest, r"NUL character", name="x", path="small\x00.jsonl")
    yield _tool("ingest_unknown_user", ingest, r"no such user", name="x", path="~nosuchuser9/x.jsonl")
    yield _tool("ingest_outside_roots", ingest, r"outside the allowed roots", name="x", path="/etc/passwd")
    yield _tool("ingest_dotdot", ingest, r"outside the allowed roots|does not exist", name="x", path="../../etc/passwd")
    yield _tool("ingest_dev_zero", ingest, r"outside the allowed roots", name="x", path="/dev/zero")
    yield _tool("ingest_bad_name", ingest, r"name", name="../x", path="small.jsonl")
    yield _tool("ingest_mb_name", ingest, r"name", name=MB_STRING, path="small.jsonl")
    yield _tool("ingest_existing", ingest, r"already exists", name=RV, path="small.jsonl")
    yield _tool("ingest_both_sources", ingest, r"exactly one", name="x", path="small.jsonl", documents=["a"])
    yield _tool("ingest_no_text", ingest, r"text", name="x", documents=[{"body": "no text field"}])
    yield _tool("ingest_empty_documents", ingest, r"no documents|empty|nothing", name="x", documents=[])
    yield _tool("ingest_text_column_mb", ingest, r"text", name="x", documents=[{"text": "a"}], text_column=MB_STRING)


def _mcp_saes() -> Iterator[McpCase]:
    embed = "embed_dataset"
    yield _tool("sae_mb", embed, r"does not exist|too long|not an SAE folder", dataset=RV, sae=MB_STRING)
    yield _tool("sae_colon", embed, r"not a pretrained SAE name", dataset=RV, sae=":")
    yield _tool("sae_outside_roots", embed, r"outside the allowed roots", dataset=RV, sae="/etc")
    yield _tool("sae_nul", embed, r"NUL character", dataset=RV, sae="x\x00y")
    for name in BAD_SAES:
        expect = r"not an SAE folder" if name == "not_sae" else r"sae_" + name
        yield _tool(f"sae_{name}", embed, expect, dataset=RV, sae="{bad:" + name + "}")


def _mcp_filters() -> Iterator[McpCase]:
    hostile = {
        **filters("category", "pair"),
        "mb": (MB_STRING, r"characters long|limit"),
        "nul": ("pair == 1\x00", r"null|filter"),
    }
    for name, (text, expect) in hostile.items():
        yield _tool(f"filter_{name}", "diff_datasets", expect, dataset_a=RV, where_a=text, where_b="length > 0")
    yield _tool("filter_correlations", "correlations", r"cannot parse", dataset=RV, where="category in [null")
    yield _tool("filter_retrieve", "retrieve_documents", r"function call", dataset=RV, query="x",
                where="__import__('os')")  # fmt: skip


def _mcp_resources_and_prompts() -> Iterator[McpCase]:
    for name, latent in (("superscript", "²"), ("negative", "-1"), ("huge", str(BIG)), ("text", "abc")):
        expect = r"out of range" if name == "huge" else r"non-negative integer"
        yield McpCase(f"resource_latent_{name}", "resource", f"saescope://latents/{RV}/{latent}", expect)
    yield McpCase("resource_unknown_dataset", "resource", "saescope://datasets/nope", r"unknown dataset")
    yield McpCase("resource_unknown_latent_dataset", "resource", "saescope://latents/nope/1", r"unknown dataset")
    yield McpCase("resource_unknown_uri", "resource", "saescope://nothing/here", r"unknown|not found")
    yield McpCase("prompt_no_dataset_a", "prompt", "investigate_difference", r".", {}, protocol_error_ok=True)
    yield McpCase(
        "prompt_unknown_argument",
        "prompt",
        "investigate_difference",
        r".",
        {"dataset_a": RV, "bogus": "x"},
        protocol_error_ok=True,
    )
    yield McpCase("prompt_unknown", "prompt", "no_such_prompt", r".", {}, protocol_error_ok=True)


def mcp_cases() -> list[McpCase]:
    """Every MCP case (names are unique)."""
    cases = [
        *_mcp_numbers(),
        *_mcp_names(),
        *_mcp_latents(),
        *_mcp_paths(),
        *_mcp_saes(),
        *_mcp_filters(),
        *_mcp_resources_and_prompts(),
    ]
    assert len({c.name for c in cases}) == len(cases)
    return cases
