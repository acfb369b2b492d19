"""The direct wake-up of a waiting recv() (see test_asyncio_wake.py) against real peers over
loopback sockets: bursts, the close in the same read, TLS, aiofastnet, uvloop, a peer that
stops reading, cancellation and failures of the resumed task."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from asyncio_helpers import HOST, TRANSPORTS, accept_raw, run, tls_contexts

import wsfast
from wsfast.asyncio import ConnectionClosedError, ConnectionClosedOK, connect

# The functions of asyncio's transports that call buffer_updated: the TCP transport's, the
# TLS protocol's (Python 3.11 on), and the one Python 3.10's TLS protocol calls.
READ_FRAMES = {"_read_ready__get_buffer", "_do_read__buffered", "_feed_data_to_buffered_proto"}


def resumed_inside_a_read() -> bool:
    """True when the calling coroutine runs inside a transport's read callback (the direct
    wake-up), False when the loop resumed it."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in READ_FRAMES:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def server_frame(opcode: wsfast.Opcode, payload: bytes) -> bytes:
    return wsfast.build_header(opcode, len(payload), fin=True, mask=None) + payload


def close_frame(code: int = 1000) -> bytes:
    return server_frame(wsfast.Opcode.CLOSE, code.to_bytes(2, "big"))


async def raw_server(script: Any, ssl_ctx: Any = None) -> asyncio.Server:
    """A server that answers the opening handshake, then runs ``script(reader, writer)``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await accept_raw(reader, writer)
            await script(reader, writer)
        finally:
            writer.close()

    return await asyncio.start_server(handle, HOST, 0, ssl=ssl_ctx)


def port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def sending(data: bytes, after: asyncio.Event | float) -> Any:
    """A script for :func:`raw_server`: once ``after`` is set (or that many seconds later),
    send ``data``, then end at the client's first bytes (its close frame)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if isinstance(after, asyncio.Event):
            await after.wait()
        else:
            await asyncio.sleep(after)
        writer.write(data)
        await reader.read(1)

    return script


def streaming(count: int) -> Any:
    """A script for :func:`raw_server`: send ``count`` numbered messages, with short pauses
    between some, then the close frame."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(count):
            writer.write(server_frame(wsfast.Opcode.BINARY, b"%d" % i))
            await writer.drain()
            await asyncio.sleep(0.0005 * (i % 3))
        writer.write(close_frame())
        await reader.read(1)

    return script


def errors_of(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """What reaches the loop's exception handler from now on."""
    seen: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    return seen


async def burst_then_close(count: int, ssl_ctx: Any = None, client_ssl: Any = None,
                           transport: str = "loop", max_queue: int = 16,
                           ) -> tuple[list[bytes], list[bool]]:
    """A peer that sends ``count`` messages and its close frame in one write, after the
    client waits in ``async for``; returns what the client read and, per message, whether
    it was resumed inside the read."""
    frames = b"".join(server_frame(wsfast.Opcode.BINARY, b"%d" % i) for i in range(count))
    go = asyncio.Event()

    server = await raw_server(sending(frames + close_frame(), go), ssl_ctx)
    scheme = "wss" if client_ssl is not None else "ws"
    got: list[bytes] = []
    inside: list[bool] = []
    async with server:
        kwargs: dict[str, Any] = {"ssl": client_ssl} if client_ssl is not None else {}
        async with connect(f"{scheme}://{HOST}:{port(server)}/", transport=transport,
                           max_queue=max_queue, **kwargs) as ws:
            asyncio.get_running_loop().call_later(0.05, go.set)
            async for message in ws:
                inside.append(resumed_inside_a_read())
                got.append(message)
            assert ws.close_code == 1000
    return got, inside


@pytest.mark.parametrize("max_queue", [1, 4, 1000])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_burst_and_the_close_in_one_read(transport: str, max_queue: int) -> None:
    """Every message of the burst reaches async for, in order, then the loop ends cleanly;
    the first one resumes the task inside the read (plain TCP). A small queue pauses
    reading in the read, and the resumed task resumes it from there."""

    async def main() -> None:
        seen = errors_of(asyncio.get_running_loop())
        got, inside = await burst_then_close(500, transport=transport, max_queue=max_queue)
        assert got == [b"%d" % i for i in range(500)]
        if transport == "loop":
            assert inside[0]  # the path under test was taken
        assert seen == []

    run(main())


