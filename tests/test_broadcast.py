"""``wsfast.asyncio.broadcast`` and the sans-I/O pieces it stands on.

The sans-I/O tests run on both connections (``wsfast._connection_py`` and, when built and in
use, ``wsfast._connection_c``); the asyncio tests run over loopback with the connection
``wsfast.connection`` picks (``WSFAST_NO_EXTENSIONS=1`` runs them on the pure one).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import json
import socket
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from asyncio_helpers import run
from connection_support import open_pair

from wsfast import Frame, FrameParser, Opcode
from wsfast.asyncio import (
    ServerWebSocket,
    WebSocket,
    broadcast,
    connect,
    serve,
)
from wsfast.connection import State
from wsfast.permessage_deflate import (
    ClientDeflateFactory,
    PerMessageDeflate,
    ServerDeflateFactory,
)

HOST = "127.0.0.1"


# --- sans-I/O: broadcast_key and frame_message ----------------------------------------------


def sent(conn: Any, message: Any) -> bytes:
    """What ``conn`` writes for ``message`` sent as usual (text for str, binary otherwise)."""
    if isinstance(message, str):
        conn.send_text(message)
    else:
        conn.send_binary(message)
    data: bytes = conn.data_to_send()
    return data


@pytest.mark.parametrize(
    "message",
    ["", "h\u00e9llo \U0001f680", "x" * 5000, b"", b"\x00\xff" * 40000, bytearray(b"ab")],
    ids=["empty text", "text", "5000 B text", "empty binary", "80 KB binary", "bytearray"],
)
def test_frame_message_is_what_send_would_write(
    connection_module: ModuleType, message: Any
) -> None:
    _, server = open_pair(connection_module)
    _, other = open_pair(connection_module)
    assert server.broadcast_key == ()
    server.send_ping(b"queued before")
    frame = server.frame_message(message)
    assert frame == sent(other, message)
    # Nothing was queued on the connection itself, and what was queued stays.
    ping = FrameParser(require_mask=False).feed(server.data_to_send())
    assert [(f.opcode, f.payload) for f in ping] == [(Opcode.PING, b"queued before")]
    (parsed,) = FrameParser(require_mask=False).feed(frame)
    assert parsed.fin and parsed.payload == (
        message.encode() if isinstance(message, str) else bytes(message)
    )


def test_no_key_when_frames_cannot_be_shared(connection_module: ModuleType) -> None:
    module = connection_module
    client, server = open_pair(module)
    assert client.broadcast_key is None  # every client frame has its own mask
    with pytest.raises(module.InvalidState):
        client.frame_message("x")
    assert module.ServerConnection().broadcast_key is None  # CONNECTING
    server.send_text("part", fin=False)  # a fragmented message is in progress
    assert server.broadcast_key is None
    with pytest.raises(module.InvalidState):
        server.frame_message("x")
    server.send_text(" end")
    assert server.broadcast_key == ()
    server.close()
    assert server.state is module.State.CLOSING and server.broadcast_key is None


class Tagger:
    """A toy extension that marks data frames with RSV1 and a prefix byte."""

    name = "x-tag"

    def __init__(self, tag: bytes, key: Any) -> None:
        self.tag = tag
        if key is not None:
            self.broadcast_key = key

    def decode(self, frame: Any, *, max_size: int | None) -> Any:
        if not frame.rsv1:
            return frame
        return type(frame)(frame.opcode, frame.payload[1:], frame.fin)

    def encode(self, frame: Any) -> Any:
        if frame.opcode >= 8:
            return frame
        return type(frame)(frame.opcode, self.tag + frame.payload, frame.fin, True)


class TaggerFactory:
    name = "x-tag"

    def __init__(self, tag: bytes, key: Any = None) -> None:
        self.tag = tag
        self.key = key

    def accept(self, params: Any, accepted: Any) -> Any:
        return (), Tagger(self.tag, self.key)

    def offer(self) -> Any:
        return ()

    def complete(self, params: Any, accepted: Any) -> Any:
        return Tagger(self.tag, None)


def test_extensions_decide_the_key(connection_module: ModuleType) -> None:
    module = connection_module

    def server_with(factory: TaggerFactory) -> Any:
        client = module.ClientConnection("example.com", extensions=[TaggerFactory(b"")])
        server = module.ServerConnection(extensions=[factory])
        server.receive_data(client.data_to_send())
        server.events()
        server.accept()
        server.data_to_send()  # the 101 response
        return server

    # No broadcast_key on the extension: its frames are the connection's own.
    assert server_with(TaggerFactory(b"T")).broadcast_key is None
    one = server_with(TaggerFactory(b"A", key=("tag", b"A")))
    two = server_with(TaggerFactory(b"A", key=("tag", b"A")))
    other = server_with(TaggerFactory(b"B", key=("tag", b"B")))
    assert one.broadcast_key == two.broadcast_key == (("tag", b"A"),)
    assert other.broadcast_key != one.broadcast_key
    # The frame is the extension's encoding, as send_text writes it.
    frame = one.frame_message("hi")
    two.send_text("hi")
    assert frame == two.data_to_send()
    (parsed,) = FrameParser(require_mask=False).feed(frame)
    assert parsed.rsv1 and parsed.payload == b"Ahi"


# --- asyncio ---------------------------------------------------------------------------------


async def idle(ws: ServerWebSocket) -> None:
    """Keep the connection until the client closes it (messages from it are dropped)."""
    async for _ in ws:
        pass


def upgrade_request(port: int) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def raw_client(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A plain socket after the opening handshake, which reads only when the test says so."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, upgrade_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)  # byte by byte: nothing after the head is read
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def read_frames(sock: socket.socket, until: Callable[[list[Any]], bool]) -> list[Any]:
    """Frames from a raw client until ``until(frames)`` or EOF."""
    loop = asyncio.get_running_loop()
    parser = FrameParser(require_mask=False)
    frames: list[Any] = []
    while not until(frames):
        data = await loop.sock_recv(sock, 1 << 16)
        if not data:
            break
        frames.extend(parser.feed(data))
    return frames


async def wait_for_count(server: Any, n: int) -> list[ServerWebSocket]:
    while sum(ws.state is State.OPEN for ws in server.connections) < n:
        await asyncio.sleep(0.005)
    return [ws for ws in server.connections if ws.state is State.OPEN]


def test_every_open_connection_gets_the_same_message() -> None:
    async def main() -> None:
        async with serve(idle, HOST, 0) as server:
            clients = [await connect(f"ws://{HOST}:{server.port}/") for _ in range(50)]
            conns = await wait_for_count(server, 50)
            for message in ["hello \u4e16\u754c", b"\x00\x01\x02", "", "x" * 70000]:
                assert broadcast(conns, message) == 0
                for client in clients:
                    assert await client.recv() == message
            assert broadcast(conns, bytearray(b"ba")) == 0
            assert broadcast(iter(conns), memoryview(b"mv")) == 0
            for client in clients:
                assert await client.recv() == b"ba"
                assert await client.recv() == b"mv"
                await client.close()
            assert broadcast([], "nobody") == 0

    run(main())


def test_on_uvloop() -> None:
    """uvloop's transports take the plain write() path."""

    async def main() -> None:
        async with serve(idle, HOST, 0) as server:
            clients = [await connect(f"ws://{HOST}:{server.port}/") for _ in range(5)]
            conns = await wait_for_count(server, 5)
            assert type(conns[0]._transport).__module__.startswith("uvloop")
            assert broadcast(conns, "on uvloop") == 0
            assert broadcast(conns, b"\x00" * 100_000) == 0
            for client in clients:
                assert await client.recv() == "on uvloop"
                assert await client.recv() == b"\x00" * 100_000
                await client.close()

    run(main(), loop="uvloop")


