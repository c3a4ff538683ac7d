"""Which SAE an embed request may use, and embedding fresh datasets end to end (random SAE, real reader)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from saescope import ops
from saescope.errors import InputError
from saescope.ops.docsets import resolve_sides
from saescope.ops.requests import DiffSpec, EmbedRequest, IngestRequest
from saescope.workspace import SAEChoice, Workspace

PRETRAINED = "gemma-scope-2b-pt-res-canonical:layer_20/width_16k/canonical"


def mark_sae_folder(folder: Path) -> None:
    """What makes a folder an SAELens SAE for the checks made before loading: a cfg.json with d_in and d_sae,
    and a safetensors file whose encoder has those sizes (the weights themselves are never read here)."""
    import json

    (folder / "cfg.json").write_text(json.dumps({"d_in": 4, "d_sae": 8}), encoding="utf-8")
    header = json.dumps({"W_enc": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 128]}}).encode()
    (folder / "sae_weights.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(128))


def test_sae_choice_with_roots(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "saes" / "mine").mkdir(parents=True)
    outside.mkdir()
    for folder in (allowed / "saes" / "mine", outside):
        mark_sae_folder(folder)
    roots = [allowed]
    with pytest.raises(InputError, match="outside the allowed roots"):
        ops.sae_choice(EmbedRequest.build(dataset="d", sae=str(outside)), roots=roots)
    link = allowed / "link"
    link.symlink_to(outside)
    with pytest.raises(InputError, match="outside the allowed roots"):
        ops.sae_choice(EmbedRequest.build(dataset="d", sae="link"), roots=roots)
    with pytest.raises(InputError, match="does not exist"):
        ops.sae_choice(EmbedRequest.build(dataset="d", sae=str(allowed / "nope")), roots=roots)
    inside = ops.sae_choice(EmbedRequest.build(dataset="d", sae="saes/mine"), roots=roots)
    assert inside == SAEChoice(path=str((allowed / "saes" / "mine").resolve()))
    assert ops.sae_choice(EmbedRequest.build(dataset="d", sae="default"), roots=roots) == SAEChoice()
    assert ops.sae_choice(EmbedRequest.build(dataset="d"), roots=roots) == SAEChoice()
    pretrained = ops.sae_choice(EmbedRequest.build(dataset="d", sae=PRETRAINED), roots=roots)
    assert (pretrained.path, pretrained.release, pretrained.sae_id) == (
        None,
        "gemma-scope-2b-pt-res-canonical",
        "layer_20/width_16k/canonical",
    )
    # the server's own --sae is allowed wherever it is; naming it explicitly is the same choice
    own = ops.sae_choice(EmbedRequest.build(dataset="d"), fallback=str(outside), roots=roots)
    assert own == SAEChoice(path=str(outside.resolve()))
    assert ops.sae_choice(EmbedRequest.build(dataset="d", sae=str(outside)), fallback=str(outside), roots=roots) == own


def test_sae_choice_without_roots(tmp_path: Path) -> None:
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()
    mark_sae_folder(anywhere)
    assert ops.sae_choice(EmbedRequest.build(dataset="d", sae=str(anywhere))) == SAEChoice(path=str(anywhere))
    assert ops.sae_choice(EmbedRequest.build(dataset="d", sae="default")) == SAEChoice()
    assert ops.sae_choice(EmbedRequest.build(dataset="d")) == SAEChoice()
    assert ops.sae_choice(EmbedRequest.build(dataset="d", sae=PRETRAINED)).release == "gemma-scope-2b-pt-res-canonical"
    both = EmbedRequest.build(dataset="d", sae_release="rel", sae_id="some/id")
    assert ops.sae_choice(both, roots=[tmp_path]) == SAEChoice(release="rel", sae_id="some/id")
    with pytest.raises(InputError, match="both a release and an SAE id"):
        ops.sae_choice(EmbedRequest.build(dataset="d", sae_release="rel"))


TEXTS = [
    "The film was wonderful and moving.",
    "A dull, lifeless sequel that nobody asked for.",
    "An inspector hunts a jewel thief through Paris.",
    "Great acting, but the script is weak.",
]


@dataclass
class Fresh:
    ws: Workspace
    sae: Path


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, random_sae_dir: Path) -> Iterator[Fresh]:
    """A new data root with two small datasets embedded through the operations: ``a`` (prompt ids 0..3) and
    ``b`` (prompt ids 0..2 and one document without a prompt id)."""
    ws = Workspace(tmp_path_factory.mktemp("ops-embed") / "home", device="cpu")
    ops.ingest_documents(
        ws, IngestRequest.build(name="a", documents=[{"text": t, "prompt": i} for i, t in enumerate(TEXTS)])
    )
    b_docs: list[str | dict[str, object]] = [{"text": t + " Really.", "prompt": i} for i, t in enumerate(TEXTS[:3])]
    b_docs.append({"text": "A review without a prompt id."})
    ops.ingest_documents(ws, IngestRequest.build(name="b", documents=b_docs))
    for name in ("a", "b"):
        req = EmbedRequest.build(dataset=name, sae=str(random_sae_dir))
        ops.embed_dataset(ws, req, ops.sae_choice(req))
    yield Fresh(ws, random_sae_dir)


def test_embed_dataset_stores_one_row_per_document(fresh: Fresh) -> None:
    emb, M = fresh.ws.matrix("a")
    assert emb.manifest.complete and emb.manifest.n_docs == 4 and M.shape == (4, 256)
    assert emb.manifest.spec.config["pooling"] == "max"
    assert (M.getnnz(axis=1) > 0).all()
    listed = {d.name: d for d in ops.list_datasets(fresh.ws).datasets}
    assert listed["a"].embeddings[0].complete and listed["b"].embeddings[0].n_docs == 4
    req = EmbedRequest.build(dataset="a", sae=str(fresh.sae))
    again = ops.embed_dataset(fresh.ws, req, ops.sae_choice(req))
    assert again.key == emb.manifest.key and again.complete
    _, M2 = fresh.ws.matrix("a")
    assert (M2 != M).nnz == 0, "embedding again with the same settings keeps the same vectors"


def test_embed_dataset_refuses_bad_settings(fresh: Fresh) -> None:
    req = EmbedRequest.build(dataset="a", sae=str(fresh.sae), token_budget=16, window=64)
    with pytest.raises(InputError):
        ops.embed_dataset(fresh.ws, req, ops.sae_choice(req))


def test_paired_leaves_documents_without_a_key_unpaired(fresh: Fresh) -> None:
    b = fresh.ws.dataset("b").metadata()
    assert b["prompt"].isna().tolist() == [False, False, False, True]
    spec = DiffSpec(mode="paired", dataset_a="b", where_b="prompt == 1 or prompt in [null]", pair_key="prompt")
    sides = resolve_sides(fresh.ws, spec)
    assert sides.a.rows.tolist() == [1] and sides.b.rows.tolist() == [1], "the two missing keys are not a pair"
    within = DiffSpec(mode="paired", dataset_a="a", where_a="prompt < 2", where_b="prompt >= 2", pair_key="prompt")
    with pytest.raises(InputError, match="nothing to pair"):
        resolve_sides(fresh.ws, within)


def test_paired_keys_match_across_integer_and_float_columns(fresh: Fresh) -> None:
    assert fresh.ws.dataset("a").metadata()["prompt"].dtype != fresh.ws.dataset("b").metadata()["prompt"].dtype
    sides = resolve_sides(fresh.ws, DiffSpec(mode="paired", dataset_a="a", dataset_b="b", pair_key="prompt"))
    assert sides.a.rows.tolist() == [0, 1, 2] and sides.b.rows.tolist() == [0, 1, 2]
    assert np.array_equal(sides.a.doc_ids, fresh.ws.dataset("a").metadata()["doc_id"].to_numpy()[:3])
