"""End-to-end fan-out of the demo with Redis: 1 vs 2 workers, 1,000 connected pages.

Per run, a fresh ``redis-server`` (127.0.0.1, a free port, append-only file with
``appendfsync everysec``, Redis's own recommendation) and ``python -m wsfast demo --workers W
--broker redis://...`` (no ticking: ``--interval 3600``); the pages are wsfast clients in a
separate process (``--role pages``), which connect, take their snapshot and then note, for
every change, when the last of them received it. This process makes the changes itself,
through the demo's own broker (:class:`wsfast.cli.broker.RedisBroker`: one ``WATCH`` /
``MULTI`` / ``EXEC`` transaction per change, published on the pub/sub channel), and measures:

- **updates/s**: changes made as fast as they are delivered, at most ``--window`` changes in
  flight (made but not yet received by every page); an update counts once all pages have it,
  so deliveries per second are updates/s x pages;
- **delay**: changes made at a steady ``--rate`` (well below the maximum), from the moment the
  change is started (before its transaction, which takes a few Redis round trips) to the
  moment the last page received it: median and 99th percentile.

Clocks: ``time.monotonic()`` in both processes (one system-wide clock on Linux).

    python bench/fanout_demo.py                 # 1 and 2 workers, 1,000 pages
    python bench/fanout_demo.py --quick         # 200 pages, shorter runs
    python bench/fanout_demo.py --workers 2     # one configuration only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

# --- the pages (their own process) ----------------------------------------------------------


async def pages_main(port: int, count: int) -> None:
    """Connect ``count`` pages; print ``ready``, then ``SEQ TIME`` each time every page has
    received change SEQ (its ``order`` message; a change has exactly one)."""
    from wsfast.asyncio import connect

    seen: dict[int, int] = {}
    snapshots = 0
    out = sys.stdout

    def on_message(ws: Any, message: Any) -> None:
        nonlocal snapshots
        # The change number ends the message: {..., "seq": N}; no JSON parsing per page.
        if message.startswith('{"type": "order"'):
            seq = int(message[message.rindex(":") + 1 : -1])
            n = seen.get(seq, 0) + 1
            if n == count:
                del seen[seq]
                out.write(f"{seq} {time.monotonic()!r}\n")
                out.flush()
            else:
                seen[seq] = n
        elif message.startswith('{"type": "snapshot"'):
            snapshots += 1

    pages = []
    for start in range(0, count, 50):
        pages += await asyncio.gather(
            *(
                connect(f"ws://127.0.0.1:{port}/ws", on_message=on_message, ping_interval=None)
                for _ in range(min(50, count - start))
            )
        )
    while snapshots < count:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the race closes our stdin
    for ws in pages:
        await ws.close()


# --- the race -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("redis-server is needed (Debian: apt-get install redis-server)")
        self.directory = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory.name,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--logfile",
                "redis.log",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(15)
        self.directory.cleanup()


async def read_banner(process: asyncio.subprocess.Process) -> int:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    marker = "http://127.0.0.1:"
    if marker not in line:
        raise RuntimeError(f"no address in {line!r}")
    return int(line.split(marker)[1].split("/")[0])


class Completions:
    """Reads ``SEQ TIME`` lines from the pages process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.done: dict[int, float] = {}
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            seq, when = line.split()
            self.done[int(seq)] = float(when)
            self.changed.set()

    async def wait(self, seq: int, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while seq not in self.done:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0 or self.task.done():
                raise TimeoutError(f"change {seq} did not reach every page")
            await asyncio.wait_for(self.changed.wait(), left)
        return self.done[seq]


async def run_config(workers: int, args: argparse.Namespace) -> dict[str, float]:
    from wsfast.cli.broker import RedisBroker

    redis = Redis()
    demo = pages = None
    try:
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wsfast", "demo", "--port", "0", "--interval", "3600",
            "--workers", str(workers), "--broker", redis.url,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        port = await read_banner(demo)
        pages = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--role", "pages",
            "--port", str(port), "--pages", str(args.pages),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert pages.stdout is not None
        line = await asyncio.wait_for(pages.stdout.readline(), 120)
        if line.strip() != b"ready":
            raise RuntimeError(f"the pages process said {line!r}")
        completions = Completions(pages)
        broker = RedisBroker(redis.url, seed=1)
        await broker.open()
        try:
            snapshot = await broker.snapshot()
            assert snapshot is not None
            seq = snapshot.seq
            # Throughput: keep at most `window` changes in flight.
            made_at: dict[int, float] = {}
            step_times = []
            t_start = time.monotonic()
            deadline = t_start + args.seconds
            first = seq + 1
            while time.monotonic() < deadline:
                if seq - args.window >= first:
                    await completions.wait(seq - args.window)
                t0 = time.monotonic()
                assert await broker.step()
                step_times.append(time.monotonic() - t0)
                seq += 1
                made_at[seq] = t0
            last = await completions.wait(seq)
            throughput = (seq - first + 1) / (last - t_start)
            # Delay: a steady rate well below the maximum.
            delays = []
            period = 1 / args.rate
            next_at = time.monotonic()
            for _ in range(int(args.rate * args.seconds)):
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                t0 = time.monotonic()
                assert await broker.step()
                seq += 1
                made_at[seq] = t0
            await completions.wait(seq)
            for n in range(seq - int(args.rate * args.seconds) + 1, seq + 1):
                delays.append(completions.done[n] - made_at[n])
        finally:
            await broker.close()
        delays.sort()
        return {
            "updates/s": throughput,
            "deliveries/s": throughput * args.pages,
            "delay median ms": statistics.median(delays) * 1e3,
            "delay p99 ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1e3,
            "step median ms": statistics.median(step_times) * 1e3,
        }
    finally:
        for process in (pages, demo):
            if process is not None and process.returncode is None:
                if process is pages and process.stdin is not None:
                    process.stdin.close()
                else:
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except asyncio.TimeoutError:
                    process.kill()
        redis.stop()


async def race(args: argparse.Namespace) -> None:
    configs = [args.workers] if args.workers else [1, 2]
    results: dict[int, list[dict[str, float]]] = {w: [] for w in configs}
    for round_ in range(args.rounds):
        for workers in configs if round_ % 2 == 0 else configs[::-1]:
            result = await run_config(workers, args)
            results[workers].append(result)
            print(
                f"round {round_ + 1}, {workers} worker(s): "
                + ", ".join(f"{k} {v:,.1f}" for k, v in result.items()),
                flush=True,
            )
    print(f"\n{args.pages:,} pages; best updates/s and the delays of that run:")
    for workers, runs in results.items():
        best = max(runs, key=lambda r: r["updates/s"])
        print(
            f"  {workers} worker(s): {best['updates/s']:8,.0f} updates/s "
            f"({best['deliveries/s']:,.0f} deliveries/s), delay median "
            f"{best['delay median ms']:.1f} ms, p99 {best['delay p99 ms']:.1f} ms "
            f"(at {args.rate:g} updates/s)"
        )
    if len(results) == 2:
        one, two = (max(r["updates/s"] for r in results[w]) for w in (1, 2))
        print(f"  2 workers / 1 worker: {two / one:.2f}x updates/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["race", "pages"], default="race")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--workers", type=int, choices=[1, 2], default=None)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (5)")
    parser.add_argument("--window", type=int, default=8, help="changes in flight at most (8)")
    parser.add_argument("--rate", type=float, default=20.0, help="changes/s for the delay (20)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.role == "pages":
        asyncio.run(pages_main(args.port, args.pages))
        return 0
    if args.quick:
        args.pages, args.seconds, args.rounds = 200, 2.0, 1
    asyncio.run(race(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
