"""The sans-I/O connection: every rule of RFC 6455 §5-§7, closing, limits, and properties.

Frames are crafted with the kernels' build_header / apply_mask and the connections' output is
read back with a FrameParser, so every test looks at real bytes. Nothing touches the network.

Every test runs twice, on the compiled connection (``wsfast._connection_c``, id ``cython``)
and on its source (``wsfast._connection_py``, id ``python``): the module-scoped fixture
``connection_impl`` rebinds ``ClientConnection``, ``ServerConnection``, ``State`` and
``InvalidState`` in this module to the classes under test. The ``cython`` half is skipped
when the compiled connection was never built (it fails instead when
``WSFAST_REQUIRE_EXTENSIONS=1`` is set) or when the pure kernels are in use
(``WSFAST_NO_EXTENSIONS=1``): the compiled connection reads the compiled parser's frames.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wsfast
import wsfast.connection as connection_module
from wsfast import FrameParser, ProtocolError, apply_mask
from wsfast._connection_py import ClientConnection, InvalidState, ServerConnection, State
from wsfast.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionTerminated,
    Event,
    Ping,
    Pong,
    ProtocolViolation,
    TextBytes,
    TextMessage,
)

MASK = b"\x37\xfa\x21\x3d"  # RFC 6455 §5.7
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10

SWAPPED = ("ClientConnection", "ServerConnection", "State", "InvalidState")
TRUE = {"1", "yes", "true", "on"}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


def import_connection(name: str) -> tuple[ModuleType | None, BaseException | None]:
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, exc


COMPILED, COMPILED_ERROR = import_connection("wsfast._connection_c")


@pytest.fixture(scope="module", autouse=True, params=["cython", "python"])
def connection_impl(request: pytest.FixtureRequest, require_extensions: bool) -> Iterator[Any]:
    """The connection module under test; its classes replace this module's for the tests."""
    if request.param == "python":
        module = importlib.import_module("wsfast._connection_py")
    elif wsfast.implementation != "cython":
        pytest.skip("the compiled connection runs on the compiled kernels, which are not in use")
    elif COMPILED is not None:
        module = COMPILED
    elif require_extensions:
        pytest.fail(f"the compiled connection does not import: {COMPILED_ERROR!r}", pytrace=False)
    else:
        pytest.skip(f"the compiled connection is not built ({COMPILED_ERROR})")
    namespace = globals()
    saved = {name: namespace[name] for name in SWAPPED}
    namespace.update({name: getattr(module, name) for name in SWAPPED})
    yield module
    namespace.update(saved)


# --- helpers ----------------------------------------------------------------------------


def open_pair(**kwargs: Any) -> tuple[ClientConnection, ServerConnection]:
    """A client and a server after a completed handshake (same options on both sides)."""
    client = ClientConnection("example.com", **kwargs)
    server = ServerConnection(**kwargs)
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    assert client.state is State.OPEN and server.state is State.OPEN
    return client, server


def open_server(**kwargs: Any) -> ServerConnection:
    return open_pair(**kwargs)[1]


def open_client(**kwargs: Any) -> ClientConnection:
    return open_pair(**kwargs)[0]


def frame(
    op: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = MASK,
) -> bytes:
    """One frame on the wire, valid or not; masked (as from a client) unless mask is None."""
    header = raw_header(op, len(payload), fin=fin, rsv=(rsv1, rsv2, rsv3), mask=mask)
    return header + (apply_mask(payload, mask) if mask is not None else payload)


