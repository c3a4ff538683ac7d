from __future__ import annotations

import numpy as np
import pytest

from saescope.embed.sentence import SENTENCE_DIM, SentenceEncoder
from saescope.errors import InputError


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_similar_sentences_are_closer_than_unrelated(encoder: SentenceEncoder) -> None:
    texts = [
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Quarterly revenue rose by eight percent.",
    ]
    E = encoder.encode(texts)
    assert E.shape == (3, SENTENCE_DIM)
    assert E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    sim = E @ E.T
    assert sim[0, 1] > sim[0, 2] + 0.3
    assert sim[0, 1] > sim[1, 2] + 0.3


def test_batching_and_order_do_not_change_vectors(encoder: SentenceEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about sparse autoencoders", "mid length text"]
    one = encoder.encode(texts, batch_size=1)
    all_at_once = encoder.encode(texts, batch_size=64)
    np.testing.assert_allclose(one, all_at_once, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts[::-1])[::-1], all_at_once, atol=1e-5)


def test_empty_and_bad_input(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, SENTENCE_DIM)
    with pytest.raises(InputError):
        encoder.encode("not a list")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        encoder.encode(["x"], batch_size=0)
