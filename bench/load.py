"""Load and fault run of the asyncio server: many connections, slow and hostile peers.

One wsfast echo server (``serve(echo, ...)`` with an ``async for`` handler, keepalive off,
``backlog=1024``) runs in its own process; clients, attackers and probes run in other
processes (several, where one process could not hold the sockets), all on 127.0.0.1. Server
memory is read from ``/proc/PID/status`` (VmRSS, and VmHWM reset before each scenario).
The scenarios, in order:

1. ``idle``: ``--idle`` (10,000) upgraded connections, opened by 4 processes and left idle;
   the server's RSS per connection (after ``gc.collect()``, before and after).
2. ``echo``: ``--clients`` (1,000) wsfast clients in 2 processes, each doing sequential
   64-byte echo round trips for ``--duration`` (60) s; errors must be 0 and the server's RSS
   flat (sampled every few seconds; the drift after the first sample is reported).
3. ``slowloris``: ``--slow`` (300) connections send their opening handshake one byte every
   0.5 s, so it never completes; each must be dropped at ``--open-timeout`` (server option,
   10 s), while a probe (another process: connect, handshake, one 64-byte echo, close,
   every 0.1 s) is served within 100 ms every time.
4. ``stop-reading``: a client sends 16 KiB messages to be echoed and never reads.
5. ``ping-flood``: a client sends 125-byte pings as fast as it can and never reads.
6. ``fragment-flood``: a client sends 1 MiB messages as 1-byte fragments (7 bytes each on
   the wire, masked), reading the echoes.

For 4-6 the server's peak memory over the scenario's start must stay bounded (under
``--bound``, 64 MiB) and the probe must be served throughout (no errors; its latency is
reported). The file limit is raised in every process (the server needs more than 10,000).

    python bench/load.py                       # the full run, about 4 minutes
    python bench/load.py --smoke               # small counts, short scenarios (~60 s);
                                               # probe latency reported, not a goal
    python bench/load.py --only slowloris,ping-flood
    python bench/load.py --uvloop              # uvloop in the server process

Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers

KiB = 1024
MiB = 1024 * KiB
HOST = "127.0.0.1"
PROBE_GOAL_MS = 100.0
SCENARIOS = ("idle", "echo", "slowloris", "stop-reading", "ping-flood", "fragment-flood")


# --- the server process ----------------------------------------------------------------------


async def _server(open_timeout: float) -> None:
    from wsfast.asyncio import ConnectionClosed, serve

    async def echo(ws: Any) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    server = await serve(
        echo, HOST, 0, ping_interval=None, open_timeout=open_timeout, backlog=1024
    )
    await peers.run_commands(server.port, {"conns": lambda: str(len(server.connections))})


# --- workers (child processes; each prints one JSON line when done) ----------------------------


def _upgraded(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect((HOST, port))
    sock.sendall(peers.upgrade_request(port))
    peers.read_http_response(sock)
    return sock


def worker_idle(port: int, n: int) -> dict[str, Any]:
    socks = [_upgraded(port) for _ in range(n)]
    print("READY", flush=True)
    sys.stdin.readline()  # held until the parent says so
    for sock in socks:
        sock.close()
    return {"opened": len(socks)}


async def _echo_clients(port: int, n: int, duration: float) -> dict[str, Any]:
    """Connect ``n`` clients (100 at a time), then let each do sequential round trips for
    ``duration`` seconds, all at once."""
    from wsfast.asyncio import connect

    errors: list[str] = []
    gate = asyncio.Semaphore(100)

    async def connect_one() -> Any:
        async with gate:
            try:
                return await connect(f"ws://{HOST}:{port}/", ping_interval=None, open_timeout=30)
            except Exception as exc:  # counted, reported
                errors.append(repr(exc))
                return None

    async def echo_for(ws: Any, i: int, end: float) -> int:
        message = i.to_bytes(4, "big") * 16
        count = 0
        try:
            while loop.time() < end:
                await ws.send(message)
                if await ws.recv() != message:
                    raise RuntimeError("echo differs")
                count += 1
            await ws.close()
        except Exception as exc:
            errors.append(repr(exc))
        return count

    loop = asyncio.get_running_loop()
    clients = await asyncio.gather(*(connect_one() for _ in range(n)))
    end = loop.time() + duration
    counts = await asyncio.gather(
        *(echo_for(ws, i, end) for i, ws in enumerate(clients) if ws is not None)
    )
    return {"round_trips": sum(counts), "errors": len(errors), "first_error": errors[:1]}


def worker_echo(port: int, n: int, duration: float) -> dict[str, Any]:
    return asyncio.run(_echo_clients(port, n, duration))


async def _slowloris(port: int, n: int, interval: float, limit: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    head = peers.upgrade_request(port)
    times: list[float] = []
    survivors = 0

    async def one() -> None:
        nonlocal survivors
        reader, writer = await asyncio.open_connection(HOST, port)
        start = loop.time()
        try:
            for byte in head[:-1]:  # never the last byte: the head never completes
                writer.write(bytes([byte]))
                try:
                    if await asyncio.wait_for(reader.read(1), interval) == b"":
                        break  # EOF: dropped
                except asyncio.TimeoutError:
                    continue
                if loop.time() - start > limit:
                    break
        except ConnectionError:
            pass
        elapsed = loop.time() - start
        if elapsed > limit:
            survivors += 1
        else:
            times.append(elapsed)
        writer.close()

    await asyncio.gather(*(one() for _ in range(n)))
    times.sort()
    return {
        "dropped": len(times),
        "survivors": survivors,
        "min": times[0] if times else None,
        "median": statistics.median(times) if times else None,
        "max": times[-1] if times else None,
    }


def worker_slowloris(port: int, n: int, interval: float, limit: float) -> dict[str, Any]:
    return asyncio.run(_slowloris(port, n, interval, limit))


async def _probe(port: int, interval: float) -> dict[str, Any]:
    """Connect, handshake, one echo, close; every ``interval`` until stdin closes."""
    from wsfast.asyncio import connect

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    latencies: list[float] = []
    errors: list[str] = []
    message = b"p" * 64
    print("READY", flush=True)
    while not stop.done():
        start = time.perf_counter()
        try:
            ws = await connect(f"ws://{HOST}:{port}/", ping_interval=None, open_timeout=10)
            await ws.send(message)
            if await asyncio.wait_for(ws.recv(), 10) != message:
                raise RuntimeError("echo differs")
            latencies.append((time.perf_counter() - start) * 1000)
            await ws.close()
        except Exception as exc:
            errors.append(repr(exc))
        await asyncio.wait([stop], timeout=interval)
    latencies.sort()
    return {
        "probes": len(latencies),
        "errors": len(errors),
        "first_error": errors[:1],
        "median_ms": statistics.median(latencies) if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
    }


def worker_probe(port: int, interval: float) -> dict[str, Any]:
    return asyncio.run(_probe(port, interval))


def _flood(port: int, chunk: bytes, duration: float, read: bool) -> dict[str, Any]:
    """Send ``chunk`` again and again for ``duration`` seconds; read (and drop) what comes
    back only if ``read``. A send that makes no progress for a while is the server pushing
    back: counted as a stall."""
    sock = _upgraded(port, rcvbuf=None if read else 4096)
    received = [0]

    def drain() -> None:
        while True:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:  # the socket's timeout is for the sender's stalls
                continue
            except OSError:
                return
            if not data:
                return
            received[0] += len(data)

    if read:
        threading.Thread(target=drain, daemon=True).start()
    sock.settimeout(0.5)
    sent = stalls = 0
    end = time.monotonic() + duration
    view = memoryview(chunk)
    pos = 0
    while time.monotonic() < end:
        try:
            n = sock.send(view[pos:])
        except TimeoutError:
            stalls += 1
            continue
        except OSError as exc:
            return {"sent": sent, "stalls": stalls, "error": repr(exc), "received": received[0]}
        sent += n
        pos = (pos + n) % len(chunk)
    sock.close()
    return {"sent": sent, "stalls": stalls, "received": received[0]}


def worker_stop_reading(port: int, duration: float) -> dict[str, Any]:
    return _flood(port, peers.masked_frame(2, os.urandom(16 * KiB)) * 64, duration, read=False)


def worker_ping_flood(port: int, duration: float) -> dict[str, Any]:
    return _flood(port, peers.masked_frame(9, b"p" * 125) * 2048, duration, read=False)


def worker_fragment_flood(port: int, duration: float) -> dict[str, Any]:
    from wsfast import build_header

    mask = b"\x12\x34\x56\x78"
    payload = os.urandom(MiB)
    # 1-byte fragments: BINARY (fin=0), CONTINUATION (fin=0)..., CONTINUATION (fin=1).
    parts = []
    for i in range(MiB):
        op = 2 if i == 0 else 0
        head = build_header(op, 1, fin=i == MiB - 1, mask=mask)
        parts.append(head + bytes([payload[i] ^ mask[0]]))
    return _flood(port, b"".join(parts), duration, read=True)


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "idle": worker_idle,
    "echo": worker_echo,
    "slowloris": worker_slowloris,
    "probe": worker_probe,
    "stop-reading": worker_stop_reading,
    "ping-flood": worker_ping_flood,
    "fragment-flood": worker_fragment_flood,
}


class Worker:
    """A worker process: ``python load.py _worker KIND PORT ARGS...``."""

    def __init__(self, kind: str, port: int, *args: Any, wait_ready: bool = False) -> None:
        command = [sys.executable, os.path.abspath(__file__), "_worker", kind, str(port)]
        command += [str(a) for a in args]
        self.kind = kind
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        if wait_ready:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().strip()
            if line != "READY":
                self.proc.kill()
                raise RuntimeError(f"{kind} worker did not start: {line!r}")

    def release(self) -> None:
        """Tell a worker that waits on its stdin to finish."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.stdin = None  # communicate() must not touch it again

    def result(self, timeout: float) -> dict[str, Any]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"{self.kind} worker did not finish within {timeout} s") from None
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"{self.kind} worker failed (status {self.proc.returncode})")
        return json.loads(lines[-1])  # type: ignore[no-any-return]


