"""``saescope``: the operations of :mod:`saescope.ops` for a person at a terminal. Read commands take ``--json``.

Each command builds its operation's request from the options (which :mod:`saescope.cli_options` makes
from the request's fields), calls the operation and prints its result: ``to_text()``, or JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import BaseModel

from saescope import ops
from saescope.cli_options import add_options, request_from
from saescope.errors import SaescopeError
from saescope.ops.requests import (
    ClusterRequest,
    CorrelationsRequest,
    DescribeLatentsRequest,
    DescribeRequest,
    DiffRequest,
    EmbedRequest,
    ExplainRequest,
    FeatureRequest,
    IngestRequest,
    Request,
    RetrieveRequest,
    SearchFeaturesRequest,
    TopFeaturesRequest,
    TrendRequest,
)

if TYPE_CHECKING:
    from saescope.store.dataset import ShardProgress
    from saescope.workspace import Workspace

    Subparsers = argparse._SubParsersAction[Any]

log = logging.getLogger("saescope")
DEFAULT_RAY_ADDRESS = "default"
"""``--ray`` alone (as :data:`saescope.distributed.DEFAULT_ADDRESS`, which this light module does not import)."""
R = TypeVar("R", bound=Request)


def _print_json(obj: Any) -> None:
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if chr(c) not in "\n\t"}
_CONTROL.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences in documents or ids) shown as ``\\xNN``."""
    return text.translate(_CONTROL)


def _emit(result: BaseModel, as_json: bool) -> int:
    if as_json:
        _print_json(result)
    else:
        print(printable(result.to_text()))  # type: ignore[attr-defined]
    return 0


def _workspace(args: argparse.Namespace) -> Workspace:
    from saescope.workspace import Workspace

    return Workspace(Path(args.home) if args.home else None, device=getattr(args, "device", None))


# --- datasets and embedding -----------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    result = ops.ingest_documents(_workspace(args), request_from(args, IngestRequest))
    if args.json:
        return _emit(result.dataset, True)
    print(printable(result.to_text()))
    return 0


