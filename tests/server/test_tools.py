"""Every tool through the in-memory client, on real embeddings: schemas, results, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from saescope import ops
from saescope.llm.providers import LLMSettings
from saescope.ops.requests import DiffRequest
from saescope.server.app import build_server
from saescope.server.config import ServerConfig
from saescope.workspace import Workspace
from tests.server.shared import Data

pytestmark = pytest.mark.anyio

TOOLS = {
    "list_datasets",
    "describe_dataset",
    "read_documents",
    "ingest_documents",
    "embed_dataset",
    "describe_latents",
    "embed_status",
    "diff_datasets",
    "find_trends",
    "correlations",
    "cluster_documents",
    "retrieve_documents",
    "search_features",
    "feature_details",
    "explain_document",
    "label_latents",
    "summarise_diff",
    "verify_hypothesis",
    "llm_usage",
}


def make_server(data: Data, **overrides: Any) -> MCPServer:
    settings: dict[str, Any] = {
        "home": data.root,
        "roots": [data.files, data.sae_dir],
        "sae": str(data.sae_dir),
        "device": "cpu",
        "llm": LLMSettings(provider="auto"),
    }
    cfg = ServerConfig(**{**settings, **overrides})
    return build_server(cfg, workspace=data.ws)


async def call(client: Client, tool: str, /, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.content and len(result.content[0].text) <= 8000  # type: ignore[union-attr]
    return result.structured_content


async def error(client: Client, tool: str, /, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return str(result.content[0].text)  # type: ignore[union-attr]


async def test_tools_are_listed_with_descriptions_and_schemas(data: Data) -> None:
    async with Client(make_server(data)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations is not None
    assert tools["diff_datasets"].annotations.read_only_hint  # type: ignore[union-attr]
    assert not tools["ingest_documents"].annotations.read_only_hint  # type: ignore[union-attr]
    assert "mode" in tools["diff_datasets"].input_schema["properties"]
    assert "description" in tools["diff_datasets"].input_schema["properties"]["where_a"]


def test_published_schemas_match_the_result_models() -> None:
    from saescope.server.results import SCHEMAS_PATH, output_schemas

    stored = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(output_schemas())), "run `python -m saescope.server.results`"


async def test_list_describe_and_read(data: Data) -> None:
    async with Client(make_server(data)) as client:
        listed = await call(client, "list_datasets")
        by_name = {d["name"]: d for d in listed["datasets"]}
        assert by_name["reviews"]["n_docs"] == 48
        assert by_name["reviews"]["embeddings"][0]["complete"]
        described = await call(client, "describe_dataset", dataset="reviews", n_examples=2)
        cols = {c["name"]: c for c in described["columns"]}
        assert dict(cols["category"]["top_values"]) == {"fresh": 16, "rotten": 16, "plot": 16}
        assert cols["length"]["min"] is not None and len(described["examples"]) == 2
        docs = await call(client, "read_documents", dataset="reviews", doc_ids=["fresh-0000", "nope"], max_chars=100)
        assert docs["missing"] == ["nope"]
        assert docs["documents"][0]["metadata"]["category"] == "fresh"
        assert len(docs["documents"][0]["text"]) <= 100


async def test_unknown_dataset_error_lists_known_ones(data: Data) -> None:
    async with Client(make_server(data)) as client:
        text = await error(client, "describe_dataset", dataset="revews")
        assert "unknown dataset 'revews'" in text and "reviews" in text
        text = await error(
            client, "diff_datasets", dataset_a="reviews", where_a="categry == 'fresh'", where_b="category == 'rotten'"
        )
        assert "category" in text


async def test_diff_modes_match_the_library(data: Data) -> None:
    async with Client(make_server(data)) as client:
        out = await call(
            client,
            "diff_datasets",
            dataset_a="reviews",
            where_a="category == 'fresh'",
            where_b="category == 'rotten'",
            top_k=5,
        )
        assert out["mode"] == "sets" and out["paired"] is None
        direct = ops.diff(
            data.ws,
            DiffRequest(dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'", top_k=5),
        ).diff
        assert out["sets"] == direct.model_dump(mode="json")
        page2 = await call(
            client,
            "diff_datasets",
            dataset_a="reviews",
            where_a="category == 'fresh'",
            where_b="category == 'rotten'",
            top_k=5,
            cursor=5,
        )
        assert page2["sets"]["cursor"] == 5
        assert {r["latent"] for r in page2["sets"]["rows"]}.isdisjoint(r["latent"] for r in out["sets"]["rows"])

        paired = await call(
            client,
            "diff_datasets",
            dataset_a="reviews",
            where_a="half == 'first'",
            where_b="half == 'second'",
            mode="paired",
            pair_key="pair",
            top_k=3,
            min_support=2,
        )
        assert paired["paired"]["n_pairs"] == 24 and len(paired["paired"]["rows"]) <= 3
        one = await call(
            client, "diff_datasets", dataset_a="reviews", mode="one_vs_many", column="category", target="plot", top_k=3
        )
        assert one["one_vs_many"]["target"] == "plot"
        assert set(one["one_vs_many"]["others"]) == {"fresh", "rotten"}

        assert "pair_key" in await error(
            client, "diff_datasets", dataset_a="reviews", where_a="half == 'first'", mode="paired"
        )
        assert "same documents" in await error(client, "diff_datasets", dataset_a="reviews")
        assert "top_k" in await error(
            client,
            "diff_datasets",
            dataset_a="reviews",
            where_a="half == 'first'",
            where_b="half == 'second'",
            top_k=500,
        )


async def test_correlations_cluster_retrieve_search_explain(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    async with Client(make_server(data)) as client:
        co = await call(client, "correlations", dataset="reviews", top_k=5)
        assert co["kind"] == "cooccurrence" and co["cooccurrence"]["n_docs"] == 48
        meta = await call(client, "correlations", dataset="reviews", column="category", top_k=3)
        assert meta["metadata"]["kind"] == "categorical"

        clusters = await call(client, "cluster_documents", dataset="reviews", latents=list(data.labelled)[:8], k=2)
        assert clusters["k"] == 2 and sum(c["size"] for c in clusters["clusters"]) + clusters["n_unassigned"] == 48
        assert "axis" in await error(client, "cluster_documents", dataset="reviews")
        by_class = await call(
            client, "cluster_documents", dataset="reviews", classes=["a plot summary", "an opinion about a film"]
        )
        assert by_class["k"] == 2 and {c["axis_class"] for c in by_class["clusters"]} == {
            "a plot summary",
            "an opinion about a film",
        }
        assert "alone" in await error(client, "cluster_documents", dataset="reviews", classes=["a", "b"], axis="x")

        found = await call(client, "search_features", dataset="reviews", query="praise", top_k=3)
        assert found["matches"][0]["latent"] == praise

        ranked = await call(client, "retrieve_documents", dataset="reviews", query="praise", top_k=4)
        assert ranked["ranking"]["docs"] and len(ranked["ranking"]["docs"]) <= 4

        expl = await call(client, "explain_document", dataset="reviews", doc_id="plot-0320", top_k=5)
        assert expl["explanation"]["doc_id"] == "plot-0320" and len(expl["explanation"]["latents"]) == 5
        assert expl["text"]
        assert "fresh-0000" in await error(client, "explain_document", dataset="reviews", doc_id="missing")


async def test_feature_details_marks_firing_tokens(data: Data) -> None:
    latent = next(iter(data.labelled))
    async with Client(make_server(data)) as client:
        out = await call(client, "feature_details", dataset="reviews", latent=latent, n_top=2)
        assert out["summary"]["latent"] == latent and out["summary"]["count"] > 0
        assert out["labels"][0]["text"] == data.labelled[latent]
        assert out["evidence"] and "«" in out["evidence"][0]["text"] and out["evidence"][0]["tokens"]
        fast = await call(client, "feature_details", dataset="reviews", latent=latent, n_top=2, token_evidence=False)
        assert fast["evidence"] == []
        assert "out of range" in await error(
            client, "feature_details", dataset="reviews", latent=100000, token_evidence=False
        )


async def test_long_text_is_capped(data: Data) -> None:
    async with Client(make_server(data, text_limit=600)) as client:
        result = await client.call_tool(
            "diff_datasets",
            {"dataset_a": "reviews", "where_a": "category == 'fresh'", "where_b": "category != 'fresh'", "top_k": 50},
        )
    text = result.content[0].text  # type: ignore[union-attr]
    assert len(text) <= 600 and "cursor" in text
    assert len(result.structured_content["sets"]["rows"]) > 5  # type: ignore[index]


async def test_verify_hypothesis_counts_without_llm(data: Data) -> None:
    latents = list(data.labelled)[:2]
    async with Client(make_server(data)) as client:
        out = await call(
            client,
            "verify_hypothesis",
            dataset_a="reviews",
            where_a="category == 'fresh'",
            where_b="category == 'rotten'",
            latents=latents,
            hypothesis="fresh reviews praise",
        )
    _, matrix = data.ws.matrix("reviews")
    meta = data.ws.dataset("reviews").metadata()
    fires = np.asarray((matrix[:, latents] > 0).sum(axis=1)).ravel() > 0
    fresh = meta["category"].to_numpy() == "fresh"
    rotten = meta["category"].to_numpy() == "rotten"
    assert (out["count_a"], out["count_b"]) == (int(fires[fresh].sum()), int(fires[rotten].sum()))
    assert out["n_a"] == out["n_b"] == 16 and 0 <= out["p"] <= 1 and out["judge"] is None and out["usage"] is None


async def test_llm_tools_say_how_to_configure_an_llm(data: Data) -> None:
    async with Client(make_server(data)) as client:
        text = await error(client, "label_latents", dataset="reviews", latents=[1], token_evidence=False)
        assert "No LLM is configured" in text and "SAESCOPE_LLM_BASE_URL" in text and "sampling" in text
        text = await error(
            client,
            "verify_hypothesis",
            dataset_a="reviews",
            where_a="category == 'fresh'",
            where_b="category == 'rotten'",
            latents=[1],
            hypothesis="x",
            judge=True,
        )
        assert "No LLM is configured" in text
        usage = await call(client, "llm_usage")
        assert usage["calls"] == 0 and usage["cost"] == 0
    async with Client(make_server(data, llm=LLMSettings(provider="none"))) as client:
        assert "--llm none" in await error(
            client, "summarise_diff", dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'"
        )


async def test_resources_and_prompt(data: Data) -> None:
    latent = next(iter(data.labelled))
    async with Client(make_server(data)) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"saescope://datasets", "saescope://llm/usage"} <= uris
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert {"saescope://datasets/{name}", "saescope://latents/{dataset}/{latent}"} <= templates
        listed = json.loads((await client.read_resource("saescope://datasets")).contents[0].text)  # type: ignore[union-attr]
        assert "reviews" in {d["name"] for d in listed["datasets"]}
        one = json.loads((await client.read_resource("saescope://datasets/reviews")).contents[0].text)  # type: ignore[union-attr]
        assert one["n_docs"] == 48
        lat = json.loads((await client.read_resource(f"saescope://latents/reviews/{latent}")).contents[0].text)  # type: ignore[union-attr]
        assert lat["summary"]["latent"] == latent and lat["evidence"] == []
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert "investigate_difference" in prompts
        got = await client.get_prompt(
            "investigate_difference",
            {"dataset_a": "reviews", "where_a": "category == 'fresh'", "where_b": "category == 'rotten'"},
        )
        text = got.messages[0].content.text  # type: ignore[union-attr]
        assert "diff_datasets" in text and "verify_hypothesis" in text and "category == 'fresh'" in text


async def test_cross_correlations_and_describe_latents_over_mcp(data: Data, tmp_path: Path) -> None:
    """correlations(against=...) answers with matched-row pairs; describe_latents (on a copy of the data, since
    it saves labels) answers with measured descriptions and refuses a vocabulary path (operator only)."""
    async with Client(make_server(data)) as client:
        cross = await call(
            client,
            "correlations",
            dataset="reviews",
            where="half == 'first'",
            against="reviews",
            join_on="pair",
            skip_echoes=True,
            min_cooc=3,
            top_k=5,
        )
        assert cross["kind"] == "cross" and cross["cross"]["n_rows"] == 48 and cross["cross"]["skip_same"]
        assert all(p["latent_x"] != p["latent_y"] for p in cross["cross"]["pairs"])
        assert "repeats" in await error(client, "correlations", dataset="reviews", against="reviews", join_on="pair")
    root = tmp_path / "home"
    shutil.copytree(data.root, root)
    ws = Workspace(root, device="cpu")
    async with Client(build_server(ServerConfig(home=root, sae=str(data.sae_dir), device="cpu"), workspace=ws)) as c:
        described = await call(c, "describe_latents", dataset="reviews", min_fires=3, top_k=5)
        assert described["n_docs"] == 48 and described["n_described"] >= len(described["top"]) > 0
        assert "vocabulary" in await error(c, "describe_latents", dataset="reviews", vocabulary="/etc/passwd")