@pytest.mark.parametrize("max_queue", [1, 4, 1000])
def test_a_burst_and_the_close_in_one_read_over_tls(tmp_path: Path, max_queue: int) -> None:
    """The same through asyncio's TLS protocol, which calls buffer_updated from its own read
    loop (and pauses and resumes its own reading as the queue fills and empties)."""

    async def main() -> None:
        seen = errors_of(asyncio.get_running_loop())
        server_ctx, client_ctx = tls_contexts(tmp_path)
        got, inside = await burst_then_close(500, server_ctx, client_ctx, max_queue=max_queue)
        assert got == [b"%d" % i for i in range(500)]
        assert inside[0]
        assert seen == []

    run(main())


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="needs uvloop")
def test_a_burst_and_the_close_in_one_read_on_uvloop() -> None:
    async def main() -> None:
        got, inside = await burst_then_close(500)
        assert got == [b"%d" % i for i in range(500)]
        assert not any(inside)

    run(main(), loop="uvloop")


def test_the_resumed_task_writes_until_the_peer_stops_reading() -> None:
    """Resumed inside the read, the task sends until the write buffer is full (the peer
    reads nothing): send() waits, and close() still ends the connection in time."""

    async def main() -> None:
        go = asyncio.Event()
        stop = asyncio.Event()

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await go.wait()
            writer.write(server_frame(wsfast.Opcode.TEXT, b"start"))
            await stop.wait()  # reads nothing meanwhile

        server = await raw_server(script)
        async with server:
            ws = await connect(f"ws://{HOST}:{port(server)}/", write_limit=64 * 1024,
                               close_timeout=0.5)
            asyncio.get_running_loop().call_later(0.05, go.set)
            assert await ws.recv() == "start"
            sent = 0
            inside = resumed_inside_a_read()
            while not ws.writing_paused:
                ws.send_nowait(b"x" * 65536)
                sent += 1
            assert inside and sent >= 1
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.send(b"more"), 0.2)
            await asyncio.wait_for(ws.close(), 5)
            assert ws.close_code == 1006
            stop.set()

    run(main())


def test_wait_for_timeouts_around_a_stream_lose_nothing() -> None:
    """recv() under short wait_for timeouts, while the peer streams: every message is read,
    once and in order."""

    async def main() -> None:
        count = 300
        server = await raw_server(streaming(count))
        got: list[bytes] = []
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:
                while True:
                    try:
                        got.append(await asyncio.wait_for(ws.recv(), 0.0005))
                    except asyncio.TimeoutError:
                        continue
                    except ConnectionClosedOK:
                        break
        assert got == [b"%d" % i for i in range(count)]

    run(main())


class Stop(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


def test_the_resumed_task_fails_with_a_base_exception() -> None:
    """The resumed task's BaseException stays the task's; the transport and the loop do not
    see it, and the connection goes on."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen = errors_of(loop)

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(server_frame(wsfast.Opcode.TEXT, b"one"))
            await asyncio.sleep(0.1)
            writer.write(server_frame(wsfast.Opcode.TEXT, b"two") + close_frame())
            await reader.read(1)

        server = await raw_server(script)
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:

                async def reader_task() -> None:
                    await ws.recv()
                    raise Stop

                task = asyncio.ensure_future(reader_task())
                with pytest.raises(Stop):
                    await asyncio.wait_for(task, 5)
                assert await ws.recv() == "two"
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
        assert seen == []

    run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_resumed_task_aborts_the_transport_and_waits_on_another_connection(
    transport: str,
) -> None:
    """Resumed inside A's read, the task aborts A's transport, then waits on B's recv() and
    is resumed inside B's read in turn."""

    async def main() -> None:
        seen = errors_of(asyncio.get_running_loop())
        go = asyncio.Event()

        server = await raw_server(sending(server_frame(wsfast.Opcode.TEXT, b"hello"), go))
        async with server:
            a = await connect(f"ws://{HOST}:{port(server)}/", transport=transport)
            b = await connect(f"ws://{HOST}:{port(server)}/", transport=transport)
            asyncio.get_running_loop().call_later(0.05, go.set)
            assert await a.recv() == "hello"
            a._transport.abort()
            assert await b.recv() == "hello"
            with pytest.raises(ConnectionClosedError):
                await a.recv()
            await b.close()
        assert seen == []

    run(main())


def test_cancelling_the_task_in_the_read_that_completes_its_recv() -> None:
    """The task of a waiting recv() is cancelled in the callback of the read that brings its
    message, just before the read is handed over: it ends cancelled, and the message stays
    queued for the next recv()."""

    async def main() -> None:
        server = await raw_server(sending(server_frame(wsfast.Opcode.TEXT, b"kept"), 0.1))
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:
                task = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0)
                ws_buffer_updated = ws.buffer_updated

                def cancel_then_read(nbytes: int) -> None:
                    task.cancel()
                    ws_buffer_updated(nbytes)

                ws._transport._protocol = _Proxy(ws, cancel_then_read)
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)
                ws._transport._protocol = ws
                assert await ws.recv() == "kept"

    run(main())