def _progress_bar(total: int, desc: str) -> tuple[Any, Callable[[ShardProgress], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, dynamic_ncols=True)

    def update(p: ShardProgress) -> None:
        bar.n = p.docs_done
        rate_d = p.docs_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        rate_t = p.tokens_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        actors = "" if p.actors_alive is None else f", {p.actors_alive} actors alive"
        bar.set_postfix_str(f"{rate_d:.1f} docs/s, {rate_t:,.0f} tok/s{actors}", refresh=False)
        bar.refresh()

    return bar, update


def cmd_embed(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    req = request_from(args, EmbedRequest)
    choice = ops.sae_choice(req)
    bar, update = _progress_bar(ws.dataset(req.dataset).info.n_docs, f"embed {req.dataset}")
    try:
        manifest = ops.embed_dataset(ws, req, choice, progress=update)
    finally:
        bar.close()
    if args.json:
        return _emit(manifest, True)
    s = manifest.stats
    print(
        f"embedded {manifest.n_docs} documents of {req.dataset!r} with {manifest.spec.sae['id']} (key {manifest.key})"
    )
    print(
        f"active latents per document: mean {s['active_latents_mean']:.1f}, sd {s['active_latents_std']:.1f}, "
        f"median {s['active_latents_median']:.0f}; {int(s['tokens_total']):,} tokens"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    if getattr(args, "dataset", None) is None:
        return _emit(ops.list_datasets(ws), args.json)
    return _emit(ops.describe_dataset(ws, request_from(args, DescribeRequest)), args.json)


# --- analyses and latents ---------------------------------------------------------------------------
def _analysis(
    args: argparse.Namespace, request: type[R], run: Callable[[Workspace, R], BaseModel], report: str, **values: Any
) -> int:
    """Run one analysis; with ``--html``, also write its report (the path is checked before the work)."""
    from saescope.report import check_output, render_html, write_report

    req = request_from(args, request, **values)
    html = Path(args.html) if args.html else None
    if html is not None:
        check_output(html)
    ws = _workspace(args)
    result = run(ws, req)
    if html is not None:
        from saescope.ops import reports

        command = " ".join(["saescope", *sys.argv[1:]])
        write_report(html, render_html(getattr(reports, report)(ws, req, result, command=command)))
        print(f"wrote {html}", file=sys.stderr)
    return _emit(result, args.json)


def cmd_diff(args: argparse.Namespace) -> int:
    mode = "one_vs_many" if getattr(args, "column", None) else "paired" if getattr(args, "pair_key", None) else "sets"
    return _analysis(args, DiffRequest, ops.diff, "diff_report", mode=mode)


def cmd_trend(args: argparse.Namespace) -> int:
    return _analysis(args, TrendRequest, ops.trend, "trend_report")


def cmd_correlations(args: argparse.Namespace) -> int:
    return _analysis(args, CorrelationsRequest, ops.correlations, "correlations_report")


def cmd_cluster(args: argparse.Namespace) -> int:
    return _analysis(args, ClusterRequest, ops.cluster, "cluster_report")


def cmd_retrieve(args: argparse.Namespace) -> int:
    return _analysis(args, RetrieveRequest, ops.retrieve, "retrieval_report")


def cmd_features_search(args: argparse.Namespace) -> int:
    return _emit(ops.search_features(_workspace(args), request_from(args, SearchFeaturesRequest)), args.json)


def cmd_feature_show(args: argparse.Namespace) -> int:
    return _emit(ops.feature_details(_workspace(args), request_from(args, FeatureRequest)), args.json)


def cmd_explain(args: argparse.Namespace) -> int:
    return _emit(ops.explain_document(_workspace(args), request_from(args, ExplainRequest)), args.json)


def cmd_describe(args: argparse.Namespace) -> int:
    return _emit(ops.describe_latents(_workspace(args), request_from(args, DescribeLatentsRequest)), args.json)


def cmd_top_features(args: argparse.Namespace) -> int:
    return _emit(ops.top_features(_workspace(args), request_from(args, TopFeaturesRequest)), args.json)


# --- training, labels, demo, server -----------------------------------------------------------------
def cmd_train_sae(args: argparse.Namespace) -> int:
    from saescope.embed.default import DEFAULT_SAE_DIR
    from saescope.paths import cache_home
    from saescope.training.pipeline import train_default_sae
    from saescope.training.train import TrainConfig

    os.environ.setdefault("WANDB_MODE", "disabled")
    cfg = TrainConfig(
        layer=args.layer,
        d_sae=args.d_sae,
        k=args.k,
        training_samples=args.samples,
        n_prompts=args.prompts,
        seed=args.seed,
        aux_loss_coefficient=args.aux_coefficient,
        dead_feature_window=args.dead_window,
    )
    out = Path(args.out) if args.out else DEFAULT_SAE_DIR
    work = Path(args.work) if args.work else cache_home() / "train-sae"
    quality = train_default_sae(out, work, cfg, regenerate=args.regenerate, max_docs=args.max_docs)
    if args.json:
        _print_json(quality.__dict__)
    else:
        print(f"saved to {out}")
        print(
            f"held-out FVU {quality.fvu:.3f}, L0 {quality.l0:.1f}, dead {quality.dead_fraction:.1%} of "
            f"{quality.d_sae} latents; {quality.train_tokens:,} train / {quality.held_out_tokens:,} held-out tokens"
        )
    return 0


def cmd_import_labels(args: argparse.Namespace) -> int:
    from saescope.workspace import SAEChoice

    ws = _workspace(args)
    sae = ws.sae(SAEChoice.parse(args.sae, args.sae_release, args.sae_id))
    n = ws.import_labels(sae, Path(args.path), source=args.source)
    print(f"labelled {n} latents of {sae.id} from {args.path} (saved to {ws.user_labels_path(sae.id)})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.mcp:
        from saescope.demo_mcp import run_mcp_demo
        from saescope.paths import data_home

        return run_mcp_demo(Path(args.home) if args.home else data_home())
    from saescope.demo import run_demo

    return run_demo(_workspace(args), as_json=args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from saescope.llm.providers import LLMSettings
    from saescope.server.config import ServerConfig
    from saescope.server.run import serve_http, serve_stdio

    llm = LLMSettings.from_env(provider=args.llm, base_url=args.llm_base_url, model=args.llm_model)
    config = ServerConfig(
        home=Path(args.home) if args.home else None,
        roots=[Path(r) for r in args.root] if args.root else [Path.cwd()],
        max_bytes=args.max_bytes,
        max_documents=args.max_documents,
        sae=args.sae,
        device=args.device,
        llm=llm,
        llm_prices=Path(args.llm_prices) if args.llm_prices else None,
        ray=args.ray,
    )
    if args.transport == "http":
        serve_http(config, host=args.host, port=args.port, token=args.token or os.environ.get("SAESCOPE_TOKEN"))
    else:
        serve_stdio(config)
    return 0


def _common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    if device:
        p.add_argument("--device", help="cuda, cpu or mps (default: best available)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _html(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report: the chart, and a card per top latent with its documents and "
        "firing tokens (runs the reader on a few documents)",
    )


def _dataset_commands(sub: Subparsers) -> None:
    p = sub.add_parser("ingest", help="store documents from JSONL, CSV, parquet or a folder of .txt files")
    add_options(p, IngestRequest, positional=["name", "path"], skip=["documents"])
    _common(p, device=False)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("embed", help="compute pooled SAE vectors for a dataset (resumable)")
    add_options(
        p,
        EmbedRequest,
        positional=["dataset"],
        flags={"use_sae_thresholds": "--no-sae-thresholds"},
        bare={"ray": DEFAULT_RAY_ADDRESS},
    )
    _common(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("info", help="list datasets, or describe one and its embeddings")
    add_options(p, DescribeRequest, positional=["dataset"], optional=["dataset"])
    _common(p, device=False)
    p.set_defaults(func=cmd_info)


def _analysis_commands(sub: Subparsers) -> None:
    p = sub.add_parser("diff", help="which concepts are more frequent in one document set than another")
    add_options(
        p,
        DiffRequest,
        positional=["dataset_a", "dataset_b"],
        optional=["dataset_b"],
        flags={"pair_key": "--paired-by", "column": "--by"},
        skip=["mode"],
    )
    _html(p)
    _common(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("trend", help="which concepts rise or fall along ordered groups (versions, dates, ...)")
    add_options(p, TrendRequest, positional=["dataset"], flags={"pair_key": "--paired-by"}, comma=["order"])
    _html(p)
    _common(p)
    p.set_defaults(func=cmd_trend)

    p = sub.add_parser("correlations", help="latent pairs that co-occur (NPMI), or latents tracking a column")
    add_options(p, CorrelationsRequest, positional=["dataset"], flags={"dissimilar_labels": "--dissimilar"})
    _html(p)
    _common(p)
    p.set_defaults(func=cmd_correlations)

    p = sub.add_parser("cluster", help="cluster documents along an axis of interest")
    add_options(p, ClusterRequest, positional=["dataset"], flags={"k": "-k"})
    _html(p)
    _common(p)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("retrieve", help="rank documents by a property described in words")
    add_options(p, RetrieveRequest, positional=["dataset", "query"], flags={"positives": "--positive"})
    _html(p)
    _common(p)
    p.set_defaults(func=cmd_retrieve)


def _latent_commands(sub: Subparsers) -> None:
    p = sub.add_parser("features", help="search latents by their labels")
    q = p.add_subparsers(dest="features_command", required=True).add_parser(
        "search", help="latents whose labels match a text"
    )
    add_options(q, SearchFeaturesRequest, positional=["dataset", "query"], flags={"semantic": "--no-semantic"})
    _common(q)
    q.set_defaults(func=cmd_features_search)

    p = sub.add_parser("feature", help="one latent in detail")
    q = p.add_subparsers(dest="feature_command", required=True).add_parser(
        "show", help="labels, frequency, top documents with firing tokens, non-firing examples"
    )
    add_options(
        q, FeatureRequest, positional=["dataset", "latent"], flags={"n_top": "--top", "token_evidence": "--no-evidence"}
    )
    _common(q)
    q.set_defaults(func=cmd_feature_show)

    p = sub.add_parser("explain", help="a document's most distinctive latents")
    add_options(p, ExplainRequest, positional=["dataset", "doc_id"])
    _common(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "describe", help="describe latents in words without an LLM (concept vocabulary matched on a dataset)"
    )
    add_options(p, DescribeLatentsRequest, positional=["dataset"])
    _common(p)
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("top-features", help="the strongest labelled latents of one document, with firing tokens")
    add_options(p, TopFeaturesRequest, positional=["dataset", "doc_id"], flags={"top_k": "-k/--top-k"})
    _common(p)
    p.set_defaults(func=cmd_top_features)


def _train_command(sub: Subparsers) -> None:
    from saescope.training.train import TrainConfig  # numpy only; torch and sae-lens load lazily

    p = sub.add_parser("train-sae", help="train the default SAE on the offline corpus (reproducible)")
    p.add_argument("--out", help="output folder (default: the package's shipped SAE folder)")
    p.add_argument("--work", help="folder for cached responses and activations")
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--d-sae", type=int, default=4096)
    p.add_argument("-k", type=int, default=64)
    p.add_argument("--samples", type=int, default=4_000_000, help="training samples (token vectors)")
    p.add_argument("--prompts", type=int, default=1700, help="prompts the reader answers for the corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--aux-coefficient",
        type=float,
        default=TrainConfig.aux_loss_coefficient,
        help="weight of the AuxK loss that revives dead latents",
    )
    p.add_argument(
        "--dead-window",
        type=int,
        default=TrainConfig.dead_feature_window,
        help="batches without firing after which the AuxK loss treats a latent as dead",
    )
    p.add_argument("--regenerate", action="store_true", help="re-generate the reader's responses")
    p.add_argument("--max-docs", type=int, help="use a random subset of the corpus (quick trials)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_sae)


def _tool_commands(sub: Subparsers) -> None:
    p = sub.add_parser("import-labels", help="add latent labels from a Neuronpedia export or a provider file")
    p.add_argument("path", help="a .json/.jsonl(.gz) file or a folder of Neuronpedia explanation batches")
    p.add_argument("--sae", default="default", help="'default', an SAELens folder, or RELEASE:SAE_ID")
    p.add_argument("--sae-release")
    p.add_argument("--sae-id")
    p.add_argument("--source", help="label source name (default: neuronpedia, or provider for {index: label})")
    p.add_argument("--device")
    p.set_defaults(func=cmd_import_labels)

    p = sub.add_parser("demo", help="ingest and embed the demo corpus, then show what saescope sees")
    p.add_argument("--json", action="store_true")
    p.add_argument("--mcp", action="store_true", help="run it through `saescope serve` with a real MCP client")
    p.add_argument("--device")
    p.set_defaults(func=cmd_demo)


def _serve_command(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="serve the tools over MCP (stdio, or streamable HTTP with a bearer token)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP: address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8765, help="HTTP: port")
    p.add_argument(
        "--token",
        help="HTTP: bearer token clients must send (default: $SAESCOPE_TOKEN, else a new one printed to stderr)",
    )
    p.add_argument(
        "--root",
        action="append",
        metavar="DIR",
        help="folder whose files ingest_documents may read (repeatable; default: the current folder)",
    )
    p.add_argument("--max-bytes", type=int, default=200_000_000, help="largest input one ingest may read")
    p.add_argument("--max-documents", type=int, default=200_000, help="most documents one ingest may store")
    p.add_argument("--sae", default="default", help="SAE embed_dataset uses when a call names none")
    p.add_argument("--device", help="cuda, cpu or mps (default: best available)")
    p.add_argument(
        "--ray",
        nargs="?",
        const=DEFAULT_RAY_ADDRESS,
        metavar="ADDRESS",
        help="run embed_dataset jobs on this Ray cluster (alone: $RAY_ADDRESS, a local cluster, or a new one); "
        "agents cannot choose a cluster themselves",
    )
    p.add_argument(
        "--llm",
        choices=["auto", "sampling", "openai", "none"],
        help="LLM for labels and hypotheses (default: $SAESCOPE_LLM_PROVIDER or auto: an OpenAI-compatible "
        "endpoint when configured, else the client's model by MCP sampling)",
    )
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (default: $SAESCOPE_LLM_BASE_URL)")
    p.add_argument(
        "--llm-model",
        help="model at that endpoint (default: $SAESCOPE_LLM_MODEL); the key comes "
        "from $SAESCOPE_LLM_API_KEY or $OPENAI_API_KEY",
    )
    p.add_argument("--llm-prices", help="price table for the cost ledger (default: the shipped prices.json)")
    p.set_defaults(func=cmd_serve)


class Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a bad command line as saescope reports other errors: usage, then a line
    ``error: ...``, exit code 2 (sub-command parsers are of the same class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="saescope", description="SAE embeddings of text corpora.")
    parser.add_argument("--home", help="data root (default: $SAESCOPE_HOME or ~/.local/share/saescope)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_dataset_commands, _train_command, _analysis_commands, _latent_commands, _tool_commands):
        add(sub)
    _serve_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args))
    except SaescopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; finished shards are kept: run the same command again to resume" if args.command == "embed" else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
