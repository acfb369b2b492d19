"""Echo servers and clients of wsfast and its peers, for the end-to-end and memory benchmarks.

Used by ``bench/e2e_race.py`` and ``bench/memory.py``; runnable as a server process::

    python bench/_e2e_peers.py LIBRARY [--uvloop] [--max-size BYTES] [--cpu N]

A server process prints ``PORT <n>`` once it listens, then takes one command per line on
standard input and answers each with one line:

- ``gc``: run the garbage collector; answers ``ok``.
- ``trace``: start tracemalloc (or reset its peak); answers ``ok``.
- ``peak``: answers the tracemalloc peak in bytes since ``trace``, and stops tracing.
- ``traced``: answers the bytes tracemalloc sees allocated now; ``untrace`` stops it.
- ``count``: answers how many WebSocket connections are open.

End of input stops the server. Every server echoes each message back unchanged, in the way
its library documents: wsfast, websockets and aiohttp with a handler coroutine (``async for
message in ws: await ws.send(message)``), "wsfast-cb" with wsfast's ``on_message`` callback
answered by ``ws.send_nowait``, picows with a :class:`picows.WSListener` whose
``on_ws_frame`` sends the frame's payload back, and "picows-coro" with a handler coroutine
per connection that the listener feeds (picows' core API has no ``recv()``), and "picows-ws"
with picows' own websockets-compatible API (``picows.websockets``, picows 2.2 and later:
``async for`` and ``recv()``, servers and clients). "wsfast-afn" and "wsfast-afn-cb" are
"wsfast" and "wsfast-cb" with servers and clients on aiofastnet's compiled transports
(``transport="aiofastnet"``), the transports picows runs on. Keepalive pings are off
everywhere, and so is compression unless ``--compression`` is given (then permessage-deflate
with each library's defaults, servers and clients alike; picows' core API has no
compression, so "picows" and "picows-coro" are left out, "picows-ws" runs).

Clients: :data:`CLIENTS` maps a library to a class with ``await connect(url, max_size)``,
``await run(payloads, count)`` (``count`` sequential send-then-receive round trips, every
reply compared with what was sent) and ``await close()``. Each ``run`` uses its library's
own calls directly, without a shared wrapper in the loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

LIBRARIES = (
    "wsfast",
    "wsfast-cb",
    "wsfast-afn",
    "wsfast-afn-cb",
    "websockets",
    "aiohttp",
    "picows",
    "picows-coro",
    "picows-ws",
)
# wsfast variants on aiofastnet's transports (serve/connect with transport="aiofastnet").
ON_AIOFASTNET = ("wsfast-afn", "wsfast-afn-cb")
DEFLATE = [False]  # permessage-deflate on (each library's defaults) in this process


def set_compression(on: bool) -> None:
    """Servers and clients made from now on in this process negotiate permessage-deflate."""
    DEFLATE[0] = on


def unavailable(library: str) -> str | None:
    """None if the library (and its asyncio layer) imports, else why not."""
    module = {
        "wsfast": "wsfast.asyncio",
        "wsfast-cb": "wsfast.asyncio",
        "wsfast-afn": "aiofastnet",
        "wsfast-afn-cb": "aiofastnet",
        "websockets": "websockets.asyncio.client",
        "picows-coro": "picows",
        "picows-ws": "picows.websockets",
    }.get(library, library)
    if DEFLATE[0] and library in ("picows", "picows-coro"):
        return "no permessage-deflate"
    try:
        __import__(module)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def available(library: str) -> bool:
    return unavailable(library) is None


def version(library: str) -> str:
    try:
        from importlib.metadata import version as v

        if library in ON_AIOFASTNET:
            return f"{v('wsfast')} (aiofastnet {v('aiofastnet')})"
        return v(library.split("-")[0])
    except Exception:  # pragma: no cover - only for display
        return "?"


def choose(wanted: list[str]) -> tuple[list[str], str]:
    """The libraries of ``wanted`` that can run here, and a line naming them with their
    versions and the others with the reason they cannot."""
    why = {lib: unavailable(lib) for lib in wanted}
    libs = [lib for lib in wanted if why[lib] is None]
    missing = [f"{lib} ({why[lib]})" for lib in wanted if why[lib] is not None]
    line = "libraries: " + ", ".join(f"{lib} {version(lib)}" for lib in libs)
    return libs, line + (f"; unavailable: {', '.join(missing)}" if missing else "")


class EchoMismatch(AssertionError):
    pass


def _mismatch(library: str, sent: bytes, got: Any) -> EchoMismatch:
    head = repr(got[:16]) if isinstance(got, (bytes, bytearray, str)) else repr(got)
    size = len(got) if hasattr(got, "__len__") else "?"
    return EchoMismatch(f"{library}: echo differs (sent {len(sent)} B, got {size}: {head})")


def machine() -> str:
    """CPU model, logical CPUs, OS and Python, for the report."""
    import platform

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"CPU: {model}, {os.cpu_count()} logical CPUs; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()} "
        f"({platform.python_implementation()})"
    )


class MachineLoad:
    """How busy the whole machine was between ``start()`` and ``stop()``, beyond ``pids``.

    From /proc/stat (all CPUs) minus the CPU time of the benchmark's own processes: other
    programs, plus interrupt and softirq time (loopback TCP work partly lands there), in
    CPUs on average. Benchmarks print a warning when it is high: their numbers are then
    disturbed by something else running.
    """

    def __init__(self) -> None:
        self.pids: set[int] = {os.getpid()}
        self._start: tuple[float, float, float, float] | None = None
        self.other_cpus = 0.0
        self.steal_cpus = 0.0

    @staticmethod
    def _system() -> tuple[float, float]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = sum(fields[:3]) + sum(fields[5:7])
        steal = fields[7] if len(fields) > 7 else 0
        tick = os.sysconf("SC_CLK_TCK")
        return busy / tick, steal / tick

    def _ours(self) -> float:
        total = 0.0
        for pid in list(self.pids):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        busy, steal = self._system()
        self._start = (time.monotonic(), busy, steal, self._ours())

    def stop(self) -> None:
        assert self._start is not None
        t0, busy0, steal0, ours0 = self._start
        busy, steal = self._system()
        elapsed = max(time.monotonic() - t0, 1e-9)
        self.other_cpus = max(0.0, (busy - busy0) - (self._ours() - ours0)) / elapsed
        self.steal_cpus = (steal - steal0) / elapsed

    def report(self, threshold: float = 0.25) -> str:
        text = (
            f"machine load beyond the benchmark's processes: {self.other_cpus:.2f} CPUs "
            f"on average (includes interrupt time); steal {self.steal_cpus:.2f} CPUs"
        )
        if self.other_cpus > threshold or self.steal_cpus > threshold:
            text += "\nWARNING: something else was using the CPUs; the numbers may be disturbed"
        return text


def print_columns(head: list[str], rows: list[list[str]]) -> None:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def fmt(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    line = fmt(head)
    print(line)
    print("-" * len(line))
    for row in rows:
        print(fmt(row))


# --- servers -----------------------------------------------------------------------------

# Every server keeps a count of open WebSocket connections for the ``count`` command.
OPEN = [0]


async def serve_wsfast(port: int, max_size: int | None, transport: str = "loop") -> Any:
    from wsfast.asyncio import ConnectionClosed, serve

    async def echo(ws: Any) -> None:
        OPEN[0] += 1
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # a client that left without a closing handshake
        finally:
            OPEN[0] -= 1

    kw: dict[str, Any] = {} if max_size is None else {"max_message_size": max_size}
    kw["compression"] = "deflate" if DEFLATE[0] else None
    return await serve(echo, "127.0.0.1", port, ping_interval=None, transport=transport, **kw)


async def serve_wsfast_callbacks(port: int, max_size: int | None, transport: str = "loop") -> Any:
    """wsfast with an ``on_message`` callback (its fastest API, like picows' listener)."""
    from wsfast.asyncio import serve

    async def count(ws: Any) -> None:
        OPEN[0] += 1
        try:
            # Not wait_closed(): it drops the transport after close_timeout (10 s), which
            # ended the longer compressed runs.
            await asyncio.shield(ws._closed)
        finally:
            OPEN[0] -= 1

    def echo(ws: Any, message: Any) -> None:
        ws.send_nowait(message)

    kw: dict[str, Any] = {} if max_size is None else {"max_message_size": max_size}
    kw["compression"] = "deflate" if DEFLATE[0] else None
    kw["transport"] = transport
    return await serve(count, "127.0.0.1", port, on_message=echo, ping_interval=None, **kw)


async def serve_wsfast_afn(port: int, max_size: int | None) -> Any:
    return await serve_wsfast(port, max_size, transport="aiofastnet")


async def serve_wsfast_afn_callbacks(port: int, max_size: int | None) -> Any:
    return await serve_wsfast_callbacks(port, max_size, transport="aiofastnet")


async def serve_websockets(port: int, max_size: int | None) -> Any:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    return await _serve_websockets_api(serve, ConnectionClosed, port, max_size)


async def _serve_websockets_api(
    serve: Any, closed: type[Exception], port: int, max_size: int | None
) -> Any:
    """websockets' echo, with ``serve`` and ``ConnectionClosed`` of websockets or of an API
    that copies it (picows.websockets)."""

    async def echo(ws: Any) -> None:
        OPEN[0] += 1
        try:
            async for message in ws:
                await ws.send(message)
        except closed:
            pass  # a client that left without a closing handshake
        finally:
            OPEN[0] -= 1

    kw = {} if max_size is None else {"max_size": max_size}
    compression = "deflate" if DEFLATE[0] else None
    return await serve(echo, "127.0.0.1", port, compression=compression, ping_interval=None, **kw)


async def serve_aiohttp(port: int, max_size: int | None) -> Any:
    from aiohttp import WSMsgType, web

    async def echo(request: Any) -> Any:
        ws = web.WebSocketResponse(
            compress=DEFLATE[0],
            heartbeat=None,
            autoping=True,
            max_msg_size=4 * 1024 * 1024 if max_size is None else max_size,
        )
        await ws.prepare(request)
        OPEN[0] += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                else:
                    break
        finally:
            OPEN[0] -= 1
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner


async def _picows_server(listener: type, port: int, max_size: int | None) -> Any:
    """A picows server on 127.0.0.1:``port`` with a ``listener()`` per connection."""
    from picows import ws_create_server

    return await ws_create_server(
        lambda request: listener(),
        "127.0.0.1",
        port,
        enable_auto_ping=False,
        max_frame_size=10 * 1024 * 1024 if max_size is None else max_size,
    )


async def serve_picows(port: int, max_size: int | None) -> Any:
    from picows import WSListener, WSMsgType

    text, binary = WSMsgType.TEXT, WSMsgType.BINARY

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            OPEN[0] += 1

        def on_ws_disconnected(self, transport: Any) -> None:
            OPEN[0] -= 1

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msg_type = frame.msg_type
            if msg_type is binary:
                transport.send(binary, frame.get_payload_as_bytes())
            elif msg_type is text:
                # Decode, as the other libraries do for a text message (UTF-8 check).
                transport.send(text, frame.get_payload_as_utf8_text().encode())
            elif msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    return await _picows_server(Echo, port, max_size)


async def serve_picows_coroutine(port: int, max_size: int | None) -> Any:
    """picows with a handler coroutine per connection, the shape wsfast's and websockets'
    ``async for message in ws: await ws.send(message)`` take with picows' core API, which has
    no ``recv()``: ``on_ws_frame`` hands each message to the connection's handler task
    through a future it completes (or a deque, when the handler has not taken the last one
    yet), the handler sends it back. One future and one task step per message when the
    handler waits, as a ``recv()`` that waits costs in any library; nothing more (no
    reassembly of fragmented messages, which no client here sends, and no flow control:
    ``transport.send`` only buffers, as in "picows", and every client awaits each echo).

    picows 2.2 and later also ship ``picows.websockets``, a compiled websockets-compatible
    API with ``recv()`` and ``async for`` ("picows-ws"); it does more per message (an async
    generator, a ``recv()`` and a ``send()`` coroutine, send-turn and write-ready checks).

    The race's goals pair "wsfast" (a handler coroutine) with this server and with
    "picows-ws", and "wsfast-cb" with "picows"; its variants table compares every wsfast
    variant with each."""
    from collections import deque

    from picows import WSListener, WSMsgType

    text, binary, close = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE

    class Handler(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            OPEN[0] += 1
            self.pending: deque[Any] = deque()
            self.waiter: asyncio.Future[Any] | None = None
            self.task = asyncio.get_running_loop().create_task(self.handle(transport))

        def deliver(self, item: Any) -> None:
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                self.waiter = None
                waiter.set_result(item)
            else:
                self.pending.append(item)

        def on_ws_disconnected(self, transport: Any) -> None:
            OPEN[0] -= 1
            self.deliver(None)  # the handler's end of input

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msg_type = frame.msg_type
            if msg_type is binary:
                self.deliver(frame.get_payload_as_bytes())
            elif msg_type is text:
                self.deliver(frame.get_payload_as_utf8_text())  # decoded, as the others do
            elif msg_type is close:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

        async def handle(self, transport: Any) -> None:
            create_future = asyncio.get_running_loop().create_future
            pending, send = self.pending, transport.send
            while True:
                if pending:
                    message = pending.popleft()
                else:
                    self.waiter = create_future()
                    message = await self.waiter
                if message is None:
                    return
                if type(message) is bytes:
                    send(binary, message)
                else:
                    send(text, message.encode())

    return await _picows_server(Handler, port, max_size)


async def serve_picows_websockets(port: int, max_size: int | None) -> Any:
    """picows' websockets-compatible API (``picows.websockets``): websockets' echo."""
    from picows.websockets import ConnectionClosed, serve

    return await _serve_websockets_api(serve, ConnectionClosed, port, max_size)


SERVERS = {
    "wsfast": serve_wsfast,
    "wsfast-cb": serve_wsfast_callbacks,
    "wsfast-afn": serve_wsfast_afn,
    "wsfast-afn-cb": serve_wsfast_afn_callbacks,
    "websockets": serve_websockets,
    "aiohttp": serve_aiohttp,
    "picows": serve_picows,
    "picows-coro": serve_picows_coroutine,
    "picows-ws": serve_picows_websockets,
}


def _bound_port(server: Any) -> int:
    sockets = getattr(server, "sockets", None)
    if sockets is None:  # aiohttp's AppRunner
        sockets = [s for site in server.sites for s in site._server.sockets]
    return int(list(sockets)[0].getsockname()[1])


async def _server_main(library: str, port: int, max_size: int | None) -> None:
    server = await SERVERS[library](port, max_size)
    await run_commands(_bound_port(server), {"count": lambda: str(OPEN[0])})


async def run_commands(port: int, extra: dict[str, Callable[[], str]]) -> None:
    """Print ``PORT port``, then answer ServerProcess commands read from stdin (``gc``,
    tracemalloc's ``trace``/``peak``/``traced``/``untrace``, and ``extra``'s) until it
    closes; then end the process."""
    loop = asyncio.get_running_loop()
    print(f"PORT {port}", flush=True)
    done = loop.create_future()

    def answer(command: str) -> None:
        import tracemalloc

        if command == "gc":
            gc.collect()
            reply = "ok"
        elif command == "trace":
            if tracemalloc.is_tracing():
                tracemalloc.reset_peak()
            else:
                tracemalloc.start()
            reply = "ok"
        elif command == "peak":
            reply = str(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        elif command == "traced":
            reply = str(tracemalloc.get_traced_memory()[0])
        elif command == "untrace":
            tracemalloc.stop()
            reply = "ok"
        elif command in extra:
            reply = extra[command]()
        else:
            reply = f"unknown command {command!r}"
        print(reply, flush=True)

    # Commands come through the loop's own reader (no thread: profiles stay single-threaded).
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    pending = bytearray()

    def read_commands() -> None:
        try:
            chunk = os.read(stdin, 4096)
        except BlockingIOError:
            return
        if not chunk:
            loop.remove_reader(stdin)
            if not done.done():
                done.set_result(None)
            return
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            answer(line.decode().strip())

    loop.add_reader(stdin, read_commands)
    await done
    # Stop without waiting on clients: the process is about to exit anyway.
    os._exit(0)


def raise_nofile_limit(want: int = 65536) -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def settle_malloc() -> None:
    """Put glibc's malloc in the state a long-running process reaches anyway.

    asyncio's selector transport reads with ``sock.recv(256 KiB)``: a fresh process serves
    each such 256 KiB buffer with mmap() and gives it back with mremap()/munmap(), two page
    faults and three extra system calls per read. The first time the process frees a large
    mmap'ed block (any message or buffer over 128 KiB, or some EOF reads), glibc raises its
    mmap threshold and those buffers come from the heap from then on. When that first
    happens depends on incidental history (which library closes TCP first, say), so every
    process of the race frees one 1 MiB block at start: all start in the raised state.
    ``--fresh-malloc`` in e2e_race.py skips this.
    """
    block = bytearray(1 << 20)
    del block


def install_uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="an echo server of one library")
    parser.add_argument("library", choices=LIBRARIES)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=None, help="message size limit")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--settle-malloc", action="store_true", help="see settle_malloc()")
    parser.add_argument("--compression", action="store_true", help="permessage-deflate on")
    args = parser.parse_args(argv)
    set_compression(args.compression)
    raise_nofile_limit()
    if args.settle_malloc:
        settle_malloc()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.uvloop:
        install_uvloop()
    import logging

    # Errors only: picows warns when its write buffer crosses the high-water mark.
    logging.basicConfig(level=logging.ERROR)
    # None means "each library's default"; the memory benchmark passes a large limit.
    asyncio.run(_server_main(args.library, args.port, args.max_size))


# --- server processes ----------------------------------------------------------------------


class ServerProcess:
    """One echo server in a child process; ``command()`` talks to it over its stdin."""

    def __init__(
        self,
        library: str,
        *,
        uvloop: bool = False,
        max_size: int | None = None,
        cpu: int | None = None,
        settle_malloc: bool = False,
        compression: bool = False,
        timeout: float = 20.0,
        command: Sequence[str] | None = None,
    ) -> None:
        """``command``: the arguments of another script to run instead (it must print
        ``PORT n`` first and answer commands: see run_commands())."""
        import subprocess

        args = [sys.executable] + ["-O"] * sys.flags.optimize
        args += [os.path.abspath(__file__), library] if command is None else list(command)
        if uvloop:
            args.append("--uvloop")
        if max_size is not None:
            args += ["--max-size", str(max_size)]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        if settle_malloc:
            args.append("--settle-malloc")
        if compression:
            args.append("--compression")
        self.library = library
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.pid = self.proc.pid
        self._timeout = timeout
        line = self._readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{library} server did not start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def _readline(self) -> str:
        import selectors

        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(self._timeout):
                raise TimeoutError(f"{self.library} server did not answer")
        return self.proc.stdout.readline().strip()

    def command(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._readline()

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM, ... from /proc/PID/status, in bytes."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Vm"):
                    key, value = line.split(":", 1)
                    parts = value.split()
                    out[key] = int(parts[0]) * 1024
        return out

    def cpu_time(self) -> float:
        """User + system CPU seconds the server has used (clock-tick resolution)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- clients -----------------------------------------------------------------------------


class _SendRecvClient:
    """``run``/``close`` for clients whose connection has ``await send(m)``, ``await recv()``:
    the loop calls the library's own bound methods directly."""

    library: str
    ws: Any

    async def run(self, payloads: Sequence[bytes | str], count: int) -> None:
        ws = self.ws
        send, recv = ws.send, ws.recv
        n = len(payloads)
        for i in range(count):
            sent = payloads[i % n]
            await send(sent)
            got = await recv()
            if got != sent:
                raise _mismatch(self.library, sent, got)  # type: ignore[arg-type]

    async def close(self) -> None:
        await self.ws.close()


class WsfastClient(_SendRecvClient):
    library = "wsfast"
    transport = "loop"  # serve()/connect()'s transport=

    async def connect(self, url: str, max_size: int | None = None) -> None:
        from wsfast.asyncio import connect

        kw: dict[str, Any] = {} if max_size is None else {"max_message_size": max_size}
        kw["compression"] = "deflate" if DEFLATE[0] else None
        self.ws = await connect(url, ping_interval=None, transport=self.transport, **kw)


class WsfastAiofastnetClient(WsfastClient):
    library = "wsfast-afn"
    transport = "aiofastnet"


class WebsocketsClient(_SendRecvClient):
    library = "websockets"

    async def connect(self, url: str, max_size: int | None = None) -> None:
        from websockets.asyncio.client import connect

        kw = {} if max_size is None else {"max_size": max_size}
        compression = "deflate" if DEFLATE[0] else None
        self.ws = await connect(url, compression=compression, ping_interval=None, **kw)


class PicowsWebsocketsClient(_SendRecvClient):
    library = "picows-ws"

    async def connect(self, url: str, max_size: int | None = None) -> None:
        from picows.websockets import connect

        kw = {} if max_size is None else {"max_size": max_size}
        compression = "deflate" if DEFLATE[0] else None
        self.ws = await connect(url, compression=compression, ping_interval=None, **kw)


class AiohttpClient:
    library = "aiohttp"

    async def connect(self, url: str, max_size: int | None = None) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(
            url,
            compress=15 if DEFLATE[0] else 0,
            heartbeat=None,
            autoping=True,
            max_msg_size=max_size if max_size is not None else 4 * 1024 * 1024,
        )

    async def run(self, payloads: Sequence[bytes | str], count: int) -> None:
        from aiohttp import WSMsgType

        ws = self.ws
        receive = ws.receive
        n = len(payloads)
        text = isinstance(payloads[0], str)
        send = ws.send_str if text else ws.send_bytes
        kind = WSMsgType.TEXT if text else WSMsgType.BINARY
        for i in range(count):
            sent = payloads[i % n]
            await send(sent)
            msg = await receive()
            if msg.type is not kind or msg.data != sent:
                raise _mismatch("aiohttp", sent, msg.data)  # type: ignore[arg-type]

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class PicowsClient:
    """picows' core API has no ``recv()``: each reply completes a future set by
    ``on_ws_frame``, the shape an application that waits for an answer takes with it (and
    the same await-per-reply shape as the other clients). The client of both "picows" and
    "picows-coro": they differ only in the server."""

    library = "picows"

    async def connect(self, url: str, max_size: int | None = None) -> None:
        from picows import WSListener, WSMsgType, ws_connect

        binary, text = WSMsgType.BINARY, WSMsgType.TEXT

        class Listener(WSListener):  # type: ignore[misc]
            waiter: asyncio.Future[Any] | None = None

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                waiter = self.waiter
                if waiter is None or waiter.done():
                    return
                if not frame.fin:
                    waiter.set_exception(AssertionError("picows: a fragmented reply"))
                elif frame.msg_type is binary:
                    waiter.set_result(frame.get_payload_as_bytes())
                elif frame.msg_type is text:
                    waiter.set_result(frame.get_payload_as_utf8_text())
                else:
                    waiter.set_exception(AssertionError(f"picows: unexpected {frame.msg_type}"))

            def on_ws_disconnected(self, transport: Any) -> None:
                waiter = self.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_exception(ConnectionError("picows: disconnected"))

        self.transport, self.listener = await ws_connect(
            Listener,
            url,
            enable_auto_ping=False,
            max_frame_size=max_size if max_size is not None else 10 * 1024 * 1024,
        )
        self._binary, self._text = binary, text

    async def run(self, payloads: Sequence[bytes | str], count: int) -> None:
        transport, listener = self.transport, self.listener
        send = transport.send
        create_future = asyncio.get_running_loop().create_future
        n = len(payloads)
        text = isinstance(payloads[0], str)
        kind = self._text if text else self._binary
        for i in range(count):
            sent = payloads[i % n]
            waiter = listener.waiter = create_future()
            send(kind, sent.encode() if text else sent)  # type: ignore[union-attr]
            got = await waiter
            if got != sent:
                raise _mismatch("picows", sent, got)  # type: ignore[arg-type]

    async def close(self) -> None:
        from picows import WSCloseCode

        self.transport.send_close(WSCloseCode.OK)
        await asyncio.wait_for(self.transport.wait_disconnected(), 5)


CLIENTS: dict[str, type] = {
    "wsfast": WsfastClient,
    "wsfast-cb": WsfastClient,
    "wsfast-afn": WsfastAiofastnetClient,
    "wsfast-afn-cb": WsfastAiofastnetClient,
    "websockets": WebsocketsClient,
    "aiohttp": AiohttpClient,
    "picows": PicowsClient,
    "picows-coro": PicowsClient,
    "picows-ws": PicowsWebsocketsClient,
}


# --- a raw client: the same one for every server -------------------------------------------


BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # what Chrome offers


def upgrade_request(port: int, key: str = "dGhlIHNhbXBsZSBub25jZQ==") -> bytes:
    """The opening handshake; it offers permessage-deflate as Chrome does when DEFLATE is on."""
    offer = f"Sec-WebSocket-Extensions: {BROWSER_OFFER}\r\n" if DEFLATE[0] else ""
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
    ).encode()


