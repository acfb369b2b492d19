"""The asyncio server and client, over loopback (127.0.0.1 only, bounded by timeouts)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from asyncio_helpers import HOST, TIMEOUT, TRANSPORTS, echo, raw_upgrade, run, tls_contexts, uri

import wsfast
from wsfast.asyncio import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    ServerWebSocket,
    connect,
    serve,
)


def test_echo_text_and_binary() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                for message in ["hello", "héllo wörld 日本語 🎉", "", b"", b"\x00\xff" * 40000]:
                    await ws.send(message)
                    reply = await ws.recv()
                    assert type(reply) is type(message) and reply == message
                await ws.send(bytearray(b"abc"))
                assert await ws.recv() == b"abc"
                await ws.send(memoryview(b"xyz"))
                assert await ws.recv() == b"xyz"
            assert ws.close_code == 1000

    run(main())


def test_handler_sees_path_headers_and_subprotocol() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerWebSocket) -> None:
        seen["path"] = ws.path
        seen["query"] = ws.request.query if ws.request else None
        seen["agent"] = ws.request_headers.get("X-Test") if ws.request_headers else None
        seen["subprotocol"] = ws.subprotocol
        await ws.send("ready")

    async def main() -> None:
        async with serve(handler, HOST, 0, subprotocols=["chat.v2", "chat.v1"]) as server:
            async with connect(
                uri(server, "/room/7?user=ann"),
                subprotocols=["chat.v1", "chat.v2"],
                extra_headers=[("X-Test", "yes")],
            ) as ws:
                assert await ws.recv() == "ready"
                assert ws.subprotocol in ("chat.v1", "chat.v2")
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()  # the handler returned: closed with 1000
                assert ws.close_code == 1000

    run(main())
    assert seen["path"] == "/room/7" and seen["query"] == "user=ann"
    assert seen["agent"] == "yes" and seen["subprotocol"] in ("chat.v1", "chat.v2")


def test_async_for_ends_cleanly_on_1000_and_raises_on_errors() -> None:
    async def closer(ws: ServerWebSocket) -> None:
        await ws.send("one")
        await ws.send("two")
        code = 1000 if ws.path == "/ok" else 4001
        await ws.close(code, "bye")

    async def main() -> None:
        async with serve(closer, HOST, 0) as server:
            async with connect(uri(server, "/ok")) as ws:
                assert [m async for m in ws] == ["one", "two"]
                assert (ws.close_code, ws.close_reason) == (1000, "bye")
            async with connect(uri(server, "/err")) as ws:
                got = []
                with pytest.raises(ConnectionClosedError) as info:
                    async for m in ws:
                        got.append(m)
                assert got == ["one", "two"]
                assert (info.value.code, info.value.reason) == (4001, "bye")

    run(main())


def test_handler_exception_closes_with_1011() -> None:
    async def broken(ws: ServerWebSocket) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with serve(broken, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                assert ws.close_code == 1011

    run(main())


def test_send_after_close_raises() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            ws = await connect(uri(server))
            await ws.close()
            with pytest.raises(ConnectionClosed):
                await ws.send("late")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            with pytest.raises(TypeError):
                await (await connect(uri(server))).send(42)  # type: ignore[arg-type]

    run(main())


def test_ping_returns_latency_and_unsolicited_pongs_are_ignored() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                latency = await ws.ping()
                assert 0 <= latency < TIMEOUT
                assert await ws.ping(b"custom") >= 0
                await ws.send("still fine")
                assert await ws.recv() == "still fine"

    run(main())


def test_refused_handshake_raises_invalid_handshake() -> None:
    def process_request(ws: ServerWebSocket, request: Any) -> Any:
        if request.path == "/private":
            return (403, [("Content-Type", "text/plain")], b"no entry\n")
        return None

    async def main() -> None:
        async with serve(echo, HOST, 0, process_request=process_request) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(uri(server, "/private"))
            assert info.value.status == 403 and info.value.body == b"no entry\n"
            async with connect(uri(server, "/public")) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"

    run(main())


def test_origin_check() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, origins=["https://shop.example"]) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(uri(server), origin="https://evil.example")
            assert info.value.status == 403
            async with connect(uri(server), origin="https://shop.example") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"

    run(main())


def test_message_too_big_closes_with_1009() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, max_message_size=1000) as server:
            async with connect(uri(server)) as ws:
                await ws.send(b"x" * 1000)
                assert await ws.recv() == b"x" * 1000
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                assert ws.close_code == 1009

    run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reading_pauses_when_the_application_falls_behind(transport: Any) -> None:
    """With max_queue=4 the server stops reading; the client's sends then back up."""
    state: dict[str, Any] = {}

    async def slow(ws: ServerWebSocket) -> None:
        state["ws"] = ws
        await asyncio.sleep(0.5)  # read nothing for a while
        state["paused"] = ws._reading_paused
        state["reading"] = ws._transport.is_reading()  # type: ignore[union-attr]
        state["queued"] = len(ws._messages)
        count = 0
        async for _ in ws:
            count += 1
            if count == 200:
                break
        await ws.send(str(count))

    async def main() -> None:
        async with serve(slow, HOST, 0, max_queue=4, transport=transport) as server:
            # Uncompressed, so that a read holds a known number of messages.
            async with connect(
                uri(server), write_limit=16 * 1024, compression=None, transport=transport
            ) as ws:
                payload = b"p" * 8192
                for _ in range(200):
                    await ws.send(payload)
                assert await ws.recv() == "200"

    run(main())
    assert state["paused"] is True and state["reading"] is False
    # Bounded: reading pauses once max_queue messages wait; the read that crossed the bound
    # (at most 256 KiB = 32 messages here) is still queued, the rest waits in the kernel.
    assert 4 <= state["queued"] <= 4 + 32


