"""EmbedConfig refuses unusable numbers up front; a shard where nothing fires pools to an empty matrix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from saescope.embed.engine import EmbedConfig, Embedder
from saescope.embed.reader import Reader
from saescope.embed.sae import SparseAutoencoder
from saescope.errors import InputError


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("threshold", math.nan, "threshold must be a number from 0 to 1e\\+06"),
        ("threshold", math.inf, "threshold must be a number from 0"),
        ("threshold", -math.inf, "threshold must be a number from 0"),
        ("threshold", -0.5, "threshold must be a number from 0"),
        ("threshold", 1e308, "a floor above every activation would leave every document empty"),
        ("threshold", True, "threshold must be a number, got True"),
        ("threshold", "0.5", "threshold must be a number"),
        ("window", 0, "window must be from 8 to 1,048,576 tokens"),
        ("window", 10**12, "window must be from 8"),
        ("window", 64.0, "window must be a whole number"),
        ("window", True, "window must be a whole number"),
        ("overlap", -1, "overlap must be from 0"),
        ("token_budget", -5, "token_budget must be from 0"),
        ("token_budget", 100, "token_budget \\(100\\) must be at least window \\(512\\)"),
        ("max_batch", 0, "max_batch must be from 1 to 65,536 windows"),
        ("pooling", ["max"], "unknown pooling"),
        ("pooling", "median", "unknown pooling 'median'"),
        ("chat_template", "yes", "chat_template must be true or false"),
        ("use_sae_thresholds", 1, "use_sae_thresholds must be true or false"),
    ],
)
def test_bad_settings_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        EmbedConfig(**{field: value})  # type: ignore[arg-type]


def test_numpy_numbers_are_accepted_as_plain_ones() -> None:
    conf = EmbedConfig(threshold=np.float32(0.5), window=np.int64(64), chat_template=np.bool_(True))  # type: ignore[arg-type]
    assert conf.threshold == 0.5 and type(conf.threshold) is float
    assert conf.window == 64 and type(conf.window) is int and conf.chat_template is True
    assert json.loads(json.dumps(conf.as_dict()))["window"] == 64  # manifests can record it
    assert EmbedConfig(**conf.as_dict()) == conf  # type: ignore[arg-type]
    assert EmbedConfig(threshold=0).as_dict()["threshold"] == 0  # ints kept: embedding keys do not change


@pytest.fixture(scope="module")
def sae(random_sae_dir: Path) -> SparseAutoencoder:
    return SparseAutoencoder.from_disk(random_sae_dir)


def test_shard_where_nothing_fires_pools_to_an_empty_matrix(reader: Reader, sae: SparseAutoencoder) -> None:
    texts = ["The film jolts the laughs from the audience.", "def add(a, b): return a + b", ""]
    for pooling in ("max", "mean", "binary"):
        conf = EmbedConfig(pooling=pooling, threshold=1e5, window=16, overlap=4)
        matrix, n_tok = Embedder(reader, sae, conf, workers=1).embed(texts)
        assert matrix.shape == (3, sae.d_sae) and matrix.nnz == 0
        assert n_tok[0] > 0 and n_tok[2] == 0