def raw_header(
    op: int,
    length: int,
    *,
    fin: bool = True,
    rsv: tuple[bool, bool, bool] = (False, False, False),
    mask: bytes | None = None,
    width: int = 0,
) -> bytes:
    """RFC 6455 §5.2 header bytes, written out here so that tests can build invalid frames
    (build_header refuses those). ``width`` 16 or 64 forces that length encoding even where
    a shorter one would do (not minimal, but legal to receive); 0 picks the shortest."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv[0] else 0) | (0x20 if rsv[1] else 0)
    b0 |= (0x10 if rsv[2] else 0) | op
    mbit = 0x80 if mask is not None else 0
    if width == 16 and length < 65536:
        head = bytes([b0, mbit | 126]) + length.to_bytes(2, "big")
    elif width == 64:
        head = bytes([b0, mbit | 127]) + length.to_bytes(8, "big")
    elif length < 126:
        head = bytes([b0, mbit | length])
    elif length < 65536:
        head = bytes([b0, mbit | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([b0, mbit | 127]) + length.to_bytes(8, "big")
    return head + (mask or b"")


def to_server(op: int, payload: bytes = b"", **kw: Any) -> bytes:
    return frame(op, payload, **kw)


def to_client(op: int, payload: bytes = b"", **kw: Any) -> bytes:
    return frame(op, payload, mask=None, **kw)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def sent_frames(conn: ServerConnection | ClientConnection) -> list[Any]:
    """The frames a connection has queued, unmasked (a client's must be masked)."""
    return FrameParser(require_mask=isinstance(conn, ClientConnection)).feed(conn.data_to_send())


def assert_failed(conn: ServerConnection | ClientConnection, code: int) -> list[Event]:
    """The connection failed with ``code``: the event, our close frame, then nothing more."""
    events = conn.events()
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert len(violations) == 1, events
    assert violations[0].code == code, violations[0]
    assert violations[0].message
    position = events.index(violations[0])
    assert events[position + 1 :] == [ConnectionTerminated(code, violations[0].message)]
    frames = sent_frames(conn)
    assert frames[-1].opcode == CLOSE
    assert int.from_bytes(frames[-1].payload[:2], "big") == code
    assert conn.state is State.CLOSED
    if isinstance(conn, ServerConnection):
        assert conn.should_close_transport
    # After the failure nothing is processed and nothing is sent.
    conn.receive_data(
        to_server(TEXT, b"late") if isinstance(conn, ServerConnection) else b"\x81\x00"
    )
    assert conn.events() == [] and conn.data_to_send() == b""
    return events[:position]


def feed_in_chunks(conn: Any, data: bytes, cuts: Iterable[int]) -> None:
    start = 0
    for cut in sorted(set(cuts)):
        if 0 < cut < len(data):
            conn.receive_data(data[start:cut])
            start = cut
    conn.receive_data(data[start:])


# --- messages ---------------------------------------------------------------------------


def test_text_and_binary_round_trip_both_ways() -> None:
    client, server = open_pair()
    client.send_text("héllo ☃")
    client.send_binary(bytearray(b"\x00\xff"))
    client.send_binary(memoryview(b"abcdef")[1:4])
    server.receive_data(client.data_to_send())
    assert server.events() == [
        TextMessage("héllo ☃"),
        BinaryMessage(b"\x00\xff"),
        BinaryMessage(b"bcd"),
    ]
    server.send_text("")
    server.send_binary(b"")
    client.receive_data(server.data_to_send())
    assert client.events() == [TextMessage(""), BinaryMessage(b"")]


def test_large_messages() -> None:
    client, server = open_pair(max_message_size=None)
    big = os.urandom(3 << 20)
    client.send_binary(big)
    client.send_text("é" * 100_000)
    server.receive_data(client.data_to_send())
    assert server.events() == [BinaryMessage(big), TextMessage("é" * 100_000)]
    server.send_binary(big)
    client.receive_data(server.data_to_send())
    assert client.events() == [BinaryMessage(big)]


def test_receive_data_takes_any_bytes_like_object() -> None:
    """A flat view of bytes is read as it is (the asyncio shell's reads), any other buffer as
    its bytes (a view of another item format or shape); a view with gaps cannot be read."""
    import array

    wire = to_server(BINARY, b"0123456789")
    reshaped = memoryview(bytearray(wire)).cast("B", (2, len(wire) // 2))
    inputs = [
        wire,
        bytearray(wire),
        memoryview(bytearray(wire)),
        memoryview(b"xx" + wire + b"yy")[2:-2],
        array.array("H", wire),
        memoryview(array.array("H", wire)),
        reshaped,
    ]
    assert len(wire) % 2 == 0
    for data in inputs:
        server = open_server()
        server.receive_data(data)
        assert server.events() == [BinaryMessage(b"0123456789")], type(data)
    server = open_server()
    with pytest.raises(TypeError, match="C-contiguous"):
        server.receive_data(memoryview(wire + wire)[::2])
    with pytest.raises(TypeError):
        server.receive_data("text")  # type: ignore[arg-type]


def test_bare_messages_are_their_data_and_the_other_events_stay_events() -> None:
    """After _give_bare_messages (what the asyncio shell asks), events() gives each message as
    its data: whole, fragmented or text kept as bytes; pings, pongs and the close stay events."""
    server = open_server()
    server._give_bare_messages()
    server.receive_data(
        to_server(BINARY, b"\x00\xff")
        + to_server(TEXT, "é".encode())
        + to_server(TEXT, b"fr", fin=False)
        + to_server(PING, b"p")
        + to_server(CONT, "ä".encode())
        + to_server(BINARY, b"a", fin=False)
        + to_server(CONT, b"b")
    )
    events = server.events()
    assert events == [b"\x00\xff", "é", Ping(b"p"), "frä", b"ab"]
    assert [type(event) for event in events] == [bytes, str, Ping, str, bytes]
    server.receive_data(to_server(TEXT, b"\xff"))  # invalid UTF-8 fails as before
    assert_failed(server, 1007)
    raw = open_server(decode_text=False)
    raw._give_bare_messages()
    raw.receive_data(to_server(TEXT, "ü".encode()) + to_server(CLOSE, b"\x03\xe8"))
    first, *rest = raw.events()
    assert first == "ü".encode() and type(first) is bytes
    assert [type(event) for event in rest] == [CloseReceived, ConnectionTerminated]
    plain = open_server()  # without it, as always: events
    plain.receive_data(to_server(BINARY, b"x"))
    assert plain.events() == [BinaryMessage(b"x")]


def test_send_binary_copies_a_mutable_buffer() -> None:
    client, server = open_pair()
    buffer = bytearray(b"abc")
    server.send_binary(buffer)
    buffer[:] = b"xyz"
    client.receive_data(server.data_to_send())
    assert client.events() == [BinaryMessage(b"abc")]


def test_fin_is_keyword_only() -> None:
    """send_text and send_binary keep their signature in both builds: ``fin`` by keyword
    only (the whole-message sends the asyncio shell calls in C are methods of their own)."""
    client, server = open_pair()
    sends: list[tuple[Any, Any]] = [(server.send_text, "a"), (server.send_binary, b"a")]
    for send, data in sends:
        with pytest.raises(TypeError):
            send(data, False)
        send(data, fin=False)
        send(data, fin=True)
    client.receive_data(server.data_to_send())
    assert client.events() == [TextMessage("aa"), BinaryMessage(b"aa")]


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_the_whole_message_sends_keep_every_rule_of_the_public_ones(
    deflate: bool, connection_impl: Any
) -> None:
    """_send_text and _send_binary, what the asyncio shell calls for every message, refuse
    what send_text and send_binary refuse, with the same errors: a message of the other type
    while a fragmented one is in progress, any message before the handshake and once closing
    or closed; otherwise they send as the public methods do (compressed with deflate)."""
    from connection_support import open_pair as open_pair_of

    from wsfast.permessage_deflate import ClientDeflateFactory, ServerDeflateFactory

    def pair() -> tuple[Any, Any]:
        if not deflate:
            return open_pair()
        return open_pair_of(connection_impl, [ClientDeflateFactory()], [ServerDeflateFactory()])

    def refusal(send: Any, data: Any) -> str:
        with pytest.raises(InvalidState) as caught:
            send(data)
        return str(caught.value)

    text, binary = "t" * 300, b"b" * 300
    for first, whole in [("send_binary", "_send_text"), ("send_text", "_send_binary")]:
        client, server = pair()
        fragment, data = (binary, text) if first == "send_binary" else (text, binary)
        getattr(server, first)(fragment[:1], fin=False)
        wanted = refusal(getattr(server, whole[1:]), data)
        assert "in progress" in wanted
        assert refusal(getattr(server, whole), data) == wanted
        getattr(server, first)(fragment[1:], fin=True)
        getattr(server, "_" + first)(fragment)  # the same type, whole, after the fragments
        server._send_text(text)
        server._send_binary(binary)
        client.receive_data(server.data_to_send())
        message = TextMessage(text) if first == "send_text" else BinaryMessage(binary)
        assert client.events() == [message, message, TextMessage(text), BinaryMessage(binary)]
        assert bool(server.extensions) is deflate  # negotiated: the messages went compressed

    client = ClientConnection("example.com")
    for send, data in [(client._send_text, "x"), (client._send_binary, b"x")]:
        public = getattr(client, send.__name__[1:])
        assert refusal(send, data) == refusal(public, data)
    client, server = pair()
    server.close()
    for state in (State.CLOSING, State.CLOSED):
        assert server.state is state
        for send, data in [(server._send_text, "x"), (server._send_binary, b"x")]:
            public = getattr(server, send.__name__[1:])
            assert refusal(send, data) == refusal(public, data)
            assert state.name in refusal(send, data)
        client.receive_data(server.data_to_send())
        server.receive_data(client.data_to_send())
    assert server.data_to_send() == b""


def test_decode_text_false_gives_validated_bytes() -> None:
    server = open_server(decode_text=False)
    server.receive_data(to_server(TEXT, "ünï".encode()))
    server.receive_data(to_server(TEXT, b"ab", fin=False) + to_server(CONT, "ç".encode()))
    assert server.events() == [TextBytes("ünï".encode()), TextBytes("abç".encode())]
    server.receive_data(to_server(TEXT, b"\xff"))
    assert_failed(server, 1007)


def test_decode_text_false_validates_fragments_and_chops() -> None:
    server = open_server(decode_text=False)
    server.receive_data(to_server(TEXT, b"ok", fin=False))
    server.receive_data(to_server(CONT, b"\xc3"))  # ends inside a character
    assert_failed(server, 1007)
    server = open_server(decode_text=False)
    data = to_server(TEXT, b"abc\xed\xa0\x80def")  # a surrogate: never valid
    server.receive_data(data[:10])  # header + "abc\xed": could still be valid
    assert server.state is State.OPEN
    server.receive_data(data[10:11])  # "\xa0" after "\xed": cannot
    assert_failed(server, 1007)


def test_arguments_are_taken_as_the_python_source_takes_them() -> None:
    # The compiled classes must not type arguments from their annotations (Cython would
    # refuse subclasses of str and int): both implementations accept the same values.
    class Text(str):
        pass

    class Number(int):
        pass

    client, server = open_pair(max_message_size=Number(1000))
    client.send_text(Text("sub"), fin=Number(1))  # type: ignore[arg-type]
    client.send_binary(bytearray(b"ba"))
    server.receive_data(client.data_to_send())
    assert server.events() == [TextMessage("sub"), BinaryMessage(b"ba")]
    server.close(Number(4000), Text("bye"))
    client.receive_data(server.data_to_send())
    assert client.events() == [CloseReceived(4000, "bye"), ConnectionTerminated(4000, "bye")]


def test_events_are_frozen_with_slots() -> None:
    event = TextMessage("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    fast = open_pair()
    fast[0].send_text("x")
    fast[1].receive_data(fast[0].data_to_send())
    (received,) = fast[1].events()
    assert received == event and hash(received) == hash(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        received.data = "y"  # type: ignore[misc]


# --- masking (§5.1, §5.3) ---------------------------------------------------------------


def test_server_requires_masked_frames() -> None:
    server = open_server()
    server.receive_data(to_client(TEXT, b"unmasked"))
    assert_failed(server, 1002)


def test_client_rejects_masked_frames() -> None:
    client = open_client()
    client.receive_data(to_server(TEXT, b"masked"))
    assert_failed(client, 1002)


def test_client_masks_every_frame_with_a_fresh_key() -> None:
    client, server = open_pair()
    for i in range(200):
        client.send_text(f"message {i}")
        client.send_binary(b"x" * (i % 7))
    client.send_ping(b"p")
    data = client.data_to_send()
    keys = []
    pos = 0
    while pos < len(data):
        assert data[pos + 1] & 0x80, "unmasked client frame"
        length = data[pos + 1] & 0x7F
        keys.append(data[pos + 2 : pos + 6])
        pos += 6 + length
    assert len(keys) == 401
    assert len(set(keys)) > 390  # fresh random keys (a few collisions are possible)
    server.receive_data(data)
    assert len(server.events()) == 401
    # The server never masks.
    server.send_text("x")
    assert server.data_to_send()[1] & 0x80 == 0


def test_masking_keys_come_from_batched_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = os.urandom

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    client = open_client()
    monkeypatch.setattr(os, "urandom", counting)
    for _ in range(2000):
        client.send_text("x")
    client.send_ping()
    client.close()
    assert 1 <= len(calls) <= 3, calls


# --- fragmentation (§5.4) ---------------------------------------------------------------


def test_fragmented_messages_are_assembled() -> None:
    server = open_server()
    data = (
        to_server(TEXT, b"frag", fin=False)
        + to_server(CONT, b"men", fin=False)
        + to_server(CONT, "té".encode())
        + to_server(BINARY, b"\x01", fin=False)
        + to_server(CONT, b"\x02")
    )
    server.receive_data(data)
    assert server.events() == [TextMessage("fragmenté"), BinaryMessage(b"\x01\x02")]


def test_tiny_fragments_cost_their_bytes_not_an_object_each() -> None:
    """A message in 1-byte fragments (7 bytes each on the wire) used to keep a bytes object
    per fragment while it was assembled: 50 times its size in memory, up to 1 MiB."""
    import tracemalloc

    server = open_server(max_message_size=None)
    size = 64 * 1024
    payload = bytes(range(256)) * (size // 256)
    wire = b"".join(
        to_server(BINARY if i == 0 else CONT, payload[i : i + 1], fin=i == size - 1)
        for i in range(size)
    )
    tracemalloc.start()
    try:
        for i in range(0, len(wire) - 7, 65536):  # all but the last fragment
            server.receive_data(wire[i : min(i + 65536, len(wire) - 7)])
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    server.receive_data(wire[-7:])
    assert server.events() == [BinaryMessage(payload)]
    assert held < 4 * size, held  # about the payload so far, not 34+8 bytes per fragment


def test_control_frames_may_interleave_with_fragments() -> None:
    server = open_server()
    server.receive_data(
        to_server(TEXT, b"a", fin=False)
        + to_server(PING, b"ping!")
        + to_server(CONT, b"b", fin=False)
        + to_server(PONG, b"unsolicited")
        + to_server(CONT, b"c")
    )
    assert server.events() == [Ping(b"ping!"), Pong(b"unsolicited"), TextMessage("abc")]
    (pong,) = sent_frames(server)
    assert (pong.opcode, pong.payload) == (PONG, b"ping!")


def test_continuation_with_nothing_to_continue() -> None:
    server = open_server()
    server.receive_data(to_server(CONT, b"orphan"))
    assert_failed(server, 1002)


def test_continuation_after_a_finished_message() -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, b"done") + to_server(CONT, b"more"))
    assert assert_failed(server, 1002) == [TextMessage("done")]


@pytest.mark.parametrize("second", [TEXT, BINARY])
def test_new_data_frame_inside_a_fragmented_message(second: int) -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, b"a", fin=False) + to_server(second, b"b"))
    assert_failed(server, 1002)


def test_fragmentation_errors_are_caught_from_the_header() -> None:
    # The offending frame's payload has not arrived yet: fail without waiting for it.
    server = open_server()
    server.receive_data(to_server(CONT, b"x" * 500)[:8])
    assert_failed(server, 1002)
    server = open_server()
    server.receive_data(to_server(BINARY, b"a", fin=False) + to_server(TEXT, b"x" * 500)[:8])
    assert_failed(server, 1002)


@pytest.mark.parametrize(
    "data",
    [
        to_server(PING, b"x", fin=False),  # fragmented control frame (§5.5)
        to_server(PING, b"x" * 126)[:8],  # control payload over 125 (§5.5)
        to_server(3, b"x"),  # reserved opcodes (§5.2)
        to_server(0xB, b"x"),
    ],
    ids=["fragmented-ping", "long-ping", "opcode-3", "opcode-0xB"],
)
def test_framing_violations(data: bytes) -> None:
    server = open_server()
    server.receive_data(data)
    assert_failed(server, 1002)


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize("op", [TEXT, BINARY, PING, CONT])
def test_reserved_bits_without_an_extension(rsv: str, op: int) -> None:
    server = open_server()
    prefix = to_server(TEXT, b"a", fin=False) if op == CONT else b""
    server.receive_data(prefix + to_server(op, b"x", **{rsv: True}))
    assert_failed(server, 1002)


def test_reserved_bits_are_caught_from_the_header() -> None:
    server = open_server()
    server.receive_data(to_server(BINARY, b"x" * 1000, rsv1=True)[:10])
    assert_failed(server, 1002)


def test_frames_before_a_bad_frame_are_delivered_first() -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, b"one") + to_server(BINARY, b"two") + to_server(7, b"!"))
    assert assert_failed(server, 1002) == [TextMessage("one"), BinaryMessage(b"two")]


