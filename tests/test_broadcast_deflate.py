"""``broadcast`` with permessage-deflate: one compressed frame shared where the negotiated
parameters allow it (no context takeover on the server's side), per-connection compression
otherwise.

Every client decodes every message, the broadcast ones and the connection's own sends after
them; wsfast's client and websockets' (an independent inflater) both check it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Awaitable
from types import ModuleType
from typing import Any

import pytest

import wsfast
from wsfast import FrameParser
from wsfast.asyncio import ServerWebSocket, broadcast, connect, serve
from wsfast.connection import State
from wsfast.permessage_deflate import (
    ClientDeflateFactory,
    PerMessageDeflate,
    ServerDeflateFactory,
)

HOST = "127.0.0.1"
TIMEOUT = 20.0
JSON_1K = json.dumps(
    {"type": "order", "orders": [{"id": i, "status": "shipped", "qty": i % 7} for i in range(24)]}
)
MESSAGES: list[str | bytes] = [
    "small: under min_size",
    JSON_1K,
    "x" * 70000,
    bytes(range(256)) * 40,
    "",
    JSON_1K,  # the same message again: with takeover it compresses to other bytes
]


# --- the extension's key ---------------------------------------------------------------------


def test_the_key_holds_what_decides_the_bytes() -> None:
    def key(**kwargs: Any) -> Any:
        options: dict[str, Any] = {"send_takeover": False, "min_size": 128, **kwargs}
        return PerMessageDeflate(**options).broadcast_key

    assert key() == key(recv_bits=9, recv_takeover=False)  # receiving does not matter
    assert key() is not None
    for change in (
        {"send_bits": 11},
        {"level": 6},
        {"mem_level": 8},
        {"min_size": 0},
        {"backend": "zlib-ng"},
    ):
        try:
            assert key(**change) != key(), change
        except ImportError:
            continue  # that backend is not installed
    assert key(send_takeover=True) is None  # the bytes depend on what was sent before
    # A send window of 8 never compresses: nothing to keep, the frame is the message's own.
    assert key(send_bits=8, send_takeover=True) == key(send_bits=8, level=9)


def test_no_key_while_a_compressed_message_is_being_sent() -> None:
    from wsfast import Frame

    ext = PerMessageDeflate(send_takeover=False)
    key = ext.broadcast_key
    ext.encode(Frame(wsfast.Opcode.TEXT, b"a" * 200, False))
    assert ext.broadcast_key is None
    ext.encode(Frame(wsfast.Opcode.CONTINUATION, b"b" * 200, True))
    assert ext.broadcast_key == key


# --- sans-I/O: the connection's key and frame ------------------------------------------------


@pytest.fixture(params=["python", "cython"])
def connection_module(request: pytest.FixtureRequest, require_extensions: bool) -> ModuleType:
    if request.param == "python":
        return importlib.import_module("wsfast._connection_py")
    if wsfast.implementation != "cython":
        pytest.skip("the compiled connection runs on the compiled kernels, which are not in use")
    try:
        return importlib.import_module("wsfast._connection_c")
    except ImportError as exc:
        if require_extensions:
            pytest.fail(f"the compiled connection does not import: {exc!r}", pytrace=False)
        pytest.skip(f"the compiled connection is not built ({exc})")


def deflate_pair(module: ModuleType, *, takeover: bool) -> tuple[Any, Any]:
    client = module.ClientConnection(
        "example.com", extensions=[ClientDeflateFactory(server_no_context_takeover=not takeover)]
    )
    server = module.ServerConnection(extensions=[ServerDeflateFactory()])
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    assert client.state is module.State.OPEN and server.state is module.State.OPEN
    return client, server


def received(module: ModuleType, client: Any, data: bytes) -> list[Any]:
    client.receive_data(data)
    kinds = (module.TextMessage, module.BinaryMessage)
    return [event.data for event in client.events() if isinstance(event, kinds)]


def test_frame_message_compresses_as_send_would(connection_module: ModuleType) -> None:
    module = connection_module
    client, server = deflate_pair(module, takeover=False)
    other_client, other = deflate_pair(module, takeover=False)
    assert server.broadcast_key is not None and server.broadcast_key == other.broadcast_key
    for message in MESSAGES:
        frame = server.frame_message(message)
        if isinstance(message, str):
            other.send_text(message)
        else:
            other.send_binary(message)
        assert frame == other.data_to_send()
        (first, *_) = FrameParser(require_mask=False).feed(frame)
        assert first.rsv1 == (len(message) >= 128)  # compressed from min_size on
        assert received(module, client, frame) == [message]
        assert received(module, other_client, frame) == [message]
    # The connection's own sends still decode after the shared frames, compressed or not.
    assert server.data_to_send() == b""
    for message in ("after " * 50, "short"):
        server.send_text(message)
        assert received(module, client, server.data_to_send()) == [message]


def test_context_takeover_has_no_key(connection_module: ModuleType) -> None:
    module = connection_module
    _, server = deflate_pair(module, takeover=True)
    assert server.broadcast_key is None
    with pytest.raises(module.InvalidState):
        server.frame_message("x" * 200)


# --- asyncio: a mix of clients ---------------------------------------------------------------


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


async def idle(ws: ServerWebSocket) -> None:
    async for _ in ws:
        pass


class Counter:
    """Counts the data frames PerMessageDeflate.encode compresses (around the real one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = PerMessageDeflate.encode

        def encode(ext: PerMessageDeflate, frame: Any) -> Any:
            out = real(ext, frame)
            if out.rsv1:
                self.count += 1
            return out

        monkeypatch.setattr(PerMessageDeflate, "encode", encode)


def test_a_mix_of_clients_decodes_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    websockets_client = pytest.importorskip("websockets.asyncio.client")
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    counter = Counter(monkeypatch)

    async def main() -> None:
        async with serve(idle, HOST, 0) as server:
            url = f"ws://{HOST}:{server.port}/"
            shared_offer = ClientDeflateFactory(server_no_context_takeover=True)
            wsfast_clients = (
                [await connect(url, compression=shared_offer) for _ in range(3)]
                + [await connect(url) for _ in range(2)]  # takeover, as browsers offer
                + [await connect(url, compression=None)]
            )
            peers = [
                await websockets_client.connect(
                    url,
                    extensions=[
                        ClientPerMessageDeflateFactory(
                            server_no_context_takeover=shared, client_max_window_bits=True
                        )
                    ],
                    compression=None,
                    max_size=None,
                )
                for shared in (True, True, False)
            ]
            conns = [ws for ws in server.connections if ws.state is State.OPEN]
            assert len(conns) == 9
            keys = {ws._conn.broadcast_key for ws in conns}
            # Five shared (one key for all), three with takeover, one without compression.
            assert len(keys) == 3 and None in keys and () in keys
            takeover = sum(ws._conn.broadcast_key is None for ws in conns)
            assert takeover == 3
            for message in MESSAGES:
                before = counter.count
                assert broadcast(conns, message) == 0
                if len(message) >= 128:
                    # Compressed once for all shared connections, once for each other one.
                    assert counter.count - before == 1 + takeover
                else:
                    assert counter.count == before
            # Then each connection's own sends, on the same compression contexts.
            for ws in conns:
                await ws.send(JSON_1K)
                await ws.send("own " * 100)
            expected = [*MESSAGES, JSON_1K, "own " * 100]
            for client in wsfast_clients:
                assert [await client.recv() for _ in expected] == expected
                await client.close()
            for peer in peers:
                assert [await peer.recv() for _ in expected] == expected
                await peer.close()

    run(main())


def test_the_demo_shares_frames_with_browsers() -> None:
    """A browser offers ``permessage-deflate; client_max_window_bits``: the demo's server
    leaves no compression context on its side, so its updates share one frame."""
    from wsfast.cli.demo import compression as demo_compression

    async def main() -> None:
        async with serve(idle, HOST, 0, compression=demo_compression()) as server:
            url = f"ws://{HOST}:{server.port}/"
            clients = [await connect(url) for _ in range(3)]
            conns = [ws for ws in server.connections if ws.state is State.OPEN]
            while len(conns) < 3:
                await asyncio.sleep(0.005)
                conns = [ws for ws in server.connections if ws.state is State.OPEN]
            keys = {ws._conn.broadcast_key for ws in conns}
            assert len(keys) == 1 and None not in keys and () not in keys
            assert broadcast(conns, JSON_1K) == 0
            for client in clients:
                assert await client.recv() == JSON_1K
                await client.close()

    run(main())
