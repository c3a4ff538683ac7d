from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from saescope.embed.engine import EmbedConfig, Embedder, batch_by_budget
from saescope.embed.reader import Reader
from saescope.embed.sae import SparseAutoencoder
from saescope.errors import InputError

TEXTS = [
    "The film jolts the laughs from the audience, as if by cattle prod.",
    "A dull, plodding mess. I want my two hours back.",
    "def add(a, b):\n    return a + b",
    "Réponds en français : quel temps fait-il aujourd'hui ?",
]


@pytest.fixture(scope="module")
def sae(random_sae_dir: Path) -> SparseAutoencoder:
    return SparseAutoencoder.from_disk(random_sae_dir)


def test_batch_by_budget() -> None:
    batches = batch_by_budget([5, 1, 9, 3, 9], budget=18, max_batch=3)
    assert batches == [[2, 4], [0, 3, 1]]
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]


def test_max_pooling_matches_token_evidence(reader: Reader, sae: SparseAutoencoder) -> None:
    emb = Embedder(reader, sae, EmbedConfig())
    matrix, n_tokens = emb.embed(TEXTS)
    assert matrix.shape == (len(TEXTS), sae.d_sae)
    assert n_tokens.tolist() == [len(t) for t in reader.tokenize(TEXTS)]
    latents = list(range(sae.d_sae))
    for row, text in enumerate(TEXTS):
        evidence = emb.token_evidence(text, latents)
        expected = np.array([max((e.activation for e in evidence[i]), default=0.0) for i in latents])
        np.testing.assert_allclose(matrix.getrow(row).toarray()[0], expected, rtol=1e-3, atol=1e-3)


def test_long_document_is_windowed_not_truncated(reader: Reader, sae: SparseAutoencoder) -> None:
    text = " ".join(f"Sentence {i} talks about topic {i % 7}." for i in range(40))
    short = Embedder(reader, sae, EmbedConfig(window=24, overlap=4))
    matrix, n_tokens = short.embed([text])
    ids = reader.tokenize([text])[0]
    assert n_tokens[0] == len(ids) and len(ids) > 100
    assert len(short.windows([ids])) > 4
    evidence = short.token_evidence(text, list(range(sae.d_sae)))
    positions = sorted({e.position for ev in evidence.values() for e in ev})
    assert positions[-1] >= len(ids) - 5  # tokens at the very end are read
    expected = np.array([max((e.activation for e in evidence[i]), default=0.0) for i in range(sae.d_sae)])
    np.testing.assert_allclose(matrix.toarray()[0], expected, rtol=1e-3, atol=1e-3)


def test_pooling_modes_agree(reader: Reader, sae: SparseAutoencoder) -> None:
    results = {
        p: Embedder(reader, sae, EmbedConfig(pooling=p)).embed(TEXTS)[0].toarray()  # type: ignore[arg-type]
        for p in ("max", "mean", "sum", "count", "binary")
    }
    n_tokens = np.array([len(t) for t in reader.tokenize(TEXTS)], dtype=np.float32)
    active = results["max"] > 0
    assert ((results["binary"] > 0) == active).all() and set(np.unique(results["binary"])) <= {0.0, 1.0}
    assert ((results["count"] > 0) == active).all()
    assert (results["count"] <= n_tokens[:, None]).all()
    np.testing.assert_allclose(results["mean"], results["sum"] / n_tokens[:, None], rtol=1e-5)
    assert (results["sum"] >= results["max"] - 1e-4).all()
    emb = Embedder(reader, sae, EmbedConfig())
    ev = emb.token_evidence(TEXTS[1], list(range(sae.d_sae)))
    counts = np.array([len(ev[i]) for i in range(sae.d_sae)])
    np.testing.assert_array_equal(results["count"][1], counts)


def test_threshold_drops_weak_activations(reader: Reader, sae: SparseAutoencoder) -> None:
    plain = Embedder(reader, sae, EmbedConfig()).embed(TEXTS)[0]
    cut = float(np.median(plain.data))
    high = Embedder(reader, sae, EmbedConfig(threshold=cut)).embed(TEXTS)[0]
    assert 0 < high.nnz < plain.nnz
    assert (high.data > cut).all()