class _Proxy:
    def __init__(self, ws: Any, buffer_updated: Any) -> None:
        self._ws = ws
        self.buffer_updated = buffer_updated

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_the_resumed_task_keeps_its_own_context() -> None:
    """Resumed inside the read, the task runs in its own context, not a copy: what it sets
    there is still set at its next step."""

    async def main() -> None:
        go = asyncio.Event()

        server = await raw_server(sending(server_frame(wsfast.Opcode.TEXT, b"one"), go))
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:

                async def receiver() -> list[Any]:
                    request_id.set("before")
                    message = await ws.recv()
                    inside = resumed_inside_a_read()
                    seen = [request_id.get()]
                    request_id.set("after")
                    await asyncio.sleep(0)
                    return [message, inside, *seen, request_id.get()]

                task = asyncio.ensure_future(receiver())
                await asyncio.sleep(0)
                go.set()
                assert await asyncio.wait_for(task, 5) == ["one", True, "before", "after"]
                assert request_id.get() == "none"

    run(main())


def test_a_keyboard_interrupt_from_the_resumed_task_stops_the_loop_and_the_loop_goes_on() -> None:
    """The resumed task's KeyboardInterrupt leaves run_until_complete() as it would from the
    loop; run again, the loop goes on with the connection whole."""
    go = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        writer.write(server_frame(wsfast.Opcode.TEXT, b"one"))
        await asyncio.sleep(0.2)
        writer.write(server_frame(wsfast.Opcode.TEXT, b"two") + close_frame())
        await reader.read(1)

    loop = asyncio.new_event_loop()
    try:
        server = loop.run_until_complete(raw_server(script))
        ws = loop.run_until_complete(connect(f"ws://{HOST}:{port(server)}/"))
        inside: list[bool] = []

        async def interrupted() -> None:
            await ws.recv()
            inside.append(resumed_inside_a_read())
            raise KeyboardInterrupt

        task = loop.create_task(interrupted())
        loop.call_later(0.05, go.set)
        sleeping = loop.create_task(asyncio.sleep(5))
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(sleeping)
        assert inside == [True]
        assert isinstance(task.exception(), KeyboardInterrupt)
        assert loop.run_until_complete(asyncio.wait_for(ws.recv(), 5)) == "two"
        with pytest.raises(ConnectionClosedOK):
            loop.run_until_complete(asyncio.wait_for(ws.recv(), 5))
        sleeping.cancel()
        server.close()
        loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 5))
        loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        loop.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout and TaskGroup: 3.11")
def test_timeout_taskgroup_and_shield_around_recv() -> None:
    """asyncio.timeout, a TaskGroup and shield around recv() while a peer streams: each
    message is read once, in order, whichever way the waits end."""

    async def main() -> None:
        count = 200
        server = await raw_server(streaming(count))
        got: list[bytes] = []
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:
                shielded: asyncio.Future[Any] | None = None

                async def recv_or_none() -> Any:
                    try:
                        return await ws.recv()
                    except ConnectionClosedOK:
                        return None

                for turn in range(10 * count):
                    mode = 2 if shielded is not None else turn % 3  # one recv() at a time
                    try:
                        if mode == 0:
                            async with asyncio.timeout(0.0005):
                                got.append(await ws.recv())
                        elif mode == 1:
                            async with asyncio.TaskGroup() as group:
                                task = group.create_task(recv_or_none())
                            if task.result() is None:
                                break
                            got.append(task.result())
                        else:
                            if shielded is None:
                                shielded = asyncio.ensure_future(ws.recv())
                            got.append(await asyncio.wait_for(asyncio.shield(shielded), 0.0005))
                            shielded = None
                    except TimeoutError:
                        continue
                    except ConnectionClosedOK:
                        break
                if shielded is not None:
                    try:
                        got.append(await shielded)
                    except ConnectionClosedOK:
                        pass
        assert got == [b"%d" % i for i in range(count)]

    run(main())