def test_closed_closing_and_unopened_connections_are_skipped() -> None:
    async def main() -> None:
        async with serve(idle, HOST, 0, close_timeout=5) as server:
            port = server.port
            a = await connect(f"ws://{HOST}:{port}/")
            b = await connect(f"ws://{HOST}:{port}/")
            closer = await raw_client(port)  # reads, but never answers a close frame
            conns = await wait_for_count(server, 3)
            closing = next(ws for ws in conns if ws.remote_address == closer.getsockname())
            closing_task = asyncio.ensure_future(closing.close())
            await asyncio.sleep(0)
            assert closing.state is State.CLOSING
            await b.close()
            closed = next(ws for ws in conns if ws.remote_address == b.local_address)
            await closed.wait_closed()
            assert closed.state is State.CLOSED
            unopened = socket.create_connection((HOST, port))  # no handshake yet
            while not any(ws.state is State.CONNECTING for ws in server.connections):
                await asyncio.sleep(0.005)
            everyone = list(server.connections)
            assert len(everyone) == 3  # open, closing, and in its opening handshake
            assert broadcast(everyone + [closed], "news") == 3
            assert await a.recv() == "news"
            frames = await read_frames(closer, lambda f: len(f) >= 1)
            assert [f.opcode for f in frames] == [Opcode.CLOSE]  # and no "news"
            unopened.close()
            closer.close()
            await closing_task
            await a.close()

    run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_open_connection_whose_transport_is_closing_is_skipped(loop: str) -> None:
    """Still OPEN, its transport already closing (aborted here; in life, e.g. a TLS peer that
    ended while its frames wait to be inflated): nothing is written, and it counts as
    skipped. asyncio's own TCP transport has its flag read, uvloop's is asked is_closing()."""

    async def main() -> None:
        async with serve(idle, HOST, 0) as server:
            a = await connect(f"ws://{HOST}:{server.port}/")
            b = await connect(f"ws://{HOST}:{server.port}/")
            conns = await wait_for_count(server, 2)
            going = next(ws for ws in conns if ws.remote_address == b.local_address)
            assert going._transport is not None
            going._transport.abort()  # connection_lost comes at the next loop iteration
            assert going.state is State.OPEN and going._transport.is_closing()
            assert broadcast(conns, "news") == 1
            assert await a.recv() == "news"
            await a.close()
            await going.wait_closed()

    run(main(), loop=loop)


