"""The CPU compute dtype, chosen by measuring it: bfloat16 only where its matmuls beat float32 here.

CPU flags do not settle it: on a CPU with AVX512-BF16 but no AMX, a 2048^3 matmul ran at 236 GFLOP/s
in float32 and 135 in bfloat16, so a choice by flags made embedding 1.75x slower. The probe times a few
matmuls of the reader's shapes in both dtypes on the intra-op threads one embedding worker gets (well
under a second) and caches the rates per machine in ``<cache>/cpu_dtype.json``, keyed by the CPU model,
its flags, the torch version and the thread count. ``SAESCOPE_CPU_DTYPE=float32|bfloat16`` overrides it;
an explicit dtype given to the reader or the SAE overrides both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from saescope.errors import InputError
from saescope.paths import cache_home

log = logging.getLogger(__name__)

CpuDtype = Literal["float32", "bfloat16"]
DTYPES: tuple[CpuDtype, ...] = ("float32", "bfloat16")
ENV = "SAESCOPE_CPU_DTYPE"
MARGIN = 1.15
"""bfloat16 is chosen only when its measured rate is at least this many times float32's (noise and
the casts around the matmuls eat a smaller gain)."""
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
"""The CPU flags that bear on matmul speed, shown in reports."""
SHAPES = ((128, 576, 1536), (128, 1536, 576))
"""(tokens, d_in, d_out) of the probe's matmuls: a worker's batch through the default reader's MLP."""
CACHE_FILE = "cpu_dtype.json"

Rates = dict[str, float]
"""Measured matmul FLOP/s per dtype name."""


@dataclass(frozen=True)
class CpuInfo:
    """What identifies a CPU for the probe's cache."""

    model: str
    flags: frozenset[str]

    def reported_flags(self) -> dict[str, bool]:
        """Which of :data:`REPORTED_FLAGS` this CPU has."""
        return {f: f in self.flags for f in REPORTED_FLAGS}


@dataclass(frozen=True)
class DtypeChoice:
    """The CPU compute dtype and why it was chosen."""

    dtype: CpuDtype
    source: Literal["env", "probe", "cache"]
    rates: Rates
    """Measured FLOP/s per dtype (empty when ``source`` is ``env``)."""

    @property
    def reason(self) -> str:
        if self.source == "env":
            return f"{ENV}={self.dtype}"
        f32, bf16 = self.rates.get("float32", 0.0), self.rates.get("bfloat16", 0.0)
        where = "measured" if self.source == "probe" else "cached probe"
        return (
            f"{where}: float32 {f32 / 1e9:.1f} GFLOP/s, bfloat16 {bf16 / 1e9:.1f} GFLOP/s "
            f"(bfloat16 needs >= {MARGIN:.2f}x float32)"
        )


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU model name and flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo("unknown", frozenset())
    model, flags = "unknown", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags)


def env_override() -> CpuDtype | None:
    """The dtype ``SAESCOPE_CPU_DTYPE`` asks for, or None when it is unset.

    Raises:
        InputError: it is set to something other than float32 or bfloat16.
    """
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    for name in DTYPES:
        if value == name:
            return name
    raise InputError(f"{ENV} must be float32 or bfloat16, got {value[:40]!r}")


def choose(rates: Mapping[str, float], margin: float = MARGIN) -> CpuDtype:
    """bfloat16 when its rate is at least ``margin`` times float32's, else float32.

    Raises:
        InputError: a rate is missing, negative or not a number.
    """
    for name in DTYPES:
        value = rates.get(name)
        if not isinstance(value, int | float) or not value >= 0:
            raise InputError(f"rates need a non-negative {name} FLOP/s, got {value!r}")
    return "bfloat16" if rates["bfloat16"] >= margin * rates["float32"] else "float32"