def test_rows_do_not_depend_on_batch_company(reader: Reader, sae: SparseAutoencoder) -> None:
    emb = Embedder(reader, sae, EmbedConfig())
    together = emb.embed(TEXTS)[0].toarray()
    alone = emb.embed([TEXTS[2]])[0].toarray()
    np.testing.assert_allclose(together[2], alone[0], atol=2e-3)


def test_chat_template_reading(reader: Reader, sae: SparseAutoencoder) -> None:
    plain = Embedder(reader, sae, EmbedConfig()).embed(TEXTS)[0]
    chat = Embedder(reader, sae, EmbedConfig(chat_template=True)).embed(TEXTS)[0]
    assert chat.shape == plain.shape and chat.nnz > 0
    assert abs(chat - plain).sum() > 0  # the template context changes the residual stream


def test_mismatched_sae_is_refused(reader: Reader, tmp_path: Path) -> None:
    from tests.conftest import build_topk_sae

    wrong_width = SparseAutoencoder.from_disk(
        build_topk_sae(tmp_path / "a", 64, 32, 4, "blocks.15.hook_resid_post", "m")
    )
    with pytest.raises(InputError, match="d_in=64"):
        Embedder(reader, wrong_width)
    wrong_layer = SparseAutoencoder.from_disk(
        build_topk_sae(tmp_path / "b", 576, 32, 4, "blocks.3.hook_resid_post", "m")
    )
    with pytest.raises(InputError, match="reads block 3"):
        Embedder(reader, wrong_layer)
    with pytest.raises(InputError, match="unknown pooling"):
        EmbedConfig(pooling="median")  # type: ignore[arg-type]


