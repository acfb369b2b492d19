"""The asyncio layer under hostile peers and careless callers.

Each test here reproduces a defect found by using the server and client as an attacker or a
new user would: idle callback servers dropped, buffers grown by peers that stop reading,
concurrent or cancelled calls that hang, exceptions that grow. 127.0.0.1 only, every wait
bounded.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import traceback
from typing import Any

import pytest
from asyncio_helpers import (
    HOST,
    TRANSPORTS,
    accept_raw,
    assert_read_buffer_handed_back_to_back,
    client_frame,
    echo,
    echo_now,
    only_connection,
    raw_client,
    raw_upgrade,
    run,
    send_until_stalled,
    spy_on_read_buffer,
    uri,
)

import wsfast
from wsfast.asyncio import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ServerWebSocket,
    connect,
    serve,
)
from wsfast.connection import State
from wsfast.exceptions import ProtocolError

MiB = 1024 * 1024


# --- 1. wait_closed() waits until closed ---------------------------------------------------


def test_a_callback_server_keeps_healthy_connections_past_close_timeout() -> None:
    """A server with only on_message used to drop every connection after close_timeout."""

    async def main() -> None:
        async with serve(None, HOST, 0, on_message=echo_now, close_timeout=0.2) as server:
            async with connect(uri(server)) as ws:
                await asyncio.sleep(0.6)
                await ws.send("still here")
                assert await ws.recv() == "still here"
            assert ws.close_code == 1000

    run(main())


def test_wait_closed_in_a_handler_waits_for_the_close() -> None:
    """A handler awaiting ws.wait_closed() used to abort the connection after close_timeout."""

    async def main() -> None:
        seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        async def waiter(ws: ServerWebSocket) -> None:
            await ws.wait_closed()
            seen.set_result(ws.close_code)

        async with serve(waiter, HOST, 0, close_timeout=0.2) as server:
            ws = await connect(uri(server))
            await asyncio.sleep(0.6)
            assert ws.state is State.OPEN
            await ws.close(4000, "done")
            assert await asyncio.wait_for(seen, 5) == 4000

    run(main())


# --- 2. backpressure: reading pauses while writing is paused ------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        # An on_message echo server, a client that sends but never reads.
        "echo",
        # Automatic pongs to a peer that sends pings and never reads (async for handler).
        "ping-flood",
    ],
)
def test_a_peer_that_never_reads_leaves_the_write_buffer_bounded(attack: str) -> None:
    """The server's write buffer stays near write_limit: it stops reading, and TCP pushes
    back on the client (both grew to tens of MiB before)."""

    async def main() -> None:
        if attack == "echo":
            server_cm = serve(None, HOST, 0, on_message=echo_now, write_limit=64 * 1024)
            data = client_frame(wsfast.Opcode.BINARY, b"e" * 16384)
        else:
            server_cm = serve(echo, HOST, 0, write_limit=64 * 1024)
            data = client_frame(wsfast.Opcode.PING, b"p" * 125) * 512
        async with server_cm as server:
            sock = await raw_client(server.port, rcvbuf=4096)
            sent = await send_until_stalled(sock, data, 48 * MiB)
            ws = only_connection(server)
            assert ws._transport is not None
            buffered = ws._transport.get_write_buffer_size()
            # write_limit, plus the replies to at most one read (256 KiB) that crossed it.
            assert buffered <= 64 * 1024 + 512 * 1024, (sent, buffered)
            assert sent < 48 * MiB  # the client was stopped
            assert ws.writing_paused
            async with connect(uri(server)) as other:  # the server still serves others
                await other.send("hi")
                assert await other.recv() == "hi"
            sock.close()

    run(main())


def test_only_the_latest_ping_is_answered_while_writing_is_paused() -> None:
    """RFC 6455 §5.5.3 allows answering only the most recent ping: queued pongs are bounded."""

    async def main() -> None:
        ready = asyncio.Event()
        pongs: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_raw(reader, writer)
            await ready.wait()
            for i in range(20):
                writer.write(wsfast.build_header(wsfast.Opcode.PING, 2) + b"%02d" % i)
            await writer.drain()
            parser = wsfast.FrameParser(require_mask=True)
            frames: list[Any] = []
            while not frames:
                frames += parser.feed(await reader.read(4096))
            pongs.set_result([f.payload for f in frames if f.opcode == wsfast.Opcode.PONG])
            writer.close()

        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://{HOST}:{port}/", close_timeout=0.5)
        ws.pause_writing()  # as the transport does above write_limit
        ready.set()
        await asyncio.sleep(0.2)  # every ping has arrived
        ws.resume_writing()
        assert await asyncio.wait_for(pongs, 5) == [b"19"]
        ws._transport.abort()  # type: ignore[union-attr]
        server.close()

    run(main())


def test_reading_resumes_only_when_the_queue_and_the_write_buffer_both_allow() -> None:
    async def main() -> None:
        box: dict[str, Any] = {}
        go = asyncio.Event()

        async def handler(ws: ServerWebSocket) -> None:
            box["ws"] = ws
            await go.wait()
            async for _ in ws:
                pass

        async with serve(handler, HOST, 0, max_queue=4) as server:
            async with connect(uri(server)) as client:
                for i in range(8):
                    await client.send(str(i))
                await asyncio.sleep(0.2)
                ws: ServerWebSocket = box["ws"]
                transport: Any = ws._transport
                assert not transport.is_reading()  # the queue is full
                ws.pause_writing()
                for _ in range(6):
                    await ws.recv()  # the queue drains to half of max_queue...
                assert not transport.is_reading()  # ...but the write buffer is still full
                ws.resume_writing()
                assert transport.is_reading()
                ws.pause_writing()
                assert not transport.is_reading()
                ws.resume_writing()
                go.set()

    run(main())


def test_drain_waits_for_the_write_buffer() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                assert not ws.writing_paused
                await asyncio.wait_for(ws.drain(), 1)  # not paused: at once
                ws.pause_writing()
                assert ws.writing_paused
                waiter = asyncio.ensure_future(ws.drain())
                await asyncio.sleep(0.05)
                assert not waiter.done()
                ws.resume_writing()
                await asyncio.wait_for(waiter, 1)

    run(main())


# --- 3. concurrent recv() ------------------------------------------------------------------


def test_a_second_concurrent_recv_raises_and_nothing_hangs() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            ws = await connect(uri(server))
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.05)
            with pytest.raises(ConcurrencyError):
                await asyncio.wait_for(ws.recv(), 1)
            # Cancelling the waiting one does not disturb the next.
            first.cancel()
            await asyncio.sleep(0)
            await ws.send("a")
            assert await asyncio.wait_for(ws.recv(), 1) == "a"
            # A waiter is released when the connection closes.
            waiting = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.05)
            await ws.close()
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(waiting, 1)

    run(main())


# --- 4. cancelling close() -----------------------------------------------------------------


def _silent_peer() -> tuple[Any, asyncio.Event, asyncio.Future[bytes]]:
    """A raw server that completes the handshake, then reads nothing until the event is set;
    it then reads to the end of the connection and puts what it got in the future. A client
    that never closes its socket leaves that read hanging."""
    loop = asyncio.get_running_loop()
    check = asyncio.Event()
    ended: asyncio.Future[bytes] = loop.create_future()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_raw(reader, writer)
        await check.wait()
        try:
            ended.set_result(await reader.read())
        except ConnectionError:
            ended.set_result(b"")
        writer.close()

    return peer, check, ended


@pytest.mark.parametrize("how", ["wait_for", "cancel"])
def test_cancelled_close_still_ends_the_connection_within_close_timeout(how: str) -> None:
    async def main() -> None:
        peer, check, ended = _silent_peer()
        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://{HOST}:{port}/", close_timeout=0.3)
        if how == "wait_for":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.close(), 0.05)
        else:
            task = asyncio.ensure_future(ws.close())
            await asyncio.sleep(0.05)
            task.cancel()
        assert ws.state is State.CLOSING
        await asyncio.sleep(0.6)  # nobody awaits anything: the connection's own timer acts
        assert ws.state is State.CLOSED and ws.close_code == 1006
        check.set()
        data = await asyncio.wait_for(ended, 3)  # the socket was closed
        assert data.startswith(b"\x88")  # after our close frame
        server.close()

    run(main())


def test_close_returns_within_close_timeout_when_the_peer_never_answers() -> None:
    async def main() -> None:
        peer, check, ended = _silent_peer()
        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://{HOST}:{port}/", close_timeout=0.3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await ws.close()
        assert loop.time() - start < 2
        assert ws.close_code == 1006
        check.set()
        await asyncio.wait_for(ended, 3)
        server.close()

    run(main())


# --- 5. a fresh exception per raise, chained to its cause ----------------------------------


def test_each_call_after_close_raises_a_fresh_exception() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            ws = await connect(uri(server))
            await ws.close()
            errors: list[BaseException] = []
            for _ in range(50):
                for call in (lambda: ws.send("x"), ws.recv, ws.ping):
                    try:
                        await call()  # type: ignore[operator]
                    except ConnectionClosed as exc:
                        errors.append(exc)
                try:
                    ws.send_nowait("x")
                except ConnectionClosed as exc:
                    errors.append(exc)
            assert len({id(e) for e in errors}) == len(errors) == 200
            depths = {len(traceback.extract_tb(e.__traceback__)) for e in errors}
            assert max(depths) <= 4, depths  # no growth from one raise to the next
            assert all(isinstance(e, ConnectionClosedOK) and e.code == 1000 for e in errors)
            assert all(e.__cause__ is None and e.__suppress_context__ for e in errors)

    run(main())


def test_the_exception_after_a_protocol_violation_is_chained_to_it() -> None:
    async def main() -> None:
        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_raw(reader, writer)
            writer.write(client_frame(wsfast.Opcode.TEXT, b"masked"))  # a server must not mask
            await writer.drain()
            await reader.read()
            writer.close()

        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://{HOST}:{port}/", close_timeout=0.5)
        with pytest.raises(ConnectionClosedError) as first:
            await ws.recv()
        with pytest.raises(ConnectionClosedError) as second:
            await ws.recv()
        assert first.value is not second.value
        for info in (first, second):
            assert info.value.code == 1002
            assert isinstance(info.value.__cause__, ProtocolError)
            assert "masked" in str(info.value.__cause__)
        server.close()

    run(main())


def test_the_exception_after_a_reset_is_chained_to_the_os_error() -> None:
    async def main() -> None:
        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_raw(reader, writer)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://{HOST}:{port}/")
        await asyncio.sleep(0.2)  # give the reset time to arrive
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send("x")
        assert info.value.code == 1006
        assert isinstance(info.value.__cause__, OSError)
        server.close()

    run(main())


# --- handshake data that arrives with the request ------------------------------------------


def test_frames_sent_with_the_request_are_answered() -> None:
    """A client that pipelines its first message behind the opening handshake."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port) + client_frame(wsfast.Opcode.TEXT, b"early"))
            await reader.readuntil(b"\r\n\r\n")
            parser = wsfast.FrameParser(require_mask=False)
            frames: list[Any] = []
            while not frames:
                frames += parser.feed(await asyncio.wait_for(reader.read(4096), 2))
            assert frames[0].payload == b"early"
            writer.close()

    run(main())


# --- the shared read buffer ----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_the_loop_fills_and_hands_over_the_read_buffer_back_to_back(
    loop_name: str, transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one read buffer per thread is safe only because the loop calls get_buffer() and
    buffer_updated() of one protocol back to back, with nothing in between: check it with
    many connections reading at once (plain TCP and TLS-free, both directions), on the
    loop's own transports and on aiofastnet's (tests/test_asyncio_aiofastnet.py adds TLS)."""
    calls = spy_on_read_buffer(monkeypatch)

    async def main() -> None:
        async with serve(echo, HOST, 0, transport=transport) as server:

            async def one(i: int) -> None:
                async with connect(uri(server), transport=transport) as ws:
                    for j in range(10):
                        message = bytes([i]) * (1 + 5000 * j)
                        await ws.send(message)
                        assert await ws.recv() == message

            await asyncio.gather(*(one(i) for i in range(20)))

    run(main(), loop=loop_name)
    assert_read_buffer_handed_back_to_back(calls)