def test_keepalive_closes_a_silent_peer() -> None:
    """A client that never answers pings is dropped after ping_timeout."""

    async def main() -> None:
        closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        async def handler(ws: ServerWebSocket) -> None:
            try:
                await ws.recv()
            except ConnectionClosed:
                pass
            closed.set_result(ws.close_code)

        async with serve(handler, HOST, 0, ping_interval=0.1, ping_timeout=0.2) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            # Never answer: the server pings, waits, sends a 1011 close frame and drops TCP.
            code = await asyncio.wait_for(closed, 5)
            frames = wsfast.FrameParser(require_mask=False).feed(await reader.read())
            writer.close()
            assert wsfast.Opcode.PING in [f.opcode for f in frames]
            assert frames[-1].opcode == wsfast.Opcode.CLOSE
            assert frames[-1].payload[:2] == (1011).to_bytes(2, "big")
            assert code == 1006  # no close frame came back (RFC 6455 §7.1.5)

    run(main())


def test_open_timeout_drops_a_silent_connection() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, open_timeout=0.2) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            data = await asyncio.wait_for(reader.read(), 5)  # EOF once the server aborts
            assert data == b""
            writer.close()

    run(main())


def test_server_shutdown_closes_connections_with_1001() -> None:
    async def main() -> None:
        server = await serve(echo, HOST, 0)
        address = uri(server)
        clients = [await connect(address) for _ in range(5)]
        server.close()
        await server.wait_closed()
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
        with pytest.raises(OSError):
            await connect(address)

    run(main())