class Watched(asyncio.selector_events._SelectorSocketTransport):  # type: ignore[name-defined,misc]
    """asyncio's TCP transport, subclassed: what it says it is, and what it is given."""

    going = False
    written: list[bytes]

    def is_closing(self) -> bool:
        return self.going or bool(super().is_closing())

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))
        super().write(data)


def test_a_subclass_of_asyncios_transport_is_asked_and_written_to() -> None:
    """Only asyncio's own TCP transport is read and written past its methods: a subclass's
    is_closing() and write() are called."""

    async def main() -> None:
        async with serve(idle, HOST, 0) as server:
            a = await connect(f"ws://{HOST}:{server.port}/")
            b = await connect(f"ws://{HOST}:{server.port}/")
            conns = await wait_for_count(server, 2)
            for ws in conns:
                transport: Any = ws._transport
                transport.__class__ = Watched
                transport.written = []
            going: Any = next(ws._transport for ws in conns if ws.remote_address == b.local_address)
            staying: Any = next(ws._transport for ws in conns if ws._transport is not going)
            going.going = True  # says it is closing, its socket still open
            assert broadcast(conns, "news") == 1
            going.going = False
            assert going.written == []
            assert staying.written == [b"\x81\x04news"]
            assert await a.recv() == "news"
            await a.close()
            await b.close()

    run(main())