def measure(threads: int, seconds: float = 0.25) -> Rates:
    """Matmul FLOP/s per dtype on ``threads`` intra-op threads, in about ``seconds`` (more when a dtype is so
    slow that one round of its matmuls takes longer).

    The dtypes are timed in alternating rounds and each keeps its best round, so a burst of load from
    another process on a shared machine does not fall on one dtype only. Once one dtype is 3x the other
    the choice is clear and the rounds stop.
    """
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        gen = torch.Generator().manual_seed(0)
        pairs = {
            name: [
                (
                    torch.randn(m, k, generator=gen).to(getattr(torch, name)),
                    torch.randn(k, n, generator=gen).to(getattr(torch, name)),
                )
                for m, k, n in SHAPES
            ]
            for name in DTYPES
        }
        flops = sum(2 * m * k * n for m, k, n in SHAPES)
        best: Rates = dict.fromkeys(DTYPES, 0.0)
        with torch.inference_mode():
            for name in DTYPES:  # warm-up on a few rows: first calls pick kernels and allocate
                for a, b in pairs[name]:
                    a[:8] @ b
            deadline = time.perf_counter() + seconds
            for _ in range(20):
                for name in DTYPES:
                    start = time.perf_counter()
                    for a, b in pairs[name]:
                        a @ b
                    best[name] = max(best[name], flops / max(time.perf_counter() - start, 1e-9))
                low, high = sorted(best.values())
                if time.perf_counter() > deadline or high > 3 * low:
                    break
        return best
    finally:
        torch.set_num_threads(saved)


def worker_threads() -> int:
    """Intra-op threads of one embedding worker on CPU (as :class:`~saescope.embed.engine.Embedder` sets them)."""
    import torch

    from saescope.embed.engine import default_workers

    return max(1, torch.get_num_threads() // default_workers("cpu"))


def cache_key(info: CpuInfo, threads: int) -> str:
    """The cache entry for this CPU, torch version and thread count."""
    import torch

    ident = json.dumps([info.model, sorted(info.flags), torch.__version__, threads])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _read_cache(path: Path) -> dict[str, object]:
    """The cache file's entries; an absent, unreadable or malformed file reads as empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cached_rates(entry: object) -> Rates | None:
    if not isinstance(entry, dict):
        return None
    rates = entry.get("rates")
    if not isinstance(rates, dict):
        return None
    out: Rates = {}
    for name in DTYPES:
        value = rates.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return None
        out[name] = float(value)
    return out


def _write_cache(path: Path, entries: dict[str, object]) -> None:
    """Write the cache atomically; a cache that cannot be written is only logged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write the dtype probe cache %s: %s", path, exc)


def cpu_dtype(
    *,
    cache: Path | None = None,
    threads: int | None = None,
    info: CpuInfo | None = None,
    measure_fn: Callable[[int], Rates] = measure,
) -> DtypeChoice:
    """The dtype the CPU should compute in: ``SAESCOPE_CPU_DTYPE`` if set, else the cached or measured choice.

    ``measure_fn(threads)`` gives the FLOP/s per dtype when this machine has no cache entry yet.

    Raises:
        InputError: ``SAESCOPE_CPU_DTYPE`` is set to an unknown dtype.
    """
    forced = env_override()
    if forced is not None:
        return DtypeChoice(forced, "env", {})
    path = cache if cache is not None else cache_home() / CACHE_FILE
    n_threads = threads if threads is not None else worker_threads()
    cpu = info if info is not None else cpu_info()
    key = cache_key(cpu, n_threads)
    entries = _read_cache(path)
    rates = _cached_rates(entries.get(key))
    if rates is not None:
        return DtypeChoice(choose(rates), "cache", rates)
    rates = measure_fn(n_threads)
    choice = choose(rates)
    entries[key] = {"cpu": cpu.model, "threads": n_threads, "rates": rates, "dtype": choice}
    _write_cache(path, entries)
    log.info("CPU dtype probe on %s (%d threads): %s", cpu.model, n_threads, rates)
    return DtypeChoice(choice, "probe", rates)