def test_protocol_violation_from_a_raw_peer() -> None:
    """Unmasked client frames: the server fails the connection with 1002."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            writer.write(wsfast.build_header(wsfast.Opcode.TEXT, 2) + b"hi")  # not masked
            rest = await asyncio.wait_for(reader.read(), 5)
            frames = wsfast.FrameParser(require_mask=False).feed(rest)
            assert frames[0].opcode == wsfast.Opcode.CLOSE
            assert int.from_bytes(frames[0].payload[:2], "big") == 1002
            writer.close()

    run(main())


def test_messages_before_a_protocol_error_are_still_answered() -> None:
    """Frames that arrived before a bad one are delivered and may be answered before our
    close frame goes out (Autobahn 3.2, 4.1.3, 5.15...)."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            await reader.readuntil(b"\r\n\r\n")
            key = b"\x01\x02\x03\x04"
            good = wsfast.build_header(wsfast.Opcode.TEXT, 5, mask=key)
            good += wsfast.apply_mask(b"Hello", key)
            bad = wsfast.build_header(wsfast.Opcode.TEXT, 0, rsv2=True, mask=key)
            writer.write(good + bad)  # in one segment
            rest = await asyncio.wait_for(reader.read(), 5)
            frames = wsfast.FrameParser(require_mask=False).feed(rest)
            assert [(f.opcode, f.payload[:5]) for f in frames] == [
                (wsfast.Opcode.TEXT, b"Hello"),
                (wsfast.Opcode.CLOSE, (1002).to_bytes(2, "big") + frames[1].payload[2:5]),
            ]
            writer.close()

    run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_wss_with_ssl_passthrough(tmp_path: Path) -> None:
    server_ctx, client_ctx = tls_contexts(tmp_path)

    async def main() -> None:
        async with serve(echo, HOST, 0, ssl=server_ctx) as server:
            async with connect(f"wss://{HOST}:{server.port}/", ssl=client_ctx) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"

    run(main())


def test_many_concurrent_clients() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:

            async def one(i: int) -> None:
                async with connect(uri(server)) as ws:
                    for j in range(20):
                        await ws.send(f"{i}:{j}")
                        assert await ws.recv() == f"{i}:{j}"

            await asyncio.gather(*(one(i) for i in range(50)))

    run(main())


def test_works_on_uvloop() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                for message in ["text", b"\x00" * 100000]:
                    await ws.send(message)
                    assert await ws.recv() == message
            assert ws.close_code == 1000

    run(main(), loop="uvloop")


def test_on_message_callbacks() -> None:
    def echo_now(ws: Any, message: Any) -> None:
        ws.send_nowait(message)

    async def main() -> None:
        async with serve(None, HOST, 0, on_message=echo_now) as server:
            async with connect(uri(server)) as ws:
                for message in ["a", b"b" * 70000, "ç"]:
                    await ws.send(message)
                    assert await ws.recv() == message
            got: asyncio.Queue[Any] = asyncio.Queue()
            async with connect(uri(server), on_message=lambda ws, m: got.put_nowait(m)) as ws:
                ws.send_nowait("cb")
                assert await asyncio.wait_for(got.get(), 5) == "cb"
        with pytest.raises(TypeError):
            serve(None, HOST, 0)

    run(main())


