"""A lean forward pass for Llama-style decoders (Llama, Mistral, Qwen2, SmolLM2), up to one block.

Hugging Face's generic forward spends much of its CPU time outside the matmuls: a mask is built and
materialised per batch, the key/value cache is concatenated per layer, RoPE rotates with ``cat`` and
``neg``, q/k/v and gate/up run as separate small matmuls, and padding rows are computed like real ones.
The same blocks run here with:

- one q|k|v matmul per block and, on CPU, oneDNN matmuls on packed weights whose epilogues apply SiLU,
  the gating product and the residual adds, with each RMSNorm's weight folded into the matmul after it
  (:mod:`saescope.embed.onednn`); elsewhere one gate|up matmul and ``addmm`` for the residual adds. The
  fused q|k|v and gate|up weights are the storage of the Hugging Face modules' weights too, so the
  Hugging Face forward still works; the packed CPU weights are a copy;
- RoPE applied in place to the real tokens' queries and keys together, with half-width cos/sin;
- padding only where attention needs a rectangle: embeddings, norms, matmuls and the MLP run on the
  real tokens alone (right padding never reaches a real token under a causal mask);
- attention as two batched matmuls for short windows on CPU, else ``scaled_dot_product_attention``
  with ``is_causal`` or, after a cached prefix, one boolean mask shared by the whole batch.

It computes the same function as the Hugging Face model (tests compare both to 1e-4 in fp32); only
models whose blocks have exactly this structure take this path (:func:`supports`). Measured effect on
``benchmarks/embed.py``: see the README's benchmark section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from saescope.embed import onednn
from saescope.embed.onednn import works as onednn_works

_FAMILIES = ("llama", "mistral", "qwen2")
_SHORT_KEYS = 512
"""Up to this many keys per query row, CPU attention runs as plain batched matmuls (see ``_attend``)."""
_MAX_SCORES = 1 << 26
"""...and only while its fp32 score tensor has at most this many elements (256 MB)."""
_PACK_LIMIT = 1 << 30
"""Largest block weights (bytes) packed for oneDNN by default. Packing copies them; for small readers the
fused epilogues pay (their element-wise passes are a large share), for large ones the memory would not."""


def supports(net: Any) -> bool:
    """Whether ``net`` (a Hugging Face base model) is a decoder whose blocks this module computes exactly."""
    cfg = getattr(net, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in _FAMILIES:
        return False
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return False
    sliding = getattr(cfg, "sliding_window", None)
    if sliding is not None and getattr(cfg, "use_sliding_window", True) and sliding < cfg.max_position_embeddings:
        return False  # a sliding window changes the mask; leave it to the Hugging Face forward
    layers = getattr(net, "layers", None)
    if layers is None or not hasattr(net, "embed_tokens") or not hasattr(net, "rotary_emb"):
        return False
    for block in layers:
        attn, mlp = getattr(block, "self_attn", None), getattr(block, "mlp", None)
        if attn is None or mlp is None or hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
            return False
        if not all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")):
            return False
        if not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")):
            return False
        for norm in (getattr(block, "input_layernorm", None), getattr(block, "post_attention_layernorm", None)):
            if norm is None or not type(norm).__name__.endswith("RMSNorm"):
                return False
    return True


@dataclass
class _Packed:
    """A block's projections as oneDNN-packed weights, for CPU matmuls with fused epilogues."""

    qkv: torch.Tensor
    o: torch.Tensor
    gate: torch.Tensor
    gate_bias: torch.Tensor | None
    up: torch.Tensor
    up_bias: torch.Tensor | None
    down: torch.Tensor


@dataclass
class _Block:
    ln1: torch.Tensor
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    ln2: torch.Tensor
    gate_up: torch.Tensor
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None
    packed: _Packed | None = None


