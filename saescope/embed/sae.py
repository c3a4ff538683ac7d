"""Sparse autoencoders in SAELens format: a local folder or SAELens' pretrained registry.

``sae_lens`` takes seconds to import, so it is imported only when an SAE is actually loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from saescope.errors import InputError, MissingAssetError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

THRESHOLDS_FILE = "doc_thresholds.safetensors"
SAESCOPE_META_FILE = "saescope.json"


@dataclass(frozen=True)
class HookPoint:
    """Where in the reader an SAE reads: the residual stream after block ``layer``."""

    layer: int
    hook_name: str


def parse_hook_name(hook_name: str) -> HookPoint:
    """Map a TransformerLens hook name to the block whose output it is.

    ``blocks.L.hook_resid_post`` is block L's output; ``blocks.L.hook_resid_pre`` is block L-1's.

    Raises:
        InputError: the hook is not a residual-stream hook saescope can read.
    """
    m = re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", hook_name)
    if not m:
        m2 = re.fullmatch(r"(?:model\.)?layers\.(\d+)", hook_name)
        if m2:
            return HookPoint(int(m2.group(1)), hook_name)
        raise InputError(
            f"SAE hook {hook_name!r} is not a residual-stream hook (blocks.L.hook_resid_post/pre); "
            "saescope reads only the residual stream"
        )
    layer = int(m.group(1)) - (1 if m.group(2) == "pre" else 0)
    if layer < 0:
        raise InputError(f"{hook_name} reads the embeddings, before any block; choose a later hook")
    return HookPoint(layer, hook_name)


def _local_dtype(device: str) -> str | None:
    """dtype for a local SAE: on CPU the reader's choice (bf16 only where the measured probe of
    :mod:`saescope.embed.dtype_probe` found its matmuls faster than fp32 here, or ``SAESCOPE_CPU_DTYPE`` asks
    for it; fp32 otherwise), elsewhere the folder's own (``None``)."""
    if device != "cpu":
        return None
    from saescope.embed.reader import cpu_has_fast_bf16

    return "bfloat16" if cpu_has_fast_bf16() else "float32"


MAX_CFG_BYTES = 1 << 20
"""Largest ``cfg.json`` (or ``saescope.json``) read from an SAE folder."""
MAX_HEADER_BYTES = 8 << 20
"""Largest safetensors header read from an SAE folder (an SAE's is a few kB; the format allows 100 MB)."""
_RESAVE = "re-save it with SAELens (sae.save_model(folder)) or give another SAE folder"


