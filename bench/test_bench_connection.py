"""pytest-benchmark: sans-I/O round trips through wsfast, websockets and wsproto.

    python -m pytest bench/test_bench_connection.py --benchmark-group-by=group

Each benchmark runs a batch of round trips (client sends, server receives, server sends back,
client receives) on a fresh, handshaken pair; compare the rows of a group. For the ratios in
one line each, run ``python bench/connection_race.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connection_race import (
    pin_malloc,
    websockets_run,
    wsfast_py_run,
    wsfast_run,
    wsproto_run,
)

import wsfast.connection

# wsfast: the connection wsfast.connection exports (compiled when built); wsfast-py: its
# Python source on the same kernels, when the exported one is the compiled one.
RUNS: dict[str, Callable[[str | bytes, int], None]] = {
    "wsfast": wsfast_run,
    **({"wsfast-py": wsfast_py_run} if wsfast.connection.implementation == "cython" else {}),
    "websockets": websockets_run,
    "wsproto": wsproto_run,
}

SMALL = "x" * 32
LARGE = os.urandom(1 << 20)


@pytest.fixture(scope="module", autouse=True)
def _steady_malloc() -> None:
    # See connection_race.pin_malloc: without it, 1 MiB results depend on run order.
    pin_malloc()


@pytest.mark.parametrize("library", list(RUNS))
def test_round_trip_32_bytes_text(benchmark: pytest.FixtureRequest, library: str) -> None:
    benchmark.group = "1,000 round trips of 32 B text"  # type: ignore[attr-defined]
    benchmark(RUNS[library], SMALL, 1000)  # type: ignore[operator]


@pytest.mark.parametrize("library", list(RUNS))
def test_round_trip_1_mib_binary(benchmark: pytest.FixtureRequest, library: str) -> None:
    benchmark.group = "10 round trips of 1 MiB binary"  # type: ignore[attr-defined]
    benchmark(RUNS[library], LARGE, 10)  # type: ignore[operator]


@pytest.mark.parametrize("library", list(RUNS))
def test_round_trip_1_mib_text(benchmark: pytest.FixtureRequest, library: str) -> None:
    benchmark.group = "10 round trips of 1 MiB text"  # type: ignore[attr-defined]
    benchmark(RUNS[library], "é" * (1 << 19), 10)  # type: ignore[operator]
