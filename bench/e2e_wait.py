"""Where the wall-clock time of one echo round trip goes: running, waiting for a CPU, or
waiting for something else (a timer, TCP, the peer).

One client of a library (this process, pinned to CPU 0) does sequential round trips with an
echo server of the same library (its own process, on CPU 1), as in ``e2e_race.py``. From
``/proc/<pid>/task/*/schedstat`` (every thread) it reads, per round trip, the time each
process ran and the time it waited on a run queue (runnable, but another program had the
CPU), and prints::

    wall = run (client + server) + run queue (client + server) + other

In a sequential echo the two processes take turns, so "other" is the time neither ran nor
waited for a CPU: a protocol or timer wait (Nagle, delayed ACK, a ``call_later``) shows
there. A negative "other" means overlap: threads of one process waiting for the CPU
while another of its threads runs are counted twice. Voluntary context switches per round
trip say how many times the processes slept.

    python bench/e2e_wait.py [--compression] [--libraries wsfast,aiohttp] [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers
from e2e_race import payloads


def schedstat(pid: int) -> tuple[float, float, int]:
    """Seconds run, seconds waited on a run queue, voluntary switches: all threads of pid."""
    run = wait = switches = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/schedstat") as f:
                fields = f.read().split()
            with open(f"{task}/status") as f:
                status = f.read()
        except OSError:  # a thread that just ended
            continue
        run += int(fields[0])
        wait += int(fields[1])
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                switches += int(line.split()[1])
    return run / 1e9, wait / 1e9, switches


async def measure(library: str, server: peers.ServerProcess, kind: str, size: int, n: int) -> str:
    messages = payloads(size, False, kind)
    client = peers.CLIENTS[library]()
    await client.connect(server.url)
    try:
        await client.run(messages, 20)
        c0, s0 = schedstat(os.getpid()), schedstat(server.pid)
        start = time.perf_counter()
        await client.run(messages, n)
        wall = time.perf_counter() - start
        c1, s1 = schedstat(os.getpid()), schedstat(server.pid)
    finally:
        await client.close()

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    run = (us(c1[0] - c0[0]), us(s1[0] - s0[0]))
    queue = (us(c1[1] - c0[1]), us(s1[1] - s0[1]))
    other = us(wall) - sum(run) - sum(queue)
    sleeps = (c1[2] - c0[2] + s1[2] - s0[2]) / n
    return (
        f"{library:<10} {kind:<6} {size // 1024:>3} KiB  {n / wall:6.0f} rt/s  wall {us(wall):6.0f}"
        f" = run {run[0]:.0f}+{run[1]:.0f} + run queue {queue[0]:.0f}+{queue[1]:.0f}"
        f" + other {other:.0f} us;  sleeps/rt {sleeps:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compression", action="store_true", help="permessage-deflate on")
    parser.add_argument("--libraries", default="wsfast,websockets,aiohttp")
    parser.add_argument("--count", type=int, default=300, help="round trips per measurement")
    args = parser.parse_args()
    peers.set_compression(args.compression)
    peers.settle_malloc()
    work = (
        [("json", 1024), ("json", 65536), ("random", 65536)]
        if args.compression
        else [
            ("random", 64),
            ("random", 65536),
        ]
    )
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {0})
    for library in args.libraries.split(","):
        if peers.unavailable(library):
            continue
        server = peers.ServerProcess(
            library, cpu=1 if pin else None, settle_malloc=True, compression=args.compression
        )
        try:
            for kind, size in work:
                print(asyncio.run(measure(library, server, kind, size, args.count)), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