def masked_frame(
    opcode: int, payload: bytes, mask: bytes = b"\x12\x34\x56\x78", rsv1: bool = False
) -> bytes:
    """One client frame (FIN set, masked; RSV1 for a compressed message)."""
    from wsfast.pure import apply_mask

    try:
        from wsfast import apply_mask as fast_mask
    except ImportError:  # pragma: no cover
        fast_mask = apply_mask
    n = len(payload)
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    if n < 126:
        header = bytes([b0, 0x80 | n])
    elif n < 65536:
        header = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + mask + fast_mask(payload, mask)


def close_frame(code: int = 1000) -> bytes:
    return masked_frame(8, code.to_bytes(2, "big"))


def read_http_response(sock: Any) -> tuple[bytes, bytes]:
    """Read up to the end of the response head; returns (head, bytes after it)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:80]!r}")
    return head, rest


def recv_exactly(sock: Any, n: int, buf: bytearray) -> None:
    while len(buf) < n:
        chunk = sock.recv(max(n - len(buf), 65536))
        if not chunk:
            raise ConnectionError("closed while reading a frame")
        buf += chunk


def read_server_frame(sock: Any, pending: bytes = b"", inflater: Any = None) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload), inflated with ``inflater`` (a raw zlib
    decompressobj) when its RSV1 bit says it is compressed."""
    buf = bytearray(pending)
    recv_exactly(sock, 2, buf)
    opcode = buf[0] & 0x0F
    compressed = bool(buf[0] & 0x40)
    n = buf[1] & 0x7F
    pos = 2
    if n == 126:
        recv_exactly(sock, 4, buf)
        n = int.from_bytes(buf[2:4], "big")
        pos = 4
    elif n == 127:
        recv_exactly(sock, 10, buf)
        n = int.from_bytes(buf[2:10], "big")
        pos = 10
    recv_exactly(sock, pos + n, buf)
    if compressed:
        if inflater is None:
            raise ConnectionError("a compressed frame, and no inflater")
        return opcode, inflater.decompress(bytes(buf[pos : pos + n]) + b"\x00\x00\xff\xff")
    return opcode, bytes(buf[pos : pos + n])


if __name__ == "__main__":
    main()