def _open_regular(path: Path, what: str) -> tuple[BinaryIO, int]:
    """``path`` open for reading, and its size, if it is a regular file. It is opened without blocking and
    checked on the descriptor, so a FIFO in an SAE folder never hangs the caller.

    Raises:
        InputError: it cannot be opened, or is a folder, FIFO, device or socket.
    """
    name = str(path)[:300]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{name}: cannot open the SAE's {what} ({exc.strerror or exc}); {_RESAVE}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{name}: the SAE's {what} is not a regular file; {_RESAVE}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_small(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Raises:
        InputError: it is missing, not a regular file, larger than ``limit`` or unreadable.
    """
    fh, size = _open_regular(path, what)
    with fh:
        if size > limit:
            raise InputError(f"{str(path)[:300]}: the SAE's {what} is {size:,} bytes, over {limit:,}; {_RESAVE}")
        try:
            return fh.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{str(path)[:300]}: cannot read the SAE's {what} ({exc}); {_RESAVE}") from None


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A small JSON file of an SAE folder, which must hold an object.

    Raises:
        InputError: it is not a regular file, too large, not UTF-8 JSON or not an object.
    """
    raw = _read_small(path, MAX_CFG_BYTES, what)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        reason = "it is empty" if not raw.strip() else f"it is not valid JSON ({str(exc)[:200]})"
        raise InputError(f"{str(path)[:300]}: cannot read the SAE's {what}: {reason}; {_RESAVE}") from None
    if not isinstance(value, dict):
        raise InputError(f"{str(path)[:300]}: the SAE's {what} holds {type(value).__name__}, not an object; {_RESAVE}")
    return value


def _positive_int(cfg: dict[str, Any], key: str, path: Path) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 40:
        raise InputError(
            f"{str(path)[:300]}: {key} must be a positive whole number, got {str(value)[:50]!r}; {_RESAVE}"
        )
    return value


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file, checked against the file's length (no tensor is read).

    Raises:
        InputError: not a regular file, truncated, or not safetensors.
    """
    problem = f"{str(path)[:300]}: the SAE's weights are not a complete safetensors file"
    fh, size = _open_regular(path, "weights")
    with fh:
        try:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
                raise InputError(f"{problem} (bad header length); {_RESAVE}")
            header = json.loads(fh.read(n).decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{problem} ({str(exc)[:200]}); {_RESAVE}") from None
    if not isinstance(header, dict):
        raise InputError(f"{problem}; {_RESAVE}")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    try:
        end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
        shapes = {k: [int(d) for d in v["shape"]] for k, v in tensors.items()}
    except (KeyError, TypeError, ValueError, IndexError):
        raise InputError(f"{problem} (malformed tensor table); {_RESAVE}") from None
    if 8 + n + end > size:
        raise InputError(f"{problem} (truncated: {size:,} bytes, needs {8 + n + end:,}); {_RESAVE}")
    return shapes


def check_sae_folder(path: str | Path) -> dict[str, Any]:
    """Check, without loading it, that ``path`` holds an SAE saved by SAELens: a ``cfg.json`` object with
    positive ``d_in`` and ``d_sae`` (and a residual-stream hook, if it names one) and complete
    ``sae_weights.safetensors`` whose encoder and decoder have those sizes, and, when present, a
    ``saescope.json`` object and document thresholds of ``d_sae`` values. Returns the config.

    Raises:
        InputError: any of that is missing or wrong (the message names the folder and what to do).
    """
    folder = Path(path)
    name = str(folder)[:300]
    try:
        has_cfg = (folder / "cfg.json").exists()
        has_weights = (folder / "sae_weights.safetensors").exists()
    except OSError:
        has_cfg = has_weights = False
    if not has_cfg:
        raise InputError(
            f"{name} is not an SAE folder (no cfg.json); give a folder saved by SAELens "
            "(cfg.json + sae_weights.safetensors), RELEASE:SAE_ID of a pretrained SAE, or 'default'"
        )
    cfg = read_json_object(folder / "cfg.json", "cfg.json")
    d_in, d_sae = _positive_int(cfg, "d_in", folder), _positive_int(cfg, "d_sae", folder)
    metadata = cfg.get("metadata")
    hook = (metadata.get("hook_name") if isinstance(metadata, dict) else None) or cfg.get("hook_name")
    if hook is not None:
        if not isinstance(hook, str):
            raise InputError(f"{name}: hook_name must be text, got {str(hook)[:50]!r}; {_RESAVE}")
        try:
            parse_hook_name(hook)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
    if not has_weights:
        raise InputError(f"{name} has cfg.json but no sae_weights.safetensors; {_RESAVE}")
    shapes = _safetensors_header(folder / "sae_weights.safetensors")
    expected = {"W_enc": [d_in, d_sae], "W_dec": [d_sae, d_in], "b_enc": [d_sae], "b_dec": [d_in]}
    if "W_enc" not in shapes:
        raise InputError(f"{name}: sae_weights.safetensors has no encoder (W_enc); {_RESAVE}")
    wrong = [f"{k} is {shapes[k]}, cfg.json says {v}" for k, v in expected.items() if k in shapes and shapes[k] != v]
    if wrong:
        raise InputError(
            f"{name}: the weights do not match cfg.json (d_in={d_in}, d_sae={d_sae}): {'; '.join(wrong)}; "
            "fix cfg.json or re-save the SAE with SAELens"
        )
    if (folder / SAESCOPE_META_FILE).exists():
        read_json_object(folder / SAESCOPE_META_FILE, SAESCOPE_META_FILE)
    if (folder / THRESHOLDS_FILE).exists():
        _check_thresholds(folder / THRESHOLDS_FILE, d_sae)
    return cfg


_PACK_LIMIT = 64 << 20
"""Largest encoder (bytes) copied into a packed oneDNN weight."""


def _check_thresholds(path: Path, d_sae: int) -> None:
    """Raises:
    InputError: ``path`` is not a regular safetensors file with a ``thresholds`` tensor of ``d_sae`` values.
    """
    shapes = _safetensors_header(path)
    if shapes.get("thresholds") != [d_sae]:
        raise InputError(
            f"{str(path)[:300]}: expected a 'thresholds' tensor of {d_sae} values, found {str(shapes)[:300]}; "
            "delete the file or re-create it"
        )


def _load_thresholds(path: Path, d_sae: int, device: str) -> torch.Tensor:
    """The per-latent document thresholds saved beside an SAE (one value per latent).

    Raises:
        InputError: the file is not a regular safetensors file with a ``thresholds`` tensor of ``d_sae`` values.
    """
    _check_thresholds(path, d_sae)
    from safetensors.torch import load_file

    try:
        return load_file(str(path))["thresholds"].float().to(device)
    except Exception as exc:  # a corrupt file in a user's folder is bad input
        raise InputError(
            f"{str(path)[:300]}: cannot read the thresholds ({type(exc).__name__}: {str(exc)[:300]}); "
            "delete the file or re-create it"
        ) from exc


class SparseAutoencoder:
    """A loaded SAE plus what saescope needs around it: an id, its hook point, document thresholds.

    Use :meth:`from_disk` or :meth:`from_pretrained` rather than the constructor.
    """

    def __init__(
        self,
        sae: Any,
        sae_id: str,
        *,
        model_name: str | None,
        source: dict[str, Any],
        thresholds: torch.Tensor | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.sae = sae.eval()
        self.id = sae_id
        self.d_in = int(sae.cfg.d_in)
        self.d_sae = int(sae.cfg.d_sae)
        metadata = getattr(sae.cfg, "metadata", None)
        hook_name = str(getattr(metadata, "hook_name", None) or "")
        self.hook = parse_hook_name(hook_name) if hook_name else None
        self.model_name = model_name
        self.source = source
        self.thresholds = thresholds
        self.meta = meta or {}
        self._packed_encoder: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pack_lock = threading.Lock()

    @property
    def layer(self) -> int | None:
        return None if self.hook is None else self.hook.layer

    @property
    def device(self) -> str:
        return str(next(self.sae.parameters()).device)

    @classmethod
    def from_disk(
        cls, path: str | Path, *, device: str = "cpu", sae_id: str | None = None, dtype: str | None = None
    ) -> SparseAutoencoder:
        """Load ``cfg.json`` + ``sae_weights.safetensors`` (and saescope's optional extras) from a folder.

        Raises:
            InputError: the folder is not a complete SAE, or SAELens cannot load it (the message says which).
        """
        folder = Path(path)
        check_sae_folder(folder)
        from sae_lens import SAE

        # Weights may ship in half precision; on CPU they are computed in the reader's dtype choice.
        try:
            sae = SAE.load_from_disk(str(folder), device=device, dtype=dtype or _local_dtype(device))
        except Exception as exc:  # whatever SAELens cannot load from a user's folder is bad input
            raise InputError(
                f"{str(folder)[:300]}: SAELens cannot load this SAE ({type(exc).__name__}: {str(exc)[:300]}); {_RESAVE}"
            ) from exc
        meta: dict[str, Any] = {}
        if (folder / SAESCOPE_META_FILE).exists():
            meta = read_json_object(folder / SAESCOPE_META_FILE, SAESCOPE_META_FILE)
        thresholds = None
        if (folder / THRESHOLDS_FILE).exists():
            thresholds = _load_thresholds(folder / THRESHOLDS_FILE, int(sae.cfg.d_sae), device)
        model_name = getattr(getattr(sae.cfg, "metadata", None), "model_name", None)
        return cls(
            sae,
            sae_id or meta.get("sae_id") or f"local:{folder.resolve()}",
            model_name=model_name,
            source={"kind": "local", "path": str(folder.resolve())},
            thresholds=thresholds,
            meta=meta,
        )

    @classmethod
    def from_pretrained(cls, release: str, sae_id: str, *, device: str = "cpu") -> SparseAutoencoder:
        """Load an SAE from SAELens' pretrained registry (Gemma Scope, Goodfire Llama, ...).

        Needs a reachable model hub on first use; SAELens caches the weights after that.

        Raises:
            NotFoundError-like InputError: the release or id is not in the registry.
            MissingAssetError: the weights cannot be downloaded.
        """
        from sae_lens import SAE
        from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

        directory = get_pretrained_saes_directory()
        if release not in directory:
            close = [r for r in directory if release.split("-")[0] in r][:10]
            raise InputError(f"unknown SAELens release {release!r}; similar releases: {close}")
        known = directory[release].saes_map
        if sae_id not in known:
            raise InputError(f"{release} has no SAE {sae_id!r}; it has e.g. {sorted(known)[:10]} ({len(known)} in all)")
        try:
            sae = SAE.from_pretrained(release, sae_id, device=device)
        except OSError as exc:
            raise MissingAssetError(f"could not download {release}/{sae_id}: {exc}") from exc
        info = directory[release]
        model_name = getattr(getattr(sae.cfg, "metadata", None), "model_name", None) or info.model
        neuronpedia = (info.neuronpedia_id or {}).get(sae_id) if info.neuronpedia_id else None
        return cls(
            sae,
            f"{release}/{sae_id}",
            model_name=model_name,
            source={
                "kind": "pretrained",
                "release": release,
                "sae_id": sae_id,
                "repo_id": info.repo_id,
                "neuronpedia_id": neuronpedia,
            },
        )

    @property
    def dtype_name(self) -> str:
        """The dtype the SAE computes in, e.g. ``bfloat16``."""
        return str(next(self.sae.parameters()).dtype).removeprefix("torch.")

    @property
    def is_topk(self) -> bool:
        """Whether this is a TopK SAE, whose codes :meth:`encode_topk` returns without a dense tensor."""
        arch = getattr(self.sae.cfg, "architecture", None)
        return callable(arch) and arch() == "topk" and hasattr(self.sae.cfg, "k")

    def encode_topk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A TopK SAE's codes as ``(values, latent_ids)``, each ``(n, k)``: the non-zeros of :meth:`encode`.

        The same computation as SAELens' ``TopKSAE.encode`` (pre-activations, optional rescaling by
        decoder norms, top k, ReLU) without scattering into an ``(n, d_sae)`` tensor.

        Raises:
            InputError: the SAE is not TopK.
        """
        import torch

        if not self.is_topk:
            raise InputError(f"SAE {self.id} is not a TopK SAE")
        sae = self.sae
        dtype = next(sae.parameters()).dtype
        with torch.inference_mode():
            sae_in = sae.process_sae_in(x.to(device=self.device, dtype=dtype))
            packed = self._encoder_packed()
            if packed is not None:
                from saescope.embed import onednn

                pre = onednn.linear(sae_in.contiguous(), *packed)
            else:
                pre = sae_in @ sae.W_enc + sae.b_enc
            hidden_pre = sae.hook_sae_acts_pre(pre)
            if getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
                hidden_pre = hidden_pre * sae.W_dec.norm(dim=-1)
            values, latents = hidden_pre.topk(int(sae.cfg.k), dim=-1, sorted=False)
            return values.relu_(), latents

    def _encoder_packed(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The encoder as a packed oneDNN weight and its bias, on CPUs whose torch runs them (built once)."""
        if self.device != "cpu":
            return None
        from saescope.embed import onednn

        with self._pack_lock:
            if self._packed_encoder is None:
                w_enc, b_enc = self.sae.W_enc.detach(), self.sae.b_enc.detach()
                # Packing copies the encoder; for large SAEs the fused bias saves too little to pay.
                if w_enc.numel() * w_enc.element_size() > _PACK_LIMIT or not onednn.works(w_enc.dtype):
                    return None
                self._packed_encoder = (onednn.pack(w_enc.t()), b_enc)
            return self._packed_encoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations for ``x`` of shape ``(n, d_in)``; returns ``(n, d_sae)`` on the SAE's device.

        TopK SAEs scatter :meth:`encode_topk`, so dense codes (token evidence) and pooled vectors come
        from one computation; other SAEs run SAELens' ``encode``.
        """
        import torch

        if x.shape[-1] != self.d_in:
            raise InputError(f"SAE {self.id} expects d_in={self.d_in} but the reader gives {x.shape[-1]}")
        dtype = next(self.sae.parameters()).dtype
        with torch.inference_mode():
            if self.is_topk:
                values, latents = self.encode_topk(x)
                return values.new_zeros(x.shape[0], self.d_sae).scatter_(1, latents, values)
            codes: torch.Tensor = self.sae.encode(x.to(device=self.device, dtype=dtype))
            return codes