# --- UTF-8 (§8.1) -----------------------------------------------------------------------


def test_invalid_utf8_in_a_single_frame() -> None:
    server = open_server()
    server.receive_data(
        to_server(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
    )
    assert_failed(server, 1007)


def test_valid_utf8_split_inside_characters_across_fragments() -> None:
    server = open_server()
    data = "κόσμε 😀".encode()
    cuts = [1, 2, 5, 9, len(data) - 2, len(data) - 1]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    stream = b"".join(
        to_server(TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    )
    server.receive_data(stream)
    assert server.events() == [TextMessage("κόσμε 😀")]


# Autobahn 6.4.1: PART1 valid, PART2 makes it invalid (U+110000), PART3 valid on its own.
PART1 = bytes.fromhex("cebae1bdb9cf83cebcceb5")
PART2 = bytes.fromhex("f4908080")
PART3 = bytes.fromhex("656469746564")


def test_invalid_utf8_fails_at_the_fragment_not_at_the_end() -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, PART1, fin=False))
    assert server.events() == [] and server.state is State.OPEN
    server.receive_data(to_server(CONT, PART2, fin=False))  # no need to wait for PART3
    assert_failed(server, 1007)


def test_invalid_utf8_fails_at_the_chop_inside_one_frame() -> None:
    # Autobahn 6.4.3: one frame, sent in three chops: fail on the second.
    server = open_server()
    data = to_server(TEXT, PART1 + PART2 + PART3)
    header = len(data) - len(PART1 + PART2 + PART3)
    server.receive_data(data[: header + len(PART1)])
    assert server.events() == [] and server.data_to_send() == b""
    server.receive_data(data[header + len(PART1) : header + len(PART1 + PART2)])
    assert_failed(server, 1007)


