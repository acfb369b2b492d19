"""permessage-deflate through the asyncio server and client, over loopback, against ourselves
and websockets' asyncio implementation (both roles)."""

from __future__ import annotations

import asyncio
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


websockets_asyncio = pytest.importorskip("websockets.asyncio.server")


def test_websockets_client_with_our_server() -> None:
    from websockets.asyncio.client import connect as ws_connect

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with ws_connect(uri(server), max_size=None) as ws:
                assert ws.protocol.extensions[0].name == "permessage-deflate"
                await round_trips(ws)

    run(main())


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
