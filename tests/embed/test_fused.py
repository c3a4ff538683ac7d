"""The fused decoder computes the same residual stream as the Hugging Face forward.

Tiny random Llama (GQA), Qwen2 (q/k/v biases) and Mistral models are built here; the real default
reader is compared too, in fp32 (tight) and bf16 (against an fp32 truth, no worse than Hugging Face).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from saescope.embed.reader import Reader, Window


def _tiny(folder: Path, tokenizer_from: Path, family: str) -> Path:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    common = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    if family == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        model = LlamaForCausalLM(LlamaConfig(**common, rope_theta=500000.0))
    elif family == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        model = Qwen2ForCausalLM(Qwen2Config(**common))
        with torch.no_grad():  # random biases, so a wrong bias layout cannot hide behind zeros
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.5)
    else:
        from transformers import MistralConfig, MistralForCausalLM

        model = MistralForCausalLM(MistralConfig(**common, sliding_window=None))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _windows(reader: Reader, texts: list[str]) -> list[Window]:
    return [Window(i, tuple(ids), 0) for i, ids in enumerate(reader.tokenize(texts))]


TEXTS = [
    "A much longer document, so that the others in the batch need right padding to match it.",
    "Short one.",
    "def f(x):\n    return x * 2",
]


LONG = " ".join(f"Sentence number {i} of a long document keeps going." for i in range(12))


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
@pytest.mark.parametrize("chat_template", [False, True])
@pytest.mark.parametrize("length", ["short", "long", "long-kernel"])
def test_fused_matches_hugging_face(
    tmp_path: Path,
    default_reader_dir: Path,
    family: str,
    chat_template: bool,
    length: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CPU attention runs as batched matmuls up to 512 keys, else as the fused SDPA kernel: both are
    compared (the kernel by lowering the limit below the long window)."""
    if length == "long-kernel":
        monkeypatch.setattr("saescope.embed.fused._SHORT_KEYS", 60)
    folder = _tiny(tmp_path / family, default_reader_dir, family)
    fused = Reader(folder, 2, device="cpu", dtype="float32")
    plain = Reader(folder, 2, device="cpu", dtype="float32", fused=False)
    assert fused.fused and not plain.fused
    wins = _windows(fused, TEXTS if length == "short" else [*TEXTS, LONG])
    assert (max(len(w.token_ids) for w in wins) > 60) == length.startswith("long")
    got, gw, gp = fused.forward(wins, chat_template)
    ref, rw, rp = plain.forward(wins, chat_template)
    assert torch.equal(gw, rw) and torch.equal(gp, rp)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4), float((got - ref).abs().max())


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_onednn_epilogues_match_plain_matmuls(tmp_path: Path, default_reader_dir: Path, family: str) -> None:
    """Packed oneDNN matmuls with SiLU, gating and residual adds fused (and RMSNorm weights folded in)
    compute what the plain matmuls compute; on this CPU the fused forward uses them by default."""
    from saescope.embed import onednn
    from saescope.embed.fused import FusedDecoder

    if not onednn.works(torch.float32):
        pytest.skip("this torch build has no working oneDNN fused linear ops")
    folder = _tiny(tmp_path / family, default_reader_dir, family)
    reader = Reader(folder, 3, device="cpu", dtype="float32")
    assert reader._fused.onednn
    wins = _windows(reader, [*TEXTS, LONG])
    for chat_template in (False, True):
        got, _, _ = reader.forward(wins, chat_template)
        on = reader._fused
        reader._fused = FusedDecoder(reader.net, onednn=False)
        reader._prefix_cache.clear()
        ref, _, _ = reader.forward(wins, chat_template)
        reader._fused = on
        reader._prefix_cache.clear()
        assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4), float((got - ref).abs().max())


def test_fused_leaves_the_hugging_face_model_intact(tmp_path: Path, default_reader_dir: Path) -> None:
    """Fusing makes the modules' weights views of the fused tensors: the HF forward still gives the same."""
    folder = _tiny(tmp_path / "qwen2", default_reader_dir, "qwen2")
    fused = Reader(folder, 3, device="cpu", dtype="float32")
    wins = _windows(fused, TEXTS[:2])
    got, _, _ = fused.forward(wins, False)
    fused._fused = None  # the same Reader, now through the Hugging Face forward
    fused._prefix_cache.clear()
    ref, _, _ = fused.forward(wins, False)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_environment_can_turn_the_fused_forward_off(
    tmp_path: Path, default_reader_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _tiny(tmp_path / "llama", default_reader_dir, "llama")
    monkeypatch.setenv("SAESCOPE_FUSED", "0")
    assert not Reader(folder, 1, device="cpu", dtype="float32").fused
    monkeypatch.setenv("SAESCOPE_FUSED", "1")
    assert Reader(folder, 1, device="cpu", dtype="float32").fused


def test_unsupported_models_use_the_hugging_face_forward(tmp_path: Path, default_reader_dir: Path) -> None:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(default_reader_dir)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    r = Reader(tmp_path, 1, device="cpu", dtype="float32")
    assert r.is_causal and not r.fused
    acts, _, _ = r.forward(_windows(r, TEXTS[:1]), False)
    assert acts.shape[1] == 32


def test_default_reader_fused_bf16_is_as_accurate_as_hugging_face(default_reader_dir: Path) -> None:
    """In bf16 both paths round differently; against the fp32 truth the fused one is no worse."""
    from saescope.embed.default import DEFAULT_LAYER

    truth_reader = Reader(default_reader_dir, DEFAULT_LAYER, device="cpu", dtype="float32", fused=False)
    wins = _windows(truth_reader, TEXTS)
    truth, _, _ = truth_reader.forward(wins, True)
    errors = {}
    for fused in (True, False):
        r = Reader(default_reader_dir, DEFAULT_LAYER, device="cpu", dtype="bfloat16", fused=fused)
        assert r.fused == fused
        got, _, _ = r.forward(wins, True)
        rel = (got.float() - truth).norm(dim=-1) / truth.norm(dim=-1)
        errors[fused] = float(rel.median())
    assert errors[True] < 0.03
    assert errors[True] < 1.5 * errors[False]
