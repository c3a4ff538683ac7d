"""``saescope``: the library's operations for a person at a terminal. Read commands take ``--json``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from saescope.errors import SaescopeError

log = logging.getLogger("saescope")


def _print_json(obj: Any) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _workspace(args: argparse.Namespace) -> Any:
    from saescope.workspace import Workspace

    return Workspace(Path(args.home) if args.home else None, device=getattr(args, "device", None))


def _embed_config(args: argparse.Namespace) -> Any:
    from saescope.embed.engine import EmbedConfig

    return EmbedConfig(
        pooling=args.pooling,
        threshold=args.threshold,
        use_sae_thresholds=not args.no_sae_thresholds,
        chat_template=args.chat_template,
        window=args.window,
        token_budget=args.token_budget,
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from saescope.store.ingest import IngestOptions, read_documents

    ws = _workspace(args)
    opts = IngestOptions(
        text_column=args.text_column, id_column=args.id_column, skip_invalid=args.skip_invalid, format=args.format
    )
    frame, report = read_documents(Path(args.path), opts)
    ds = ws.store.create(
        args.name, frame, source=str(Path(args.path).resolve()), skipped=report.skipped, overwrite=args.overwrite
    )
    info = ds.info
    if args.json:
        _print_json(info)
    else:
        print(f"ingested {info.n_docs} documents into {info.name!r} (columns: {', '.join(info.columns) or 'none'})")
        for s in report.skipped[:10]:
            print(f"  skipped {s}")
        if len(report.skipped) > 10:
            print(f"  ... {len(report.skipped) - 10} more skipped (see `saescope info {info.name} --json`)")
    return 0


def _progress_bar(total: int, desc: str) -> tuple[Any, Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="doc", file=sys.stderr, dynamic_ncols=True)

    def update(p: Any) -> None:
        bar.n = p.docs_done
        rate_d = p.docs_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        rate_t = p.tokens_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
        bar.set_postfix_str(f"{rate_d:.1f} docs/s, {rate_t:,.0f} tok/s", refresh=False)
        bar.refresh()

    return bar, update


def cmd_embed(args: argparse.Namespace) -> int:
    from saescope.workspace import SAEChoice

    ws = _workspace(args)
    ds = ws.dataset(args.name)
    choice = SAEChoice.parse(args.sae, args.sae_release, args.sae_id)
    bar, update = _progress_bar(ds.info.n_docs, f"embed {args.name}")
    try:
        manifest = ws.embed(
            args.name, choice, _embed_config(args), reader=args.reader, shard_size=args.shard_size, progress=update
        )
    finally:
        bar.close()
    if args.json:
        _print_json(manifest)
    else:
        s = manifest.stats
        print(
            f"embedded {manifest.n_docs} documents of {args.name!r} with {manifest.spec.sae['id']} (key {manifest.key})"
        )
        print(
            f"active latents per document: mean {s['active_latents_mean']:.1f}, sd {s['active_latents_std']:.1f}, "
            f"median {s['active_latents_median']:.0f}; {int(s['tokens_total']):,} tokens"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    if not args.name:
        rows = []
        for name in ws.store.names():
            ds = ws.store.open(name)
            embs = [e.manifest for e in ds.embeddings()]
            rows.append(
                {
                    "name": name,
                    "n_docs": ds.info.n_docs,
                    "embeddings": [{"key": m.key, "sae": m.spec.sae.get("id"), "complete": m.complete} for m in embs],
                }
            )
        if args.json:
            _print_json({"root": str(ws.store.root), "datasets": rows})
        else:
            print(f"data root: {ws.store.root}")
            if not rows:
                print("no datasets yet: `saescope ingest NAME FILE`")
            else:
                print(
                    _table(
                        [
                            (
                                r["name"],
                                r["n_docs"],
                                ", ".join(
                                    f"{e['sae']}{'' if e['complete'] else ' (incomplete)'}" for e in r["embeddings"]
                                )
                                or "-",
                            )
                            for r in rows
                        ],
                        ["dataset", "docs", "embeddings"],
                    )
                )
        return 0
    ds = ws.dataset(args.name)
    info = ds.info
    embs = [{"done_shards": e.shards_done(), **e.manifest.model_dump(mode="json")} for e in ds.embeddings()]
    if args.json:
        _print_json({"dataset": info.model_dump(), "embeddings": embs})
        return 0
    print(f"{info.name}: {info.n_docs} documents from {info.source}")
    print(f"columns: {', '.join(info.columns) or 'none'}; created {info.created}")
    if info.skipped:
        print(f"{len(info.skipped)} rows were skipped at ingest")
    for e in embs:
        state = "complete" if e["complete"] else f"incomplete ({e['done_shards']} shards done)"
        cfg = e["spec"]["config"]
        print(
            f"embedding {e['key']}: sae {e['spec']['sae']['id']}, reader {e['spec']['reader']['id']} "
            f"block {e['spec']['reader']['layer']}, pooling {cfg['pooling']}, {state}"
        )
        if e["stats"]:
            s = e["stats"]
            print(f"  active latents/doc: mean {s['active_latents_mean']}, sd {s['active_latents_std']}")
    return 0


def cmd_top_features(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    emb, matrix = ws.matrix(args.name, args.sae)
    ds = ws.dataset(args.name)
    row = int(ds.row_of([args.doc_id])[0])
    sae = ws.sae_of(emb)
    book = ws.labels(sae)
    vec = matrix.getrow(row)
    order = vec.indices[(-vec.data).argsort(kind="stable")][: args.k]
    acts = dict(zip(vec.indices.tolist(), vec.data.tolist(), strict=True))
    doc_freq = (matrix[:, order] > 0).sum(axis=0).A1 / max(matrix.shape[0], 1)
    feats = [
        {
            "latent": int(i),
            "activation": round(acts[int(i)], 3),
            "doc_frequency": round(float(f), 4),
            "label": book.text(int(i)),
        }
        for i, f in zip(order, doc_freq, strict=True)
    ]
    evidence: dict[int, list[Any]] = {}
    if args.evidence:
        ev = ws.evidence(args.name, args.doc_id, [f["latent"] for f in feats[: args.evidence]], args.sae)
        evidence = {
            k: [(e.token, round(e.activation, 2)) for e in sorted(v, key=lambda e: -e.activation)[:5]]
            for k, v in ev.items()
        }
    text = str(ds.documents(["text"])["text"].iloc[row])
    if args.json:
        _print_json(
            {
                "dataset": args.name,
                "doc_id": args.doc_id,
                "n_active": int(vec.nnz),
                "features": feats,
                "evidence": {str(k): v for k, v in evidence.items()},
            }
        )
        return 0
    print(
        f"{args.name}/{args.doc_id}: {vec.nnz} active latents. Text: {text[:200]!r}{'...' if len(text) > 200 else ''}"
    )
    rows = [
        (
            f["latent"],
            f"{f['activation']:.2f}",
            f"{f['doc_frequency']:.1%}",
            f["label"][:70],
            " ".join(f"{t!r}" for t, _ in evidence.get(f["latent"], [])[:3]),
        )
        for f in feats
    ]
    print(_table(rows, ["latent", "act", "in docs", "label", "firing tokens" if evidence else ""]))
    return 0


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


def _emit(result: Any, as_json: bool) -> int:
    if as_json:
        _print_json(result)
    else:
        print(result.to_text())
    return 0


def _docset(name: str, where: str | None, sae: str | None) -> Any:
    from saescope.queries import DocSet

    return DocSet(name, where, sae)


def cmd_diff(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    opts = {"top_k": args.top_k, "cursor": args.cursor, "min_support": args.min_support, "alpha": args.alpha}
    if args.by:
        if not args.target:
            raise SaescopeError("--by needs --target (the value compared against all others)")
        result: Any = queries.diff_by_column(ws, args.a, args.by, args.target, where=args.where_a, sae=args.sae, **opts)
        return _emit(result, args.json)
    a = _docset(args.a, args.where_a, args.sae)
    b = _docset(args.b or args.a, args.where_b, args.sae)
    if args.paired_by:
        result = queries.diff_paired(ws, a, b, args.paired_by, rank_by=args.rank_by, **opts)
    else:
        result = queries.diff(ws, a, b, rank_by=args.rank_by, **opts)
        if args.html:
            from saescope.report import diff_html

            Path(args.html).write_text(diff_html(result), encoding="utf-8")
            print(f"wrote {args.html}", file=sys.stderr)
    return _emit(result, args.json)


def cmd_correlations(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    ds = _docset(args.name, args.where, args.sae)
    if args.column:
        return _emit(queries.metadata_association(ws, ds, args.column, top_k=args.top_k), args.json)
    return _emit(
        queries.correlations(
            ws, ds, dissimilar_labels=args.dissimilar, min_cooc=args.min_cooc, top_k=args.top_k, cursor=args.cursor
        ),
        args.json,
    )


def cmd_cluster(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    latents = [int(x) for x in args.latents.split(",")] if args.latents else None
    if not (args.axis or latents or args.dense):
        raise SaescopeError("name an axis (--axis 'tone'), latents (--latents 1,2) or use --dense")
    return _emit(
        queries.cluster(
            ws, _docset(args.name, args.where, args.sae), axis=args.axis, latents=latents, dense=args.dense, k=args.k
        ),
        args.json,
    )


def cmd_retrieve(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    return _emit(
        queries.retrieve(
            ws,
            _docset(args.name, args.where, args.sae),
            args.query,
            positives=args.positive or (),
            dense=args.dense,
            top_k=args.top_k,
            cursor=args.cursor,
        ),
        args.json,
    )


def cmd_features_search(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    return _emit(queries.search_features(ws, args.name, args.query, top_k=args.top_k, sae=args.sae), args.json)


def cmd_feature_show(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    return _emit(
        queries.feature_details(
            ws, args.name, args.latent, n_top=args.top, evidence=not args.no_evidence, sae=args.sae
        ),
        args.json,
    )


def cmd_explain(args: argparse.Namespace) -> int:
    from saescope import queries

    ws = _workspace(args)
    return _emit(queries.explain(ws, args.name, args.doc_id, top_k=args.top_k, sae=args.sae), args.json)


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
    )
    if args.transport == "http":
        serve_http(config, host=args.host, port=args.port, token=args.token or os.environ.get("SAESCOPE_TOKEN"))
    else:
        serve_stdio(config)
    return 0


def _add_embed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sae", default="default", help="'default', an SAELens folder, or RELEASE:SAE_ID (pretrained)")
    p.add_argument("--sae-release", help="SAELens pretrained release, e.g. gemma-scope-2b-pt-res-canonical")
    p.add_argument("--sae-id", help="SAE id within the release, e.g. layer_20/width_16k/canonical")
    p.add_argument("--reader", help="HF model id or folder (default: the model the SAE names)")
    p.add_argument("--pooling", default="max", choices=["max", "mean", "sum", "count", "binary"])
    p.add_argument("--threshold", type=float, default=0.0, help="global activation floor")
    p.add_argument("--no-sae-thresholds", action="store_true", help="ignore the SAE's per-latent thresholds")
    p.add_argument("--chat-template", action="store_true", help="read documents as assistant messages")
    p.add_argument("--window", type=int, default=512, help="tokens per window (longer documents are split)")
    p.add_argument("--token-budget", type=int, default=0, help="tokens per forward batch (0: by device)")
    p.add_argument("--shard-size", type=int, default=256, help="documents per committed shard")
    p.add_argument("--device", help="cuda, cpu or mps (default: best available)")


def _add_read_options(p: argparse.ArgumentParser, top_k: int = 20) -> None:
    p.add_argument("--top-k", type=int, default=top_k)
    p.add_argument("--cursor", type=int, default=0, help="start of the page (from next_cursor)")
    p.add_argument("--sae", help="SAE id or embedding key, when the dataset has several embeddings")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from saescope.training.train import TrainConfig  # numpy only; torch and sae-lens load lazily

    parser = argparse.ArgumentParser(prog="saescope", description="SAE embeddings of text corpora.")
    parser.add_argument("--home", help="data root (default: $SAESCOPE_HOME or ~/.local/share/saescope)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="store documents from JSONL, CSV, parquet or a folder of .txt files")
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", help="column with stable document ids (default: row numbers)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet", "txt"])
    p.add_argument("--skip-invalid", action="store_true", help="skip bad rows (listed) instead of failing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("embed", help="compute pooled SAE vectors for a dataset (resumable)")
    p.add_argument("name")
    _add_embed_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("info", help="list datasets, or describe one and its embeddings")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("top-features", help="the strongest labelled latents of one document")
    p.add_argument("name")
    p.add_argument("doc_id")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--sae", help="SAE id or embedding key, when the dataset has several embeddings")
    p.add_argument(
        "--evidence",
        type=int,
        default=0,
        metavar="N",
        help="show the firing tokens of the top N latents (runs the reader)",
    )
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_top_features)

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

    p = sub.add_parser("diff", help="which concepts are more frequent in one document set than another")
    p.add_argument("a", help="dataset of set A")
    p.add_argument("b", nargs="?", help="dataset of set B (default: A, with --where-b)")
    p.add_argument("--where-a", help="metadata filter for A, e.g. \"model == 'gpt-4o'\"")
    p.add_argument("--where-b", help="metadata filter for B")
    p.add_argument("--paired-by", metavar="KEY", help="pair documents of A and B by this column (McNemar)")
    p.add_argument("--by", metavar="COLUMN", help="one value of COLUMN against all others (with --target)")
    p.add_argument("--target", help="the value of --by compared against the rest")
    p.add_argument("--rank-by", default="effect", choices=["effect", "z", "diff", "ratio", "p"])
    p.add_argument("--min-support", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    _add_read_options(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("correlations", help="latent pairs that co-occur (NPMI), or latents tracking a column")
    p.add_argument("name")
    p.add_argument("--where")
    p.add_argument("--column", help="metadata column to associate latents with (categorical, numeric or date)")
    p.add_argument("--dissimilar", type=float, metavar="SIM", help="keep pairs whose labels' cosine is below SIM")
    p.add_argument("--min-cooc", type=int, default=5)
    _add_read_options(p, top_k=30)
    p.set_defaults(func=cmd_correlations)

    p = sub.add_parser("cluster", help="cluster documents along an axis of interest")
    p.add_argument("name")
    p.add_argument("--where")
    p.add_argument("--axis", help="the axis in words, e.g. 'tone' or 'programming language'")
    p.add_argument("--latents", help="comma-separated latent ids defining the axis")
    p.add_argument("-k", type=int, help="number of clusters (default: chosen by silhouette)")
    p.add_argument("--dense", action="store_true", help="cluster dense sentence embeddings instead (baseline)")
    _add_read_options(p)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("retrieve", help="rank documents by a property described in words")
    p.add_argument("name")
    p.add_argument("query")
    p.add_argument("--where")
    p.add_argument("--positive", action="append", metavar="DOC_ID", help="an example document with the property")
    p.add_argument("--dense", action="store_true", help="also rank by dense cosine similarity (baseline)")
    _add_read_options(p, top_k=10)
    p.set_defaults(func=cmd_retrieve)

    p = sub.add_parser("features", help="search latents by their labels")
    fsub = p.add_subparsers(dest="features_command", required=True)
    q = fsub.add_parser("search", help="latents whose labels match a text")
    q.add_argument("name", help="dataset (its embedding names the SAE)")
    q.add_argument("query")
    _add_read_options(q)
    q.set_defaults(func=cmd_features_search)

    p = sub.add_parser("feature", help="one latent in detail")
    fsub = p.add_subparsers(dest="feature_command", required=True)
    q = fsub.add_parser("show", help="labels, frequency, top documents with firing tokens, non-firing examples")
    q.add_argument("name")
    q.add_argument("latent", type=int)
    q.add_argument("--top", type=int, default=5)
    q.add_argument("--no-evidence", action="store_true", help="skip recomputing token activations")
    _add_read_options(q)
    q.set_defaults(func=cmd_feature_show)

    p = sub.add_parser("explain", help="a document's most distinctive latents")
    p.add_argument("name")
    p.add_argument("doc_id")
    _add_read_options(p, top_k=15)
    p.set_defaults(func=cmd_explain)

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
