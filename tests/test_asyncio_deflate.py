"""permessage-deflate through the asyncio server and client, over loopback, against ourselves
and websockets' asyncio implementation (both roles)."""

from __future__ import annotations

import asyncio
import importlib.util
import random
from typing import Any

import pytest
from test_asyncio import HOST, echo, run, uri

from wsfast.asyncio import ConnectionClosedError, ServerWebSocket, connect, serve
from wsfast.permessage_deflate import ClientDeflateFactory, ServerDeflateFactory

MESSAGES: list[str | bytes] = [
    "",
    "hello",
    '{"id": 7, "items": ["a", "b", "c"], "ok": true}' * 300,
    "é☃😀" * 3000,
    b"",
    random.Random(5).randbytes(70000),
    b"\x00" * ((1 << 20) - 1),
]


async def round_trips(ws: Any) -> None:
    for message in MESSAGES * 2:
        await ws.send(message)
        reply = await ws.recv()
        assert type(reply) is type(message) and reply == message


def test_on_by_default() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                assert ws.response_headers is not None
                assert ws.response_headers.get("Sec-WebSocket-Extensions") == (
                    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
                )
                (ext,) = ws._conn.extensions
                assert (ext.send_bits, ext.recv_bits) == (12, 12)
                await round_trips(ws)

    run(main())


def test_frames_a_little_over_64_kib_go_in_one_write() -> None:
    """64 KiB of incompressible data makes a frame a little over 64 KiB, compressed or not:
    header and payload go out in one transport write (the header used to be written on its
    own, one more send for us and one more read for the peer)."""
    rng = random.Random(9)
    messages = [rng.randbytes(1 << 16) for _ in range(3)] + [rng.randbytes(200_000)]

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                transport: Any = ws._transport
                writes: list[int] = []
                write = transport.write

                def recording_write(data: Any) -> None:
                    writes.append(len(data))
                    write(data)

                transport.write = recording_write
                for message in messages:
                    await ws.send(message)
                    assert await ws.recv() == message
                assert len(writes) == len(messages), writes
                assert all(n > len(m) for n, m in zip(writes, messages, strict=True)), writes

    run(main())


@pytest.mark.parametrize(
    "server_compression, client_compression, negotiated",
    [
        (None, "deflate", False),
        ("deflate", None, False),
        (
            ServerDeflateFactory(server_no_context_takeover=True, level=1, min_size=0),
            ClientDeflateFactory(client_no_context_takeover=True, window_bits=9),
            True,
        ),
        (ServerDeflateFactory(backend="auto"), ClientDeflateFactory(backend="auto"), True),
    ],
)
def test_options(server_compression: Any, client_compression: Any, negotiated: bool) -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, compression=server_compression) as server:
            async with connect(uri(server), compression=client_compression) as ws:
                assert ws.response_headers is not None
                assert ("Sec-WebSocket-Extensions" in ws.response_headers) is negotiated
                assert len(ws._conn.extensions) == negotiated
                await round_trips(ws)

    run(main())


def test_a_bomb_closes_with_1009() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, max_message_size=1 << 16) as server:
            async with connect(uri(server)) as ws:
                await ws.send(b"\x00" * (1 << 16))
                assert await ws.recv() == b"\x00" * (1 << 16)
                await ws.send(b"\x00" * ((1 << 16) + 1))
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                assert ws.close_code == 1009

    run(main())


# Only the tests that talk to websockets need it (a module-level importorskip would skip the
# whole file where it is not installed, e.g. on a free-threaded build).
needs_websockets = pytest.mark.skipif(
    importlib.util.find_spec("websockets") is None, reason="needs websockets (the test extra)"
)
HAS_ZLIB_NG = importlib.util.find_spec("zlib_ng") is not None


@needs_websockets
def test_websockets_client_with_our_server() -> None:
    from websockets.asyncio.client import connect as ws_connect

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with ws_connect(uri(server), max_size=None) as ws:
                assert ws.protocol.extensions[0].name == "permessage-deflate"
                await round_trips(ws)

    run(main())


@needs_websockets
def test_incompressible_messages_of_max_message_size() -> None:
    """websockets sends 1 MiB of random bytes compressed as 1,051,138 bytes: our server with
    max_message_size=1 MiB takes it, and our client with zlib-ng's level 1 (fixed Huffman
    codes: 5% larger) sends such a message too."""
    from websockets.asyncio.client import connect as ws_connect

    data = random.Random(6).randbytes(1 << 20)

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with ws_connect(uri(server), max_size=None) as ws:
                await ws.send(data)
                assert await ws.recv() == data
            fixed = ClientDeflateFactory(backend="zlib-ng") if HAS_ZLIB_NG else "deflate"
            async with connect(uri(server), compression=fixed) as ws:
                await ws.send(data)
                assert await ws.recv() == data

    run(main())