def test_http_handler_serves_plain_requests_on_the_websocket_port() -> None:
    def pages(path: str, headers: Any) -> Any:
        if path == "/":
            return (200, [("Content-Type", "text/html; charset=utf-8")], b"<h1>shop</h1>")
        return None  # anything else: 426

    async def fetch(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data

    async def main() -> None:
        async with serve(echo, HOST, 0, http_handler=pages) as server:
            page = await fetch(server.port, "/")
            assert page.startswith(b"HTTP/1.1 200") and page.endswith(b"<h1>shop</h1>")
            other = await fetch(server.port, "/ws")
            assert other.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in other
            async with connect(uri(server, "/ws")) as ws:  # upgrades still work
                await ws.send("hi")
                assert await ws.recv() == "hi"

    run(main())


def test_close_completes_with_unread_messages_queued() -> None:
    """Reading is paused (max_queue reached): close() still reaches the peer's close frame."""

    async def flood(ws: ServerWebSocket) -> None:
        for i in range(100):
            await ws.send(f"message {i}")
        async for _ in ws:
            pass

    async def main() -> None:
        async with serve(flood, HOST, 0) as server:
            ws = await connect(uri(server), max_queue=4, close_timeout=3)
            assert await ws.recv() == "message 0"
            await asyncio.sleep(0.2)  # the queue fills, reading pauses
            loop = asyncio.get_running_loop()
            start = loop.time()
            await ws.close()
            assert ws.close_code == 1000
            assert loop.time() - start < 2

    run(main())


def test_keepalive_timeout_drops_a_peer_that_stopped_reading() -> None:
    """The 1011 close frame cannot be flushed to a peer that reads nothing: the transport is
    dropped after close_timeout, and a handler blocked in send() gets ConnectionClosed."""

    async def main() -> None:
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def blaster(ws: ServerWebSocket) -> None:
            try:
                while True:
                    await ws.send(b"x" * 65536)
            except ConnectionClosed as exc:
                done.set_result(type(exc).__name__)

        async with serve(
            blaster, HOST, 0, ping_interval=0.2, ping_timeout=0.2, close_timeout=0.5
        ) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (HOST, server.port))
            await asyncio.get_running_loop().sock_sendall(sock, raw_upgrade(server.port))
            # Never read again.
            assert await asyncio.wait_for(done, 5) == "ConnectionClosedError"
            sock.close()

    run(main())


def test_cancelling_one_blocked_send_leaves_the_others_waiting() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                ws.pause_writing()  # as the transport does above write_limit
                a = asyncio.ensure_future(ws.send(b"a"))
                b = asyncio.ensure_future(ws.send(b"b"))
                await asyncio.sleep(0.05)
                assert not a.done() and not b.done()
                a.cancel()
                await asyncio.sleep(0.05)
                assert a.cancelled() and not b.done()  # b still waits for the buffer
                ws.resume_writing()
                await asyncio.wait_for(b, 5)
                assert {await ws.recv(), await ws.recv()} == {b"a", b"b"}

    run(main())


def test_leaving_serve_stops_handlers_busy_elsewhere() -> None:
    async def main() -> None:
        task_box: list[asyncio.Task[Any]] = []

        async def sleeper(ws: ServerWebSocket) -> None:
            task_box.append(asyncio.current_task())  # type: ignore[arg-type]
            await asyncio.sleep(3600)

        async with serve(sleeper, HOST, 0, close_timeout=0.5) as server:
            ws = await connect(uri(server))
            while not task_box:
                await asyncio.sleep(0.01)
        assert task_box[0].done()
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1001

    run(main())


def test_on_message_replies_to_a_batch_in_order() -> None:
    """Many frames in one read: every reply goes out, in order (written together)."""

    def echo_now(ws: Any, message: Any) -> None:
        ws.send_nowait(message)

    async def main() -> None:
        async with serve(None, HOST, 0, on_message=echo_now) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            await reader.readuntil(b"\r\n\r\n")
            key = b"\x0a\x0b\x0c\x0d"
            batch = b"".join(
                wsfast.build_header(wsfast.Opcode.BINARY, len(p), mask=key)
                + wsfast.apply_mask(p, key)
                for p in (str(i).encode() * (1 + i) for i in range(50))
            )
            writer.write(batch)
            parser = wsfast.FrameParser(require_mask=False)
            frames: list[Any] = []
            while len(frames) < 50:
                frames += parser.feed(await asyncio.wait_for(reader.read(65536), 5))
            assert [f.payload for f in frames] == [str(i).encode() * (1 + i) for i in range(50)]
            writer.close()

    run(main())


def test_a_str_subclass_is_sent_as_text() -> None:
    """send() and send_nowait() take what their type says, str subclasses (a StrEnum
    member...) included, as broadcast() does."""

    class Word(str):
        pass

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                await client.send(Word("hello"))
                assert await client.recv() == "hello"
                client.send_nowait(Word("again"))
                assert await client.recv() == "again"

    run(main())