def test_client_connections_are_framed_one_by_one() -> None:
    received: list[Any] = []

    async def collect(ws: ServerWebSocket) -> None:
        async for message in ws:
            received.append(message)

    async def main() -> None:
        async with serve(collect, HOST, 0) as server:
            clients = [await connect(f"ws://{HOST}:{server.port}/") for _ in range(3)]
            assert broadcast(clients, "from clients") == 0
            assert broadcast(clients, b"\x01" * 200) == 0
            for client in clients:
                await client.close()
            while len(received) < 6:
                await asyncio.sleep(0.005)
        assert sorted(received, key=repr) == sorted(
            ["from clients"] * 3 + [b"\x01" * 200] * 3, key=repr
        )

    run(main())


def test_inside_a_callback_the_connections_own_replies_go_first() -> None:
    conns: list[WebSocket] = []

    def on_message(ws: WebSocket, message: Any) -> None:
        ws.send_nowait(f"ack {message}")
        broadcast(conns, f"all {message}")

    async def main() -> None:
        async with serve(None, HOST, 0, on_message=on_message) as server:
            a = await connect(f"ws://{HOST}:{server.port}/")
            b = await connect(f"ws://{HOST}:{server.port}/")
            conns.extend(await wait_for_count(server, 2))
            await a.send("1")
            assert [await a.recv(), await a.recv()] == ["ack 1", "all 1"]
            assert await b.recv() == "all 1"
            await a.close()
            await b.close()

    run(main())


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        broadcast([], 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        broadcast([], "x", slow="drop")  # type: ignore[arg-type]


# A stalled consumer: a raw client with a small receive buffer that reads nothing while the
# broadcasts go on, and a server socket with a small send buffer, so that the transport's own
# buffer is reached after a few dozen messages instead of megabytes.

MESSAGES = 400
SIZE = 1024
WRITE_LIMIT = 16 * 1024


async def stalled_setup(server: Any) -> tuple[list[Any], list[ServerWebSocket], Any, Any]:
    port = server.port
    healthy = [await connect(f"ws://{HOST}:{port}/", max_queue=MESSAGES + 1) for _ in range(3)]
    stalled = await raw_client(port, rcvbuf=4096)
    conns = await wait_for_count(server, 4)
    slow = next(ws for ws in conns if ws.remote_address == stalled.getsockname())
    slow._transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
    )
    return healthy, conns, stalled, slow


