"""uvicorn's WebSocket backends raced: WSFastProtocol vs websockets-sansio and wsproto.

One uvicorn worker (``python -m uvicorn _uvicorn_echo:app --ws ...``, its default loop and
HTTP parser: uvloop and httptools when installed) serving a Starlette echo endpoint on
127.0.0.1; the clients run in this process (wsfast's asyncio client on uvloop), each sending
a text message and waiting for its echo, as many times as it can in ``--seconds``. For each
message size (64 B, 64 KiB), number of clients (1, 100) and compression setting
(``--ws-per-message-deflate`` false / true, the clients offering permessage-deflate when
true), the three backends run one after another in each of ``--repeat`` rounds (same run,
interleaved); the best round counts. Reported: round trips per second, the server's CPU time
per round trip (user + system, from /proc: what the backend costs, whatever the client's
speed), and the ratios to websockets-sansio.

``--profile`` runs each backend once more, one client, 64 B, under cProfile (from the first
message, CPU time) and says where the server's time goes: the protocol (wsfast, websockets,
wsproto, uvicorn's protocol classes), the ASGI application (starlette), asyncio, C calls.

The machine may be shared: quote the ratios of one run, not absolute rates.
Usage: ``flock /work/.bench.lock python bench/uvicorn_race.py [--seconds S] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dropin_uvicorn  # noqa: E402
from dropin_uvicorn import cpu_seconds, stop  # noqa: E402

BACKENDS = {
    "wsfast": "wsfast.uvicorn:WSFastProtocol",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}
REFERENCE = "websockets-sansio"
SIZES = [64, 64 * 1024]
CLIENTS = [1, 100]


def start(ws: str, deflate: bool, profile: str | None = None) -> tuple[object, int]:
    options = ["--ws-per-message-deflate", str(deflate).lower(), "--ws-max-size", str(1 << 24)]
    return dropin_uvicorn.start(ws, False, profile, options)


def where(filename: str, func: str) -> str:
    """The part of the server a profiled function belongs to."""
    if filename == "~":  # C functions (compiled Cython methods are not seen: their callers are)
        return "protocol" if "wsfast." in func or "websockets" in func else "C calls"
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        package = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        if package == "uvicorn":
            return "protocol" if "/protocols/websockets/" in path else "ASGI (uvicorn)"
        if package in ("websockets", "wsproto", "h11"):
            return "protocol"
        if package == "starlette":
            return "ASGI (starlette)"
        return package
    if "/src/wsfast/" in path or "/wsfast/" in path.rsplit("/site-packages/", 1)[-1]:
        return "protocol"
    if path.endswith("_uvicorn_echo.py"):
        return "ASGI (the echo endpoint)"
    if "/asyncio/" in path:
        return "asyncio"
    return "other Python"


def profile_summary(path: str) -> list[tuple[str, float]]:
    """Shares of the server's profiled CPU time (tottime) by :func:`where`."""
    import pstats

    stats = pstats.Stats(path)
    groups: dict[str, float] = {}
    for (filename, _, func), row in stats.stats.items():  # type: ignore[attr-defined]
        key = where(filename, func)
        groups[key] = groups.get(key, 0.0) + row[2]
    total = sum(groups.values()) or 1.0
    return [(k, v / total) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])]


def text_message(size: int) -> str:
    rng = random.Random(size)
    alphabet = string.ascii_letters + string.digits + " "
    return "".join(rng.choice(alphabet) for _ in range(size))


async def drive(port: int, clients: int, message: str, deflate: bool, seconds: float) -> int:
    """Round trips completed by ``clients`` connections in ``seconds`` (after a warm-up)."""
    from wsfast.asyncio import connect

    conns = [
        await connect(f"ws://127.0.0.1:{port}/", compression="deflate" if deflate else None,
                      max_message_size=None, ping_interval=None)
        for _ in range(clients)
    ]
    counts = [0] * clients
    stop_at = 0.0

    async def one(i: int, warm: int) -> None:
        ws = conns[i]
        for _ in range(warm):
            await ws.send(message)
            await ws.recv()
        n = 0
        while time.perf_counter() < stop_at:
            await ws.send(message)
            if await ws.recv() != message:
                raise AssertionError("echo mismatch")
            n += 1
        counts[i] = n

    stop_at = time.perf_counter() + 0.3
    await asyncio.gather(*(one(i, 5) for i in range(clients)))
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(one(i, 0) for i in range(clients)))
    await asyncio.gather(*(ws.close() for ws in conns))
    return sum(counts)


def measure(ws: str, size: int, clients: int, deflate: bool, seconds: float) -> tuple[float, float]:
    """(round trips per second, server CPU microseconds per round trip)."""
    proc, port = start(ws, deflate)
    try:
        c0 = cpu_seconds(proc.pid)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        trips = asyncio.run(drive(port, clients, text_message(size), deflate, seconds))
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - c0  # type: ignore[attr-defined]
    finally:
        stop(proc)  # type: ignore[arg-type]
    # The warm-up is in both the CPU time and the elapsed time: rates from the timed part.
    return trips / seconds, cpu / max(trips, 1) * 1e6 * (seconds / elapsed)


