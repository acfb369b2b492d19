"""The asyncio shell's own cost per message, without sockets: wsfast.asyncio's WebSocket on
a fake transport, fed 64-byte client frames in process.

The transport's ``write`` only counts bytes, so what is timed is the shell (read path,
dispatch, queue or callback, send, flush) plus the sans-I/O connection under it:

- ``sans-io``: the floor, no shell: the connection alone reads the frame, gives its message,
  sends the echo and hands over the bytes;
- ``callback``: ``buffer_updated`` with one frame, ``on_message`` answers with
  ``send_nowait`` (the callbacks style);
- ``queued``: feed one frame, then ``await recv()`` (the message is already queued: no
  future) and ``await send()``;
- ``waiting``: a handler task does ``async for m in ws: await ws.send(m)``; each write
  schedules the next frame with ``call_soon``, so every message completes a waiting
  ``recv()`` (one future, one task step), as a server's does;
- ``many``: the same with 100 WebSockets, each pass of the loop reading one frame for each
  of them (one loop callback per read), as a server with many busy clients does: the
  ``recv()``s woken in one pass resume together (see ``_resume_later`` in the shell).

Times are CPU time of this process (best of ``--repeat``), so that a busy machine skews
them less. Run it once per build and compare (same machine, same run)::

    python bench/shell_race.py                       # the build in use (compiled if built)
    WSFAST_NO_EXTENSIONS=1 python bench/shell_race.py   # the pure build
    PYTHONPATH=/path/to/other/src python bench/shell_race.py   # another checkout's build
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from wsfast.asyncio import connection as shell
from wsfast.asyncio.connection import WebSocket
from wsfast.connection import ServerConnection

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
# A masked binary frame of 64 bytes, masking key 0 (the payload reads as sent).
FRAME = bytes([0x82, 0x80 | 64, 0, 0, 0, 0]) + bytes(range(64))


class FakeTransport:
    """What the shell calls on a transport; ``write`` counts, ``on_write`` hooks the next."""

    def __init__(self) -> None:
        self.written = 0
        self.on_write: Any = None

    def write(self, data: Any) -> None:
        self.written += len(data)
        if self.on_write is not None:
            self.on_write()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def open_connection() -> ServerConnection:
    """A server connection past its handshake."""
    conn = ServerConnection(auto_pong=False)
    conn.receive_data(REQUEST)
    conn.events()
    conn.accept()
    conn.data_to_send()
    return conn


def open_websocket(**options: Any) -> tuple[WebSocket, FakeTransport]:
    ws = WebSocket(open_connection(), ping_interval=None, **options)
    transport = FakeTransport()
    ws.connection_made(transport)  # type: ignore[arg-type]
    return ws, transport


def feed(ws: WebSocket) -> None:
    n = len(FRAME)
    ws.get_buffer(n)[:n] = FRAME
    ws.buffer_updated(n)


async def sans_io(count: int) -> float:
    conn = open_connection()
    conn._give_bare_messages()  # as the shell takes them: each message as its data alone
    transport = FakeTransport()
    data = memoryview(bytearray(FRAME))
    start = time.process_time()
    for _ in range(count):
        conn.receive_data(data[:])
        for event in conn.events():
            conn.send_binary(event)
        for chunk in conn.chunks_to_send():
            transport.write(chunk)
    elapsed = time.process_time() - start
    assert transport.written == count * 66, transport.written
    return elapsed


async def callback(count: int) -> float:
    ws, transport = open_websocket(on_message=lambda ws, m: ws.send_nowait(m))
    start = time.process_time()
    for _ in range(count):
        feed(ws)
    elapsed = time.process_time() - start
    assert transport.written == count * 66, transport.written
    return elapsed


async def queued(count: int) -> float:
    ws, transport = open_websocket()
    recv, send = ws.recv, ws.send
    start = time.process_time()
    for _ in range(count):
        feed(ws)
        await send(await recv())
    elapsed = time.process_time() - start
    assert transport.written == count * 66, transport.written
    return elapsed


async def waiting(count: int) -> float:
    loop = asyncio.get_running_loop()
    ws, transport = open_websocket()
    left = [count]
    done = loop.create_future()

    def next_frame() -> None:
        left[0] -= 1
        if left[0] > 0:
            loop.call_soon(feed, ws)
        elif not done.done():
            done.set_result(None)

    async def handler() -> None:
        async for message in ws:
            await ws.send(message)

    task = loop.create_task(handler())
    await asyncio.sleep(0)  # the handler waits in recv()
    transport.on_write = next_frame
    start = time.process_time()
    loop.call_soon(feed, ws)
    await done
    elapsed = time.process_time() - start
    task.cancel()
    assert transport.written == count * 66, transport.written
    return elapsed


async def many(count: int, connections: int = 100) -> float:
    """``connections`` handler tasks as in ``waiting``; each pass of the loop feeds one frame
    to every WebSocket, one loop callback per read (as the loop calls a transport per ready
    socket), and the next pass starts once every echo is written."""
    loop = asyncio.get_running_loop()
    opened = [open_websocket() for _ in range(connections)]
    rounds = max(1, count // connections)
    left = [connections, rounds]
    done = loop.create_future()

    def start_round() -> None:
        for ws, _ in opened:
            loop.call_soon(feed, ws)

    def written() -> None:
        left[0] -= 1
        if left[0] == 0:
            left[0] = connections
            left[1] -= 1
            if left[1] > 0:
                start_round()
            elif not done.done():
                done.set_result(None)

    async def handler(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    tasks = [loop.create_task(handler(ws)) for ws, _ in opened]
    await asyncio.sleep(0)  # every handler waits in recv()
    for _, transport in opened:
        transport.on_write = written
    start = time.process_time()
    start_round()
    await done
    elapsed = time.process_time() - start
    for task in tasks:
        task.cancel()
    assert sum(t.written for _, t in opened) == rounds * connections * 66
    return elapsed * count / (rounds * connections)  # per message as for the other modes


MODES = {
    "sans-io": sans_io,
    "callback": callback,
    "queued": queued,
    "waiting": waiting,
    "many": many,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true")
    ns = parser.parse_args()
    if ns.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"shell: {getattr(shell, 'implementation', 'python')} ({WebSocket.__module__})")
    for name, mode in MODES.items():
        best = min(asyncio.run(mode(ns.count)) for _ in range(ns.repeat))
        print(f"  {name:9} {best / ns.count * 1e9:8.0f} ns per message")


if __name__ == "__main__":
    main()