def payload(i: int) -> bytes:
    return i.to_bytes(4, "big") * (SIZE // 4)


def test_a_stalled_consumer_is_skipped_and_its_memory_bounded() -> None:
    async def main() -> None:
        async with serve(idle, HOST, 0, write_limit=WRITE_LIMIT) as server:
            healthy, conns, stalled, slow = await stalled_setup(server)
            transport = slow._transport
            frame_size = len(payload(0)) + 4
            skipped = 0
            peak = 0
            for i in range(MESSAGES):
                skipped += broadcast(conns, payload(i))
                peak = max(peak, transport.get_write_buffer_size())
                for client in healthy:  # the others keep up
                    assert await client.recv() == payload(i)
            assert peak <= WRITE_LIMIT + frame_size
            assert slow.state is State.OPEN  # skipped, not closed
            # Now it reads: it got the first messages, in order, until it was paused; the
            # rest were skipped, each counted once. A close frame marks the end.
            closing = asyncio.ensure_future(slow.close())
            frames = await read_frames(stalled, lambda f: bool(f) and f[-1].opcode == Opcode.CLOSE)
            stalled.close()
            await closing
            for client in healthy:
                await client.close()
        got = [int.from_bytes(f.payload[:4], "big") for f in frames if f.opcode == Opcode.BINARY]
        assert got == list(range(len(got)))
        assert 0 < len(got) < MESSAGES
        assert skipped == MESSAGES - len(got)

    run(main())


def test_a_stalled_consumer_is_closed_with_1013() -> None:
    async def main() -> None:
        async with serve(idle, HOST, 0, write_limit=WRITE_LIMIT, close_timeout=5) as server:
            healthy, conns, stalled, slow = await stalled_setup(server)
            skipped = []
            for i in range(MESSAGES):
                skipped.append(broadcast(conns, payload(i), slow="close"))
                for client in healthy:
                    assert await client.recv() == payload(i)
            first = next(i for i, n in enumerate(skipped) if n)
            # Skipped from the first message it could not take; closed at once, then skipped
            # as closing.
            assert skipped[first:] == [1] * (MESSAGES - first)
            assert slow.state is State.CLOSING
            frames = await read_frames(stalled, lambda f: bool(f) and f[-1].opcode == Opcode.CLOSE)
            got = [f for f in frames if f.opcode == Opcode.BINARY]
            assert len(got) == first
            assert int.from_bytes(frames[-1].payload[:2], "big") == 1013
            assert frames[-1].payload[2:] == b"try again later"
            stalled.close()
            await slow.wait_closed()
            assert slow.state is State.CLOSED
            for client in healthy:
                await client.close()

    run(main())


def test_a_stalled_consumer_that_never_reads_is_dropped_after_close_timeout() -> None:
    async def main() -> None:
        async with serve(idle, HOST, 0, write_limit=WRITE_LIMIT, close_timeout=0.5) as server:
            healthy, conns, stalled, slow = await stalled_setup(server)
            i = 0
            while slow.state is State.OPEN:
                broadcast(conns, payload(i), slow="close")
                for client in healthy:
                    assert await client.recv() == payload(i)
                i += 1
            await asyncio.wait_for(slow.wait_closed(), 5)
            assert slow.state is State.CLOSED and slow.close_code == 1006
            for client in healthy:
                await client.close()
            stalled.close()

    run(main())


# --- permessage-deflate: one compressed frame where the parameters allow it -----------------
# A server without context takeover on its side compresses a message the same way every
# time: connections with equal parameters share one frame. With context takeover each
# connection compresses it itself. Every client decodes every message, the broadcast ones and
# the connection's own sends after them; websockets' client is an independent inflater.

JSON_1K = json.dumps(
    {"type": "order", "orders": [{"id": i, "status": "shipped", "qty": i % 7} for i in range(24)]}
)
DEFLATE_MESSAGES: list[str | bytes] = [
    "small: under min_size",
    JSON_1K,
    "x" * 70000,
    bytes(range(256)) * 40,
    "",
    JSON_1K,  # the same message again: with takeover it compresses to other bytes
]


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
    ext = PerMessageDeflate(send_takeover=False)
    key = ext.broadcast_key
    ext.encode(Frame(Opcode.TEXT, b"a" * 200, False))
    assert ext.broadcast_key is None
    ext.encode(Frame(Opcode.CONTINUATION, b"b" * 200, True))
    assert ext.broadcast_key == key


# --- sans-I/O: the connection's key and frame ------------------------------------------------


def deflate_pair(module: ModuleType, *, takeover: bool) -> tuple[Any, Any]:
    offer = ClientDeflateFactory(server_no_context_takeover=not takeover)
    return open_pair(module, [offer], [ServerDeflateFactory()])


def received(module: ModuleType, client: Any, data: bytes) -> list[Any]:
    client.receive_data(data)
    kinds = (module.TextMessage, module.BinaryMessage)
    return [event.data for event in client.events() if isinstance(event, kinds)]


def test_frame_message_compresses_as_send_would(connection_module: ModuleType) -> None:
    module = connection_module
    client, server = deflate_pair(module, takeover=False)
    other_client, other = deflate_pair(module, takeover=False)
    assert server.broadcast_key is not None and server.broadcast_key == other.broadcast_key
    for message in DEFLATE_MESSAGES:
        frame = server.frame_message(message)
        assert frame == sent(other, message)
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
            for message in DEFLATE_MESSAGES:
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
            expected = [*DEFLATE_MESSAGES, JSON_1K, "own " * 100]
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