class _MemoryTransport:
    """Enough of a transport for a WebSocket protocol: collects what it writes."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 8001)}.get(
            name, default)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_message(protocol_path: str, app: object, count: int) -> float:
    """CPU microseconds per echoed 64 B message through one protocol object fed from memory:
    the protocol, uvicorn's ASGI wrapper and the application, no sockets."""
    from uvicorn.config import Config
    from uvicorn.importer import import_from_string
    from uvicorn.server import ServerState

    from wsfast import ClientConnection

    cls = import_from_string(protocol_path)
    config = Config(app=app, ws=cls, lifespan="off", ws_per_message_deflate=False,
                    log_level="warning")
    config.load()
    state = ServerState()
    protocol = cls(config=config, server_state=state, app_state={})
    transport = _MemoryTransport()
    protocol.connection_made(transport)
    client = ClientConnection.from_uri("ws://127.0.0.1/")
    protocol.data_received(client.data_to_send())
    while not transport.out:
        await asyncio.sleep(0)
    client.receive_data(b"".join(transport.out))
    transport.out.clear()
    client.send_text("x" * 64)
    frame = client.data_to_send()
    t0 = time.process_time()
    for _ in range(count):
        protocol.data_received(frame)
        while not transport.out:
            await asyncio.sleep(0)
        transport.out.clear()
    elapsed = time.process_time() - t0
    client.close()
    protocol.data_received(client.data_to_send())
    protocol.connection_lost(None)
    await asyncio.gather(*state.tasks)
    return elapsed / count * 1e6


def in_process(repeat: int) -> None:
    from _uvicorn_echo import app as starlette_app

    async def raw_echo(scope: dict, receive: object, send: object) -> None:
        await receive()  # type: ignore[operator]
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        while (message := await receive())["type"] == "websocket.receive":  # type: ignore[operator]
            await send({"type": "websocket.send", "text": message["text"]})  # type: ignore[operator]

    paths = {
        "wsfast": "wsfast.uvicorn:WSFastProtocol",
        "websockets-sansio":
            "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol",
        "wsproto": "uvicorn.protocols.websockets.wsproto_impl:WSProtocol",
    }
    print("\nNo sockets: 64 B messages fed to the protocol object, echoed by the application "
          f"(CPU us per message, best of {repeat})")
    for label, app in (("raw ASGI echo", raw_echo), ("Starlette echo", starlette_app)):
        cost = {name: min(asyncio.run(per_message(path, app, 20_000)) for _ in range(repeat))
                for name, path in paths.items()}
        ref = cost[REFERENCE]
        print(f"{label:<15} " + "  ".join(
            f"{name} {us:.1f} ({ref / us:.2f}x)" for name, us in cost.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="0.5 s, one round")
    parser.add_argument("--in-process", action="store_true",
                        help="also the cost per message of each protocol fed from memory")
    parser.add_argument("--compression", choices=["off", "on", "both"], default="both")
    parser.add_argument("--zlib", default=None,
                        help="WSFAST_ZLIB for wsfast's deflate, server and clients (e.g. isal)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.seconds, ns.repeat = 0.5, 1
    if ns.zlib:
        os.environ["WSFAST_ZLIB"] = ns.zlib  # inherited by the servers
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop_name = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop_name = "asyncio"
    import uvicorn
    import websockets
    import wsproto

    import wsfast

    print(f"uvicorn {uvicorn.__version__}, websockets {websockets.__version__}, wsproto "
          f"{wsproto.__version__}, wsfast {wsfast.__version__} ({wsfast.implementation}); "
          f"clients: wsfast on {loop_name}; best of {ns.repeat} x {ns.seconds} s; "
          f"{os.cpu_count()} CPUs; wsfast's zlib: {os.environ.get('WSFAST_ZLIB') or 'zlib'}")
    head = f"{'size':>6} {'clients':>7} {'deflate':>7} {'backend':<18} {'trips/s':>10} " \
           f"{'CPU us/trip':>11} {'x rate':>7} {'x CPU':>6}"
    print(head)
    settings = {"off": (False,), "on": (True,), "both": (False, True)}[ns.compression]
    for deflate in settings:
        for size in SIZES:
            for clients in CLIENTS:
                best = {name: (0.0, float("inf")) for name in BACKENDS}
                for _ in range(ns.repeat):
                    for name, ws in BACKENDS.items():
                        rate, cpu = measure(ws, size, clients, deflate, ns.seconds)
                        old_rate, old_cpu = best[name]
                        best[name] = (max(old_rate, rate), min(old_cpu, cpu))
                ref_rate, ref_cpu = best[REFERENCE]
                for name in BACKENDS:
                    rate, cpu = best[name]
                    print(f"{size:>6} {clients:>7} {'on' if deflate else 'off':>7} {name:<18} "
                          f"{rate:>10,.0f} {cpu:>11.1f} {rate / ref_rate:>6.2f}x "
                          f"{ref_cpu / cpu:>5.2f}x", flush=True)
    if ns.in_process:
        in_process(ns.repeat)
    if ns.profile:
        for name, ws in BACKENDS.items():
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "server.prof")
                proc, port = start(ws, False, profile=out)
                try:
                    asyncio.run(drive(port, 1, text_message(64), False, ns.seconds))
                finally:
                    stop(proc)  # type: ignore[arg-type]
                parts = ", ".join(f"{k} {v:.0%}" for k, v in profile_summary(out)[:8])
                print(f"server time, {name}, 64 B, 1 client: {parts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