def test_invalid_utf8_fails_at_the_first_impossible_byte() -> None:
    # Autobahn 6.4.4: 0xF4 alone may still start a character; 0xF4 0x90 cannot.
    server = open_server()
    data = to_server(TEXT, PART1 + PART2 + PART3)
    header = len(data) - len(PART1 + PART2 + PART3)
    server.receive_data(data[: header + len(PART1) + 1])
    assert server.events() == [] and server.state is State.OPEN
    server.receive_data(data[header + len(PART1) + 1 : header + len(PART1) + 2])
    assert_failed(server, 1007)


def test_invalid_utf8_fails_at_the_chop_with_the_header_in_pieces() -> None:
    # As 6.4.3, with the header itself cut and the length not minimally encoded.
    payload = PART1 + PART2 + PART3
    data = raw_header(TEXT, len(payload), mask=MASK, width=64) + apply_mask(payload, MASK)
    server = open_server()
    for i in range(1, 15):  # the 14-byte header, one byte at a time
        server.receive_data(data[i - 1 : i])
    server.receive_data(data[14 : 14 + len(PART1)])
    assert server.events() == [] and server.data_to_send() == b""
    server.receive_data(data[14 + len(PART1) : 14 + len(PART1) + 2])
    assert_failed(server, 1007)


def test_big_text_frame_is_validated_once_as_it_arrives() -> None:
    # A 1 MiB frame in 1 KiB reads: every read is checked, and the message arrives intact.
    text = "κόσμε ☃ " * (1 << 16)
    data = to_server(TEXT, text.encode())
    for decode_text in (True, False):
        server = open_server(max_message_size=None, decode_text=decode_text)
        feed_in_chunks(server, data, range(0, len(data), 1024))
        assert server.events() == [TextMessage(text) if decode_text else TextBytes(text.encode())]


def test_fragmented_text_fails_fast_inside_a_chopped_continuation() -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, PART1, fin=False))
    data = to_server(CONT, PART2 + PART3)
    server.receive_data(data[:7])  # header + the first byte of PART2
    assert server.state is State.OPEN
    server.receive_data(data[7:8])
    assert_failed(server, 1007)


def test_text_ending_inside_a_character() -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, b"ab", fin=False) + to_server(CONT, b"\xe2\x82"))
    assert_failed(server, 1007)


def test_client_validates_text_too() -> None:
    client = open_client()
    client.receive_data(to_client(TEXT, b"\xc0\xaf"))
    assert_failed(client, 1007)


# --- closing (§5.5.1, §7) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
def test_valid_close_is_answered_with_the_same_code(code: int) -> None:
    server = open_server()
    server.receive_data(to_server(CLOSE, close_payload(code, "bye ☃".encode())))
    assert server.events() == [CloseReceived(code, "bye ☃"), ConnectionTerminated(code, "bye ☃")]
    (reply,) = sent_frames(server)
    assert reply.opcode == CLOSE and int.from_bytes(reply.payload[:2], "big") == code
    assert server.state is State.CLOSED and server.should_close_transport
    assert (server.close_code, server.close_reason) == (code, "bye ☃")


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_invalid_close_codes(code: int) -> None:
    server = open_server()
    server.receive_data(to_server(CLOSE, close_payload(code)))
    assert_failed(server, 1002)