@needs_websockets
def test_our_client_with_websockets_server() -> None:
    from websockets.asyncio.server import serve as ws_serve

    async def their_echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(their_echo, HOST, 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://{HOST}:{port}/", max_message_size=None) as ws:
                assert ws._conn.extensions[0].name == "permessage-deflate"
                await round_trips(ws)

    run(main())


def test_a_burst_of_compressed_messages_is_bounded_by_max_queue() -> None:
    """The client writes 300 highly compressible 64 KiB messages at once; the server, whose
    handler reads slowly, inflates them a bounded amount at a time (max_queue messages plus
    one receive_data budget), and every message still arrives."""
    state: dict[str, Any] = {}

    async def slow(ws: ServerWebSocket) -> None:
        await asyncio.sleep(0.3)
        state["queued"] = len(ws._messages)
        count = 0
        async for message in ws:
            assert message == b"\x00" * 65536
            count += 1
            if count == 300:
                break
        await ws.send(str(count))

    async def main() -> None:
        async with serve(slow, HOST, 0, max_queue=4) as server:
            async with connect(uri(server)) as ws:
                for _ in range(300):
                    ws.send_nowait(b"\x00" * 65536)
                assert await ws.recv() == "300"

    run(main())
    assert 4 <= state["queued"] <= 4 + 17, state


def test_an_on_message_server_keeps_connections_past_close_timeout() -> None:
    """serve(None, on_message=...) used to wait for the end of a connection with
    wait_closed(), which drops the transport after close_timeout."""

    def echo_now(ws: Any, message: Any) -> None:
        ws.send_nowait(message)

    async def main() -> None:
        async with serve(None, HOST, 0, on_message=echo_now, close_timeout=0.2) as server:
            async with connect(uri(server)) as ws:
                await asyncio.sleep(0.5)
                await ws.send("still there")
                assert await ws.recv() == "still there"

    run(main())


# --- a peer that floods compressed messages --------------------------------------------------


def zeros_frame(size: int) -> bytes:
    """A masked client frame: ``size`` zero bytes, compressed (window 12) to about a
    thousandth of that."""
    import zlib

    from wsfast import apply_mask, build_header

    compressor = zlib.compressobj(9, zlib.DEFLATED, -12, 9)
    data = compressor.compress(b"\x00" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return build_header(2, len(data) - 4, rsv1=True, mask=b"abcd") + apply_mask(
        data[:-4], b"abcd"
    )


async def flooder(port: int, frames: int, frame: bytes) -> None:
    """A raw client that negotiates compression, then writes ``frames`` copies of ``frame``
    (or until the server drops it), then waits for the server to drop it; it never answers."""
    from wsfast import ClientConnection

    reader, writer = await asyncio.open_connection(HOST, port)
    client = ClientConnection(HOST, extensions=[ClientDeflateFactory()])
    writer.write(client.data_to_send())
    client.receive_data(await reader.read(4096))
    assert [e.extensions for e in client.events()] == [("permessage-deflate",)]
    try:
        for _ in range(frames // 64):
            writer.write(frame * 64)
            await writer.drain()
        while await reader.read(65536):
            pass  # until the server drops the connection
    except ConnectionError:
        pass
    finally:
        writer.close()


def test_closing_while_the_peer_floods_keeps_the_queue_bounded() -> None:
    """Once close() has sent our close frame, reading goes on to reach the peer's, but
    messages the queue has no room for are dropped: a peer that keeps sending 1 MiB messages
    compressed to 1 KiB used to fill memory at the speed of inflation until close_timeout."""
    state: dict[str, Any] = {}

    async def closes(ws: ServerWebSocket) -> None:
        await asyncio.sleep(0.2)  # the queue fills and reading pauses
        state["paused"] = ws._reading_paused
        loop = asyncio.get_running_loop()
        start = loop.time()
        await ws.close()
        state["took"] = loop.time() - start
        state["queued"] = len(ws._messages)

    async def main() -> None:
        async with serve(closes, HOST, 0, max_queue=4, close_timeout=1.0) as server:
            await flooder(server.port, 1024, zeros_frame((1 << 20) - 1))

    run(main())
    assert state["paused"] is True
    # max_queue messages, plus what one receive_data call may inflate (1 MiB: one message).
    assert state["queued"] <= 4 + 2, state
    # close_timeout holds: the loop is not held by the inflation of a whole read.
    assert state["took"] < 5, state


def test_a_compressed_burst_is_inflated_a_step_per_loop_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An on_message server (no queue) reading a burst of compressed messages inflates
    about 1 MiB per loop callback, reading paused meanwhile: one callback used to inflate a
    whole read (64 KiB of 1 MiB messages compressed to 1 KiB is 64 MiB), holding the loop."""
    from wsfast.asyncio.connection import WebSocket

    received: list[int] = []
    per_read: list[int] = []
    original = WebSocket.buffer_updated

    def buffer_updated(self: WebSocket, nbytes: int) -> None:
        before = len(received)
        original(self, nbytes)
        per_read.append(len(received) - before)

    monkeypatch.setattr(WebSocket, "buffer_updated", buffer_updated)
    count = 256

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()

        def on_message(ws: Any, message: Any) -> None:
            received.append(len(message))
            if len(received) == count:
                done.set_result(None)

        async with serve(None, HOST, 0, on_message=on_message) as server:
            flood = asyncio.create_task(flooder(server.port, count, zeros_frame((1 << 20) - 1)))
            await done
            flood.cancel()

    run(main())
    assert received == [(1 << 20) - 1] * count
    assert max(per_read) <= 2, per_read