# --- the scenarios ---------------------------------------------------------------------------


def conns(server: peers.ServerProcess) -> int:
    return int(server.command("conns"))


def wait_conns(server: peers.ServerProcess, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while conns(server) != n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server holds {conns(server)} connections, not {n}")
        time.sleep(0.05)


def rss(server: peers.ServerProcess) -> int:
    return server.status()["VmRSS"]


def settled_rss(server: peers.ServerProcess) -> int:
    server.command("gc")
    time.sleep(0.2)
    return rss(server)


def scenario_idle(server: peers.ServerProcess, n: int) -> dict[str, Any]:
    warm = Worker("idle", server.port, 20, wait_ready=True)
    warm.release()
    warm.result(30)
    wait_conns(server, 0, 30)
    before = settled_rss(server)
    per = -(-n // 4)
    counts = [per] * (n // per) + ([n % per] if n % per else [])
    start = time.monotonic()
    workers = [Worker("idle", server.port, c, wait_ready=True) for c in counts]
    opened = time.monotonic() - start
    wait_conns(server, n, 60)
    after = settled_rss(server)
    for w in workers:
        w.release()
    for w in workers:
        w.result(60)
    wait_conns(server, 0, 60)
    return {
        "connections": n,
        "open_s": opened,
        "rss_before_mib": before / MiB,
        "rss_held_mib": after / MiB,
        "per_connection_kib": (after - before) / n / KiB,
    }


def scenario_echo(server: peers.ServerProcess, clients: int, duration: float) -> dict[str, Any]:
    half = clients // 2
    workers = [Worker("echo", server.port, c, duration) for c in (half, clients - half)]
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    while any(w.proc.poll() is None for w in workers):
        time.sleep(max(1.0, duration / 30))
        samples.append((time.monotonic() - start, rss(server)))
    results = [w.result(duration + 120) for w in workers]
    # The first samples include connecting: "flat" compares the rest with the first of them.
    steady = [r for t, r in samples if t > min(10.0, duration / 4)] or [r for _, r in samples]
    total = sum(r["round_trips"] for r in results)
    return {
        "clients": clients,
        "duration_s": duration,
        "round_trips": total,
        "round_trips_per_s": total / duration,
        "errors": sum(r["errors"] for r in results),
        "first_error": [e for r in results for e in r["first_error"]][:1],
        "rss_first_mib": steady[0] / MiB,
        "rss_last_mib": steady[-1] / MiB,
        "rss_max_mib": max(steady) / MiB,
        "rss_drift_mib": (steady[-1] - steady[0]) / MiB,
    }


def scenario_slowloris(server: peers.ServerProcess, n: int, open_timeout: float) -> dict[str, Any]:
    probe = Worker("probe", server.port, 0.1, wait_ready=True)
    attack = Worker("slowloris", server.port, n, 0.5, open_timeout * 3)
    result = attack.result(open_timeout * 3 + 60)
    probe.release()
    result["probe"] = probe.result(30)
    wait_conns(server, 0, 30)
    return result


def scenario_flood(
    server: peers.ServerProcess, kind: str, duration: float
) -> dict[str, Any]:
    before = settled_rss(server)
    server.reset_peak()
    probe = Worker("probe", server.port, 0.1, wait_ready=True)
    attack = Worker(kind, server.port, duration)
    result = attack.result(duration + 60)
    probe.release()
    result["probe"] = probe.result(30)
    status = server.status()
    result["rss_before_mib"] = before / MiB
    result["peak_growth_mib"] = (status["VmHWM"] - before) / MiB
    wait_conns(server, 0, 30)
    result["rss_after_mib"] = settled_rss(server) / MiB
    return result


# --- report ------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdicts(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """One line per goal missed (empty when every goal is met)."""
    missed = []
    echo = results.get("echo")
    if echo is not None:
        if echo["errors"]:
            missed.append(f"echo: {echo['errors']} errors, e.g. {echo['first_error']}")
        if echo["rss_drift_mib"] > args.drift:
            missed.append(f"echo: server RSS drifted by {echo['rss_drift_mib']:.1f} MiB")
    slow = results.get("slowloris")
    if slow is not None:
        if slow["survivors"] or slow["dropped"] != args.slow:
            missed.append(f"slowloris: {slow['survivors']} connections outlived open_timeout")
        elif slow["min"] < args.open_timeout - 0.5 or slow["max"] > args.open_timeout + 1.5:
            missed.append(
                f"slowloris: dropped after {slow['min']:.2f}-{slow['max']:.2f} s, "
                f"not at open_timeout ({args.open_timeout} s)"
            )
        probe = slow["probe"]
        if probe["errors"] or not probe["probes"]:
            missed.append(f"slowloris: the probe was not served ({probe})")
        elif probe["max_ms"] > PROBE_GOAL_MS and not args.smoke:
            missed.append(f"slowloris: probe served in up to {probe['max_ms']:.0f} ms")
    for kind in ("stop-reading", "ping-flood", "fragment-flood"):
        flood = results.get(kind)
        if flood is None:
            continue
        if flood["peak_growth_mib"] > args.bound:
            missed.append(f"{kind}: server peak grew by {flood['peak_growth_mib']:.1f} MiB")
        if flood["probe"]["errors"] or not flood["probe"]["probes"]:
            missed.append(f"{kind}: the probe was not served ({flood['probe']})")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small counts, short scenarios")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--idle", type=int, default=None, help="idle connections (10,000)")
    parser.add_argument("--clients", type=int, default=None, help="echo clients (1,000)")
    parser.add_argument("--duration", type=float, default=None, help="echo seconds (60)")
    parser.add_argument("--slow", type=int, default=None, help="slowloris connections (300)")
    parser.add_argument("--open-timeout", type=float, default=None, help="server's (10 s)")
    parser.add_argument("--flood", type=float, default=None, help="seconds per flood (15)")
    parser.add_argument("--bound", type=float, default=64.0, help="MiB a flood may add")
    parser.add_argument("--drift", type=float, default=8.0, help="MiB the echo RSS may drift")
    parser.add_argument("--uvloop", action="store_true", help="uvloop in the server")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.idle = args.idle or (1000 if smoke else 10_000)
    args.clients = args.clients or (100 if smoke else 1000)
    args.duration = args.duration or (5.0 if smoke else 60.0)
    args.slow = args.slow or (50 if smoke else 300)
    args.open_timeout = args.open_timeout or (2.0 if smoke else 10.0)
    args.flood = args.flood or (4.0 if smoke else 15.0)
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    limit = peers.raise_nofile_limit(65536)
    if "idle" in only and limit < args.idle + 100:
        parser.error(f"the file limit is {limit}: too low for {args.idle} connections")

    command = [os.path.abspath(__file__), "_server", str(args.open_timeout)]
    if args.uvloop:
        command.append("--uvloop")
    print(f"# {peers.machine()}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with peers.ServerProcess("wsfast", command=command, timeout=120) as server:
        for name in only:
            t0 = time.monotonic()
            print(f"== {name}", flush=True)
            if name == "idle":
                results[name] = scenario_idle(server, args.idle)
            elif name == "echo":
                results[name] = scenario_echo(server, args.clients, args.duration)
            elif name == "slowloris":
                results[name] = scenario_slowloris(server, args.slow, args.open_timeout)
            else:
                results[name] = scenario_flood(server, name, args.flood)
            for key, value in results[name].items():
                print(f"   {key}: {_fmt(value)}", flush=True)
            print(f"   ({time.monotonic() - t0:.1f} s)", flush=True)
    missed = verdicts(results, args)
    if args.json:
        print(json.dumps(results, indent=1))
    print("goals: " + ("all met" if not missed else "MISSED:\n  " + "\n  ".join(missed)))
    return 1 if missed else 0


def _child(argv: list[str]) -> None:
    peers.raise_nofile_limit(65536)
    if argv[0] == "_server":
        if "--uvloop" in argv:
            peers.install_uvloop()
        gc.collect()
        asyncio.run(_server(float(argv[1])))
        return
    kind, port = argv[1], int(argv[2])
    worker = WORKERS[kind]
    values: list[Any] = []
    for raw in argv[3:]:
        values.append(float(raw) if "." in raw else int(raw))
    print(json.dumps(worker(port, *values)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_server", "_worker"):
        _child(sys.argv[1:])
    else:
        sys.exit(main())
