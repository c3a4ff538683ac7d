"""The SAELens pretrained path (``SAE.from_pretrained`` through the hub cache), run offline.

A tiny random Llama and an SAE for it are built here and laid out as a Hugging Face hub cache, so
SAELens' real registry lookup and download code runs with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import build_topk_sae

REPO = "saescope-tests/tiny-llama-saes"
RELEASE = "saescope-tiny-llama-res"
SAE_ID = "blocks.2.hook_resid_post"


def _tiny_llama(folder: Path, tokenizer_from: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _hub_cache(cache: Path, sae_dir: Path) -> None:
    commit = "0" * 40
    repo_dir = cache / f"models--{REPO.replace('/', '--')}"
    snap = repo_dir / "snapshots" / commit / SAE_ID
    snap.mkdir(parents=True)
    for name in ("cfg.json", "sae_weights.safetensors"):
        shutil.copy(sae_dir / name, snap / name)
    import torch
    from safetensors.torch import save_file

    save_file({"sparsity": torch.full((128,), -2.0)}, str(snap / "sparsity.safetensors"))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from sae_lens.loading.pretrained_saes_directory import PretrainedSAELookup, get_pretrained_saes_directory
    from saescope.embed.engine import EmbedConfig
    from saescope.errors import InputError
    from saescope.store.ingest import documents_from_list
    from saescope.workspace import SAEChoice, Workspace

    release, sae_id, repo = sys.argv[1:4]
    get_pretrained_saes_directory()[release] = PretrainedSAELookup(
        release=release, repo_id=repo, model="tiny", conversion_func=None, saes_map={sae_id: sae_id},
        expected_var_explained={}, expected_l0={}, neuronpedia_id={sae_id: "tiny/2-res"},
        norm_scaling_factor={}, config_overrides=None)
    ws = Workspace(device="cpu")
    frame, _ = documents_from_list(["a first tiny document", "and a second one, a little longer"])
    ws.store.create("tiny", frame, source="inline")
    manifest = ws.embed("tiny", SAEChoice.parse(f"{release}:{sae_id}"), EmbedConfig(window=32))
    emb, matrix = ws.matrix("tiny")
    errors = []
    for rel, sid in ((release, "blocks.9.hook_resid_post"), ("no-such-release", "x")):
        try:
            ws.sae(SAEChoice(release=rel, sae_id=sid))
        except InputError as exc:
            errors.append(str(exc))
    print(json.dumps({"shape": list(matrix.shape), "nnz": int(matrix.nnz), "sae": manifest.spec.sae,
                      "reader": manifest.spec.reader, "errors": errors}))
    """
)


@pytest.mark.slow
def test_pretrained_release_loads_through_hub_cache(tmp_path: Path, default_reader_dir: Path) -> None:
    model = _tiny_llama(tmp_path / "tiny-llama", default_reader_dir)
    sae_dir = build_topk_sae(tmp_path / "sae", 64, 128, 8, SAE_ID, str(model))
    cache = tmp_path / "hub"
    _hub_cache(cache, sae_dir)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "SAESCOPE_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, RELEASE, SAE_ID, REPO],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [2, 128]
    assert result["nnz"] > 0
    assert result["sae"]["id"] == f"{RELEASE}/{SAE_ID}"
    assert result["sae"]["source"]["kind"] == "pretrained"
    assert result["sae"]["source"]["neuronpedia_id"] == "tiny/2-res"
    assert result["reader"]["layer"] == 2
    assert result["reader"]["id"] == str(model)
    assert "has no SAE 'blocks.9.hook_resid_post'" in result["errors"][0]
    assert "unknown SAELens release 'no-such-release'" in result["errors"][1]


def test_hook_names_and_model_names() -> None:
    from saescope.embed.sae import parse_hook_name
    from saescope.errors import InputError
    from saescope.workspace import hf_model_for

    assert parse_hook_name("blocks.19.hook_resid_post").layer == 19
    assert parse_hook_name("blocks.8.hook_resid_pre").layer == 7
    assert parse_hook_name("model.layers.19").layer == 19
    with pytest.raises(InputError, match="not a residual-stream hook"):
        parse_hook_name("blocks.3.attn.hook_z")
    with pytest.raises(InputError, match="embeddings"):
        parse_hook_name("blocks.0.hook_resid_pre")
    assert hf_model_for("gemma-2-2b") == "google/gemma-2-2b"
    assert hf_model_for("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
