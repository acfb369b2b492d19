"""Broadcast race: one 100-byte text message to 10,000 open connections, in one process.

This process runs a server of each library in turn (wsfast's ``serve``, websockets'
``websockets.asyncio.server.serve``; keepalive and compression off) and times one call of
each library's broadcast over every open server connection:

- ``wsfast``: ``wsfast.asyncio.broadcast(connections, message)`` (framed once);
- ``websockets``: ``websockets.asyncio.server.broadcast(connections, message)``;
- ``wsfast send_nowait``: a loop of ``ws.send_nowait(message)`` (framed per connection), for
  reference;
- ``wsfast via write()``: wsfast's broadcast with its direct socket write switched off
  (``wsfast.asyncio.broadcast._PLAIN_TCP = None`` around the call), so every frame goes
  through ``transport.write()``: what that step saves (not on uvloop, where it never applies);
- ``floor: socket.send``: the frame written straight to each connection's socket (no
  transport, no checks): the kernel's share, which no library can go below.

The summary gives the share of what ``broadcast`` adds over the floor that the direct write
saves: (via write() - wsfast) / (via write() - floor), from the best medians.

The clients are plain sockets in a separate process (``--role sink``): it opens the
connections (HTTP upgrade by hand), reads nothing while the calls are timed (100-byte
messages fit in the socket buffers many times over), then reads everything and checks that
every connection received every message, exactly once. The file-descriptor limit (often
20,000) does not allow both servers' 10,000 connections at once, so each round opens a fresh
set for one library, times ``--calls`` broadcasts (a short pause after each, for the loop's
other work) and closes them; rounds alternate between the libraries and the best median per
library counts. Time per call is this thread's CPU time around the call alone (user and
system: the kernel's work for each send counts), which other programs on a busy machine
do not inflate the way they inflate wall-clock time; the wall-clock median is printed too.

    python bench/broadcast_race.py                  # 10,000 connections, 3 rounds each
    python bench/broadcast_race.py --quick          # 2,000 connections, 1 round
    python bench/broadcast_race.py --uvloop         # the same on uvloop
    python bench/broadcast_race.py --check          # exit 1 if wsfast is not 2x websockets
    python bench/broadcast_race.py --deflate --message json1k   # with permessage-deflate

With ``--deflate`` the clients offer ``permessage-deflate; client_max_window_bits`` (what
browsers offer) and the contenders are: wsfast without compression; wsfast with a server that
keeps no compression context (``server_no_context_takeover``: one compressed frame shared by
every connection); wsfast with context takeover (the default: each connection compresses the
message itself); websockets without compression and with its default compression (context
takeover; its ``broadcast`` frames per connection either way). wsfast leaves messages under
``--min-size`` bytes (default 128, the library's default) uncompressed; websockets compresses
every message. The sink inflates what it reads and checks every message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

GOAL = 2.0  # wsfast's broadcast at least this many times faster than websockets'
MESSAGES = {
    "x100": "x" * 100,
    # An order update as the demo sends it (100 B), and a board of 15 orders (1,011 B).
    "json100": json.dumps(
        {
            "type": "order",
            "seq": 1042,
            "order": {"id": "A1042", "customer": "Ada Lov", "item": "tea", "status": "paid"},
        },
        separators=(",", ":"),
    ),
    "json1k": json.dumps(
        {
            "type": "snapshot",
            "seq": 1042,
            "orders": [
                {"id": f"A{1000 + i}", "customer": f"customer {i}", "status": "packed"}
                for i in range(15)
            ],
            "worker": 4242,
        }
    ),
}
MESSAGE = MESSAGES["x100"]  # set by --message
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
OFFER = "permessage-deflate; client_max_window_bits"  # what browsers offer
TAIL = b"\x00\x00\xff\xff"


# --- the sink (client side, its own process) ------------------------------------------------


def sink_main() -> None:
    """Commands on stdin, one per line; answers on stdout as JSON lines."""
    socks: list[socket.socket] = []
    inflaters: list[Any] = []
    for line in sys.stdin:
        command, *args = line.split()
        if command == "open":
            port, count, deflate = int(args[0]), int(args[1]), args[2] == "deflate"
            socks, inflaters = open_connections(port, count, deflate=deflate)
            answer: Any = {"open": len(socks)}
        elif command == "count":
            answer = count_frames(socks, inflaters, args[0])
        elif command == "close":
            for sock in socks:
                sock.close()
            socks, inflaters = [], []
            answer = {"closed": True}
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)


def open_connections(
    port: int, count: int, batch: int = 200, deflate: bool = False
) -> tuple[list[socket.socket], list[Any]]:
    """``count`` WebSocket connections, upgraded; ``batch`` handshakes in flight at once.
    With ``deflate``, each offers permessage-deflate and gets an inflater (None where the
    server declined it)."""
    offer = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if deflate else ""
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"{offer}\r\n"
    ).encode()
    socks = []
    inflaters: dict[socket.socket, Any] = {}
    for start in range(0, count, batch):
        pending = {}
        with selectors.DefaultSelector() as selector:
            for _ in range(min(batch, count - start)):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                sock.sendall(request)
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
                pending[sock] = b""
                socks.append(sock)
            deadline = time.monotonic() + 60
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError("handshakes did not complete in 60 s")
                for key, _ in selector.select(1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = pending[sock] + sock.recv(4096)
                    if b"\r\n\r\n" in data:
                        head, _, rest = data.partition(b"\r\n\r\n")
                        if not head.startswith(b"HTTP/1.1 101") or rest:
                            raise ConnectionError(f"bad handshake answer: {data[:80]!r}")
                        selector.unregister(sock)
                        del pending[sock]
                        inflaters[sock] = inflater_for(head)
                    else:
                        pending[sock] = data
    return socks, [inflaters[sock] for sock in socks]


def inflater_for(head: bytes) -> Any:
    """An inflater for the permessage-deflate the server accepted in ``head``, or None."""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-extensions" and "permessage-deflate" in value:
            match = re.search(r"server_max_window_bits=(\d+)", value)
            return zlib.decompressobj(-int(match.group(1)) if match else -15)
    return None


def count_frames(socks: list[socket.socket], inflaters: list[Any], message: str) -> dict[str, int]:
    """Read what each connection holds; every frame must be ``message`` (one whole text
    message a frame; compressed ones are inflated, with the connection's context)."""
    expected = MESSAGES[message].encode()
    counts = []
    compressed = 0
    for sock, inflater in zip(socks, inflaters, strict=True):
        data = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                raise ConnectionError("a connection was closed")
            data += chunk
        n = 0
        view = memoryview(data)
        while view:
            first, second = view[0], view[1]
            size, start = second & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(view[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(view[2:10], "big"), 10
            payload = bytes(view[start : start + size])
            view = view[start + size :]
            if first & 0x40:  # RSV1: compressed
                if inflater is None:
                    raise ValueError("a compressed frame without permessage-deflate")
                payload = inflater.decompress(payload + TAIL)
                compressed += 1
            if first & 0x8F != 0x81 or second & 0x80 or payload != expected:
                raise ValueError(f"unexpected frame on a connection: {bytes(data[:40])!r}")
            n += 1
        counts.append(n)
    return {"min": min(counts, default=0), "max": max(counts, default=0), "compressed": compressed}


class Sink:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--role", "sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def ask(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = await asyncio.to_thread(self.process.stdout.readline)
        if not answer:
            raise RuntimeError("the sink exited")
        result: dict[str, Any] = json.loads(answer)
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


# --- the servers and the contenders ---------------------------------------------------------


class Hold:
    """A handler that keeps each connection open until the server closes it."""

    def __init__(self) -> None:
        self.connections: list[Any] = []

    async def __call__(self, ws: Any) -> None:
        self.connections.append(ws)
        try:
            async for _ in ws:
                pass
        except Exception:
            pass


Start = Callable[[Hold], Any]


def serve_wsfast(compression: Any = None) -> Start:
    async def start(hold: Hold) -> Any:
        from wsfast.asyncio import serve

        return await serve(
            hold, "127.0.0.1", 0, ping_interval=None, backlog=1024, compression=compression
        )

    return start


def serve_websockets(compression: str | None = None) -> Start:
    async def start(hold: Hold) -> Any:
        from websockets.asyncio.server import serve

        return await serve(
            hold,
            "127.0.0.1",
            0,
            ping_interval=None,
            compression=compression,
            max_size=None,
            backlog=1024,
        )

    return start


def deflate_contenders(min_size: int) -> dict[str, tuple[Start, Callable[[list[Any]], Any]]]:
    """Every server answers the browser's offer; wsfast's broadcast in three set-ups."""
    from wsfast.asyncio import broadcast as wsfast_broadcast
    from wsfast.permessage_deflate import ServerDeflateFactory

    def call(conns: list[Any]) -> Any:
        return wsfast_broadcast(conns, MESSAGE)

    shared = ServerDeflateFactory(server_no_context_takeover=True, min_size=min_size)
    found: dict[str, tuple[Start, Callable[[list[Any]], Any]]] = {
        "wsfast plain": (serve_wsfast(None), call),
        "wsfast deflate shared": (serve_wsfast(shared), call),
        "wsfast deflate own": (serve_wsfast(ServerDeflateFactory(min_size=min_size)), call),
    }
    try:
        from websockets.asyncio.server import broadcast as websockets_broadcast
    except ImportError:
        print("websockets is not installed: pip install websockets", file=sys.stderr)
    else:

        def ws_call(conns: list[Any]) -> Any:
            return websockets_broadcast(conns, MESSAGE)

        found["websockets plain"] = (serve_websockets(None), ws_call)
        found["websockets deflate"] = (serve_websockets("deflate"), ws_call)
    return found


def contenders(uvloop: bool) -> dict[str, tuple[Start, Callable[[list[Any]], Any]]]:
    from wsfast.asyncio import broadcast as wsfast_broadcast

    def send_nowait_loop(connections: list[Any]) -> None:
        for ws in connections:
            ws.send_nowait(MESSAGE)

    frame = b"\x81" + bytes([len(MESSAGE)]) + MESSAGE.encode()

    def socket_send_loop(connections: list[Any]) -> None:
        for ws in connections:
            ws._transport._sock.send(frame)  # the kernel's part alone: no library can do less

    def through_write(connections: list[Any]) -> None:
        module = sys.modules["wsfast.asyncio.broadcast"]
        plain, module._PLAIN_TCP = module._PLAIN_TCP, None  # no direct socket write
        try:
            wsfast_broadcast(connections, MESSAGE)
        finally:
            module._PLAIN_TCP = plain

    found: dict[str, tuple[Start, Callable[[list[Any]], Any]]] = {
        "wsfast": (serve_wsfast(), lambda conns: wsfast_broadcast(conns, MESSAGE)),
        "wsfast send_nowait": (serve_wsfast(), send_nowait_loop),
    }
    if not uvloop:  # uvloop's transports do not show their socket
        found["wsfast via write()"] = (serve_wsfast(), through_write)
        found["floor: socket.send"] = (serve_wsfast(), socket_send_loop)
    try:
        from websockets.asyncio.server import broadcast as websockets_broadcast
    except ImportError:
        print("websockets is not installed: pip install websockets", file=sys.stderr)
    else:
        found["websockets"] = (serve_websockets(), lambda c: websockets_broadcast(c, MESSAGE))
    return found


async def one_round(
    name: str,
    start: Start,
    call: Callable[[list[Any]], Any],
    sink: Sink,
    args: argparse.Namespace,
) -> tuple[list[float], list[float], int]:
    connections, calls = args.connections, args.calls
    hold = Hold()
    server = await start(hold)
    port = server.sockets[0].getsockname()[1]
    try:
        await sink.ask(f"open {port} {connections} {'deflate' if args.deflate else 'plain'}")
        deadline = time.monotonic() + 60
        while len(hold.connections) < connections:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {len(hold.connections)} connections open")
            await asyncio.sleep(0.01)
        conns = list(hold.connections)
        times = []
        walls = []
        for _ in range(calls):
            await asyncio.sleep(0.02)
            w0 = time.perf_counter()
            t0 = time.thread_time()
            call(conns)
            times.append(time.thread_time() - t0)
            walls.append(time.perf_counter() - w0)
        await asyncio.sleep(0.2)
        counted = await sink.ask(f"count {args.message}")
        if (counted["min"], counted["max"]) != (calls, calls):
            raise AssertionError(f"{name}: each connection should hold {calls}: {counted}")
    finally:
        await sink.ask("close")
        server.close()
        await server.wait_closed()
    return times, walls, counted["compressed"]


async def race(args: argparse.Namespace) -> dict[str, float]:
    sink = Sink()
    found = deflate_contenders(args.min_size) if args.deflate else contenders(args.uvloop)
    best: dict[str, float] = {}
    try:
        for round_ in range(args.rounds):
            names = list(found)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                start, call = found[name]
                times, walls, compressed = await one_round(name, start, call, sink, args)
                median = statistics.median(times)
                best[name] = min(best.get(name, median), median)
                print(
                    f"round {round_ + 1} {name:22} CPU median {median * 1e3:8.2f} ms/call "
                    f"({median / args.connections * 1e9:6.0f} ns per connection), "
                    f"wall median {statistics.median(walls) * 1e3:8.2f} ms"
                    + (
                        f", {compressed / args.calls / args.connections:.0%} compressed"
                        if args.deflate
                        else ""
                    ),
                    flush=True,
                )
    finally:
        sink.close()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["race", "sink"], default="race")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 connections, 1 round")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--check", action="store_true", help=f"exit 1 below {GOAL}x websockets")
    parser.add_argument("--message", choices=sorted(MESSAGES), default="x100")
    parser.add_argument("--deflate", action="store_true", help="permessage-deflate contenders")
    parser.add_argument("--min-size", type=int, default=128, help="wsfast's deflate min_size")
    args = parser.parse_args()
    if args.role == "sink":
        sink_main()
        return 0
    global MESSAGE
    MESSAGE = MESSAGES[args.message]
    if args.quick:
        args.connections, args.rounds, args.calls = 2_000, 1, 10
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    import wsfast

    print(
        f"broadcast of {len(MESSAGE)} B text ({args.message}) to {args.connections:,} connections"
        + (f", deflate offered (wsfast min_size {args.min_size})" if args.deflate else "")
        + ", "
        f"{args.calls} calls x {args.rounds} rounds; wsfast {wsfast.__version__} "
        f"({wsfast.implementation}), loop {'uvloop' if args.uvloop else 'asyncio'}",
        flush=True,
    )
    best = asyncio.run(race(args))
    print("\nbest median CPU time per call:")
    for name, seconds in best.items():
        print(f"  {name:22} {seconds * 1e3:8.2f} ms")
    ok = True
    if args.deflate:
        base = best.get("websockets deflate")
        for name, seconds in best.items():
            if base is not None:
                print(f"  {name:22} vs websockets deflate: {base / seconds:.2f}x")
    elif "websockets" in best:
        ratio = best["websockets"] / best["wsfast"]
        ok = ratio >= GOAL
        print(f"wsfast vs websockets: {ratio:.2f}x (goal >= {GOAL}x: {'met' if ok else 'MISSED'})")
    if not args.deflate and "wsfast via write()" in best:
        floor, added = best["floor: socket.send"], best["wsfast via write()"]
        saved = (added - best["wsfast"]) / max(added - floor, 1e-9)
        print(
            f"direct socket write: broadcast adds {(best['wsfast'] - floor) * 1e3:.2f} ms over "
            f"the floor, {(added - floor) * 1e3:.2f} ms through write(); it saves {saved:.0%}"
        )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