def _pack(block: _Block, d_ff: int) -> _Packed:
    """Packed copies of a block's weights, with each RMSNorm's weight folded into the matmuls after it."""

    def pack(weight: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
        if norm is not None:  # W @ (w * x) == (W * w) @ x, rounded once from fp32
            weight = (weight.float() * norm.float()).to(weight.dtype)
        return onednn.pack(weight)

    gate_bias = up_bias = None
    if block.gate_up_bias is not None:
        gate_bias, up_bias = block.gate_up_bias[:d_ff], block.gate_up_bias[d_ff:]
    return _Packed(
        qkv=pack(block.qkv, block.ln1),
        o=pack(block.o),
        gate=pack(block.gate_up[:d_ff], block.ln2),
        gate_bias=gate_bias,
        up=pack(block.gate_up[d_ff:], block.ln2),
        up_bias=up_bias,
        down=pack(block.down),
    )


def _fuse(modules: list[torch.nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate linear layers' weights (and biases) and make each module's weight a view of the result."""
    weight = torch.cat([m.weight.detach() for m in modules], dim=0).contiguous()
    biases = [m.bias for m in modules]
    bias = None
    if any(b is not None for b in biases):
        bias = torch.cat(
            [
                b.detach() if b is not None else weight.new_zeros(m.out_features)
                for m, b in zip(modules, biases, strict=True)
            ]
        )
    row = 0
    for m in modules:
        n = m.out_features
        m.weight = torch.nn.Parameter(weight[row : row + n], requires_grad=False)
        if bias is not None and m.bias is not None:
            m.bias = torch.nn.Parameter(bias[row : row + n], requires_grad=False)
        row += n
    return weight, bias


class FusedDecoder:
    """Runs a supported decoder's embeddings and blocks (all of ``net.layers``) on token ids.

    ``net.layers`` must already be cut to the blocks wanted; the residual stream after the last one is
    returned. Construct with :meth:`from_hf` after checking :func:`supports`.
    """

    def __init__(self, net: Any, *, onednn: bool | None = None) -> None:
        cfg = net.config
        self.net = net
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.eps = float(cfg.rms_norm_eps)
        self.d_model = int(cfg.hidden_size)
        self.d_ff = int(cfg.intermediate_size)
        self.scale = float(getattr(net.layers[0].self_attn, "scaling", self.head_dim**-0.5))
        self.blocks: list[_Block] = []
        with torch.no_grad():
            for block in net.layers:
                attn, mlp = block.self_attn, block.mlp
                qkv, qkv_bias = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
                gate_up, gate_up_bias = _fuse([mlp.gate_proj, mlp.up_proj])
                self.blocks.append(
                    _Block(
                        ln1=block.input_layernorm.weight.detach(),
                        qkv=qkv,
                        qkv_bias=qkv_bias,
                        o=attn.o_proj.weight.detach(),
                        o_bias=None if attn.o_proj.bias is None else attn.o_proj.bias.detach(),
                        ln2=block.post_attention_layernorm.weight.detach(),
                        gate_up=gate_up,
                        gate_up_bias=gate_up_bias,
                        down=mlp.down_proj.weight.detach(),
                        down_bias=None if mlp.down_proj.bias is None else mlp.down_proj.bias.detach(),
                    )
                )
            weight = net.embed_tokens.weight
            if onednn is None:
                size = sum(t.numel() * t.element_size() for b in self.blocks for t in (b.qkv, b.o, b.gate_up, b.down))
                onednn = weight.device.type == "cpu" and size <= _PACK_LIMIT and onednn_works(weight.dtype)
            if onednn:
                for blk in self.blocks:
                    blk.packed = _pack(blk, self.d_ff)
        self.onednn = bool(onednn)
        """Whether the projections run as oneDNN matmuls with fused epilogues (CPU only)."""

    def _rope(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Half-width cos and sin at ``positions`` ``(n,)``, shaped ``(n, 1, head_dim / 2)``, from the model's rotary module."""
        cos, sin = self.net.rotary_emb(hidden, positions[None, :])
        half = self.head_dim // 2
        return cos[0, :, None, :half].to(hidden.dtype), sin[0, :, None, :half].to(hidden.dtype)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Causal attention (after ``mask``'s prefix, if any) with grouped key/value heads.

        On CPU, windows up to 512 keys use two batched matmuls and a softmax: the fused kernel's per-row
        overhead dominates there (2.6 ms against 0.8 ms for 64 windows of 27 tokens), and in the
        embedder the matmuls stayed ahead up to 512 keys (``benchmarks/embed.py --corpus answers``,
        128 tokens on average: 78% of the roofline against 72% with the kernel from 64 keys up). Beyond that, or where the
        score tensor would be large, and on GPUs, the fused kernel runs.
        """
        n_keys = k.shape[2]
        scores_size = q.shape[0] * self.n_heads * q.shape[2] * n_keys
        if q.device.type != "cpu" or n_keys > _SHORT_KEYS or scores_size > _MAX_SCORES:
            if mask is None:
                return F.scaled_dot_product_attention(
                    q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.n_kv != self.n_heads
                )
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=self.scale, enable_gqa=self.n_kv != self.n_heads
            )
        batch, _, width, d = q.shape
        group = self.n_heads // self.n_kv
        if mask is None:
            mask = torch.ones(width, n_keys, dtype=torch.bool, device=q.device).tril(n_keys - width)
        bias = torch.zeros(width, n_keys, device=q.device).masked_fill_(~mask, float("-inf"))
        scores = torch.matmul(q.reshape(batch, self.n_kv, group * width, d), k.transpose(-1, -2))
        scores = scores.view(batch, self.n_kv, group, width, n_keys).float().mul_(self.scale).add_(bias)
        probs = torch.softmax(scores, dim=-1).to(v.dtype)
        out = torch.matmul(probs.view(batch, self.n_kv, group * width, n_keys), v)
        return out.view(batch, self.n_heads, width, d)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """RMSNorm with the sum of squares accumulated in fp32 in one pass, then one scale per row.

        ``weight`` is None where it is folded into the packed weights of the matmul that follows.
        """
        ss = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32)
        inv = torch.rsqrt(ss.square_().div_(x.shape[-1]).add_(self.eps)).to(x.dtype)
        return x * inv if weight is None else x * inv * weight

    def run(
        self,
        ids: torch.Tensor,
        *,
        valid: torch.Tensor | None = None,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        n_prefix: int = 0,
        keep_kv: bool = False,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """The residual stream after the last block at the real tokens of right-padded ``ids`` ``(batch, T)``.

        ``valid`` (``(batch, T)`` bool, default all) marks the real tokens. Only attention sees the padded
        layout: embeddings, norms, matmuls and the MLP run on the real tokens alone, so padding costs no
        matmul work. ``prefix`` holds each block's keys and values (``(1, n_kv, n_prefix, head_dim)``) of
        tokens that come before every row, computed once by a call with ``keep_kv=True``.

        Returns:
            ``(hidden, kv)``: ``hidden`` is ``(n_valid, d_model)`` in row-major order of ``valid``; ``kv``
            is empty unless ``keep_kv``.
        """
        batch, width = ids.shape
        if valid is None:
            valid = torch.ones(batch, width, dtype=torch.bool, device=ids.device)
        rows = valid.reshape(-1).nonzero().squeeze(1)
        row_of, col_of = rows // width, rows % width  # (window, position) of each real token
        flat = F.embedding(ids.reshape(-1).index_select(0, rows), self.net.embed_tokens.weight)
        cos, sin = self._rope(flat, col_of + n_prefix)
        mask = None
        if prefix is not None and n_prefix:
            # Row i of the window sees every prefix token and window tokens 0..i.
            mask = torch.ones(width, n_prefix + width, dtype=torch.bool, device=ids.device)
            mask[:, n_prefix:] = torch.ones(width, width, dtype=torch.bool, device=ids.device).tril()
        h, kv, d, half = self.n_heads, self.n_kv, self.head_dim, self.head_dim // 2
        kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        for n, blk in enumerate(self.blocks):
            folded = blk.packed is not None
            packed = self._qkv(self._norm(flat, None if folded else blk.ln1), blk)
            # RoPE on the real tokens' queries and keys, in place: no padding rows, no temporaries but one.
            qk = packed[:, : (h + kv) * d].view(-1, h + kv, d)
            first, second = qk[..., :half], qk[..., half:]
            saved = first.clone()
            first.mul_(cos).addcmul_(second, sin, value=-1)
            second.mul_(cos).addcmul_(saved, sin)
            # Padding rows are zeros: finite scores, and causal masking keeps them from real queries.
            qkv = packed.new_zeros(batch * width, packed.shape[1]).index_copy_(0, rows, packed)
            qkv = qkv.view(batch, width, -1)
            q = qkv[..., : h * d].view(batch, width, h, d).transpose(1, 2)
            k = qkv[..., h * d : (h + kv) * d].view(batch, width, kv, d).transpose(1, 2)
            v = qkv[..., (h + kv) * d :].view(batch, width, kv, d).transpose(1, 2)
            if keep_kv:
                kept.append((k.contiguous(), v.contiguous()))
            if mask is not None and prefix is not None:
                pk, pv = prefix[n]
                k = torch.cat((pk.expand(batch, -1, -1, -1), k), dim=2)
                v = torch.cat((pv.expand(batch, -1, -1, -1), v), dim=2)
            o = self._attend(q, k, v, mask).transpose(1, 2)[row_of, col_of].reshape(-1, h * d)
            flat = self._out(o, flat, blk)
            flat = self._mlp(self._norm(flat, None if folded else blk.ln2), flat, blk)
        return flat, kept

    # The projections. With oneDNN, SiLU, the gating product and the residual adds run in the matmuls'
    # epilogues, on packed weights (the MLP 7-9% faster at 1,800 tokens in bf16: benchmarks/mlp_epilogues.py).
    # Without it, the residual add still rides on the matmul (addmm with beta=1).

    def _qkv(self, x: torch.Tensor, blk: _Block) -> torch.Tensor:
        if blk.packed is not None:
            return onednn.linear(x, blk.packed.qkv, blk.qkv_bias)
        return F.linear(x, blk.qkv, blk.qkv_bias)

    def _out(self, o: torch.Tensor, residual: torch.Tensor, blk: _Block) -> torch.Tensor:
        """``residual + o_proj(o)``."""
        if blk.packed is not None:
            return onednn.linear_then(o, blk.packed.o, blk.o_bias, "add", residual)
        return torch.addmm(residual if blk.o_bias is None else residual + blk.o_bias, o, blk.o.t())

    def _mlp(self, x: torch.Tensor, residual: torch.Tensor, blk: _Block) -> torch.Tensor:
        """``residual + down(silu(gate(x)) * up(x))``."""
        p = blk.packed
        if p is not None:
            gate = onednn.linear(x, p.gate, p.gate_bias, "swish")
            act = onednn.linear_then(x, p.up, p.up_bias, "mul", gate)
            return onednn.linear_then(act, p.down, blk.down_bias, "add", residual)
        gu = F.linear(x, blk.gate_up, blk.gate_up_bias)
        act = F.silu(gu[:, : self.d_ff], inplace=True)
        act.mul_(gu[:, self.d_ff :])
        return torch.addmm(residual if blk.down_bias is None else residual + blk.down_bias, act, blk.down.t())
