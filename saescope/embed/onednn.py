"""oneDNN matmuls with fused epilogues on CPU: packed weights, and SiLU, products or sums applied as the
output is written instead of in separate passes over memory.

They are torch's internal ``torch.ops.mkldnn`` linear ops, the ones inductor emits for CPU; :func:`works`
runs each once against the plain computation, so a torch build that lacks or changes them is never used.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F

Unary = Literal["none", "swish"]
Binary = Literal["add", "mul"]


@functools.cache
def works(dtype: torch.dtype) -> bool:
    """Whether this torch build runs the fused linear ops on CPU in ``dtype`` and gets them right."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(5, 16, generator=gen).to(dtype)
        w = (torch.randn(8, 16, generator=gen) / 4).to(dtype)
        b = torch.randn(8, generator=gen).to(dtype)
        other = torch.randn(5, 8, generator=gen).to(dtype)
        packed = pack(w)
        with torch.inference_mode():
            plain = F.linear(x.float(), w.float(), b.float())
            checks = (
                (linear(x, packed, b), plain),
                (linear(x, packed, b, "swish"), F.silu(plain)),
                (linear_then(x, packed, b, "mul", other), plain * other.float()),
                (linear_then(x, packed, b, "add", other), plain + other.float()),
            )
        tol = 1e-4 if dtype == torch.float32 else 5e-2
        return all(torch.allclose(got.float(), want, atol=tol, rtol=tol) for got, want in checks)
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def pack(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` ``(out, in)`` as an opaque oneDNN tensor for :func:`linear` (a copy)."""
    packed: torch.Tensor = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
    return packed


def linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, then: Unary = "none") -> torch.Tensor:
    """``then(x @ W.T + bias)`` for a :func:`pack`-ed ``W``."""
    out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(x, packed, bias, then, [], "")
    return out


def linear_then(
    x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, op: Binary, other: torch.Tensor
) -> torch.Tensor:
    """``(x @ W.T + bias) op other`` for a :func:`pack`-ed ``W``; ``other`` has the output's shape."""
    out: torch.Tensor = torch.ops.mkldnn._linear_pointwise.binary(x, other, packed, bias, op)
    return out