def test_recv_from_another_thread_s_loop_is_refused() -> None:
    """recv() awaited by a task of another loop (another thread) fails as with any future of
    another loop, and the connection's own recv() goes on."""
    import threading

    async def main() -> None:
        server = await raw_server(sending(server_frame(wsfast.Opcode.TEXT, b"mine"), 0.2))
        async with server:
            async with connect(f"ws://{HOST}:{port(server)}/") as ws:
                errors: list[BaseException] = []

                def other_thread() -> None:
                    try:
                        asyncio.run(asyncio.wait_for(ws.recv(), 5))
                    except BaseException as exc:  # recorded for the test
                        errors.append(exc)

                thread = threading.Thread(target=other_thread)
                thread.start()
                await asyncio.to_thread(thread.join, 5)
                assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
                assert ws._waiter is None
                assert await asyncio.wait_for(ws.recv(), 5) == "mine"

    run(main())


def test_a_server_handler_resumed_in_the_read_fills_a_peer_that_reads_nothing() -> None:
    """A server's handler, resumed inside the read, answers each message with a large one to
    a client (in another thread, so that the server's loop is idle) that reads nothing:
    writing pauses, then reading (the client's sends stall), and the connection ends once
    the client goes, with nothing reported to the loop."""
    import socket
    import threading

    from asyncio_helpers import client_frame, raw_upgrade

    from wsfast.asyncio import serve

    def client(port: int, outcome: list[Any]) -> None:
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(raw_upgrade(port))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            sock.settimeout(0.3)
            frame = client_frame(wsfast.Opcode.BINARY, b"0123456789abcdef")
            sent = 0
            try:
                while sent < 64 * 1024 * 1024:
                    sock.sendall(frame)
                    sent += len(frame)
            except TimeoutError:
                outcome.append("stalled")
            outcome.append(sent)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen = errors_of(loop)
        ended: asyncio.Future[BaseException | None] = loop.create_future()
        inside: list[bool] = []

        async def handler(ws: Any) -> None:
            try:
                async for message in ws:
                    inside.append(resumed_inside_a_read())
                    await ws.send(message * 4096)
                ended.set_result(None)
            except BaseException as exc:
                ended.set_result(exc)
                raise

        async with serve(handler, HOST, 0, write_limit=64 * 1024, close_timeout=0.5) as server:
            outcome: list[Any] = []
            thread = threading.Thread(target=client, args=(server.port, outcome))
            thread.start()
            await asyncio.to_thread(thread.join, 10)
            assert outcome[0] == "stalled"  # the server stopped reading
            assert any(inside)  # the path under test was taken
            result = await asyncio.wait_for(ended, 5)
            assert result is None or isinstance(result, ConnectionClosedError)
        assert seen == []

    run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_resumed_task_closes_with_the_peer_s_close_in_the_same_read(transport: str) -> None:
    """Messages and the peer's close frame come in one read; resumed on the first message,
    the task calls close(): it returns once the connection is closed, with the peer's
    code, and the messages before the close are still there to read."""

    async def main() -> None:
        seen = errors_of(asyncio.get_running_loop())
        go = asyncio.Event()

        frames = b"".join(server_frame(wsfast.Opcode.TEXT, b"%d" % i) for i in range(3))
        server = await raw_server(sending(frames + close_frame(1001), go))
        async with server:
            ws = await connect(f"ws://{HOST}:{port(server)}/", transport=transport)
            asyncio.get_running_loop().call_later(0.05, go.set)
            assert await ws.recv() == "0"
            await asyncio.wait_for(ws.close(), 5)
            assert ws.close_code == 1001
            assert [await ws.recv(), await ws.recv()] == ["1", "2"]
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
        assert seen == []

    run(main())
