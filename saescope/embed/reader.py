"""The reader: a Hugging Face model run only up to one block, returning that block's residual stream.

Only the blocks up to and including the hooked one are kept in memory and run; the final norm and
the LM head are never computed. Every sequence starts with a prefix that is never pooled: a sink
token (position 0 carries an outsized residual norm in most causal LMs) and, when reading documents
as assistant messages, the chat template's header. For causal models the prefix's keys and values
are computed once and shared by every batch.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saescope.errors import InputError, MissingAssetError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_SENTINEL = "\u2063SAESCOPE_DOC\u2063"


class _StopForward(Exception):
    """Raised by the capture hook once the hooked block has run: nothing after it is needed."""


@dataclass(frozen=True)
class Window:
    """A slice of one document's tokens: ``context`` tokens give left context and are not pooled."""

    doc: int
    token_ids: tuple[int, ...]
    n_context: int

    @property
    def n_pooled(self) -> int:
        return len(self.token_ids) - self.n_context


def available_devices() -> list[str]:
    """The devices torch can compute on here: ``cpu``, plus ``cuda`` and ``cuda:N`` per GPU, and ``mps``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        out.append("mps")
    return out


def check_device(device: str) -> str:
    """``device`` (spaces stripped) if this machine has it; ``cpu`` is answered without importing torch.

    Raises:
        InputError: an unknown or unavailable device, with the list of those that exist here.
    """
    name = device.strip()
    if name == "cpu":
        return name
    available = available_devices()
    if name not in available:
        raise InputError(
            f"device {device[:100]!r} is not available on this machine; available devices: "
            f"{', '.join(available)} (or leave --device out to pick the best one)"
        )
    return name


def pick_device(device: str | None = None) -> str:
    """``device`` if given (checked: see :func:`check_device`), else ``cuda`` when available, else ``mps``,
    else ``cpu``.

    Raises:
        InputError: ``device`` is not available here.
    """
    import torch

    if device:
        return check_device(device)
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_fast_bf16() -> bool:
    """Whether bfloat16 should be used on this CPU: measured faster than float32 by a margin, or asked for with
    ``SAESCOPE_CPU_DTYPE`` (see :mod:`saescope.embed.dtype_probe`; its ``cpu_info`` reads the CPU's flags)."""
    from saescope.embed.dtype_probe import cpu_dtype

    return cpu_dtype().dtype == "bfloat16"


def default_dtype(device: str) -> str:
    """bf16 on GPUs; on CPUs the measured faster of bf16 and fp32 (:func:`cpu_has_fast_bf16`); fp32 elsewhere."""
    if device == "cuda" or (device == "cpu" and cpu_has_fast_bf16()):
        return "bfloat16"
    return "float32"


def _find_blocks(model: Any, n_layers: int) -> tuple[Any, str]:
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module, name
    raise InputError(f"could not find the list of {n_layers} transformer blocks in {type(model).__name__}")


def _exists(path: str | Path) -> bool:
    """Whether ``path`` exists (a name too long or otherwise unusable as a path does not)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def _not_a_model(model: str | Path, exc: BaseException) -> InputError:
    return InputError(
        f"cannot load reader {str(model)[:300]!r}: it is not a Hugging Face model ({type(exc).__name__}: "
        f"{str(exc)[:300]}); give a model folder (config.json, tokenizer and weights) or a hub id, or leave "
        "--reader out to use the model the SAE names"
    )


class Reader:
    """A language model or encoder cut after block ``layer`` (0-based), returning its residual stream.

    Args:
        model: a Hugging Face model id or a local folder.
        layer: the block whose output (``blocks.{layer}.hook_resid_post``) is read.
        device: ``cuda``, ``cpu``, ``mps``; chosen automatically when omitted.
        dtype: ``float32``, ``bfloat16`` or ``float16``; by default bf16 on GPU and on CPUs where bf16
            matmuls measure faster than fp32, fp32 otherwise (see :func:`default_dtype`).
        fused: run Llama-style decoders with :class:`~saescope.embed.fused.FusedDecoder` (same function,
            less overhead); ``False`` always uses the Hugging Face forward. By default on, unless the
            environment sets ``SAESCOPE_FUSED=0``.

    Raises:
        MissingAssetError: the model cannot be loaded (not local and no hub reachable).
        InputError: ``device`` is not available, ``model`` is a path to something that is not a model, or
            ``layer`` is out of range.
    """

    def __init__(
        self,
        model: str | Path,
        layer: int,
        *,
        device: str | None = None,
        dtype: str | None = None,
        model_id: str | None = None,
        fused: bool | None = None,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.device = pick_device(device)
        self.dtype_name = dtype or default_dtype(self.device)
        torch_dtype = getattr(torch, self.dtype_name)
        try:
            config = AutoConfig.from_pretrained(model)
            self.tokenizer = AutoTokenizer.from_pretrained(model)
        except OSError as exc:
            if _exists(model):
                raise _not_a_model(model, exc) from exc
            raise MissingAssetError(
                f"cannot load reader {str(model)[:300]!r}: {str(exc)[:500]}. Give a local folder, or make the hub "
                "reachable."
            ) from exc
        except Exception as exc:  # a folder or config transformers cannot read (e.g. --reader /etc)
            raise _not_a_model(model, exc) from exc
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        n_layers = int(text_config.num_hidden_layers)
        if not 0 <= layer < n_layers:
            raise InputError(f"layer {layer} is out of range: {model} has blocks 0..{n_layers - 1}")
        archs = config.architectures or []
        self.is_causal = bool(
            getattr(config, "is_decoder", False)
            or any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs)
        )
        self.layer = layer
        self.model_id = model_id or str(model)
        self.d_model = int(text_config.hidden_size)
        self.max_positions = int(getattr(text_config, "max_position_embeddings", 512) or 512)
        try:
            net = AutoModel.from_pretrained(model, dtype=torch_dtype)
        except Exception as exc:  # missing or broken weights in a user's folder
            raise _not_a_model(model, exc) from exc
        blocks, _ = _find_blocks(net, n_layers)
        # Keep only the blocks we run: later ones would cost memory for nothing.
        del blocks[layer + 1 :]
        for cfg in {id(config): config, id(text_config): text_config, id(net.config): net.config}.values():
            if hasattr(cfg, "num_hidden_layers"):
                cfg.num_hidden_layers = layer + 1
            if isinstance(getattr(cfg, "layer_types", None), list):
                cfg.layer_types = cfg.layer_types[: layer + 1]
        self.net = net.to(self.device).eval()
        self._fused: Any = None
        if fused is None:
            fused = os.environ.get("SAESCOPE_FUSED", "1").strip() != "0"
        if fused and self.is_causal:
            from saescope.embed.fused import FusedDecoder, supports

            if supports(self.net):
                self._fused = FusedDecoder(self.net)
        # Captured block outputs by thread, so that batches may run in several threads at once.
        self._captured: dict[int, torch.Tensor] = {}
        blocks[layer].register_forward_hook(self._capture)
        self._prefix_cache: dict[bool, tuple[list[int], Any]] = {}
        self._prefix_lock = threading.Lock()
        # transformers 5.x renamed past_key_values to cache; older releases only know the old name.
        params = inspect.signature(self.net.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def _capture(self, _module: Any, _inputs: Any, output: Any) -> None:
        self._captured[threading.get_ident()] = output[0] if isinstance(output, tuple) else output
        raise _StopForward

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without any special tokens."""
        if not texts:
            return []
        enc = self.tokenizer(texts, add_special_tokens=False)
        return [list(ids) for ids in enc["input_ids"]]

    def prefix_ids(self, chat_template: bool) -> list[int]:
        """The never-pooled tokens put before every window: a sink token, or the assistant header.

        Raises:
            InputError: ``chat_template`` is asked of a tokenizer that has none.
        """
        tok = self.tokenizer
        if chat_template:
            if not self.has_chat_template:
                raise InputError(f"{self.model_id} has no chat template; embed without --chat-template")
            rendered = tok.apply_chat_template([{"role": "assistant", "content": _SENTINEL}], tokenize=False)
            head = str(rendered).split(_SENTINEL)[0]
            ids = list(tok(head, add_special_tokens=False)["input_ids"])
            if ids:
                return ids
        if not self.is_causal:
            cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
            return [cls] if cls is not None else []
        for candidate in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
            if candidate is not None:
                return [int(candidate)]
        return []

    def suffix_ids(self) -> list[int]:
        """Tokens an encoder expects after the text (``[SEP]``); causal models need none."""
        tok = self.tokenizer
        if self.is_causal or tok.sep_token_id is None:
            return []
        return [int(tok.sep_token_id)]

    def window_length(self, requested: int, chat_template: bool) -> int:
        """The longest window (document tokens, context included) that fits the model with its prefix."""
        room = self.max_positions - len(self.prefix_ids(chat_template)) - len(self.suffix_ids())
        return max(8, min(requested, room))

    def _pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def fused(self) -> bool:
        """Whether batches run through the lean fused forward rather than Hugging Face's."""
        return self._fused is not None

    def prepare(self, chat_template: bool) -> None:
        """Compute the shared prefix's key/value cache now rather than on the first batch."""
        self._shared_prefix(chat_template)

    def _shared_prefix(self, chat_template: bool) -> tuple[list[int], Any]:
        """The prefix ids and, for causal models, their key/value cache (computed once)."""
        with self._prefix_lock:
            if chat_template not in self._prefix_cache:
                self._prefix_cache[chat_template] = self._compute_prefix(chat_template)
            return self._prefix_cache[chat_template]

    def _compute_prefix(self, chat_template: bool) -> tuple[list[int], Any]:
        """The prefix ids and their key/value cache, computed now."""
        import torch

        ids = self.prefix_ids(chat_template)
        cache: Any = None
        if self._fused is not None and ids:
            with torch.inference_mode():
                _, cache = self._fused.run(torch.tensor([ids], device=self.device), keep_kv=True)
        elif self.is_causal and ids:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.net.config)
            inp = torch.tensor([ids], device=self.device)
            with torch.inference_mode(), contextlib.suppress(_StopForward):
                self.net(input_ids=inp, use_cache=True, **{self._cache_kwarg: cache})
            self._captured.pop(threading.get_ident(), None)
        return ids, cache

    def forward(self, windows: list[Window], chat_template: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual stream at the hooked block for the pooled tokens of a batch of windows.

        Returns:
            ``(acts, window_index, token_position)``: ``acts[i]`` is the ``d_model`` vector of one
            pooled token, ``window_index[i]`` the position of its window in ``windows`` and
            ``token_position[i]`` its index inside that window's ``token_ids``. All stay on the device.
        """
        import torch

        prefix, cache = self._shared_prefix(chat_template)
        suffix = self.suffix_ids()
        cached = cache is not None
        lead = [] if cached else prefix
        rows = [lead + list(w.token_ids) + suffix for w in windows]
        width = max(len(r) for r in rows)
        pad = self._pad_id()
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        pooled = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, (row, w) in enumerate(zip(rows, windows, strict=True)):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
            start = len(lead) + w.n_context
            pooled[i, start : start + w.n_pooled] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        if self._fused is not None:
            valid = mask.bool()
            with torch.inference_mode():
                flat, _ = self._fused.run(ids, valid=valid, prefix=cache, n_prefix=len(prefix) if cached else 0)
            return self._pooled(flat, pooled, len(lead), valid=valid)
        kwargs: dict[str, Any] = {"input_ids": ids}
        if cached:
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(rows))
            n_prefix = len(prefix)
            full_mask = torch.cat(
                [torch.ones((len(rows), n_prefix), dtype=torch.long, device=self.device), mask], dim=1
            )
            positions = torch.arange(n_prefix, n_prefix + width, device=self.device).expand(len(rows), -1)
            kwargs.update(attention_mask=full_mask, position_ids=positions, use_cache=True)
            kwargs[self._cache_kwarg] = batch_cache
        else:
            kwargs["attention_mask"] = mask
        with torch.inference_mode(), contextlib.suppress(_StopForward):
            self.net(**kwargs)
        hidden = self._captured.pop(threading.get_ident(), None)
        if hidden is None:
            raise RuntimeError("the capture hook did not run")
        return self._pooled(hidden, pooled, len(lead))

    def _pooled(
        self, hidden: torch.Tensor, pooled: torch.Tensor, n_lead: int, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward``'s result from the hidden states: ``(batch, T, d)``, or ``(n_valid, d)`` with ``valid``."""
        pooled = pooled.to(self.device)
        window_index, position = pooled.nonzero(as_tuple=True)
        selected = hidden[pooled] if valid is None else hidden[pooled[valid]]
        return selected, window_index, position - n_lead


def split_windows(doc: int, ids: list[int], window: int, overlap: int) -> list[Window]:
    """Cut one document's tokens into windows of at most ``window`` tokens.

    Each window after the first starts with ``overlap`` tokens of the previous one as context, so
    every token is pooled exactly once and most have at least ``overlap`` tokens of left context.
    """
    if window <= overlap:
        raise InputError(f"window ({window}) must be larger than overlap ({overlap})")
    out: list[Window] = []
    if not ids:
        return out
    start = 0
    step = window - overlap
    while True:
        ctx = 0 if start == 0 else overlap
        lo = start - ctx
        chunk = ids[lo : start + step] if start else ids[:window]
        out.append(Window(doc=doc, token_ids=tuple(chunk), n_context=ctx))
        start = start + (window if start == 0 else step)
        if start >= len(ids):
            return out
