"""permessage-deflate (RFC 7692): negotiation, the §7.2.3 examples, limits, state, and
cross-tests against websockets' implementation.

Every connection test runs on both builds of the connection (``impl``: ``cython`` and
``python``), and the inflating tests on every zlib backend installed (``backend``).
"""

from __future__ import annotations

import random
import tracemalloc
import zlib
from types import ModuleType
from typing import Any

import pytest
from test_connection import raw_header

import wsfast
from wsfast import FrameParser, ProtocolError, apply_mask
from wsfast.events import (
    BinaryMessage,
    ConnectionTerminated,
    Ping,
    ProtocolViolation,
    TextMessage,
)
from wsfast.handshake import HandshakeError
from wsfast.permessage_deflate import (
    BACKENDS,
    MAX_STREAMS,
    ClientDeflateFactory,
    PerMessageDeflate,
    ServerDeflateFactory,
    client_extensions,
    server_extensions,
    zlib_backend,
)

MASK = b"\x37\xfa\x21\x3d"
TEXT, BINARY, CONT, CLOSE, PING = 1, 2, 0, 8, 9
HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 §7.2.3.1: "Hello"


def installed_backends() -> list[str]:
    out = []
    for name in BACKENDS:
        try:
            zlib_backend(name)
        except ImportError:
            continue
        out.append(name)
    return out


BACKEND_NAMES = installed_backends()


@pytest.fixture(scope="module")
def impl(connection_module: ModuleType) -> ModuleType:
    """The connection module under test (``connection_module`` in conftest.py)."""
    return connection_module


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- helpers ----------------------------------------------------------------------------


def header(op: int, n: int, *, fin: bool = True, rsv1: bool = False, rsv2: bool = False,
           mask: bytes | None = MASK) -> bytes:
    return raw_header(op, n, fin=fin, rsv=(rsv1, rsv2, False), mask=mask)


def to_server(op: int, payload: bytes, **kw: Any) -> bytes:
    return header(op, len(payload), **kw) + apply_mask(payload, MASK)


def to_client(op: int, payload: bytes, **kw: Any) -> bytes:
    return header(op, len(payload), mask=None, **kw) + payload


def handshake(impl: ModuleType, offer: str | None, **server_options: Any) -> Any:
    """A ServerConnection that received a request offering ``offer`` and accepted it."""
    server = impl.ServerConnection(extensions=[ServerDeflateFactory(**server_options)])
    lines = [
        "GET / HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer}")
    server.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode())
    server.events()
    server.accept()
    return server


def answer(server: Any) -> str | None:
    """The Sec-WebSocket-Extensions of the server's 101, None without one."""
    head = server.data_to_send().decode("latin-1")
    assert head.startswith("HTTP/1.1 101"), head
    for line in head.split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() == "sec-websocket-extensions":
            return value
    return None


def deflate_server(impl: ModuleType, backend: str = "zlib", **options: Any) -> Any:
    """A server that negotiated permessage-deflate with window 15 both ways (no answer read)."""
    server = handshake(
        impl,
        "permessage-deflate; client_max_window_bits",
        server_max_window_bits=15,
        client_max_window_bits=15,
        backend=backend,
        **options,
    )
    server.data_to_send()
    return server


def pair(impl: ModuleType, server: Any = None, client: Any = None, **conn: Any) -> tuple[Any, Any]:
    """An open client and server with the given factories (defaults: the default factories)."""
    c = impl.ClientConnection(
        "example.com", extensions=[client or ClientDeflateFactory()], **conn
    )
    s = impl.ServerConnection(extensions=[server or ServerDeflateFactory()], **conn)
    s.receive_data(c.data_to_send())
    s.events()
    s.accept()
    c.receive_data(s.data_to_send())
    (accepted,) = c.events()
    assert accepted.extensions == ("permessage-deflate",), accepted
    return c, s


def failed_with(conn: Any, code: int) -> list[Any]:
    """The connection failed with ``code``; returns the events before the violation."""
    events = conn.events()
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert [v.code for v in violations] == [code], events
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].code == code
    frames = FrameParser(require_mask=False).feed(conn.data_to_send())
    assert frames[-1].opcode == CLOSE
    assert int.from_bytes(frames[-1].payload[:2], "big") == code
    return events[: events.index(violations[0])]


def raw_deflate(data: bytes, bits: int = 15, **kw: Any) -> bytes:
    """Deflate ``data`` then sync-flush and drop the tail (§7.2.1), with the stdlib."""
    c = zlib.compressobj(kw.get("level", 6), zlib.DEFLATED, -bits, kw.get("mem_level", 8))
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def sent(conn: Any, client: bool) -> list[Any]:
    return FrameParser(require_mask=client).feed(conn.data_to_send())


# --- RFC 7692 §7.2.3 examples ----------------------------------------------------------


