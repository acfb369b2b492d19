"""Server memory: per idle connection, and the peak while echoing one 16 MiB message.

Each library's echo server (``_e2e_peers.py``) runs in its own process; this process is the
client, the same one for every server: plain sockets doing the HTTP upgrade by hand, so
the client library costs nothing on either side. Memory is read from the server's
``/proc/PID/status``.

1. Idle connections: open ``--connections`` (1,000) WebSocket connections and leave them
   idle; per connection = (VmRSS after - VmRSS before) / connections, both after a
   ``gc.collect()`` in the server. A few connections are opened and closed first, so that
   first-use costs (imports, caches) do not count. A second pass with tracemalloc on gives
   the Python-heap part alone. Kernel socket buffers are not part of RSS and not counted.
2. One 16 MiB binary message echoed through a fresh server (message limit 32 MiB): peak
   extra memory = VmHWM during the echo - VmRSS before it (the peak is reset just before,
   through /proc/PID/clear_refs), and tracemalloc's peak in a second echo. The project's
   goal: wsfast's peak extra memory at most 3x the message size.

With ``--compression`` the client offers permessage-deflate as Chrome does and every server
runs with its library's compression defaults (picows has none): idle connections are measured
right after the handshake and again after each has echoed one compressed 1 KiB JSON message
(compressor and inflater in use), and the 16 MiB message is compressible JSON, sent
compressed; the echo is inflated and compared. Goals: per idle connection at most websockets'
figure; peak extra memory at most 3x the message.

    python bench/memory.py            # about 1 minute
    python bench/memory.py --quick    # about 15 s
    python bench/memory.py --check    # exit 1 if wsfast misses its goal
    python bench/memory.py --compression  # permessage-deflate negotiated
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers
from e2e_race import json_document

MiB = 1024 * 1024
BIG = 16 * MiB
LIMIT = 32 * MiB
PEAK_GOAL = 3.0  # wsfast: peak extra memory <= 3x the message size
TIMEOUT = 20.0


def open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` upgraded connections (101 checked); nothing is sent after the handshake."""
    socks = []
    request = peers.upgrade_request(port)
    try:
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            socks.append(sock)
            sock.sendall(request)
            peers.read_http_response(sock)
    except BaseException:
        close_all(socks)
        raise
    return socks


def echo_one_each(socks: list[socket.socket], payload: bytes) -> None:
    """Each connection sends ``payload`` compressed (window 9, within any answer) and
    checks the echo: its compressor and inflater have then been used once."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -9, 5)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frame = peers.masked_frame(1, data[:-4], rsv1=True)
    for sock in socks:
        sock.sendall(frame)
    for sock in socks:
        _, echoed = peers.read_server_frame(sock, b"", zlib.decompressobj(-15))
        if echoed != payload:
            raise peers.EchoMismatch(f"echo differs: {len(echoed)} bytes")


def close_all(socks: list[socket.socket]) -> None:
    """Send each a close frame (without waiting for the answer), then close TCP."""
    close = peers.close_frame()
    for sock in socks:
        try:
            sock.sendall(close)
        except OSError:
            pass
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass
    socks.clear()


def wait_count(server: peers.ServerProcess, n: int) -> None:
    """Wait until the server's handlers see ``n`` open connections."""
    deadline = time.monotonic() + TIMEOUT
    while int(server.command("count")) != n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.library}: {server.command('count')} open, not {n}")
        time.sleep(0.02)