@pytest.mark.parametrize("pooling", ["max", "mean", "sum", "count", "binary"])
@pytest.mark.parametrize("which", ["random", "default"])
def test_topk_pooling_equals_pooling_dense_codes(
    reader: Reader, sae: SparseAutoencoder, default_sae: SparseAutoencoder, pooling: str, which: str
) -> None:
    """Pooling a TopK SAE's (n, k) non-zeros gives exactly what pooling its dense codes gives."""
    import torch

    from saescope.embed.reader import Window

    model = sae if which == "random" else default_sae
    assert model.is_topk
    emb = Embedder(reader, model, EmbedConfig(pooling=pooling))  # type: ignore[arg-type]
    wins = [Window(i, tuple(ids), 0) for i, ids in enumerate(reader.tokenize(TEXTS))]
    acts, widx, _ = reader.forward(wins, False)
    values, latents = model.encode_topk(acts)
    dense = torch.zeros(acts.shape[0], model.d_sae, dtype=values.dtype).scatter_(1, latents, values)
    assert torch.equal(dense, model.encode(acts))
    sparse_pooled = emb._encode_pool(acts, widx, len(wins))
    dense_pooled = emb._pool_windows(emb._encode_tokens(acts), widx, len(wins))
    assert int((dense_pooled > 0).sum()) > 0
    torch.testing.assert_close(sparse_pooled, dense_pooled, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_topk_encode_matches_saelens(reader: Reader, random_sae_dir: Path, dtype: str) -> None:
    """Our TopK encoder (oneDNN matmul with the bias fused, on CPU) computes SAELens' ``TopKSAE.encode``.

    fp32 agrees to 1e-4; in bf16 the one rounding of the fused bias add can move a value by one unit in
    the last place, and so swap a latent tied at the k-th place, nothing more.
    """
    import torch

    from saescope.embed.default import DEFAULT_SAE_DIR
    from saescope.embed.reader import Window

    wins = [Window(i, tuple(ids), 0) for i, ids in enumerate(reader.tokenize(TEXTS))]
    acts, _, _ = reader.forward(wins, False)
    for folder in (random_sae_dir, DEFAULT_SAE_DIR):
        model = SparseAutoencoder.from_disk(folder, dtype=dtype)
        ours = model.encode(acts).float()
        with torch.inference_mode():
            theirs = model.sae.encode(acts.to(getattr(torch, dtype))).float()
        if dtype == "float32":
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
            continue
        a, b = ours > 0, theirs > 0
        jaccard = float((a & b).sum() / (a | b).sum())
        assert jaccard > 0.98, jaccard
        both = a & b
        torch.testing.assert_close(ours[both], theirs[both], rtol=2**-7, atol=1e-3)


MANY = [f"{t} (copy {i})" for i in range(6) for t in TEXTS]


def test_worker_threads_give_the_same_vectors_and_restore_torch_threads(reader: Reader, sae: SparseAutoencoder) -> None:
    import torch

    config = EmbedConfig(max_batch=3)  # 24 texts: 8 batches, so both workers get several
    before = torch.get_num_threads()
    serial = Embedder(reader, sae, config, workers=1).embed(MANY)[0]
    parallel = Embedder(reader, sae, config, workers=2).embed(MANY)[0]
    assert torch.get_num_threads() == before
    assert serial.nnz > 0
    np.testing.assert_array_equal(serial.indptr, parallel.indptr)
    np.testing.assert_array_equal(serial.indices, parallel.indices)
    np.testing.assert_allclose(serial.data, parallel.data, rtol=1e-5, atol=1e-5)


def test_embed_many_streams_groups_in_order(reader: Reader, sae: SparseAutoencoder) -> None:
    import torch

    emb = Embedder(reader, sae, EmbedConfig(max_batch=3), workers=2)
    groups = [MANY[:10], ["", ""], MANY[10:]]  # a group without a single token
    seen: list[int] = []
    results = list(emb.embed_many(groups, lambda p: seen.append(p.docs_done)))
    assert [m.shape[0] for m, _ in results] == [10, 2, 14]
    assert results[1][0].nnz == 0 and results[1][1].tolist() == [0, 0]
    for (matrix, n_tok), group in zip(results, groups, strict=True):
        alone, alone_tok = emb.embed(group)
        assert (matrix != alone).nnz == 0
        assert n_tok.tolist() == alone_tok.tolist()
    assert seen == sorted(seen) and seen[-1] == len(MANY) + 2
    # A consumer that stops early (a cancelled job) shuts the workers down and restores torch's threads.
    before = torch.get_num_threads()
    stream = emb.embed_many(iter(groups))
    next(stream)
    stream.close()
    assert torch.get_num_threads() == before


def test_concurrent_embeds_on_one_reader_agree(default_reader_dir: Path, sae: SparseAutoencoder) -> None:
    """Two threads embedding at once through the Hugging Face forward (whose block output is captured by a
    hook) each get their own documents' vectors."""
    from concurrent.futures import ThreadPoolExecutor

    from saescope.embed.default import DEFAULT_LAYER

    hf = Reader(default_reader_dir, DEFAULT_LAYER, device="cpu", dtype="float32", fused=False)
    emb = Embedder(hf, sae, EmbedConfig(max_batch=2), workers=1)
    a, b = MANY[:8], MANY[8:16]
    want = [emb.embed(a)[0], emb.embed(b)[0]]
    with ThreadPoolExecutor(2) as pool:
        got = [f.result()[0] for f in [pool.submit(emb.embed, a), pool.submit(emb.embed, b)]]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.indices, w.indices)
        np.testing.assert_allclose(g.data, w.data, rtol=1e-5, atol=1e-5)


def test_embed_workers_setting(reader: Reader, sae: SparseAutoencoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAESCOPE_EMBED_WORKERS", "3")
    assert Embedder(reader, sae).workers == 3
    monkeypatch.setenv("SAESCOPE_EMBED_WORKERS", "many")
    with pytest.raises(InputError, match="SAESCOPE_EMBED_WORKERS"):
        Embedder(reader, sae)
    monkeypatch.delenv("SAESCOPE_EMBED_WORKERS")
    with pytest.raises(InputError, match="workers must be"):
        Embedder(reader, sae, workers=0)


def test_serial_progress_is_reported_batch_by_batch(reader: Reader, sae: SparseAutoencoder) -> None:
    seen: list[tuple[int, int]] = []
    Embedder(reader, sae, EmbedConfig(max_batch=3), workers=1).embed(
        MANY, lambda p: seen.append((p.docs_done, p.tokens_done))
    )
    assert len(seen) == 8  # 24 one-window documents in batches of 3
    assert [t for _, t in seen] == sorted({t for _, t in seen})  # tokens grow with every batch
    assert seen[0][0] < len(MANY) and seen[-1][0] == len(MANY)
