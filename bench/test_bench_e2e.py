"""A small end-to-end echo race under pytest-benchmark (a few seconds).

One echo server per library in its own process (``_e2e_peers.py``), clients of the same
library in the pytest process, connected once per library and workload; each timed round
is a batch of round trips with every echo checked. Libraries that are not installed are
skipped. ``bench/e2e_race.py`` is the real measurement (interleaved repeats, CPU pinning,
CPU time per round trip); this only shows the same workloads in pytest-benchmark's tables::

    python -m pytest bench/test_bench_e2e.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _benchutil as util
import _e2e_peers as peers
from e2e_race import WORKLOADS, payloads

# Round trips per client in one timed round.
COUNTS = {"64 B x 1": 1500, "64 KiB x 1": 400, "64 B x 100": 50}
GROUPS = {w.name: f"e2e echo {w.name}" for w in WORKLOADS}

for _work in ("64 B x 1", "64 B x 100"):
    for _lib in ("picows-coro", "picows-ws"):  # the same style as "wsfast"
        util.TARGETS.setdefault((GROUPS[_work], _lib), 1.0)
for _work in ("64 B x 1", "64 B x 100"):
    util.TARGETS.setdefault((GROUPS[_work], "websockets"), 2.0)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, peers.ServerProcess]]:
    peers.raise_nofile_limit()
    running: dict[str, peers.ServerProcess] = {}
    # Servers on the last CPU; the pytest process is left unpinned.
    ncpu = os.cpu_count() or 1
    cpu = ncpu - 1 if ncpu >= 2 and hasattr(os, "sched_setaffinity") else None
    try:
        for lib in peers.LIBRARIES:
            if peers.available(lib):
                running[lib] = peers.ServerProcess(lib, settle_malloc=True, cpu=cpu)
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.mark.parametrize("library", peers.LIBRARIES)
@pytest.mark.parametrize("work", WORKLOADS, ids=lambda w: w.name.replace(" ", ""))
def test_e2e_echo(
    benchmark: Any, servers: dict[str, peers.ServerProcess], work: Any, library: str
) -> None:
    why = peers.unavailable(library)
    if why is not None:
        if library == "wsfast":
            pytest.fail(f"wsfast.asyncio does not import: {why}")
        pytest.skip(f"{library} is not available: {why}")
    server = servers[library]
    count = COUNTS[work.name]
    msgs = payloads(work.size, False)
    loop = asyncio.new_event_loop()
    clients = [peers.CLIENTS[library]() for _ in range(work.clients)]

    async def connect() -> None:
        for client in clients:
            await client.connect(server.url)

    async def batch(n: int) -> None:
        await asyncio.gather(*(c.run(msgs, n) for c in clients))

    async def close() -> None:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    try:
        loop.run_until_complete(asyncio.wait_for(connect(), 20))
        loop.run_until_complete(asyncio.wait_for(batch(max(10, count // 10)), 20))
        benchmark.group = GROUPS[work.name]
        benchmark.extra_info["round_trips"] = count * work.clients
        benchmark.pedantic(
            lambda: loop.run_until_complete(asyncio.wait_for(batch(count), 20)),
            rounds=5,
            iterations=1,
        )
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            util.RESULTS.setdefault(GROUPS[work.name], {})[library] = stats.stats.min
    finally:
        loop.run_until_complete(close())
        loop.close()