def idle_connections(library: str, n: int, trace: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    with peers.ServerProcess(library, compression=peers.DEFLATE[0]) as server:
        warm = open_idle(server.port, 10)
        wait_count(server, 10)
        close_all(warm)
        wait_count(server, 0)
        server.command("gc")
        time.sleep(0.1)
        before = server.status()["VmRSS"]
        socks = open_idle(server.port, n)
        try:
            wait_count(server, n)
            server.command("gc")
            time.sleep(0.1)
            after = server.status()["VmRSS"]
            if peers.DEFLATE[0]:
                echo_one_each(socks, json_document(1024, 0).encode())
                server.command("gc")
                time.sleep(0.1)
                out["rss_used"] = (server.status()["VmRSS"] - before) / n
        finally:
            close_all(socks)
        out["rss"] = (after - before) / n
        out["rss_before"] = before
        if trace:
            wait_count(server, 0)
            server.command("gc")
            server.command("trace")
            base = int(server.command("traced"))
            socks = open_idle(server.port, n)
            try:
                wait_count(server, n)
                server.command("gc")
                out["heap"] = (int(server.command("traced")) - base) / n
            finally:
                close_all(socks)
            server.command("untrace")
    return out


def echo_big(
    sock: socket.socket, frame: bytes, payload: bytes, pending: bytes, inflater: object = None
) -> bytes:
    """Echo one message; ``inflater``: the connection's own (the server keeps its context)."""
    sock.sendall(frame)
    opcode, echoed = peers.read_server_frame(sock, pending, inflater)
    if opcode != 2 or echoed != payload:
        raise peers.EchoMismatch(f"echo differs: opcode {opcode}, {len(echoed)} bytes")
    return b""


def big_message(library: str, payload: bytes, frame: bytes, trace: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    with peers.ServerProcess(library, max_size=LIMIT, compression=peers.DEFLATE[0]) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        try:
            sock.sendall(peers.upgrade_request(server.port))
            _, pending = peers.read_http_response(sock)
            small = os.urandom(64)
            sock.sendall(peers.masked_frame(2, small))
            inflater = zlib.decompressobj(-15) if peers.DEFLATE[0] else None
            opcode, echoed = peers.read_server_frame(sock, pending, inflater)
            if echoed != small:
                raise peers.EchoMismatch("the 64-byte warm-up echo differs")
            server.command("gc")
            time.sleep(0.1)
            before = server.status()["VmRSS"]
            if not server.reset_peak():
                raise RuntimeError("cannot reset VmHWM through /proc/PID/clear_refs")
            echo_big(sock, frame, payload, b"", inflater)
            status = server.status()
            out["peak"] = status["VmHWM"] - before
            out["rss_before"] = before
            out["after"] = status["VmRSS"] - before
            if trace:
                server.command("gc")
                server.command("trace")
                echo_big(sock, frame, payload, b"", inflater)
                out["traced_peak"] = int(server.command("peak"))
        finally:
            close_all([sock])
    return out


def fmt_kib(x: float | None) -> str:
    return "-" if x is None else f"{x / 1024:,.1f}"


def fmt_mib(x: float | None) -> str:
    return "-" if x is None else f"{x / MiB:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one pass, no tracemalloc passes")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (1 quick)")
    parser.add_argument(
        "--libraries", default=",".join(peers.LIBRARIES), help="comma-separated subset"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if wsfast misses its goal")
    parser.add_argument("--compression", action="store_true", help="permessage-deflate on")
    args = parser.parse_args(argv)
    peers.set_compression(args.compression)
    repeat = args.repeat or (1 if args.quick else 3)
    trace = not args.quick
    limit = peers.raise_nofile_limit(max(65536, args.connections * 2 + 100))
    if limit < args.connections + 50:
        sys.exit(f"the open-file limit ({limit}) is too low for {args.connections} connections")

    wanted = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    why = {lib: peers.unavailable(lib) for lib in wanted}
    libraries = [lib for lib in wanted if why[lib] is None]
    print(peers.machine())
    print(
        "libraries: "
        + ", ".join(f"{lib} {peers.version(lib)}" for lib in libraries)
        + "".join(f"; unavailable: {lib} ({why[lib]})" for lib in wanted if why[lib])
    )
    print(
        "servers on the default asyncio loop, each library's defaults (keepalive off, "
        + (
            "permessage-deflate offered as Chrome does"
            if args.compression
            else "compression off"
        )
        + f"); client: raw sockets; {repeat} pass(es), libraries interleaved",
        flush=True,
    )

    idle: dict[str, list[dict[str, float]]] = {lib: [] for lib in libraries}
    big: dict[str, list[dict[str, float]]] = {lib: [] for lib in libraries}
    errors: dict[str, str] = {}
    if args.compression:
        payload = json_document(BIG, 1).encode()[:BIG]
        compressor = zlib.compressobj(1, zlib.DEFLATED, -9, 5)
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        frame = peers.masked_frame(2, data[:-4], rsv1=True)
    else:
        payload = os.urandom(BIG)
        frame = peers.masked_frame(2, payload)
    for r in range(repeat):
        for lib in libraries[r % len(libraries) :] + libraries[: r % len(libraries)]:
            try:
                idle[lib].append(idle_connections(lib, args.connections, trace and r == 0))
            except Exception as exc:
                errors[f"{lib} idle"] = f"{type(exc).__name__}: {exc}"
            try:
                big[lib].append(big_message(lib, payload, frame, trace and r == 0))
            except Exception as exc:
                errors[f"{lib} 16 MiB"] = f"{type(exc).__name__}: {exc}"
        print(f"  pass {r + 1}/{repeat} done", file=sys.stderr, flush=True)

    def pick(runs: list[dict[str, float]], key: str, how=statistics.median) -> float | None:
        values = [run[key] for run in runs if key in run]
        return how(values) if values else None

    n = args.connections
    print(f"\n1. Server memory per idle connection ({n:,} connections)")
    rows = []
    ours = pick(idle.get("wsfast", []), "rss")
    for lib in libraries:
        rss = pick(idle[lib], "rss")
        rows.append(
            [
                lib,
                fmt_kib(rss),
                fmt_kib(pick(idle[lib], "rss_used")),
                " / ".join(fmt_kib(run["rss"]) for run in idle[lib]) or "-",
                fmt_kib(pick(idle[lib], "heap")),
                fmt_mib(pick(idle[lib], "rss_before")),
                "-" if not ours or not rss else f"{rss / ours:.2f}x",
            ]
        )
    peers.print_columns(
        [
            "library",
            "RSS KiB/conn (median)",
            "after 1 message each",
            "each pass",
            "tracemalloc KiB/conn",
            "RSS before MiB",
            "other/wsfast",
        ],
        rows,
    )

    what = "compressible JSON" if args.compression else "random"
    print(f"\n2. Echoing one {BIG // MiB} MiB binary message ({what}): server peak extra memory")
    rows = []
    goal_lines = []
    failed = False
    for lib in libraries:
        peak = pick(big[lib], "peak", max)
        rows.append(
            [
                lib,
                fmt_mib(peak),
                "-" if peak is None else f"{peak / BIG:.2f}x",
                " / ".join(fmt_mib(run["peak"]) for run in big[lib]) or "-",
                fmt_mib(pick(big[lib], "traced_peak")),
                "-"
                if pick(big[lib], "traced_peak") is None
                else f"{pick(big[lib], 'traced_peak') / BIG:.2f}x",
                fmt_mib(pick(big[lib], "after", max)),
            ]
        )
        if lib == "wsfast" and peak is not None:
            ok = peak <= PEAK_GOAL * BIG
            failed |= not ok
            goal_lines.append(
                f"  wsfast peak extra memory {peak / BIG:.2f}x the message "
                f"(goal <= {PEAK_GOAL:g}x): {'met' if ok else 'MISSED'}"
            )
    peers.print_columns(
        [
            "library",
            "VmHWM-RSS MiB (worst)",
            "x msg",
            "each pass",
            "tracemalloc peak MiB",
            "x msg",
            "RSS kept after MiB",
        ],
        rows,
    )
    if errors:
        print("\nFailures")
        for what, error in errors.items():
            print(f"  {what}: {error}")
        failed |= any(what.startswith("wsfast") for what in errors)
    if goal_lines:
        print("\nGoal")
        print("\n".join(goal_lines))
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