def test_close_with_a_one_byte_payload() -> None:
    server = open_server()
    server.receive_data(to_server(CLOSE, b"\x03"))
    assert_failed(server, 1002)


def test_close_reason_must_be_valid_utf8() -> None:
    server = open_server()
    server.receive_data(to_server(CLOSE, close_payload(1000, PART1 + PART2)))
    assert_failed(server, 1007)


def test_empty_close_is_1005_and_answered_empty() -> None:
    server = open_server()
    server.receive_data(to_server(CLOSE))
    assert server.events() == [CloseReceived(1005, ""), ConnectionTerminated(1005, "")]
    (reply,) = sent_frames(server)
    assert reply.opcode == CLOSE and reply.payload == b""


def test_closing_handshake_started_by_the_client() -> None:
    client, server = open_pair()
    client.close(1000, "done")
    assert client.state is State.CLOSING
    assert client.events() == []
    server.receive_data(client.data_to_send())
    assert server.events() == [CloseReceived(1000, "done"), ConnectionTerminated(1000, "done")]
    # RFC 6455 §7.1.1: the server closes the TCP connection first.
    assert server.should_close_transport
    client.receive_data(server.data_to_send())
    assert client.events() == [CloseReceived(1000, ""), ConnectionTerminated(1000, "")]
    assert client.state is State.CLOSED and not client.should_close_transport
    client.receive_eof()  # the server's TCP close
    assert client.should_close_transport and client.events() == []


def test_closing_handshake_started_by_the_server() -> None:
    client, server = open_pair()
    server.close(4001, "go away")
    client.receive_data(server.data_to_send())
    assert client.events() == [
        CloseReceived(4001, "go away"),
        ConnectionTerminated(4001, "go away"),
    ]
    assert client.state is State.CLOSED and not client.should_close_transport
    server.receive_data(client.data_to_send())
    assert server.events() == [CloseReceived(4001, ""), ConnectionTerminated(4001, "")]
    assert server.should_close_transport


def test_nothing_is_sent_after_our_close() -> None:
    client, server = open_pair()
    server.close()
    server.data_to_send()
    for send in (
        lambda: server.send_text("x"),
        lambda: server.send_binary(b"x"),
        lambda: server.send_ping(),
        lambda: server.send_pong(),
    ):
        with pytest.raises(InvalidState):
            send()
    server.close()  # a no-op now
    # Data still arrives while closing; pings are not answered any more.
    client.send_text("in flight")
    client.send_ping(b"?")
    server.receive_data(client.data_to_send())
    assert server.events() == [TextMessage("in flight"), Ping(b"?")]
    assert server.data_to_send() == b""


def test_close_frame_is_validated_while_closing() -> None:
    server = open_server()
    server.close()
    server.data_to_send()
    server.receive_data(to_server(CLOSE, close_payload(1000, b"\xff")))
    events = server.events()
    assert events == [
        ProtocolViolation(1007, events[0].message),  # type: ignore[attr-defined]
        ConnectionTerminated(1007, events[0].message),  # type: ignore[attr-defined]
    ]
    assert server.data_to_send() == b""  # our close frame went out already