def test_7_2_3_1_a_message_compressed_in_one_frame(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    server.receive_data(to_server(TEXT, HELLO, rsv1=True))
    assert server.events() == [TextMessage("Hello")]


def test_7_2_3_1_the_same_message_fragmented(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    server.receive_data(
        to_server(TEXT, HELLO[:3], rsv1=True, fin=False) + to_server(CONT, HELLO[3:])
    )
    assert server.events() == [TextMessage("Hello")]


def test_bare_messages_come_inflated(impl: ModuleType, backend: str) -> None:
    """The asyncio shell's bare messages (see Connection._give_bare_messages) go through the
    extensions as events do: whole or fragmented, their data is the inflated message."""
    server = deflate_server(impl, backend)
    server._give_bare_messages()
    server.receive_data(
        to_server(TEXT, HELLO, rsv1=True)
        + to_server(TEXT, HELLO[:3], rsv1=True, fin=False)
        + to_server(CONT, HELLO[3:])
    )
    assert server.events() == ["Hello", "Hello"]


def test_7_2_3_2_sharing_the_window_between_messages(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    second = bytes.fromhex("f200110000")
    server.receive_data(to_server(TEXT, HELLO, rsv1=True) + to_server(TEXT, second, rsv1=True))
    assert server.events() == [TextMessage("Hello"), TextMessage("Hello")]


def test_our_compressor_writes_the_rfc_bytes(impl: ModuleType) -> None:
    client, server = pair(
        impl,
        ServerDeflateFactory(server_max_window_bits=15, min_size=0),
        ClientDeflateFactory(window_bits=15),
    )
    server.send_text("Hello")
    server.send_text("Hello")
    frames = sent(server, False)
    assert [(f.rsv1, f.payload) for f in frames] == [
        (True, HELLO),
        (True, bytes.fromhex("f200110000")),
    ]


def test_7_2_3_3_a_stored_block(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    server.receive_data(to_server(TEXT, bytes.fromhex("0005 00faff 48656c6c6f 00"), rsv1=True))
    assert server.events() == [TextMessage("Hello")]


def test_7_2_3_4_a_block_with_bfinal_set(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    bfinal = bytes.fromhex("f348cdc9c90700 00")
    server.receive_data(to_server(TEXT, bfinal, rsv1=True) + to_server(TEXT, HELLO, rsv1=True))
    assert server.events() == [TextMessage("Hello"), TextMessage("Hello")]


def test_7_2_3_5_two_blocks_in_one_message(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    payload = bytes.fromhex("f24805000000ffff cac9c90700")
    server.receive_data(to_server(TEXT, payload, rsv1=True))
    assert server.events() == [TextMessage("Hello")]


def test_7_2_3_6_an_empty_last_fragment(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    first = raw_deflate(b"Hello") + b"\x00\x00\xff\xff"  # flushed, tail kept: more follows
    server.receive_data(
        to_server(TEXT, first, rsv1=True, fin=False) + to_server(CONT, b"\x00")
    )
    assert server.events() == [TextMessage("Hello")]


# --- BFINAL blocks with context takeover (§7.2.3.4) ---------------------------------------


def bfinal_messages(texts: list[bytes], trailer: bytes = b"\x00") -> list[bytes]:
    """Each message as a deflate stream ended with BFINAL, primed with all the previous ones
    (a sender that keeps its context over streams), plus ``trailer``."""
    out = []
    history = b""
    for text in texts:
        if history:
            c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zdict=history[-32768:])
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
        out.append(c.compress(text) + c.flush(zlib.Z_FINISH) + trailer)
        history += text
    return out


@pytest.mark.parametrize("trailer", [b"\x00", b""], ids=["empty-block", "none"])
def test_bfinal_messages_inflate_with_context_takeover(
    impl: ModuleType, backend: str, trailer: bytes
) -> None:
    texts = [b"the quick brown fox " * 5, b"the quick brown fox jumps", b"brown fox " * 40]
    payloads = bfinal_messages(texts, trailer)
    assert len(payloads[1]) < len(texts[1])  # it does refer back to the first message
    server = deflate_server(impl, backend)
    server.receive_data(b"".join(to_server(BINARY, p, rsv1=True) for p in payloads))
    # And a sync-flushed message after them, referring to all of it.
    server.receive_data(to_server(BINARY, raw_deflate(b"".join(texts)), rsv1=True))
    assert server.events() == [BinaryMessage(t) for t in texts] + [
        BinaryMessage(b"".join(texts))
    ]


def test_bfinal_in_a_middle_fragment(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    # A new stream follows the first one directly; the message ends with the empty block.
    first, second = bfinal_messages([b"abc" * 50, b"abcabc" * 30], trailer=b"")
    server.receive_data(
        to_server(BINARY, first, rsv1=True, fin=False) + to_server(CONT, second + b"\x00")
    )
    assert server.events() == [BinaryMessage(b"abc" * 50 + b"abcabc" * 30)]


def test_a_flood_of_deflate_streams_is_refused(impl: ModuleType, backend: str) -> None:
    empty_stream = b"\x03\x00"  # a final fixed block holding only its end-of-block code
    server = deflate_server(impl, backend)
    server.receive_data(to_server(BINARY, empty_stream * MAX_STREAMS, rsv1=True))
    assert server.events() == [BinaryMessage(b"")]
    server.receive_data(to_server(BINARY, empty_stream * (MAX_STREAMS + 1), rsv1=True))
    failed_with(server, 1009)


# --- empty messages and fragments ---------------------------------------------------------


def test_empty_fragments_and_messages(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    server.receive_data(
        to_server(TEXT, b"", rsv1=True, fin=False)
        + to_server(CONT, HELLO[:2], fin=False)
        + to_server(CONT, b"", fin=False)
        + to_server(CONT, HELLO[2:], fin=False)
        + to_server(CONT, b"")
        + to_server(BINARY, b"\x00", rsv1=True)  # the empty message, compressed (§7.2.3.6)
        + to_server(BINARY, b"", rsv1=True)  # no bytes at all: still the empty message
        + to_server(TEXT, bytes.fromhex("f200110000"), rsv1=True)  # the context is intact
    )
    assert server.events() == [
        TextMessage("Hello"),
        BinaryMessage(b""),
        BinaryMessage(b""),
        TextMessage("Hello"),
    ]


def test_sending_empty_messages_and_fragments(impl: ModuleType) -> None:
    client, server = pair(impl, client=ClientDeflateFactory(min_size=0))
    client.send_binary(b"", fin=False)
    client.send_binary(b"abc" * 100, fin=False)
    client.send_binary(b"")
    client.send_text("")
    data = client.data_to_send()
    frames = FrameParser(require_mask=True).feed(data)
    assert [f.rsv1 for f in frames] == [True, False, False, True]
    server.receive_data(data)
    assert server.events() == [BinaryMessage(b"abc" * 100), TextMessage("")]


# --- limits on the inflated size ----------------------------------------------------------

LIMIT = 64 * 1024


def limited_server(impl: ModuleType, limit: int, backend: str = "zlib") -> Any:
    """A server with max_message_size=limit that accepted a Firefox-style offer."""
    server = impl.ServerConnection(
        extensions=[ServerDeflateFactory(backend=backend)], max_message_size=limit
    )
    server.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )
    server.events()
    server.accept()
    server.data_to_send()
    return server


@pytest.mark.parametrize("fragments", [1, 3])
def test_off_by_one_bombs(impl: ModuleType, backend: str, fragments: int) -> None:
    """A message of exactly max_message_size bytes inflates; one byte more fails with 1009,
    on every backend (isal stops at max_length without an unconsumed tail)."""
    for size, ok in ((LIMIT, True), (LIMIT + 1, False)):
        server = limited_server(impl, LIMIT, backend)
        compressed = raw_deflate(b"a" * size)
        cuts = [len(compressed) * i // fragments for i in range(fragments + 1)]
        data = b"".join(
            to_server(
                BINARY if i == 0 else CONT,
                compressed[cuts[i] : cuts[i + 1]],
                rsv1=i == 0,
                fin=i == fragments - 1,
            )
            for i in range(fragments)
        )
        server.receive_data(data)
        if ok:
            assert server.events() == [BinaryMessage(b"a" * size)]
        else:
            failed_with(server, 1009)


@pytest.mark.parametrize("extra", [0, 1])
def test_off_by_one_on_the_extension_itself(backend: str, extra: int) -> None:
    """The extension alone: decode with max_size=n accepts n bytes and refuses n + 1."""
    for n in (100, 1000, 16384, 100_000):
        ext = PerMessageDeflate(backend=backend)
        frame = wsfast.Frame(BINARY, raw_deflate((b"ab" * n)[:n]), True, True)
        data = ext.decode(frame, max_size=n + extra)
        assert len(data.payload) == n and not data.rsv1
        ext = PerMessageDeflate(backend=backend)
        with pytest.raises(ProtocolError) as info:
            ext.decode(frame, max_size=n - 1)
        assert info.value.code == 1009


def test_a_big_bomb_fails_fast_in_bounded_memory(impl: ModuleType, backend: str) -> None:
    bomb = raw_deflate(b"\x00" * (64 << 20), level=9)  # 64 MiB of zeros in ~64 KiB
    server = limited_server(impl, 1 << 20, backend)
    data = to_server(BINARY, bomb, rsv1=True)
    tracemalloc.start()
    try:
        server.receive_data(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    failed_with(server, 1009)
    assert peak < 8 << 20, peak


def fixed_huffman(data: bytes) -> bytes:
    """``data`` as one deflate block of fixed Huffman literals (RFC 1951 §3.2.6: 8 bits for
    bytes 0-143, 9 for 144-255), sync-flushed, the tail removed (§7.2.1): what an encoder
    that never falls back to stored blocks writes for incompressible data."""
    bits = [0, 1, 0]  # BFINAL=0, BTYPE=01 (fixed codes), least significant bit first
    for byte in data:
        code, n = (0x30 + byte, 8) if byte < 144 else (0x190 + byte - 144, 9)
        bits += [(code >> i) & 1 for i in range(n - 1, -1, -1)]  # codes: MSB first
    bits += [0] * 7 + [0, 0, 0]  # end of block; an empty stored block's header
    bits += [0] * (-len(bits) % 8)
    return bytes(
        sum(bit << j for j, bit in enumerate(bits[i : i + 8])) for i in range(0, len(bits), 8)
    )


@pytest.mark.parametrize("strategy", ["fixed", "stored"])
def test_incompressible_messages_up_to_the_limit(impl: ModuleType, strategy: str) -> None:
    """Deflate makes random data larger: by ~6% with fixed Huffman codes (zlib-ng's level 1
    uses them), by 5 bytes a block when stored (websockets sent 1 MiB as 1,051,138 bytes).
    Such a message of exactly max_message_size bytes is accepted; the compressed frame used
    to be refused with 1009 from its header."""
    data = random.Random(4).randbytes(LIMIT)
    if strategy == "fixed":
        compressed = fixed_huffman(data)
    else:
        c = zlib.compressobj(6, zlib.DEFLATED, -15, 5)
        compressed = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(compressed) > LIMIT
    assert zlib.decompressobj(-15).decompress(compressed + b"\x00\x00\xff\xff") == data
    server = limited_server(impl, LIMIT)
    server.receive_data(to_server(BINARY, compressed, rsv1=True))
    assert server.events() == [BinaryMessage(data)]
    # A plain frame is still held to max_message_size, from its header.
    server.receive_data(header(BINARY, LIMIT + 1))
    failed_with(server, 1009)


def test_the_compressed_size_is_checked_first(impl: ModuleType) -> None:
    server = limited_server(impl, 8000)
    # Fragments of empty stored blocks inflate to nothing, but their compressed size counts:
    # the third takes the message over what 8000 bytes may deflate to (9,024 bytes: see
    # PerMessageDeflate.max_payload), refused before it is inflated.
    empty_blocks = b"\x00\x00\x00\xff\xff" * 800
    server.receive_data(
        to_server(BINARY, empty_blocks, rsv1=True, fin=False)
        + to_server(CONT, empty_blocks, fin=False)
    )
    assert server.events() == []
    server.receive_data(to_server(CONT, empty_blocks))
    failed_with(server, 1009)


def test_data_that_does_not_inflate_is_1007(impl: ModuleType, backend: str) -> None:
    server = deflate_server(impl, backend)
    server.receive_data(to_server(TEXT, b"\xff\xff\xff\xff", rsv1=True))
    failed_with(server, 1007)


def test_invalid_utf8_after_inflating_is_1007(impl: ModuleType) -> None:
    server = deflate_server(impl)
    server.receive_data(to_server(TEXT, raw_deflate(b"caf\xc3("), rsv1=True))
    failed_with(server, 1007)


@pytest.mark.parametrize(
    "data",
    [
        to_server(TEXT, HELLO[:3], rsv1=True, fin=False) + to_server(CONT, HELLO[3:], rsv1=True),
        to_server(PING, b"x", rsv1=True),
        to_server(TEXT, b"x", rsv2=True),
    ],
    ids=["rsv1-continuation", "rsv1-ping", "rsv2"],
)
def test_reserved_bits_deflate_does_not_own(impl: ModuleType, data: bytes) -> None:
    server = deflate_server(impl)
    server.receive_data(data)
    failed_with(server, 1002)


def test_rsv1_without_the_extension_is_1002(impl: ModuleType) -> None:
    server = handshake(impl, None)
    server.data_to_send()
    server.receive_data(to_server(TEXT, HELLO, rsv1=True))
    failed_with(server, 1002)


def test_uncompressed_messages_between_compressed_ones(impl: ModuleType) -> None:
    server = deflate_server(impl)
    server.receive_data(
        to_server(TEXT, HELLO, rsv1=True)
        + to_server(TEXT, b"plain")
        + to_server(BINARY, b"pl", fin=False)
        + to_server(PING, b"p")
        + to_server(CONT, b"ain")
        + to_server(TEXT, bytes.fromhex("f200110000"), rsv1=True)
    )
    assert server.events() == [
        TextMessage("Hello"),
        TextMessage("plain"),
        Ping(b"p"),
        BinaryMessage(b"plain"),
        TextMessage("Hello"),
    ]


def test_compressed_text_arriving_byte_by_byte(impl: ModuleType) -> None:
    server = deflate_server(impl)
    text = "héllo ☃ " * 50
    data = to_server(TEXT, raw_deflate(text.encode()), rsv1=True)
    for i in range(len(data)):
        server.receive_data(data[i : i + 1])
    assert server.events() == [TextMessage(text)]


# --- sending --------------------------------------------------------------------------------


def test_rsv1_on_the_first_frame_only(impl: ModuleType) -> None:
    client, server = pair(impl)
    server.send_text("a" * 300, fin=False)
    server.send_ping(b"p")
    server.send_text("b" * 300, fin=False)
    server.send_text("c" * 300)
    frames = sent(server, False)
    assert [(f.opcode, f.rsv1) for f in frames] == [(TEXT, True), (PING, False), (CONT, False),
                                                    (CONT, False)]
    client.receive_data(b"".join(to_client(f.opcode, f.payload, fin=f.fin, rsv1=f.rsv1)
                                 for f in frames))
    assert client.events() == [Ping(b"p"), TextMessage("a" * 300 + "b" * 300 + "c" * 300)]


def test_min_size_and_incompressible_messages(impl: ModuleType) -> None:
    client, server = pair(impl, ServerDeflateFactory(min_size=100))
    noise = random.Random(1).randbytes(1000)
    server.send_binary(b"x" * 99)  # under min_size: as it is
    server.send_binary(noise)  # does not shrink, still compressed: the windows stay in step
    server.send_binary(noise)  # ...so this one refers back to it
    frames = sent(server, False)
    assert [f.rsv1 for f in frames] == [False, True, True]
    assert frames[0].payload == b"x" * 99
    assert len(frames[1].payload) > len(noise)
    assert len(frames[2].payload) < 100
    client.receive_data(b"".join(to_client(BINARY, f.payload, rsv1=f.rsv1) for f in frames))
    assert client.events() == [BinaryMessage(b"x" * 99), BinaryMessage(noise),
                               BinaryMessage(noise)]


def test_incompressible_data_is_probed_then_sent_as_it_is(impl: ModuleType, backend: str) -> None:
    """A frame of 4 KiB or more that saves less than a tenth makes the next large messages
    probed first: incompressible ones go uncompressed (neither window sees them, so both stay
    in step) and compressible ones are compressed again at once."""
    client, server = pair(
        impl, ServerDeflateFactory(backend=backend), ClientDeflateFactory(backend=backend)
    )
    rng = random.Random(2)
    noise = [rng.randbytes(5000) for _ in range(3)]
    text = b'{"id": 1, "name": "x", "tags": ["a", "b"]} ' * 200
    messages = [noise[0], noise[1], text, noise[2], noise[2][:4000], noise[1], text, text]
    for message in messages:
        server.send_binary(message)
    frames = sent(server, False)
    # noise: compressed (no evidence yet); noise: probed, sent as it is; text: probed,
    # compressed; noise: compressed (the text did shrink); 4,000 bytes: under the probe's
    # minimum, compressed; noise: probed, as it is; text: probed, compressed; text: compressed.
    assert [f.rsv1 for f in frames] == [True, False, True, True, True, False, True, True]
    assert frames[1].payload == noise[1] and frames[5].payload == noise[1]
    assert len(frames[7].payload) < len(text) // 20  # refers back to the text before it
    client.receive_data(b"".join(to_client(BINARY, f.payload, rsv1=f.rsv1) for f in frames))
    assert client.events() == [BinaryMessage(m) for m in messages]


def test_without_context_takeover_every_message_is_compressed(impl: ModuleType) -> None:
    """Without context takeover on our side a message's frame depends on the message alone
    (connections may share it: broadcast_key), so incompressible data is not skipped."""
    client, server = pair(impl, ServerDeflateFactory(server_no_context_takeover=True))
    noise = random.Random(3).randbytes(5000)
    for _ in range(3):
        server.send_binary(noise)
    frames = sent(server, False)
    assert [f.rsv1 for f in frames] == [True, True, True]
    assert frames[0].payload == frames[1].payload == frames[2].payload
    client.receive_data(b"".join(to_client(BINARY, f.payload, rsv1=f.rsv1) for f in frames))
    assert client.events() == [BinaryMessage(noise)] * 3


def test_lazy_state_and_release_without_context_takeover(impl: ModuleType) -> None:
    client, server = pair(
        impl, ServerDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
    )
    (ext,) = server.extensions
    assert not ext.send_takeover and not ext.recv_takeover
    assert ext.idle  # nothing allocated by the handshake
    client.send_text("z" * 1000)
    server.receive_data(client.data_to_send())
    assert server.events() == [TextMessage("z" * 1000)]
    assert ext.idle  # the inflater went with the message
    server.send_text("y" * 1000, fin=False)
    assert ext._compressor is not None  # a message in progress keeps it
    server.send_text("y")
    assert ext.idle
    client.receive_data(server.data_to_send())
    assert client.events() == [TextMessage("y" * 1001)]
    assert client.extensions[0].idle


def test_context_takeover_keeps_the_state(impl: ModuleType) -> None:
    client, server = pair(impl)
    (ext,) = server.extensions
    for _ in range(3):
        client.send_text("z" * 1000)
        server.receive_data(client.data_to_send())
        server.send_text("y" * 1000)
        client.receive_data(server.data_to_send())
    assert ext._compressor is not None and ext._decompressor is not None
    assert client.events() == [TextMessage("y" * 1000)] * 3


def test_compress_is_never_called_with_window_8(impl: ModuleType) -> None:
    """A server that asks our client for window 8 gets uncompressed messages; what it sends
    still inflates."""
    client, _ = client_answer(
        impl,
        ClientDeflateFactory(),
        "permessage-deflate; client_max_window_bits=8; server_max_window_bits=8",
    )
    client.events()
    (ext,) = client.extensions
    assert ext.send_bits == 8 and ext.recv_bits == 8
    client.send_text("a" * 1000)
    frames = sent(client, True)
    assert not frames[0].rsv1 and frames[0].payload == b"a" * 1000
    client.receive_data(to_client(TEXT, raw_deflate(b"b" * 1000, bits=9), rsv1=True))
    assert client.events() == [TextMessage("b" * 1000)]


# --- negotiation: server ------------------------------------------------------------------

# Chrome (and Opera, Edge) send the bare client_max_window_bits, Firefox no parameter; Safari
# offers one of the two forms (WebKit before Safari 15 offered only x-webkit-deflate-frame,
# an older draft, declined below).
BROWSER_OFFERS = {
    "chrome": "permessage-deflate; client_max_window_bits",
    "firefox": "permessage-deflate",
    "safari": "permessage-deflate; client_max_window_bits",
}


def test_old_webkit_offer_is_declined(impl: ModuleType) -> None:
    server = handshake(impl, "x-webkit-deflate-frame")
    assert answer(server) is None and server.extensions == ()


@pytest.mark.parametrize("browser", BROWSER_OFFERS)
def test_browser_offers(impl: ModuleType, browser: str) -> None:
    server = handshake(impl, BROWSER_OFFERS[browser])
    (ext,) = server.extensions
    if "client_max_window_bits" in BROWSER_OFFERS[browser]:
        assert answer(server) == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        )
        assert ext.recv_bits == 12
    else:
        assert answer(server) == "permessage-deflate; server_max_window_bits=12"
        assert ext.recv_bits == 15  # the client may use window 15
    assert ext.send_bits == 12 and ext.send_takeover and ext.recv_takeover


@pytest.mark.parametrize(
    "offer, expected",
    [
        ("permessage-deflate; server_max_window_bits=10",
         "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=15",
         "permessage-deflate; server_max_window_bits=12"),
        ('permessage-deflate; client_max_window_bits="10"',
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"),
        ("permessage-deflate; client_max_window_bits=8",
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=8"),
        ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=12"),
        # Window 8 for us: declined, and the next offer is taken.
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate",
         "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=8", None),
        # Malformed or repeated parameters decline their offer only.
        ("permessage-deflate; client_max_window_bits=16, permessage-deflate; "
         "server_max_window_bits=9", "permessage-deflate; server_max_window_bits=9"),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=09", None),
        ("permessage-deflate; server_max_window_bits=abc", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; client_max_window_bits; client_max_window_bits=10", None),
        ("permessage-deflate; x-unknown", None),
        # Only one permessage-deflate: the first acceptable offer wins.
        ("permessage-deflate; server_max_window_bits=11, permessage-deflate",
         "permessage-deflate; server_max_window_bits=11"),
        ("x-other, permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
    ],
)
def test_server_negotiation(impl: ModuleType, offer: str, expected: str | None) -> None:
    server = handshake(impl, offer)
    assert answer(server) == expected
    assert len(server.extensions) == (0 if expected is None else 1)


def test_window_8_offered_by_the_client_inflates(impl: ModuleType, backend: str) -> None:
    server = handshake(impl, "permessage-deflate; client_max_window_bits=8", backend=backend)
    server.data_to_send()
    (ext,) = server.extensions
    assert ext.recv_bits == 8
    # zlib compresses "window 8" with window 9: inflate with 9 so that both work.
    server.receive_data(to_server(BINARY, raw_deflate(b"abcdefgh" * 200, bits=9), rsv1=True))
    assert server.events() == [BinaryMessage(b"abcdefgh" * 200)]


def test_server_options(impl: ModuleType) -> None:
    server = handshake(
        impl,
        "permessage-deflate; client_max_window_bits",
        server_max_window_bits=15,
        client_max_window_bits=15,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    assert answer(server) == "permessage-deflate; server_no_context_takeover; " \
        "client_no_context_takeover"
    server = handshake(impl, "permessage-deflate", require_client_max_window_bits=True)
    assert answer(server) is None


@pytest.mark.parametrize(
    "options",
    [
        {"server_max_window_bits": 8},
        {"client_max_window_bits": 16},
        {"level": 10},
        {"mem_level": 0},
        {"min_size": -1},
        {"backend": "nope"},
    ],
)
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerDeflateFactory(**options)


def test_compression_option() -> None:
    assert server_extensions(None) == [] and client_extensions(None) == []
    assert isinstance(server_extensions("deflate")[0], ServerDeflateFactory)
    assert isinstance(client_extensions("deflate")[0], ClientDeflateFactory)
    factory = ServerDeflateFactory(level=1)
    assert server_extensions(factory) == [factory]
    with pytest.raises(ValueError):
        server_extensions("gzip")
    # A value of the wrong type is a TypeError (the wrong side's factory, aiohttp's True).
    for wrong in (ClientDeflateFactory(), True, 15):
        with pytest.raises(TypeError, match="ServerDeflateFactory"):
            server_extensions(wrong)  # type: ignore[arg-type]
    for wrong in (factory, True, 15):
        with pytest.raises(TypeError, match="ClientDeflateFactory"):
            client_extensions(wrong)  # type: ignore[arg-type]


# --- negotiation: client ------------------------------------------------------------------


def client_answer(impl: ModuleType, factory: ClientDeflateFactory, value: str) -> Any:
    client = impl.ClientConnection("example.com", extensions=[factory])
    request = client.data_to_send().decode()
    key = request.split("Sec-WebSocket-Key: ")[1].split("\r\n")[0]
    client.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {wsfast.accept_key(key)}\r\n".encode()
        + f"Sec-WebSocket-Extensions: {value}\r\n\r\n".encode()
    )
    return client, request


def test_client_offer() -> None:
    assert ClientDeflateFactory().offer() == (("client_max_window_bits", None),)
    factory = ClientDeflateFactory(
        client_max_window_bits=10,
        server_max_window_bits=11,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    assert factory.offer() == (
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "11"),
        ("client_max_window_bits", "10"),
    )


@pytest.mark.parametrize(
    "value, send_bits, recv_bits",
    [
        ("permessage-deflate", 12, 15),
        ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=10", 10, 9),
        ("permessage-deflate; client_max_window_bits=15", 12, 15),
        ("permessage-deflate; server_no_context_takeover; client_no_context_takeover", 12, 15),
    ],
)
def test_client_accepts(impl: ModuleType, value: str, send_bits: int, recv_bits: int) -> None:
    client, request = client_answer(impl, ClientDeflateFactory(), value)
    assert "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" in request
    (accepted,) = client.events()
    assert accepted.extensions == ("permessage-deflate",)
    (ext,) = client.extensions
    assert (ext.send_bits, ext.recv_bits) == (send_bits, recv_bits)
    assert ext.send_takeover == ("client_no_context_takeover" not in value)
    assert ext.recv_takeover == ("server_no_context_takeover" not in value)


@pytest.mark.parametrize(
    "factory, value",
    [
        (ClientDeflateFactory(), "permessage-deflate; x-unknown"),
        (ClientDeflateFactory(), "permessage-deflate; client_max_window_bits"),
        (ClientDeflateFactory(), "permessage-deflate; server_max_window_bits=7"),
        (ClientDeflateFactory(), "permessage-deflate; server_no_context_takeover; "
         "server_no_context_takeover"),
        (ClientDeflateFactory(), "permessage-deflate, permessage-deflate"),
        (ClientDeflateFactory(client_max_window_bits=10),
         "permessage-deflate; client_max_window_bits=11"),
        (ClientDeflateFactory(server_max_window_bits=10),
         "permessage-deflate; server_max_window_bits=11"),
        (ClientDeflateFactory(server_max_window_bits=10), "permessage-deflate"),
        (ClientDeflateFactory(server_no_context_takeover=True), "permessage-deflate"),
    ],
)
def test_client_refuses_bad_answers(impl: ModuleType, factory: Any, value: str) -> None:
    client, _ = client_answer(impl, factory, value)
    failed = client.events()[0]
    assert type(failed).__name__ == "HandshakeFailed" and failed.status == 101
    assert client.state.name == "CLOSED"


def test_client_complete_raises_handshake_error() -> None:
    with pytest.raises(HandshakeError):
        ClientDeflateFactory().complete((("client_max_window_bits", "x"),), [])


# --- backends ------------------------------------------------------------------------------


def test_backends_give_the_stdlib_results(backend: str) -> None:
    rng = random.Random(7)
    messages = [rng.randbytes(rng.randrange(2000)) for _ in range(20)]
    messages += [b"json " * rng.randrange(3000) for _ in range(20)]
    for bits in (9, 12, 15):
        ours = PerMessageDeflate(send_bits=bits, recv_bits=bits, backend=backend)
        stdlib = PerMessageDeflate(send_bits=bits, recv_bits=bits, backend="zlib")
        for message in messages:
            frame = wsfast.Frame(BINARY, message, True)
            encoded = ours.encode(frame)
            assert stdlib.decode(encoded, max_size=None).payload == message
            assert ours.decode(stdlib.encode(frame), max_size=None).payload == message


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert zlib_backend("zlib") is zlib
    assert zlib_backend("auto").__name__ in BACKENDS.values()
    monkeypatch.setenv("WSFAST_ZLIB", "zlib")
    assert zlib_backend() is zlib
    with pytest.raises(ValueError):
        zlib_backend("lz4")


# --- cross-tests against websockets' implementation ---------------------------------------

# Only these tests need websockets (a module-level importorskip would skip the whole file
# where it is not installed, e.g. on a free-threaded build).
try:
    from websockets.client import ClientProtocol
    from websockets.extensions import permessage_deflate as ws_pmd
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri
except ImportError:
    HAS_WEBSOCKETS = False
else:
    HAS_WEBSOCKETS = True
needs_websockets = pytest.mark.skipif(
    not HAS_WEBSOCKETS, reason="needs websockets (the test extra)"
)

COMBINATIONS = [
    {},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"server_no_context_takeover": True, "client_no_context_takeover": True},
    {"server_max_window_bits": 9, "client_max_window_bits": 9},
    {"server_max_window_bits": 10, "client_max_window_bits": 15},
    {"server_max_window_bits": 15, "client_max_window_bits": 12},
]
MESSAGES: list[str | bytes] = [
    "",
    "Hello",
    '{"id": 1, "name": "widget", "tags": ["a", "b"]}' * 40,
    random.Random(3).randbytes(3000),
    b"\x00" * 70000,
    "é☃😀" * 500,
]


def their_message(theirs: Any) -> bytes:
    """The data frames websockets received since the last call, joined."""
    frames = [f for f in theirs.events_received() if getattr(f, "opcode", 99) <= 2]
    assert frames and frames[-1].fin and all(not f.fin for f in frames[:-1]), frames
    return b"".join(f.data for f in frames)


@needs_websockets
@pytest.mark.parametrize("options", COMBINATIONS, ids=lambda o: ",".join(o) or "default")
def test_wsfast_server_with_websockets_client(impl: ModuleType, options: dict[str, Any]) -> None:
    """Their client offering each combination, our server answering, messages both ways."""
    server = impl.ServerConnection(
        extensions=[ServerDeflateFactory(min_size=0, **{
            k: v for k, v in options.items() if k.endswith("takeover")
        })]
    )
    offer = {k: v for k, v in options.items()}
    client = ClientProtocol(
        parse_uri("ws://example.com/"),
        extensions=[ws_pmd.ClientPerMessageDeflateFactory(**offer)],
        max_size=None,
    )
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    assert client.handshake_exc is None, client.handshake_exc
    assert [type(e).__name__ for e in client.extensions] == ["PerMessageDeflate"]
    exchange_with_websockets(server, client, client_is_ours=False)


@needs_websockets
@pytest.mark.parametrize("options", COMBINATIONS, ids=lambda o: ",".join(o) or "default")
def test_wsfast_client_with_websockets_server(impl: ModuleType, options: dict[str, Any]) -> None:
    """Our client offering each combination, their server answering."""
    ours = dict(options)
    if "client_max_window_bits" in ours:
        ours["client_max_window_bits"] = ours["client_max_window_bits"]
    client = impl.ClientConnection(
        "example.com", extensions=[ClientDeflateFactory(min_size=0, **ours)]
    )
    server = ServerProtocol(
        extensions=[ws_pmd.ServerPerMessageDeflateFactory()],
        max_size=None,
    )
    server.receive_data(client.data_to_send())
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    (accepted,) = client.events()
    assert accepted.extensions == ("permessage-deflate",), accepted
    exchange_with_websockets(client, server, client_is_ours=True)


def exchange_with_websockets(ours: Any, theirs: Any, *, client_is_ours: bool) -> None:
    for fragmented in (False, True):
        for message in MESSAGES:
            data = message.encode() if isinstance(message, str) else message
            # Ours to theirs, whole or in three fragments.
            send = ours.send_text if isinstance(message, str) else ours.send_binary
            if fragmented:
                third = len(message) // 3
                send(message[:third], fin=False)
                send(message[third : 2 * third], fin=False)
                send(message[2 * third :])
            else:
                send(message)
            theirs.receive_data(ours.data_to_send())
            assert their_message(theirs) == data
            # Theirs to ours.
            their_send = theirs.send_text if isinstance(message, str) else theirs.send_binary
            if fragmented:
                third = len(data) // 3
                their_send(data[:third], fin=False)
                theirs.send_continuation(data[third : 2 * third], fin=False)
                theirs.send_continuation(data[2 * third :], fin=True)
            else:
                their_send(data)
            ours.receive_data(b"".join(theirs.data_to_send()))
            (event,) = ours.events()
            assert event.data == message



# --- a burst of small compressed messages inflates a bounded amount per call ---------------


def test_a_burst_is_inflated_in_bounded_steps(impl: ModuleType) -> None:
    """200 messages of 64 KiB of zeros arrive in one read (~40 KiB compressed): one
    receive_data call inflates about 1 MiB of them, the rest waits for receive_data(b"")."""
    server = deflate_server(impl)
    message = raw_deflate(b"\x00" * 65536)
    data = b"".join(to_server(BINARY, message, rsv1=True) for _ in range(200))
    data += to_server(TEXT, b"plain, after them")
    server.receive_data(data[:-3])  # the last frame is still arriving
    batches = [server.events()]
    while server.backlogged:
        server.receive_data(b"")
        batches.append(server.events())
    for batch in batches:
        assert sum(len(e.data) for e in batch) <= (1 << 20) + 65536
    events = [e for batch in batches for e in batch]
    server.receive_data(data[-3:])
    events += server.events()
    assert len(batches) >= 10 and not server.backlogged
    assert events == [BinaryMessage(b"\x00" * 65536)] * 200 + [TextMessage("plain, after them")]


def test_a_backlog_is_dropped_at_eof(impl: ModuleType) -> None:
    """What is still held back when the transport ends is not inflated: the EOF would
    otherwise inflate all of it at once (a read of 256 KiB can hold 250 messages of 1 MiB
    compressed to 1 KiB), which the backlog exists to prevent."""
    server = deflate_server(impl)
    message = raw_deflate(b"\x00" * 65536)
    server.receive_data(b"".join(to_server(BINARY, message, rsv1=True) for _ in range(40)))
    delivered = server.events()
    assert server.backlogged and len(delivered) == 17  # 1 MiB, and the message that crossed it
    tracemalloc.start()
    try:
        server.receive_eof()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert server.events() == [ConnectionTerminated(1006, "")]
    assert not server.backlogged and peak < 1 << 20, peak
    server.receive_eof()  # still idempotent
    assert server.events() == []


def test_a_backlog_then_a_bad_frame(impl: ModuleType) -> None:
    server = deflate_server(impl)
    message = raw_deflate(b"\x00" * 65536)
    server.receive_data(
        b"".join(to_server(BINARY, message, rsv1=True) for _ in range(40)) + b"\x83\x80xxxx"
    )
    while server.backlogged:
        server.receive_data(b"")
    assert failed_with(server, 1002) == [BinaryMessage(b"\x00" * 65536)] * 40
