"""Workloads, peer lookups and result bookkeeping shared by the benchmark modules.

The workload builders and the peer drivers (how aiohttp's reader and wsproto are fed, and
how their output is turned back into payloads for checking) live in
:mod:`wsfast.cli.bench`, so that this suite and ``python -m wsfast bench`` measure exactly
the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

import wsfast
import wsfast.pure
from wsfast.cli import bench as wb

KiB = wb.KiB
MiB = wb.MiB
MASK = wb.MASK
SIZES = [6, 125, KiB, 64 * KiB, MiB, 16 * MiB]
KERNELS = {"wsfast": wsfast, "pure": wsfast.pure}

# (group, contender) -> minimum speed of wsfast relative to that contender. The same targets
# as ``python -m wsfast bench``, which checks them properly (same-run, interleaved rounds);
# here they only annotate the summary.
TARGETS: dict[tuple[str, str], float] = {
    ("apply_mask 6 B", "websockets"): 1.0,
    ("apply_mask 125 B", "websockets"): 1.0,
    ("apply_mask 1 KiB", "copy"): 0.9,
    ("apply_mask 64 KiB", "copy"): 0.9,
    ("apply_mask 1 MiB", "copy"): 0.9,
    ("apply_mask 64 KiB", "pure"): 50.0,
    ("apply_mask_inplace 6 B", "aiohttp"): 1.0,
    ("apply_mask_inplace 64 KiB", "aiohttp"): 1.0,
    ("validate_utf8 ASCII 64 KiB", "decode"): 1.0,
    ("Utf8Validator.feed Greek/CJK 64 KiB", "wsaccel"): 10.0,
    ("FrameParser 10000 x 32 B", "aiohttp"): 2.0,
    ("FrameParser 10000 x 32 B", "wsproto"): 10.0,
}

# group -> contender -> best time (seconds), filled as the benchmarks run
RESULTS: dict[str, dict[str, float]] = {}


def size_id(n: int) -> str:
    return size_label(n).replace(" ", "")


size_label = wb.size_label


@functools.cache
def random_payload(n: int) -> bytes:
    return wb.random_bytes(n, n)


@functools.cache
def masked_payload(n: int) -> bytes:
    return wsfast.pure.apply_mask(random_payload(n), MASK)


@functools.cache
def ascii_payload(n: int) -> bytes:
    return wb.ascii_text(n)


@functools.cache
def mixed_payload(n: int) -> bytes:
    return wb.mixed_text(n)


@functools.cache
def frame_workload(count: int, size: int) -> tuple[list[bytes], list[bytes]]:
    """``count`` masked binary frames of ``size`` bytes, cut into 256 KiB reads."""
    stream, payloads = wb.masked_stream(count, size, seed=size)
    return wb.split(stream), payloads


def peer(loader: Callable[..., Any], *args: Any) -> Any:
    """``loader(*args)``, or skip the benchmark when that peer is not installed."""
    try:
        return loader(*args)
    except wb.PeerUnavailable as exc:
        pytest.skip(str(exc))


def run(benchmark: Any, group: str, who: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Benchmark ``fn(*args)`` as contender ``who`` of ``group``; return its last result."""
    benchmark.group = group
    benchmark.extra_info["contender"] = who
    if who == "wsfast":
        benchmark.extra_info["implementation"] = wsfast.implementation
    result = benchmark(fn, *args)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        RESULTS.setdefault(group, {})[who] = stats["min"]
    return result