def test_close_arguments_are_checked() -> None:
    client, server = open_pair()
    for code in (999, 1004, 1005 + 1, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            server.close(code)
    with pytest.raises(ValueError):
        server.close(1000, "x" * 124)
    with pytest.raises(ValueError):
        server.close(1005, "reason")
    server.close(1005)
    (frame_,) = sent_frames(server)
    assert frame_.payload == b""
    with pytest.raises(InvalidState):
        ServerConnection().close()


def test_eof_without_close_is_1006() -> None:
    client, server = open_pair()
    server.receive_eof()
    assert server.events() == [ConnectionTerminated(1006, "")]
    assert server.state is State.CLOSED and server.should_close_transport
    server.receive_eof()  # idempotent
    with pytest.raises(InvalidState):
        server.receive_data(b"x")
    fresh = ServerConnection()
    fresh.receive_eof()
    assert fresh.events() == [ConnectionTerminated(1006, "")]


def test_protocol_error_from_the_client_side_waits_for_the_server() -> None:
    client = open_client()
    client.receive_data(to_client(CONT, b"x"))
    assert_failed(client, 1002)
    assert not client.should_close_transport  # the server closes TCP first (§7.1.1)
    client.receive_eof()
    assert client.should_close_transport


# --- ping / pong (§5.5.2, §5.5.3) ---------------------------------------------------------


def test_ping_is_answered_with_the_same_payload() -> None:
    client, server = open_pair()
    client.send_ping(b"\x00hello\xff")
    server.receive_data(client.data_to_send())
    assert server.events() == [Ping(b"\x00hello\xff")]
    client.receive_data(server.data_to_send())
    assert client.events() == [Pong(b"\x00hello\xff")]


def test_auto_pong_can_be_turned_off() -> None:
    client, server = open_pair(auto_pong=False)
    client.send_ping(b"1")
    server.receive_data(client.data_to_send())
    assert server.events() == [Ping(b"1")]
    assert server.data_to_send() == b""
    server.send_pong(b"1")
    client.receive_data(server.data_to_send())
    assert client.events() == [Pong(b"1")]


def test_control_payload_limit_on_send() -> None:
    client, _ = open_pair()
    client.send_ping(b"x" * 125)
    with pytest.raises(ValueError):
        client.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        client.send_pong(bytearray(126))


# --- limits (§10.4) ---------------------------------------------------------------------


def test_max_message_size_from_the_frame_header() -> None:
    server = open_server(max_message_size=100)
    server.receive_data(to_server(TEXT, b"x" * 100))
    assert server.events() == [TextMessage("x" * 100)]
    server.receive_data(to_server(BINARY, b"x" * 101)[:8])  # the header only
    assert_failed(server, 1009)


def test_max_message_size_over_fragments() -> None:
    server = open_server(max_message_size=100)
    server.receive_data(to_server(BINARY, b"x" * 60, fin=False) + to_server(CONT, b"x" * 41))
    assert_failed(server, 1009)


def test_max_message_size_over_fragments_from_the_header() -> None:
    server = open_server(max_message_size=100)
    server.receive_data(to_server(BINARY, b"x" * 60, fin=False))
    server.receive_data(to_server(CONT, b"x" * 41)[:8])  # header only: decided already
    assert_failed(server, 1009)


def test_max_frame_size() -> None:
    server = open_server(max_frame_size=10, max_message_size=None)
    server.receive_data(to_server(BINARY, b"x" * 10, fin=False) + to_server(CONT, b"x" * 10))
    assert server.events() == [BinaryMessage(b"x" * 20)]
    server.receive_data(to_server(BINARY, b"x" * 11)[:8])
    assert_failed(server, 1009)


def test_no_limits() -> None:
    client, server = open_pair(max_message_size=None, max_frame_size=None)
    client.send_binary(b"x" * (2 << 20))
    server.receive_data(client.data_to_send())
    assert server.events() == [BinaryMessage(b"x" * (2 << 20))]


def test_limits_must_be_non_negative() -> None:
    with pytest.raises(ValueError):
        ServerConnection(max_message_size=-1)
    with pytest.raises(ValueError):
        ClientConnection("x", max_frame_size=-1)


# --- sending fragments, states ------------------------------------------------------------


def test_sending_fragments_with_interleaved_control_frames() -> None:
    client, server = open_pair()
    client.send_text("ab", fin=False)
    client.send_ping(b"between")
    client.send_text("cd", fin=False)
    with pytest.raises(InvalidState):
        client.send_binary(b"not now")
    client.send_text("ef")
    client.send_binary(b"xy", fin=False)
    client.send_binary(b"z")
    frames = FrameParser(require_mask=True).feed(data := client.data_to_send())
    assert [(f.opcode, f.fin) for f in frames] == [
        (TEXT, False),
        (PING, True),
        (CONT, False),
        (CONT, True),
        (BINARY, False),
        (CONT, True),
    ]
    server.receive_data(data)
    assert server.events() == [Ping(b"between"), TextMessage("abcdef"), BinaryMessage(b"xyz")]


def test_nothing_can_be_sent_before_the_handshake() -> None:
    client = ClientConnection("example.com")
    server = ServerConnection()
    for conn in (client, server):
        with pytest.raises(InvalidState):
            conn.send_text("x")
        with pytest.raises(InvalidState):
            conn.send_ping()
        assert conn.state is State.CONNECTING


def test_data_after_close_is_ignored() -> None:
    client, server = open_pair()
    client.send_text("x")
    client.close()
    client.data_to_send()
    server.receive_data(to_server(CLOSE, close_payload(1000)) + to_server(TEXT, b"after"))
    assert server.events() == [CloseReceived(1000, ""), ConnectionTerminated(1000, "")]
    server.receive_data(to_server(TEXT, b"later"))
    assert server.events() == []


# --- extensions plug in (§9) --------------------------------------------------------------


class Reverser:
    """A toy extension: data payloads travel reversed, flagged with RSV1."""

    name = "x-reverse"

    def decode(self, frame: Any, *, max_size: int | None) -> Any:
        if not frame.rsv1:
            return frame
        payload = frame.payload[::-1]
        if max_size is not None and len(payload) > max_size:
            raise ProtocolError("decoded message too big", 1009)
        return type(frame)(frame.opcode, payload, frame.fin)

    def encode(self, frame: Any) -> Any:
        if frame.opcode >= 8:
            return frame
        return type(frame)(frame.opcode, frame.payload[::-1], frame.fin, True)


class ReverserFactory:
    name = "x-reverse"

    def accept(self, params: Any, accepted: Sequence[Any]) -> Any:
        return (), Reverser()

    def offer(self) -> Any:
        return ()

    def complete(self, params: Any, accepted: Sequence[Any]) -> Any:
        return Reverser()


def test_a_negotiated_extension_owns_its_rsv_bit() -> None:
    client = ClientConnection("example.com", extensions=[ReverserFactory()])
    server = ServerConnection(extensions=[ReverserFactory()])
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    (accepted,) = client.events()
    assert accepted.extensions == ("x-reverse",)  # type: ignore[attr-defined]
    assert [e.name for e in server.extensions] == ["x-reverse"]
    client.send_text("hello")
    client.send_binary(b"ab", fin=False)
    client.send_ping(b"p")
    client.send_binary(b"cd")
    data = client.data_to_send()
    first = FrameParser(require_mask=True).feed(data)[0]
    assert first.rsv1 and first.payload == b"olleh"
    server.receive_data(data)
    # Each fragment is reversed on its own, so the message is "ba" + "dc".
    assert server.events() == [TextMessage("hello"), Ping(b"p"), BinaryMessage(b"abcd")]
    # A frame arriving in pieces is not validated before the extension decoded it: "é"
    # reversed is not UTF-8.
    client.send_text("héllo ☃")
    data = client.data_to_send()
    feed_in_chunks(server, data, range(len(data)))
    assert server.events() == [TextMessage("héllo ☃")]
    # RSV2 is still nobody's.
    server.receive_data(to_server(TEXT, b"x", rsv2=True))
    assert_failed(server, 1002)


# --- properties -------------------------------------------------------------------------

message_strategy = st.one_of(
    st.text(max_size=300).map(lambda s: ("text", s)),
    st.binary(max_size=300).map(lambda b: ("binary", b)),
)


@given(
    messages=st.lists(message_strategy, max_size=8),
    data=st.data(),
)
def test_random_fragmented_messages_round_trip(
    messages: list[tuple[str, str | bytes]], data: st.DataObject
) -> None:
    client, server = open_pair()
    expected: list[Event] = []
    for sender, receiver in ((client, server), (server, client)):
        expected = []
        for kind, content in messages:
            cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=4)))
            pieces = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True)]
            for i, piece in enumerate(pieces):
                if data.draw(st.booleans()):
                    ping = data.draw(st.binary(max_size=125))
                    sender.send_ping(ping)
                    expected.append(Ping(ping))
                last = i == len(pieces) - 1
                if kind == "text":
                    sender.send_text(piece, fin=last)  # type: ignore[arg-type]
                else:
                    sender.send_binary(piece, fin=last)  # type: ignore[arg-type]
            expected.append(TextMessage(content) if kind == "text" else BinaryMessage(content))  # type: ignore[arg-type]
        stream = sender.data_to_send()
        feed_in_chunks(
            receiver, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
        )
        assert receiver.events() == expected
        # Every ping was answered with its own payload.
        pongs = [e for e in expected if isinstance(e, Ping)]
        sender.receive_data(receiver.data_to_send())
        assert sender.events() == [Pong(p.payload) for p in pongs]


