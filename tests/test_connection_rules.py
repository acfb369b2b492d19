"""Each shortcut of the connection gives what the general route it is derived from gives.

The connection keeps each RFC 6455 rule in one function (``_check_start``, ``_check_rsv``,
``_check_size``, ``_check_text`` / ``_end_text``, ``_receive_close``; framing in
``_write_frame``). ``receive_data`` hands whole one-frame messages straight to ``_deliver``
and ``send_text`` / ``send_binary`` go straight to ``_write_frame`` when nothing else can
apply; ``_set_shortcuts(False)`` turns both off. Here random frame sequences (valid and not,
cut at random places) and random send calls go through two connections, one with the
shortcuts and one without, and everything they produce is compared: events, the bytes they
send (unmasked, for a client), states and exceptions. Likewise a connection giving its
messages bare (``_give_bare_messages``, the asyncio shell's) against one giving events.

Both builds: the compiled connection (id ``cython``) and its Python source (``python``).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from connection_support import open_pair
from hypothesis import given
from hypothesis import strategies as st

from wsfast import FrameParser, ProtocolError, apply_mask
from wsfast.events import (
    BinaryMessage,
    ConnectionTerminated,
    ProtocolViolation,
    TextBytes,
    TextMessage,
)
from wsfast.permessage_deflate import ClientDeflateFactory, ServerDeflateFactory

MASK = b"\x37\xfa\x21\x3d"


def raw_frame(op: int, payload: bytes, fin: bool, rsv: int, mask: bytes | None) -> bytes:
    """Any frame, valid or not (``rsv``: the three bits as 0-7)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 0x10000:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


TEXTS = st.text(max_size=40).map(lambda s: s.encode())
PAYLOADS = st.one_of(
    TEXTS,
    TEXTS.map(lambda b: b + b"\xe2\x82"),  # ends inside a character
    TEXTS.map(lambda b: b"\xe2" + b),  # an invalid sequence up front (mostly)
    st.binary(max_size=40),
    st.just(b"\xed\xa0\x80"),  # a surrogate: not UTF-8
    st.binary(min_size=126, max_size=300),  # 16-bit lengths; too long for control frames
    st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\x03", b"\x03\xed", b"\x0b\xb8\xff"]),
)


@st.composite
def frame_specs(draw: st.DrawFn) -> tuple[int, bytes, bool, int, bool]:
    op = draw(st.sampled_from([0, 1, 2, 8, 9, 10] * 4 + [3, 11]))
    payload = draw(PAYLOADS)
    fin = draw(st.sampled_from([True, True, True, False]))
    rsv = draw(st.sampled_from([0] * 12 + [1, 2, 4, 7]))
    right_mask = draw(st.sampled_from([True] * 15 + [False]))
    return op, payload, fin, rsv, right_mask


OPTIONS = st.fixed_dictionaries(
    {
        "max_message_size": st.sampled_from([None, 1 << 20, 60, 5]),
        "max_frame_size": st.sampled_from([None, 200]),
        "decode_text": st.booleans(),
        "auto_pong": st.booleans(),
        "defer_failure": st.booleans(),
    }
)


def both(module: Any, options: dict[str, Any], side: int) -> tuple[Any, Any]:
    """Two equal connections of one side (0: client, 1: server); the second takes no
    shortcut."""
    fast = open_pair(module, **options)[side]
    general = open_pair(module, **options)[side]
    general._set_shortcuts(False)
    return fast, general


