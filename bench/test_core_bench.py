"""Decode + batch throughput of the compiled core against its pure-Python twin, same input."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest

from sentinel._core import _batch_py, _decoder_py

try:
    from sentinel._core import _batch_c, _decoder_c

    _compiled: tuple[ModuleType, ModuleType] | None = (_decoder_c, _batch_c)
except ImportError:  # pragma: no cover
    _compiled = None

from conftest import record_ratio

BATCH = 1000
IMPLS: dict[str, tuple[ModuleType, ModuleType]] = {"python": (_decoder_py, _batch_py)}
if _compiled is not None:
    IMPLS["compiled"] = _compiled


def decode_and_build(decoder: Any, batch: Any, chunks: list[list[bytes]]) -> int:
    builder = batch.BatchBuilder()
    stored = 0
    for chunk in chunks:
        events, _ = decoder.decode_batch(chunk)
        stored += builder.build(events, (), 1).accepted
    return stored


@pytest.fixture(scope="module")
def chunks(payloads: list[bytes]) -> list[list[bytes]]:
    return [payloads[i : i + BATCH] for i in range(0, len(payloads), BATCH)]


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_decode_and_build(benchmark: Any, impl: str, chunks: list[list[bytes]], payloads: list[bytes]) -> None:
    if impl not in IMPLS:
        pytest.skip("compiled core not built")
    decoder, batch = IMPLS[impl]
    benchmark.group = "core: decode + batch"
    benchmark.extra_info["events"] = len(payloads)
    stored = benchmark.pedantic(decode_and_build, args=(decoder, batch, chunks), rounds=7, warmup_rounds=1)
    assert stored == len(payloads)
    benchmark.extra_info["events_per_second"] = len(payloads) / benchmark.stats.stats.min


def test_ratio_compiled_over_twin(chunks: list[list[bytes]], payloads: list[bytes]) -> None:
    """Interleaved best-of-N of both in one process, so the ratio does not depend on run order."""
    if "compiled" not in IMPLS:
        pytest.skip("compiled core not built")
    best = {"compiled": float("inf"), "python": float("inf")}
    for _ in range(7):
        for name, (decoder, batch) in IMPLS.items():
            started = time.perf_counter()
            decode_and_build(decoder, batch, chunks)
            best[name] = min(best[name], time.perf_counter() - started)
    ratio = best["python"] / best["compiled"]
    rate = len(payloads) / best["compiled"]
    record_ratio(
        "core decode+batch: compiled / pure-Python twin",
        ratio,
        f"(compiled {rate:,.0f} ev/s, twin {len(payloads) / best['python']:,.0f} ev/s)",
    )
