"""The CPU dtype probe: the override, the cache, the choice by measured rates, and a real measurement."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from saescope.embed import dtype_probe
from saescope.embed.dtype_probe import CpuInfo, Rates, choose, cpu_dtype, measure
from saescope.embed.reader import default_dtype
from saescope.errors import InputError

INFO = CpuInfo("Test CPU 9000", frozenset({"avx2", "avx512f", "avx512_bf16"}))


class Counting:
    """A measurement that returns fixed rates and counts its calls."""

    def __init__(self, rates: Rates) -> None:
        self.rates = rates
        self.calls = 0

    def __call__(self, threads: int) -> Rates:
        self.calls += 1
        return dict(self.rates)


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dtype_probe.ENV, raising=False)


def test_choice_follows_the_measured_rates() -> None:
    assert choose({"float32": 236e9, "bfloat16": 135e9}) == "float32"  # AVX512-BF16 without AMX
    assert choose({"float32": 100e9, "bfloat16": 110e9}) == "float32"  # within the margin
    assert choose({"float32": 100e9, "bfloat16": 116e9}) == "bfloat16"
    assert choose({"float32": 60e9, "bfloat16": 400e9}) == "bfloat16"  # AMX
    assert choose({"float32": 100e9, "bfloat16": 110e9}, margin=1.05) == "bfloat16"
    with pytest.raises(InputError, match="bfloat16"):
        choose({"float32": 1.0})
    with pytest.raises(InputError, match="float32"):
        choose({"float32": float("nan"), "bfloat16": 1.0})


def test_probe_result_is_cached_per_machine(tmp_path: Path) -> None:
    cache = tmp_path / "cpu_dtype.json"
    slow_bf16 = Counting({"float32": 236e9, "bfloat16": 135e9})
    first = cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=slow_bf16)
    assert (first.dtype, first.source, first.rates) == ("float32", "probe", slow_bf16.rates)
    assert "236.0 GFLOP/s" in first.reason and "135.0 GFLOP/s" in first.reason
    again = cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=slow_bf16)
    assert (again.dtype, again.source, again.rates) == ("float32", "cache", slow_bf16.rates)
    assert slow_bf16.calls == 1
    # Another thread count (or CPU) is another entry, measured once and kept beside the first.
    fast_bf16 = Counting({"float32": 50e9, "bfloat16": 300e9})
    other = cpu_dtype(cache=cache, threads=4, info=INFO, measure_fn=fast_bf16)
    assert (other.dtype, other.source) == ("bfloat16", "probe")
    amx = CpuInfo("Test CPU 9000", INFO.flags | {"amx_bf16", "amx_tile"})
    assert cpu_dtype(cache=cache, threads=1, info=amx, measure_fn=fast_bf16).source == "probe"
    assert fast_bf16.calls == 2
    assert len(json.loads(cache.read_text())) == 3
    assert cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=fast_bf16).dtype == "float32"


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2, 3]",
        "",
        '{"KEY": {"rates": {"float32": "fast", "bfloat16": 1}}}',
        '{"KEY": {"rates": {"float32": -1, "bfloat16": 1}}}',
        '{"KEY": "float32"}',
    ],
)
def test_corrupt_cache_is_ignored_and_rewritten(tmp_path: Path, content: str) -> None:
    cache = tmp_path / "cpu_dtype.json"
    key = dtype_probe.cache_key(INFO, 1)
    cache.write_text(content.replace("KEY", key))
    probe = Counting({"float32": 50e9, "bfloat16": 300e9})
    choice = cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=probe)
    assert (choice.dtype, choice.source, probe.calls) == ("bfloat16", "probe", 1)
    assert json.loads(cache.read_text())[key]["rates"] == probe.rates
    assert cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=probe).source == "cache"


def test_unwritable_cache_still_chooses(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    probe = Counting({"float32": 236e9, "bfloat16": 135e9})
    choice = cpu_dtype(cache=blocker / "sub" / "cpu_dtype.json", threads=1, info=INFO, measure_fn=probe)
    assert choice.dtype == "float32"


def test_env_overrides_the_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cpu_dtype.json"
    probe = Counting({"float32": 236e9, "bfloat16": 135e9})
    monkeypatch.setenv(dtype_probe.ENV, "bfloat16")
    choice = cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=probe)
    assert (choice.dtype, choice.source, probe.calls) == ("bfloat16", "env", 0)
    assert choice.reason == "SAESCOPE_CPU_DTYPE=bfloat16"
    assert not cache.exists()
    monkeypatch.setenv(dtype_probe.ENV, " Float32 ")
    assert cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=probe).dtype == "float32"
    assert default_dtype("cpu") == "float32"
    monkeypatch.setenv(dtype_probe.ENV, "bfloat16")
    assert default_dtype("cpu") == "bfloat16"
    assert default_dtype("cuda") == "bfloat16"
    monkeypatch.setenv(dtype_probe.ENV, "float16")
    with pytest.raises(InputError, match="SAESCOPE_CPU_DTYPE must be float32 or bfloat16"):
        cpu_dtype(cache=cache, threads=1, info=INFO, measure_fn=probe)


def test_cpu_info_reads_model_and_flags(tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text(
        "processor\t: 0\nmodel name\t: Example Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: Example Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
    )
    info = dtype_probe.cpu_info(fake)
    assert info.model == "Example Xeon"
    assert info.reported_flags() == {
        "avx2": True,
        "avx512f": True,
        "avx512_bf16": True,
        "amx_bf16": False,
        "amx_tile": False,
    }
    assert dtype_probe.cpu_info(tmp_path / "absent") == CpuInfo("unknown", frozenset())


def test_real_probe_measures_both_dtypes_quickly(tmp_path: Path) -> None:
    start = time.perf_counter()
    rates = measure(1, seconds=0.2)
    assert set(rates) == {"float32", "bfloat16"}
    assert all(v > 1e6 for v in rates.values())  # more than a MFLOP/s: the matmuls really ran
    choice = cpu_dtype(cache=tmp_path / "c.json", threads=1)
    assert choice.dtype in ("float32", "bfloat16") and choice.source == "probe"
    assert time.perf_counter() - start < 10  # well under a second each on an idle core; the machine is shared