def test_without_shortcuts_every_frame_and_send_takes_the_general_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The comparisons below compare two routes only if _set_shortcuts(False) really leaves
    the shortcuts (checked on the Python build, whose methods can be watched)."""
    module = importlib.import_module("wsfast._connection_py")
    calls: list[str] = []
    for name in ("_handle_frame", "_send_data"):
        method = getattr(module.Connection, name)

        def watched(self: Any, *args: Any, _name: str = name, _method: Any = method) -> Any:
            calls.append(_name)
            return _method(self, *args)

        monkeypatch.setattr(module.Connection, name, watched)
    for shortcuts, expected in ((True, []), (False, ["_handle_frame"] * 2 + ["_send_data"] * 2)):
        server = open_pair(module)[1]
        server._set_shortcuts(shortcuts)
        calls.clear()
        server.receive_data(raw_frame(1, b"hi", True, 0, MASK) + raw_frame(2, b"x", True, 0, MASK))
        server.send_text("hi")
        server.send_binary(b"x")
        assert calls == expected
        assert server.events() == [TextMessage("hi"), BinaryMessage(b"x")]


def sent(conn: Any) -> list[Any]:
    """What a connection sent, as frames (unmasked: a client's keys are random)."""
    data = conn.data_to_send()
    if not conn.__class__.__name__.startswith("Client"):
        return [data]  # a server's bytes must be equal byte for byte
    parser = FrameParser(require_mask=True)
    frames = parser.feed(data)
    assert parser.pending is None
    return frames


def same_outcome(fast: Any, general: Any) -> None:
    assert fast.events() == general.events()
    assert sent(fast) == sent(general)
    assert fast.state == general.state
    assert fast.close_code == general.close_code
    assert fast.close_reason == general.close_reason
    assert fast.failing == general.failing
    assert fast.should_close_transport == general.should_close_transport


def wire(specs: list[tuple[int, bytes, bool, int, bool]], side: int) -> bytes:
    """The frames of ``specs`` as they reach ``side`` (1: a server, which wants them masked),
    each masked as its spec says: rightly or not."""
    return b"".join(
        raw_frame(op, payload, fin, rsv, MASK if right_mask == (side == 1) else None)
        for op, payload, fin, rsv, right_mask in specs
    )


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    """``stream`` cut at the offsets of ``cuts`` that fall inside it (the last piece may be
    empty only when the stream is)."""
    ends = sorted({c for c in cuts if 0 < c < len(stream)}) + [len(stream)]
    return [stream[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


@given(
    specs=st.lists(frame_specs(), max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
    options=OPTIONS,
    side=st.sampled_from([0, 1]),
    eof=st.booleans(),
)
def test_receiving_with_and_without_the_shortcut_is_the_same(
    connection_module: Any,
    specs: list[tuple[int, bytes, bool, int, bool]],
    cuts: list[int],
    options: dict[str, Any],
    side: int,
    eof: bool,
) -> None:
    fast, general = both(connection_module, options, side)
    for piece in pieces(wire(specs, side), cuts):
        for conn in (fast, general):
            conn.receive_data(piece)
        same_outcome(fast, general)
    for conn in (fast, general):
        if eof:
            conn.receive_eof()
        else:
            conn.fail()  # completes a deferred failure, if any
    same_outcome(fast, general)


@given(
    specs=st.lists(frame_specs(), max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
    options=OPTIONS,
    side=st.sampled_from([0, 1]),
    shortcuts=st.booleans(),
)
def test_bare_messages_are_the_events_with_each_message_as_its_data(
    connection_module: Any,
    specs: list[tuple[int, bytes, bool, int, bool]],
    cuts: list[int],
    options: dict[str, Any],
    side: int,
    shortcuts: bool,
) -> None:
    """What the asyncio shell asks (_give_bare_messages) changes nothing but the form of each
    message: the same messages in the same order among the same other events, the same bytes
    sent, the same state, on random frame sequences (valid and not) cut at random places."""
    plain, bare = both(connection_module, options, side)
    for conn in (plain, bare):
        conn._set_shortcuts(shortcuts)
    bare._give_bare_messages()
    messages = (TextMessage, TextBytes, BinaryMessage)
    for piece in [*pieces(wire(specs, side), cuts), None]:
        for conn in (plain, bare):
            if piece is None:
                conn.fail()  # completes a deferred failure, if any
            else:
                conn.receive_data(piece)
        expected = [e.data if type(e) in messages else e for e in plain.events()]
        got = bare.events()
        assert got == expected
        assert [type(e) for e in got] == [type(e) for e in expected]
        assert sent(plain) == sent(bare)
        assert (plain.state, plain.failing) == (bare.state, bare.failing)


def call(conn: Any, action: tuple[str, Any, bool]) -> Any:
    name, data, fin = action
    try:
        if name == "text":
            conn.send_text(data, fin=fin)
        elif name == "binary":
            conn.send_binary(data, fin=fin)
        elif name == "ping":
            conn.send_ping(data)
        else:
            conn.close(1000, data)
    except Exception as exc:
        return type(exc), str(exc)
    return None


ACTIONS = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=30) | st.text(min_size=5000), st.booleans()),
    st.tuples(
        st.just("binary"),
        st.binary(max_size=30)
        | st.binary(min_size=4097, max_size=5000)
        | st.binary(max_size=200).map(bytearray)
        | st.binary(max_size=200).map(memoryview),
        st.booleans(),
    ),
    st.tuples(st.just("ping"), st.binary(max_size=130), st.just(True)),
    st.tuples(st.just("close"), st.text(max_size=5), st.just(True)),
)


@given(
    actions=st.lists(ACTIONS, max_size=10),
    side=st.sampled_from([0, 1]),
)
def test_sending_with_and_without_the_shortcut_is_the_same(
    connection_module: Any, actions: list[tuple[str, Any, bool]], side: int
) -> None:
    fast, general = both(connection_module, {}, side)
    for action in actions:
        assert call(fast, action) == call(general, action)
        same_outcome(fast, general)


def open_deflate_pair(module: Any) -> tuple[Any, Any]:
    """permessage-deflate negotiated; messages of up to 1000 bytes."""
    return open_pair(
        module, [ClientDeflateFactory()], [ServerDeflateFactory()], max_message_size=1000
    )


@pytest.mark.parametrize("compressed", [False, True])
def test_max_message_size_holds_for_uncompressed_frames_with_deflate(
    connection_module: Any, compressed: bool
) -> None:
    """permessage-deflate lets the parser take frames up to what a compressed message of
    max_message_size may take (more than max_message_size): a frame the extension does not
    transform (no RSV1) must still be held to max_message_size itself."""
    client, server = open_deflate_pair(connection_module)
    payload = b"x" * 1100 if not compressed else bytes(range(256)) * 5
    if compressed:
        client.send_binary(payload)
        wire = client.data_to_send()
        assert wire[0] & 0x40  # RSV1: compressed
    else:
        wire = raw_frame(2, payload, True, 0, MASK)
    assert len(wire) < 1000 + (1000 >> 3) + 1024  # within the parser's bound
    server.receive_data(wire)
    events = server.events()
    assert not any(isinstance(e, BinaryMessage) for e in events), events
    assert [type(e) for e in events] == [ProtocolViolation, ConnectionTerminated]
    assert events[0].code == 1009


def test_a_message_at_the_limit_still_passes_with_deflate(connection_module: Any) -> None:
    client, server = open_deflate_pair(connection_module)
    server.receive_data(raw_frame(2, b"x" * 1000, True, 0, MASK))
    assert server.events() == [BinaryMessage(b"x" * 1000)]


def test_client_frames_are_one_piece_masked_with_fresh_keys(connection_module: Any) -> None:
    client, server = open_pair(connection_module)
    keys = []
    for size in (0, 5, 125, 126, 4096, 70000):
        client.send_binary(b"\x00" * size)
        (piece,) = client.chunks_to_send()  # header and masked payload: one object
        server.receive_data(piece)
        assert server.events() == [BinaryMessage(b"\x00" * size)]
        start = 2 if size < 126 else 4 if size < 65536 else 10
        keys.append(piece[start : start + 4])
    assert len(set(keys)) == len(keys)  # a fresh key per frame (RFC 6455 §5.3)
    assert piece[-4:] == keys[-1]  # the zero payload's bytes are the key itself
    with pytest.raises(ProtocolError):
        FrameParser(require_mask=False).feed(piece)