@given(text=st.text(min_size=1, max_size=200), data=st.data())
def test_text_split_at_any_byte_and_chopped_anywhere(text: str, data: st.DataObject) -> None:
    encoded = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(1, len(encoded)), max_size=5)))
    pieces = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
    stream = b"".join(
        to_server(TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    )
    for decode_text in (True, False):
        server = open_server(decode_text=decode_text)
        feed_in_chunks(
            server, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
        )
        assert server.events() == [TextMessage(text) if decode_text else TextBytes(encoded)]


frame_strategy = st.builds(
    lambda op, payload, fin, rsv, close, width: (op, payload, fin, rsv, close, width),
    st.sampled_from([0, 1, 1, 2, 2, 3, 8, 9, 10, 0xB]),
    st.one_of(
        st.binary(max_size=140),
        st.text(max_size=40).map(str.encode),
        st.sampled_from([PART1 + PART2, b"\xf4", b"\xe2\x82", b"\xc3\xa9"]),
    ),
    st.booleans(),
    st.sampled_from([(False, False, False)] * 6 + [(True, False, False), (False, False, True)]),
    st.one_of(st.none(), st.integers(0, 5000)),
    st.sampled_from([0, 0, 0, 16, 64]),  # length encoding: minimal, or wider than needed
)


def normalize(events: list[Event]) -> list[Any]:
    """Events with failure messages dropped: which check words it may depend on timing."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, ProtocolViolation):
            out.append(("violation", event.code))
        elif isinstance(event, ConnectionTerminated) and ("violation", event.code) in out:
            out.append(("closed", event.code))
        else:
            out.append(event)
    return out


def build_stream(frames: list[Any], masked: bool) -> bytes:
    chunks = []
    for op, payload, fin, (r1, r2, r3), close, width in frames:
        if op == 8 and close is not None:
            payload = close.to_bytes(2, "big") + payload[:100]
        if op >= 8:
            payload = payload[:125]
            fin = True if op != 0xB else fin
        header = raw_header(
            op, len(payload), fin=fin, rsv=(r1, r2, r3), mask=MASK if masked else None, width=width
        )
        chunks.append(header + (apply_mask(payload, MASK) if masked else payload))
    return b"".join(chunks)


@given(frames=st.lists(frame_strategy, max_size=12), data=st.data())
def test_chopping_never_changes_the_outcome(frames: list[Any], data: st.DataObject) -> None:
    """Whatever frames arrive, in one piece or chopped, the events are the same (failing
    fast only changes when, never what), and nothing raises."""
    for make, masked in ((open_server, True), (open_client, False)):
        stream = build_stream(frames, masked)
        whole = make(max_message_size=300)
        whole.receive_data(stream)
        chopped = make(max_message_size=300)
        feed_in_chunks(
            chopped, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
        )
        expected = normalize(whole.events())
        assert normalize(chopped.events()) == expected
        assert whole.state is chopped.state
        if (
            ("violation", 1002) in expected
            or ("violation", 1007) in expected
            or ("violation", 1009) in expected
        ):
            assert whole.state is State.CLOSED


@given(chunks=st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    """Garbage gives, at worst, a protocol-error close; never an exception."""
    for conn in (open_server(), open_client(), ServerConnection(), ClientConnection("x")):
        for chunk in chunks:
            conn.receive_data(chunk)
        events = conn.events()
        violations = [i for i, e in enumerate(events) if isinstance(e, ProtocolViolation)]
        if violations:
            (i,) = violations
            assert events[i].code in (1002, 1007, 1009)  # type: ignore[attr-defined]
            assert isinstance(events[i + 1], ConnectionTerminated) and len(events) == i + 2
            frames = sent_frames(conn)
            assert frames[-1].opcode == CLOSE
        conn.receive_eof()
        assert conn.state is State.CLOSED
        rest = [e for e in conn.events() if not isinstance(e, ConnectionTerminated)]
        assert rest == [] or (isinstance(conn, ClientConnection) and len(rest) == 1)


@given(prefix=st.binary(max_size=30), junk=st.binary(min_size=1, max_size=50))
def test_garbage_after_valid_frames(prefix: bytes, junk: bytes) -> None:
    server = open_server()
    server.receive_data(to_server(TEXT, b"fine") + junk)
    events = server.events()
    assert events[0] == TextMessage("fine")
    for event in events[1:]:
        assert isinstance(
            event,
            (
                TextMessage,
                BinaryMessage,
                Ping,
                Pong,
                CloseReceived,
                ProtocolViolation,
                ConnectionTerminated,
            ),
        )


@pytest.mark.parametrize("width", [16, 64])
@pytest.mark.parametrize("payload", [b"hello", "κόσμε ☃".encode() * 30])
def test_non_minimal_length_encoding_is_accepted(width: int, payload: bytes) -> None:
    # RFC 6455 §5.2 asks senders for the minimal encoding; receiving a longer one is harmless
    # and the parser accepts it. Chopped at every position, the message still arrives.
    for masked, make in ((True, open_server), (False, open_client)):
        mask = MASK if masked else None
        head = raw_header(TEXT, len(payload), mask=mask, width=width)
        data = head + (apply_mask(payload, MASK) if masked else payload)
        data += raw_header(BINARY, 3, mask=mask, width=width) + (
            apply_mask(b"bin", MASK) if masked else b"bin"
        )
        expected = [TextMessage(payload.decode()), BinaryMessage(b"bin")]
        conn = make()
        conn.receive_data(data)
        assert conn.events() == expected
        for cut in range(1, len(data)):
            conn = make()
            conn.receive_data(data[:cut])
            conn.receive_data(data[cut:])
            assert conn.events() == expected, cut
            assert conn.state is State.OPEN
        conn = make(decode_text=False)
        feed_in_chunks(conn, data, range(len(data)))  # one byte at a time
        assert conn.events() == [TextBytes(payload), BinaryMessage(b"bin")]


@given(
    text=st.text(min_size=1, max_size=200),
    widths=st.lists(st.sampled_from([0, 16, 64]), min_size=6, max_size=6),
    data=st.data(),
)
def test_any_length_encoding_chopped_anywhere(
    text: str, widths: list[int], data: st.DataObject
) -> None:
    encoded = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(1, len(encoded)), max_size=5)))
    pieces = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
    stream = b"".join(
        raw_header(
            TEXT if i == 0 else CONT, len(piece), fin=i == len(pieces) - 1, mask=MASK, width=w
        )
        + apply_mask(piece, MASK)
        for i, (piece, w) in enumerate(zip(pieces, widths, strict=False))
    )
    server = open_server()
    feed_in_chunks(server, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    assert server.events() == [TextMessage(text)]


def test_pxd_declares_exactly_the_slots(connection_impl: Any) -> None:
    """_connection_c.pxd (the C types of the compiled connection) matches the __slots__ of
    _connection_py.py, its source; instances have no __dict__ either way."""
    import re

    source = importlib.import_module("wsfast._connection_py")
    pxd = Path(source.__file__).with_name("_connection_c.pxd")
    if not pxd.exists():
        pytest.skip("_connection_c.pxd is not installed next to the module")
    declared: dict[str, list[str]] = {}
    current = ""
    for line in pxd.read_text().splitlines():
        if match := re.match(r"cdef class (\w+)", line):
            current = match.group(1)
            declared[current] = []
        elif match := re.match(r"\s+cdef [\w ]+? (\w+)$", line):
            declared[current].append(match.group(1))
    for name in ("Connection", "ServerConnection", "ClientConnection"):
        cls = getattr(source, name)
        assert sorted(declared[name]) == sorted(cls.__dict__["__slots__"]), name
    for conn in (ServerConnection(), ClientConnection("x"), open_server(), open_client()):
        assert not hasattr(conn, "__dict__")


# --- which implementation wsfast.connection exports ---------------------------------------


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent,
    )


EXPORTED = (
    "import wsfast, wsfast.connection as c; "
    "print(c.implementation, c.ServerConnection.__module__, c.ClientConnection.__module__, "
    "c.Connection.__module__, c.State.__module__, c.InvalidState.__module__, "
    "wsfast.ServerConnection is c.ServerConnection)"
)


def test_no_extensions_exports_the_python_connection() -> None:
    result = run_python(EXPORTED, WSFAST_NO_EXTENSIONS="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python"] + ["wsfast._connection_py"] * 5 + ["True"]


def test_exported_connection_follows_the_environment(require_extensions: bool) -> None:
    """The compiled connection is exported whenever extensions are required (CI, wheels);
    the Python one under WSFAST_NO_EXTENSIONS=1."""
    exported = connection_module.ServerConnection
    if env_flag("WSFAST_NO_EXTENSIONS"):
        assert connection_module.implementation == "python"
        assert exported.__module__ == "wsfast._connection_py"
        return
    if not require_extensions and COMPILED is None:
        assert exported.__module__ == "wsfast._connection_py"
        pytest.skip(f"the compiled connection is not built ({COMPILED_ERROR})")
    assert connection_module.implementation == "cython"
    assert exported.__module__ == "wsfast._connection_c"
    module = sys.modules[exported.__module__]
    assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
    for name in ("Connection", "ClientConnection", "State", "InvalidState"):
        assert getattr(connection_module, name).__module__ == "wsfast._connection_c", name
    # Nothing but the extension module is installed under that name.
    assert not Path(module.__file__).with_name("_connection_c.py").exists()


# --- deferred failure: answering what came before a bad frame ------------------------------


def _open_pair_deferred() -> tuple[Any, Any]:
    from wsfast.connection import ClientConnection, ServerConnection

    server = ServerConnection(defer_failure=True)
    client = ClientConnection("example.com")
    server.receive_data(client.data_to_send())
    [request] = server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    return server, client


def test_deferred_failure_lets_the_application_answer_first() -> None:
    import wsfast
    from wsfast.connection import State

    server, client = _open_pair_deferred()
    client.send_text("Hello")
    good = client.data_to_send()
    key = b"\x01\x02\x03\x04"
    bad = wsfast.build_header(wsfast.Opcode.TEXT, 0, rsv2=True, mask=key)
    server.receive_data(good + bad)
    events = server.events()
    assert [type(e).__name__ for e in events] == ["TextMessage", "ProtocolViolation"]
    assert events[1].code == 1002
    assert server.failing and server.state is State.OPEN
    assert server.data_to_send() == b""  # no close frame yet
    server.receive_data(good)  # nothing more is read
    assert server.events() == []
    server.send_text(events[0].data)  # the echo still goes out...
    server.fail()  # ...before the close frame
    assert not server.failing and server.state is State.CLOSED
    assert [type(e).__name__ for e in server.events()] == ["ConnectionTerminated"]
    client.receive_data(server.data_to_send())
    got = client.events()
    assert got[0] == wsfast.TextMessage("Hello")
    assert (got[1].code, got[-1].code) == (1002, 1002)  # CloseReceived, ConnectionTerminated


def test_deferred_failure_close_sends_the_violation_code() -> None:
    import wsfast

    server, client = _open_pair_deferred()
    key = b"\x01\x02\x03\x04"
    server.receive_data(wsfast.build_header(wsfast.Opcode.CONTINUATION, 0, mask=key))
    assert server.failing
    server.close(1000, "bye")  # the violation's code wins
    frames = wsfast.FrameParser(require_mask=False).feed(server.data_to_send())
    assert frames[0].payload[:2] == (1002).to_bytes(2, "big")


def test_deferred_failure_then_eof() -> None:
    import wsfast
    from wsfast.connection import State

    server, client = _open_pair_deferred()
    server.receive_data(wsfast.build_header(wsfast.Opcode.CONTINUATION, 0, mask=b"abcd"))
    assert server.failing
    server.receive_eof()
    assert not server.failing and server.state is State.CLOSED
    closed = server.events()[-1]
    assert isinstance(closed, wsfast.ConnectionTerminated)
    assert closed.code == 1002  # as an immediate failure would have ended
    assert server.should_close_transport


def test_chunks_to_send_keeps_large_payloads_whole() -> None:
    server, client = _open_pair_deferred()
    big = b"a" * 100_000
    server.send_binary(big)
    server.send_text("hi")
    chunks = server.chunks_to_send()
    assert b"".join(chunks)[-100_004:-4] == big
    assert any(chunk is big for chunk in chunks)  # the payload itself, not a copy
    assert server.chunks_to_send() == [] and server.data_to_send() == b""
    client.receive_data(b"".join(chunks))
    assert [type(e).__name__ for e in client.events()] == ["BinaryMessage", "TextMessage"]


def test_connection_closed_is_a_deprecated_alias_of_connection_terminated() -> None:
    # The event was renamed so that it cannot be confused with wsfast.asyncio.ConnectionClosed.
    import wsfast.events

    with pytest.warns(DeprecationWarning, match="ConnectionTerminated"):
        assert wsfast.ConnectionClosed is wsfast.ConnectionTerminated
    with pytest.warns(DeprecationWarning, match="ConnectionTerminated"):
        assert wsfast.events.ConnectionClosed is wsfast.events.ConnectionTerminated
    with pytest.raises(AttributeError):
        wsfast.events.NoSuchEvent  # noqa: B018
    assert "ConnectionClosed" not in wsfast.__all__


@pytest.mark.parametrize("option", ["max_head_size", "max_header_lines"])
def test_head_limits_are_ints_in_both_builds(option: str) -> None:
    """The compiled connection keeps these limits in C integers and refuses a float: the
    Python one refuses it too, with the same TypeError."""
    with pytest.raises(TypeError):
        ServerConnection(**{option: 1e4})
    with pytest.raises(TypeError):
        ClientConnection("example.com", **{option: 100.0})
    assert ServerConnection(**{option: 100}).state is State.CONNECTING
