"""RFC 6455 §5.2 framing: ``parse_header``, ``build_header``, ``FrameParser``, ``Frame``.

Expected bytes come from the RFC's own examples and from :func:`encode_frame`, an encoder
written here from §5.2 (independent of ``build_header`` and ``apply_mask``).
"""

from __future__ import annotations

import array
import pickle
import random
import struct
import sys
import threading
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wsfast
import wsfast.pure.frames as pure_frames
from wsfast import CloseCode, Opcode, ProtocolError

KEY = b"\x37\xfa\x21\x3d"
DATA_OPCODES = (0, 1, 2)
CONTROL_OPCODES = (8, 9, 10)
RESERVED_OPCODES = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)
MAX_LENGTH = 2**63 - 1


def naive_mask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def encode_header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    width: int | None = None,
) -> bytes:
    """A header per §5.2; ``width`` (7, 16 or 64) forces a (possibly non-minimal) encoding."""
    b0 = fin << 7 | rsv1 << 6 | rsv2 << 5 | rsv3 << 4 | opcode
    mbit = 0x80 if mask is not None else 0
    if width is None:
        width = 7 if length < 126 else 16 if length < 65536 else 64
    if width == 7:
        head = bytes([b0, mbit | length])
    elif width == 16:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", length)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", length)
    return head + (mask or b"")


def encode_frame(opcode, payload, *, fin=True, rsv1=False, rsv2=False, rsv3=False, mask=None):
    head = encode_header(opcode, len(payload), fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask)
    return head + (naive_mask(payload, mask) if mask is not None else payload)


def ftuple(frame) -> tuple:
    """A frame as plain values, to compare frames across implementations."""
    return (
        int(frame.opcode),
        bool(frame.fin),
        bool(frame.rsv1),
        bool(frame.rsv2),
        bool(frame.rsv3),
        frame.payload,
    )


def htuple(header) -> tuple | None:
    if header is None:
        return None
    return (
        bool(header.fin),
        bool(header.rsv1),
        bool(header.rsv2),
        bool(header.rsv3),
        int(header.opcode),
        bool(header.masked),
        header.mask,
        header.length,
        header.size,
    )


def check_frame_types(frame) -> None:
    assert isinstance(frame.opcode, Opcode)
    assert type(frame.payload) is bytes


def feed_all(parser, chunks) -> list[tuple]:
    out = []
    for chunk in chunks:
        for frame in parser.feed(chunk):
            check_frame_types(frame)
            out.append(ftuple(frame))
    return out


def split(stream: bytes, cuts) -> list[bytes]:
    bounds = sorted({0, len(stream), *(c for c in cuts if 0 <= c <= len(stream))})
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# --- RFC 6455 §5.7 examples ----------------------------------------------------------------

HELLO_UNMASKED = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
HELLO_MASKED = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
HEL = bytes([0x01, 0x03, 0x48, 0x65, 0x6C])
LO = bytes([0x80, 0x02, 0x6C, 0x6F])
PING_UNMASKED = bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
PONG_MASKED = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
BIN256_HEADER = bytes([0x82, 0x7E, 0x01, 0x00])
BIN64K_HEADER = bytes([0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00])

# name: (wire bytes of the header, opcode, fin, masked, mask, length, size)
RFC_HEADERS = {
    "text unmasked": (HELLO_UNMASKED, Opcode.TEXT, True, None, 5, 2),
    "text masked": (HELLO_MASKED, Opcode.TEXT, True, KEY, 5, 6),
    "fragment Hel": (HEL, Opcode.TEXT, False, None, 3, 2),
    "fragment lo": (LO, Opcode.CONTINUATION, True, None, 2, 2),
    "ping unmasked": (PING_UNMASKED, Opcode.PING, True, None, 5, 2),
    "pong masked": (PONG_MASKED, Opcode.PONG, True, KEY, 5, 6),
    "binary 256": (BIN256_HEADER, Opcode.BINARY, True, None, 256, 4),
    "binary 64KiB": (BIN64K_HEADER, Opcode.BINARY, True, None, 65536, 10),
}


@pytest.mark.parametrize("name", list(RFC_HEADERS))
def test_rfc_example_headers(impl, name) -> None:
    wire, opcode, fin, mask, length, size = RFC_HEADERS[name]
    header = impl.parse_header(wire)
    assert isinstance(header, impl.FrameHeader)
    assert header.opcode == opcode and isinstance(header.opcode, Opcode)
    assert header.fin is fin
    assert (header.rsv1, header.rsv2, header.rsv3) == (False, False, False)
    assert header.masked is (mask is not None)
    assert header.mask == mask
    assert header.length == length
    assert header.size == size
    assert impl.build_header(opcode, length, fin=fin, mask=mask) == wire[:size]
    assert header == impl.FrameHeader(fin, False, False, False, opcode, mask is not None, mask,
                                      length, size)  # fmt: skip


def test_rfc_example_frames(impl) -> None:
    client = impl.FrameParser(require_mask=True)
    server = impl.FrameParser(require_mask=False)
    assert server.feed(HELLO_UNMASKED) == [impl.Frame(Opcode.TEXT, b"Hello")]
    assert client.feed(HELLO_MASKED) == [impl.Frame(Opcode.TEXT, b"Hello")]
    assert server.feed(HEL) == [impl.Frame(Opcode.TEXT, b"Hel", fin=False)]
    assert server.feed(LO) == [impl.Frame(Opcode.CONTINUATION, b"lo")]
    assert server.feed(PING_UNMASKED) == [impl.Frame(Opcode.PING, b"Hello")]
    assert client.feed(PONG_MASKED) == [impl.Frame(Opcode.PONG, b"Hello")]
    payload = bytes(range(256))
    assert server.feed(BIN256_HEADER + payload) == [impl.Frame(Opcode.BINARY, payload)]
    payload = random.Random(0).randbytes(65536)
    assert server.feed(BIN64K_HEADER + payload) == [impl.Frame(Opcode.BINARY, payload)]
    # all of them at once, and the fragmented message byte by byte
    stream = HELLO_UNMASKED + HEL + PING_UNMASKED + LO
    assert feed_all(impl.FrameParser(require_mask=False), [stream]) == [
        (1, True, False, False, False, b"Hello"),
        (1, False, False, False, False, b"Hel"),
        (9, True, False, False, False, b"Hello"),
        (0, True, False, False, False, b"lo"),
    ]
    parser = impl.FrameParser(require_mask=False)
    out = [parser.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert [len(x) for x in out] == [0] * 6 + [1] + [0] * 4 + [1] + [0] * 6 + [1] + [0] * 3 + [1]


# --- header lengths round-trip ---------------------------------------------------------------

LENGTHS = [
    0, 1, 5, 125, 126, 127, 128, 255, 256, 1000, 65535, 65536, 65537, 2**24, 2**31 - 1, 2**31,
    2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1, 2**62, MAX_LENGTH - 1, MAX_LENGTH,
]  # fmt: skip
FLAG_SETS = [
    (True, False, False, False),
    (False, True, False, True),
    (True, True, True, True),
    (False, False, True, False),
]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("mask", [None, KEY, b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"])
def test_length_round_trip(impl, length, mask) -> None:
    for opcode in DATA_OPCODES:
        for fin, rsv1, rsv2, rsv3 in FLAG_SETS:
            flags = {"fin": fin, "rsv1": rsv1, "rsv2": rsv2, "rsv3": rsv3}
            wire = impl.build_header(opcode, length, mask=mask, **flags)
            assert type(wire) is bytes
            assert wire == encode_header(opcode, length, mask=mask, **flags)
            size = (2 if length < 126 else 4 if length < 65536 else 10) + (4 if mask else 0)
            assert len(wire) == size
            header = impl.parse_header(wire)
            assert htuple(header) == (fin, rsv1, rsv2, rsv3, opcode, mask is not None, mask,
                                      length, size)  # fmt: skip
            assert type(header.length) is int
            assert mask is None or type(header.mask) is bytes
            # every strict prefix needs more bytes
            for k in range(len(wire)):
                assert impl.parse_header(wire[:k]) is None, (length, k)
            # trailing bytes (the payload) are not the header's business
            assert impl.parse_header(wire + b"\x81\x05payload") == header


@pytest.mark.parametrize(
    ("length", "wire"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (127, b"\x82\x7e\x00\x7f"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (MAX_LENGTH, b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
    ],
)
def test_shortest_encoding_bytes(impl, length, wire) -> None:
    assert impl.build_header(Opcode.BINARY, length) == wire
    assert (
        impl.build_header(2, length, mask=KEY) == bytes([wire[0], wire[1] | 0x80]) + wire[2:] + KEY
    )


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
@pytest.mark.parametrize("length", [0, 1, 124, 125])
@pytest.mark.parametrize("mask", [None, KEY])
def test_control_headers(impl, opcode, length, mask) -> None:
    wire = impl.build_header(opcode, length, mask=mask)
    assert wire == encode_header(opcode, length, mask=mask)
    header = impl.parse_header(wire)
    assert header.opcode == opcode and header.length == length and header.fin is True


def test_non_minimal_lengths_are_accepted(impl) -> None:
    for length in (0, 5, 125, 126, 65535):
        for width in (16, 64):
            if width == 16 and length > 65535:
                continue
            for mask in (None, KEY):
                wire = encode_header(2, length, mask=mask, width=width)
                header = impl.parse_header(wire)
                size = (4 if width == 16 else 10) + (4 if mask else 0)
                assert (header.length, header.size, header.mask) == (length, size, mask)
                for k in range(len(wire)):
                    assert impl.parse_header(wire[:k]) is None
                # and a parser reads the frame
                payload = bytes(length % 256 for _ in range(length))
                data = wire + (naive_mask(payload, mask) if mask else payload)
                parser = impl.FrameParser(require_mask=mask is not None)
                assert feed_all(parser, [data]) == [(2, True, False, False, False, payload)]


def test_parse_header_offset(impl) -> None:
    wire = encode_header(1, 300, mask=KEY, fin=False, rsv2=True)
    expected = impl.parse_header(wire)
    for pad in (0, 1, 3, 7, 100):
        data = bytes([0x81]) * pad + wire + b"tail"
        assert impl.parse_header(data, pad) == expected
        assert impl.parse_header(data, offset=pad) == expected
        assert impl.parse_header(bytearray(data), pad) == expected
        assert impl.parse_header(memoryview(data), pad) == expected
        assert impl.parse_header(array.array("B", data), pad) == expected
        for k in range(len(wire)):
            assert impl.parse_header(data[: pad + k], pad) is None
    assert impl.parse_header(b"") is None
    assert impl.parse_header(b"abc", 3) is None  # offset at the end: no byte yet
    for data in (b"", b"\x81\x05"):
        with pytest.raises(ValueError):
            impl.parse_header(data, len(data) + 1)
        with pytest.raises(ValueError):
            impl.parse_header(data, -1)
        with pytest.raises(ValueError):
            impl.parse_header(data, 2**40)


def test_header_equality(impl) -> None:
    a = impl.parse_header(HELLO_MASKED)
    b = impl.parse_header(bytearray(HELLO_MASKED))
    assert a == b and hash(a) == hash(b)
    assert a != impl.parse_header(HELLO_UNMASKED)
    assert a != htuple(a)  # headers compare with headers only


# --- header errors -------------------------------------------------------------------------


def assert_protocol_error(excinfo, code=1002) -> None:
    assert isinstance(excinfo.value, ProtocolError)
    assert isinstance(excinfo.value, wsfast.exceptions.ProtocolError)
    assert excinfo.value.code == code


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
@pytest.mark.parametrize("high", [0x00, 0x80, 0xF0, 0x70])
def test_reserved_opcode_from_first_byte(impl, opcode, high) -> None:
    b0 = high | opcode
    for data, offset in [(bytes([b0]), 0), (bytes([b0, 0x00]), 0), (b"\x81\x05" + bytes([b0]), 2),
                         (bytes([b0, 0x85]) + KEY + b"x" * 5, 0)]:  # fmt: skip
        with pytest.raises(ProtocolError) as excinfo:
            impl.parse_header(data, offset)
        assert_protocol_error(excinfo)
    with pytest.raises(ValueError):
        impl.build_header(opcode, 0)


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
@pytest.mark.parametrize("rsv", [0x00, 0x40, 0x70])
def test_fragmented_control_from_first_byte(impl, opcode, rsv) -> None:
    b0 = rsv | opcode  # FIN clear
    for data in (bytes([b0]), bytes([b0, 0x00]), bytes([b0, 0x80]) + KEY):
        with pytest.raises(ProtocolError) as excinfo:
            impl.parse_header(data)
        assert_protocol_error(excinfo)
    with pytest.raises(ValueError):
        impl.build_header(opcode, 0, fin=False)


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
@pytest.mark.parametrize("b1", [126, 127, 0x80 | 126, 0x80 | 127])
def test_long_control_from_second_byte(impl, opcode, b1) -> None:
    for tail in (b"", b"\x00", b"\x00\x05" + KEY, bytes(8) + KEY):
        with pytest.raises(ProtocolError) as excinfo:
            impl.parse_header(bytes([0x80 | opcode, b1]) + tail)
        assert_protocol_error(excinfo)
    assert impl.parse_header(bytes([0x80 | opcode, 125])).length == 125  # 125 is fine
    assert impl.parse_header(bytes([0x80 | opcode, 0xFD]) + KEY).length == 125


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
@pytest.mark.parametrize("length", [126, 127, 65535, 65536, MAX_LENGTH])
def test_build_long_control(impl, opcode, length) -> None:
    with pytest.raises(ValueError):
        impl.build_header(opcode, length)
    with pytest.raises(ValueError):
        impl.build_header(opcode, length, mask=KEY)


@pytest.mark.parametrize("length", [2**63, 2**63 + 1, 2**64 - 1, 0x8000_0000_0000_0005])
@pytest.mark.parametrize("mask", [None, KEY])
def test_64bit_length_with_top_bit(impl, length, mask) -> None:
    wire = encode_header(2, length, mask=mask, width=64)
    with pytest.raises(ProtocolError) as excinfo:
        impl.parse_header(wire)
    assert_protocol_error(excinfo)
    with pytest.raises(ProtocolError) as excinfo:
        impl.parse_header(wire + b"payload")
    assert_protocol_error(excinfo)


@pytest.mark.parametrize("length", [-1, -(2**63), 2**63, 2**64, 2**64 + 5, 2**100])
def test_build_header_bad_length(impl, length) -> None:
    with pytest.raises(ValueError):
        impl.build_header(Opcode.BINARY, length)
    with pytest.raises(ValueError):
        impl.build_header(Opcode.CONTINUATION, length, mask=KEY)


@pytest.mark.parametrize("opcode", [-1, 16, 255, 256, 2**64])
def test_build_header_out_of_range_opcode(impl, opcode) -> None:
    with pytest.raises(ValueError):
        impl.build_header(opcode, 0)


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde", bytearray(8), memoryview(b"ab")])
def test_build_header_bad_mask_size(impl, mask) -> None:
    with pytest.raises(ValueError):
        impl.build_header(Opcode.TEXT, 5, mask=mask)


@pytest.mark.parametrize("mask", ["abcd", 1234, [1, 2, 3, 4], 4.0], ids=repr)
def test_build_header_mask_not_a_buffer(impl, mask) -> None:
    with pytest.raises(TypeError):
        impl.build_header(Opcode.TEXT, 5, mask=mask)


def test_build_header_mask_types(impl) -> None:
    for mask in (KEY, bytearray(KEY), memoryview(KEY), memoryview(b"xx" + KEY)[2:]):
        assert impl.build_header(1, 5, mask=mask) == HELLO_MASKED[:6]
    with pytest.raises((TypeError, BufferError)):
        impl.build_header(1, 5, mask=memoryview(b"a_b_c_d_")[::2])


def test_build_header_bad_types(impl) -> None:
    for opcode in ("1", 1.0, None, b"\x01"):
        with pytest.raises(TypeError):
            impl.build_header(opcode, 0)
    for length in ("5", 5.0, None, b"\x05"):
        with pytest.raises(TypeError):
            impl.build_header(1, length)
    with pytest.raises(TypeError):
        impl.build_header(1, 5, True)  # the flags are keyword-only
    with pytest.raises(TypeError):
        impl.build_header(1)


@pytest.mark.parametrize("data", ["\x81\x05Hello", "", 0x81, None, [0x81, 0x05], 1.0], ids=repr)
def test_parse_header_not_a_buffer(impl, data) -> None:
    with pytest.raises(TypeError):
        impl.parse_header(data)


@pytest.mark.parametrize(
    "offset", [-1, -2, -(2**63), -(2**63) - 1, -(2**80)],
    ids=["-1", "-2", "-2**63", "-2**63-1", "-2**80"],
)  # fmt: skip
def test_parse_header_negative_offset(impl, offset) -> None:
    """A negative offset is a ValueError, however large (not an OverflowError)."""
    try:
        impl.parse_header(HELLO_MASKED, offset)
    except ValueError:
        return
    except Exception as exc:
        pytest.fail(f"parse_header(..., {offset}) raised {type(exc).__name__}: {exc}")
    pytest.fail(f"parse_header(..., {offset}) did not raise")


def test_parse_header_bad_offsets(impl) -> None:
    for offset in (1.0, "1", None):
        with pytest.raises(TypeError):
            impl.parse_header(HELLO_MASKED, offset)
    with pytest.raises((TypeError, BufferError)):
        impl.parse_header(memoryview(HELLO_MASKED * 2)[::2])


# --- Frame, FrameHeader, Opcode, CloseCode, ProtocolError -----------------------------------


def test_frame_class(impl) -> None:
    f = impl.Frame(Opcode.TEXT, b"Hello")
    assert (f.opcode, f.payload, f.fin, f.rsv1, f.rsv2, f.rsv3) == (1, b"Hello", True, False,
                                                                    False, False)  # fmt: skip
    assert isinstance(f.opcode, Opcode)
    assert impl.Frame(1, b"Hello") == f
    assert hash(impl.Frame(1, b"Hello")) == hash(f)
    assert impl.Frame(1, b"Hello", fin=False) != f
    assert impl.Frame(1, b"Hello", rsv1=True) != f
    assert impl.Frame(2, b"Hello") != f
    assert impl.Frame(1, b"Hellp") != f
    g = impl.Frame(opcode=Opcode.CONTINUATION, payload=b"", fin=False, rsv1=True, rsv2=True,
                   rsv3=True)  # fmt: skip
    assert ftuple(g) == (0, False, True, True, True, b"")
    for opcode in (*RESERVED_OPCODES, 16, -1):
        with pytest.raises(ValueError):
            impl.Frame(opcode, b"")


def test_codes() -> None:
    assert [(op.name, int(op)) for op in Opcode] == [
        ("CONTINUATION", 0), ("TEXT", 1), ("BINARY", 2), ("CLOSE", 8), ("PING", 9), ("PONG", 10)
    ]  # fmt: skip
    assert CloseCode.PROTOCOL_ERROR == 1002 and CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.NORMAL_CLOSURE == 1000 and CloseCode.INVALID_DATA == 1007
    assert wsfast.pure.Opcode is Opcode and wsfast.pure.ProtocolError is ProtocolError


def test_protocol_error_class() -> None:
    exc = ProtocolError("bad")
    assert (str(exc), exc.code, exc.frames) == ("bad", 1002, [])
    exc = ProtocolError("big", 1009, [1, 2])
    assert (exc.code, exc.frames) == (1009, [1, 2])
    copy = pickle.loads(pickle.dumps(ProtocolError("big", 1009, [b"x"])))
    assert (type(copy), str(copy), copy.code, copy.frames) == (ProtocolError, "big", 1009, [b"x"])


# --- FrameParser: fixed cases --------------------------------------------------------------


def test_parser_empty_and_zero_length(impl) -> None:
    parser = impl.FrameParser(require_mask=False)
    assert parser.feed(b"") == []
    assert parser.feed(b"\x82\x00\x81\x00") == [impl.Frame(2, b""), impl.Frame(1, b"")]
    assert parser.feed(b"\x82") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\x00") == [impl.Frame(2, b"")]
    client = impl.FrameParser(require_mask=True)
    assert client.feed(b"\x89\x80" + KEY) == [impl.Frame(Opcode.PING, b"")]


def test_parser_copies_its_input(impl) -> None:
    """Nothing is kept by reference: changing the caller's buffer later changes no frame."""
    payload = bytes(range(200))
    wire = encode_frame(2, payload, mask=KEY)
    for cut in (1, 3, 7, 50, len(wire) - 1):
        parser = impl.FrameParser(require_mask=True)
        first = bytearray(wire[:cut])
        assert parser.feed(first) == []
        first[:] = b"\xff" * len(first)
        second = bytearray(wire[cut:])
        frames = parser.feed(memoryview(second))
        second[:] = b"\x00" * len(second)
        assert [ftuple(f) for f in frames] == [(2, True, False, False, False, payload)], cut


@pytest.mark.parametrize("size", [1000, 300 * 1024 + 3])
def test_parser_masked_payload_in_odd_chunks(impl, size) -> None:
    payload = random.Random(size).randbytes(size)
    mask = b"\x01\x02\x83\xc4"
    wire = encode_frame(2, payload, mask=mask)
    for step in (1, 2, 3, 5, 7, 4093) if size < 2000 else (4093, 65537, 200_001):
        parser = impl.FrameParser(require_mask=True)
        frames = feed_all(parser, [wire[i : i + step] for i in range(0, len(wire), step)])
        assert frames == [(2, True, False, False, False, payload)], step
    parser = impl.FrameParser(require_mask=True)
    assert feed_all(parser, [wire + wire]) == [(2, True, False, False, False, payload)] * 2


@pytest.mark.parametrize("size", [255, 256, 257, 320, 321, 700])
def test_parser_masked_payload_cut_at_every_position(impl, size) -> None:
    """A masked frame around the 256 bytes where masking takes 64-byte AVX-512 steps, cut at
    every position: the rest of the payload lands at every address and key phase of the
    payload being filled. Then a 257-byte middle piece from every position: the wide loop on
    a part of the payload."""
    payload = random.Random(size).randbytes(size)
    mask = b"\x9b\x01\xf7\x40"
    wire = encode_frame(2, payload, mask=mask) + encode_frame(9, b"ping", mask=mask)
    expected = [(2, True, False, False, False, payload), (9, True, False, False, False, b"ping")]
    for cut in range(len(wire) + 1):
        parser = impl.FrameParser(require_mask=True)
        assert feed_all(parser, [wire[:cut], memoryview(wire)[cut:]]) == expected, cut
        parser = impl.FrameParser(require_mask=True)
        pieces = [wire[:cut], bytearray(wire[cut : cut + 257]), wire[cut + 257 :]]
        assert feed_all(parser, pieces) == expected, cut


def test_parser_input_types(impl) -> None:
    wire = HELLO_MASKED + PONG_MASKED
    expected = [(1, True, False, False, False, b"Hello"), (10, True, False, False, False, b"Hello")]
    for data in (wire, bytearray(wire), memoryview(wire), array.array("B", wire),
                 memoryview(b"zz" + wire)[2:]):  # fmt: skip
        assert feed_all(impl.FrameParser(require_mask=True), [data]) == expected


@pytest.mark.parametrize("require_mask", [True, False])
def test_parser_mask_bit_mismatch(impl, require_mask) -> None:
    good = HELLO_MASKED if require_mask else HELLO_UNMASKED
    bad = HELLO_UNMASKED if require_mask else HELLO_MASKED
    parser = impl.FrameParser(require_mask=require_mask)
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(good + good + bad + good)
    assert_protocol_error(excinfo)
    assert [ftuple(f) for f in excinfo.value.frames] == [
        (1, True, False, False, False, b"Hello")
    ] * 2
    for later in (b"", good, bad):
        with pytest.raises(ProtocolError) as excinfo:
            parser.feed(later)
        assert_protocol_error(excinfo)


BAD_HEADERS = {
    "reserved opcode 3": lambda mask: encode_header(3, 0, mask=mask),
    "reserved opcode 11": lambda mask: encode_header(11, 5, mask=mask),
    "reserved opcode 15 no fin": lambda mask: encode_header(15, 0, fin=False, mask=mask),
    "fragmented close": lambda mask: encode_header(8, 0, fin=False, mask=mask),
    "fragmented ping": lambda mask: encode_header(9, 3, fin=False, mask=mask),
    "fragmented pong": lambda mask: encode_header(10, 0, fin=False, rsv1=True, mask=mask),
    "ping length 126": lambda mask: encode_header(9, 126, mask=mask),
    "close length 128 in 64 bits": lambda mask: encode_header(8, 128, mask=mask, width=64),
    "pong length 5 in 16 bits": lambda mask: encode_header(10, 5, mask=mask, width=16),
    "64-bit top bit": lambda mask: encode_header(2, 2**63, mask=mask, width=64),
    "64-bit all ones": lambda mask: encode_header(0, 2**64 - 1, mask=mask, width=64),
}


@pytest.mark.parametrize("name", list(BAD_HEADERS))
@pytest.mark.parametrize("masked", [False, True])
def test_parser_header_errors(impl, name, masked) -> None:
    bad = BAD_HEADERS[name](KEY if masked else None)
    good = HELLO_MASKED if masked else HELLO_UNMASKED
    expected = [(1, True, False, False, False, b"Hello")]
    # parse_header refuses it too
    with pytest.raises(ProtocolError) as excinfo:
        impl.parse_header(bad)
    assert_protocol_error(excinfo)
    # in one piece, after a good frame of the same call
    parser = impl.FrameParser(require_mask=masked)
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(good + bad + good)
    assert_protocol_error(excinfo)
    assert [ftuple(f) for f in excinfo.value.frames] == expected
    for later in (good, b""):
        with pytest.raises(ProtocolError) as excinfo:
            parser.feed(later)
        assert_protocol_error(excinfo)
    # byte by byte: the error comes with the header's last byte at the latest
    parser = impl.FrameParser(require_mask=masked)
    assert feed_all(parser, [good]) == expected
    with pytest.raises(ProtocolError) as excinfo:
        for i in range(len(bad)):
            parser.feed(bad[i : i + 1])
    assert_protocol_error(excinfo)
    assert excinfo.value.frames == []  # the good frame came with an earlier call


@pytest.mark.parametrize("b0", [0x83, 0x07, 0x08, 0x8F, 0x49])
def test_parser_fails_on_first_byte(impl, b0) -> None:
    """Reserved opcodes and fragmented control frames are refused from the first byte."""
    parser = impl.FrameParser(require_mask=False)
    assert parser.feed(HELLO_UNMASKED) != []
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(bytes([b0]))
    assert_protocol_error(excinfo)


def test_parser_fails_on_second_byte(impl) -> None:
    parser = impl.FrameParser(require_mask=True)
    assert parser.feed(b"\x89") == []
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(b"\xfe")
    assert_protocol_error(excinfo)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("limit", "length"),
    [(0, 1), (10, 11), (125, 126), (126, 127), (1000, 65535), (65535, 65536), (65536, 2**40),
     (2**32, MAX_LENGTH)],
)  # fmt: skip
def test_max_frame_size(impl, masked, limit, length) -> None:
    mask = KEY if masked else None
    head = encode_header(2, length, mask=mask)
    # more than the limit: 1009 as soon as the header is complete, before any payload
    parser = impl.FrameParser(require_mask=masked, max_frame_size=limit)
    ok = b"ok"[:limit]  # a frame within the limit first
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(encode_frame(1, ok, mask=mask) + head)
    assert_protocol_error(excinfo, 1009)
    assert [ftuple(f) for f in excinfo.value.frames] == [(1, True, False, False, False, ok)]
    with pytest.raises(ProtocolError) as excinfo:
        parser.feed(b"")
    assert_protocol_error(excinfo, 1009)
    # byte by byte
    parser = impl.FrameParser(require_mask=masked, max_frame_size=limit)
    with pytest.raises(ProtocolError) as excinfo:
        for i in range(len(head)):
            parser.feed(head[i : i + 1])
    assert_protocol_error(excinfo, 1009)
    # exactly the limit is fine (when small enough to send)
    if limit <= 70000:
        payload = b"\xa5" * limit
        parser = impl.FrameParser(require_mask=masked, max_frame_size=limit)
        wire = encode_frame(2, payload, mask=mask)
        assert feed_all(parser, [wire, wire]) == [(2, True, False, False, False, payload)] * 2


def test_max_frame_size_counts_one_frame(impl) -> None:
    parser = impl.FrameParser(require_mask=False, max_frame_size=5)
    frames = feed_all(parser, [HEL + LO + HELLO_UNMASKED + PING_UNMASKED] * 3)
    assert len(frames) == 12


def test_huge_declared_length_without_limit(impl) -> None:
    """With no max_frame_size a huge header either waits for its payload or is refused with
    1009 (cannot buffer); never another error."""
    for length in (2**31, 2**40, MAX_LENGTH):
        parser = impl.FrameParser(require_mask=False)
        try:
            assert parser.feed(encode_header(2, length)) == []
        except ProtocolError as exc:
            assert exc.code == 1009


def test_parser_constructor(impl) -> None:
    with pytest.raises(TypeError):
        impl.FrameParser()
    with pytest.raises(TypeError):
        impl.FrameParser(True)  # keyword-only
    with pytest.raises(ValueError):
        impl.FrameParser(require_mask=True, max_frame_size=-1)
    with pytest.raises(TypeError):
        impl.FrameParser(require_mask=True, max_frame_size="10")
    assert impl.FrameParser(require_mask=True, max_frame_size=None).feed(HELLO_MASKED) != []


@pytest.mark.parametrize("data", ["\x81\x05Hello", 0x81, None, [0x81], 1.5], ids=repr)
def test_parser_feed_not_a_buffer(impl, data) -> None:
    parser = impl.FrameParser(require_mask=False)
    assert parser.feed(HELLO_UNMASKED[:3]) == []
    with pytest.raises(TypeError):
        parser.feed(data)
    # the refused call changed nothing
    assert feed_all(parser, [HELLO_UNMASKED[3:]]) == [(1, True, False, False, False, b"Hello")]


def test_parser_feed_not_contiguous(impl) -> None:
    parser = impl.FrameParser(require_mask=False)
    with pytest.raises((TypeError, BufferError)):
        parser.feed(memoryview(HELLO_UNMASKED * 2)[::2])
    assert feed_all(parser, [HELLO_UNMASKED]) == [(1, True, False, False, False, b"Hello")]


def test_released_memoryview(impl) -> None:
    view = memoryview(HELLO_MASKED)
    view.release()
    with pytest.raises(ValueError):
        impl.parse_header(view)
    parser = impl.FrameParser(require_mask=True)
    with pytest.raises(ValueError):
        parser.feed(view)
    assert feed_all(parser, [HELLO_MASKED]) == [(1, True, False, False, False, b"Hello")]
    key = memoryview(KEY)
    key.release()
    with pytest.raises(ValueError):
        impl.build_header(1, 5, mask=key)


def test_parsers_in_threads(impl) -> None:
    rng = random.Random(5)
    payloads = [rng.randbytes(n) for n in (300_000, 1_000_000, 5, 70_000)]
    wire = b"".join(encode_frame(2, p, mask=KEY) for p in payloads)
    results: dict[int, object] = {}

    def work(i: int) -> None:
        try:
            parser = impl.FrameParser(require_mask=True)
            step = 100_003 + i
            results[i] = feed_all(parser, [wire[j : j + step] for j in range(0, len(wire), step)])
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [(2, True, False, False, False, p) for p in payloads]
    assert results == {i: expected for i in range(4)}


# --- FrameParser: property tests -----------------------------------------------------------


@st.composite
def frame_specs(draw, max_payload: int = 300):
    """(opcode, payload, fin, rsv1, rsv2, rsv3) of a frame that RFC 6455 framing allows."""
    if draw(st.integers(0, 3)) == 0:
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        fin = True
        payload = draw(st.binary(max_size=125))
    else:
        opcode = draw(st.sampled_from(DATA_OPCODES))
        fin = draw(st.booleans())
        payload = draw(st.binary(max_size=max_payload))
    rsv = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    return (opcode, payload, fin, *rsv)


@st.composite
def streams(draw, max_frames: int = 8, max_payload: int = 300, big: bool = False):
    """(require_mask, wire bytes, expected frame tuples)."""
    require_mask = draw(st.booleans())
    specs = draw(st.lists(frame_specs(max_payload), max_size=max_frames))
    if big:
        n = draw(st.sampled_from([126, 127, 65535, 65536, 70_000]))
        specs.insert(
            draw(st.integers(0, len(specs))),
            (2, random.Random(n).randbytes(n), draw(st.booleans()), False, False, False),
        )
    wire = bytearray()
    expected = []
    for opcode, payload, fin, rsv1, rsv2, rsv3 in specs:
        mask = draw(st.binary(min_size=4, max_size=4)) if require_mask else None
        wire += encode_frame(opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask)
        expected.append((opcode, fin, rsv1, rsv2, rsv3, payload))
    return require_mask, bytes(wire), expected


@given(stream=streams(), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_parser_random_chunkings(impl, stream, cuts) -> None:
    require_mask, wire, expected = stream
    parser = impl.FrameParser(require_mask=require_mask)
    assert feed_all(parser, [wire]) == expected
    parser = impl.FrameParser(require_mask=require_mask)
    assert feed_all(parser, split(wire, cuts)) == expected
    # the same parser goes on after a complete stream
    assert feed_all(parser, split(wire, [c // 2 for c in cuts])) == expected


@given(stream=streams(max_frames=5, max_payload=60))
def test_parser_byte_by_byte(impl, stream) -> None:
    require_mask, wire, expected = stream
    parser = impl.FrameParser(require_mask=require_mask)
    assert feed_all(parser, [wire[i : i + 1] for i in range(len(wire))]) == expected


@given(stream=streams(max_frames=4, big=True), data=st.data())
def test_parser_big_frames_random_chunkings(impl, stream, data) -> None:
    require_mask, wire, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=25))
    parser = impl.FrameParser(require_mask=require_mask, max_frame_size=70_000)
    assert feed_all(parser, split(wire, cuts)) == expected


@given(stream=streams(), data=st.data())
def test_parser_max_frame_size_property(impl, stream, data) -> None:
    require_mask, wire, expected = stream
    limit = data.draw(st.integers(0, 310))
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=10))
    too_big = [i for i, f in enumerate(expected) if len(f[5]) > limit]
    parser = impl.FrameParser(require_mask=require_mask, max_frame_size=limit)
    got = []
    try:
        for chunk in split(wire, cuts):
            got += [ftuple(f) for f in parser.feed(chunk)]
    except ProtocolError as exc:
        assert exc.code == 1009
        got += [ftuple(f) for f in exc.frames]
        assert too_big, "1009 without an oversized frame"
        assert got == expected[: too_big[0]]
    else:
        assert not too_big
        assert got == expected


@given(stream=streams(), data=st.data())
def test_build_header_matches_reference_encoder(impl, stream, data) -> None:
    require_mask, wire, expected = stream
    for opcode, fin, rsv1, rsv2, rsv3, payload in expected:
        mask = data.draw(st.binary(min_size=4, max_size=4)) if require_mask else None
        flags = {"fin": fin, "rsv1": rsv1, "rsv2": rsv2, "rsv3": rsv3}
        head = impl.build_header(opcode, len(payload), mask=mask, **flags)
        assert head == encode_header(opcode, len(payload), mask=mask, **flags)
        assert htuple(impl.parse_header(head + payload)) == (
            fin, rsv1, rsv2, rsv3, opcode, mask is not None, mask, len(payload), len(head)
        )  # fmt: skip


# --- compiled vs pure on garbage -----------------------------------------------------------


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except ProtocolError as exc:
        return ("ProtocolError", exc.code)
    except Exception as exc:
        return (type(exc).__name__,)


@st.composite
def mutated_streams(draw):
    require_mask, wire, _ = draw(streams(max_frames=5, max_payload=40))
    buf = bytearray(wire)
    for _ in range(draw(st.integers(0, 4))):
        if buf and draw(st.booleans()):
            buf[draw(st.integers(0, len(buf) - 1))] ^= 1 << draw(st.integers(0, 7))
        else:
            buf.insert(draw(st.integers(0, len(buf))), draw(st.integers(0, 255)))
    return require_mask, bytes(buf)


garbage = st.one_of(
    st.binary(max_size=40),
    mutated_streams().map(lambda s: s[1]),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=14)).map(
        lambda t: bytes(t[:2]) + t[2]
    ),
)


@given(data=garbage, offset=st.integers(-2, 50))
def test_parse_header_compiled_and_pure_agree(compiled, pure, data, offset) -> None:
    def run(mod):
        result = outcome(mod.parse_header, data, offset)
        return (result[0], htuple(result[1])) if result[0] == "ok" else result

    assert run(compiled) == run(pure)


@given(data=st.one_of(garbage, mutated_streams()), cuts=st.lists(st.integers(0, 600), max_size=12),
       require_mask=st.booleans(), limit=st.one_of(st.none(), st.integers(0, 200)))  # fmt: skip
def test_parser_compiled_and_pure_agree(compiled, pure, data, cuts, require_mask, limit) -> None:
    if isinstance(data, tuple):
        require_mask, data = data
    chunks = split(data, cuts)

    def run(mod):
        parser = mod.FrameParser(require_mask=require_mask, max_frame_size=limit)
        frames = []
        for chunk in chunks:
            try:
                frames += [ftuple(f) for f in parser.feed(chunk)]
            except ProtocolError as exc:
                frames += [ftuple(f) for f in exc.frames]
                after = outcome(parser.feed, b"")
                return frames, exc.code, after
        return frames, None, None

    assert run(compiled) == run(pure)


lengths = st.one_of(
    st.integers(-3, 70_000),
    st.sampled_from([125, 126, 65535, 65536, MAX_LENGTH, MAX_LENGTH + 1, 2**64, -(2**64)]),
)


@given(opcode=st.integers(-1, 17), length=lengths,
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
       mask=st.one_of(st.none(), st.binary(max_size=6)))  # fmt: skip
def test_build_header_compiled_and_pure_agree(compiled, pure, opcode, length, flags, mask) -> None:
    fin, rsv1, rsv2, rsv3 = flags
    kwargs = {"fin": fin, "rsv1": rsv1, "rsv2": rsv2, "rsv3": rsv3, "mask": mask}
    result = outcome(compiled.build_header, opcode, length, **kwargs)
    assert result == outcome(pure.build_header, opcode, length, **kwargs)
    if result[0] == "ok":
        assert result[1] == encode_header(opcode, length, **kwargs)
    else:
        assert result == ("ValueError",)


def test_frames_of_both_twins_compare_as_tuples(compiled, pure) -> None:
    a = compiled.FrameParser(require_mask=True).feed(HELLO_MASKED)
    b = pure.FrameParser(require_mask=True).feed(HELLO_MASKED)
    assert [ftuple(f) for f in a] == [ftuple(f) for f in b]
    assert htuple(compiled.parse_header(HELLO_MASKED)) == htuple(pure.parse_header(HELLO_MASKED))


# --- the pending frame: acting on a frame before it completes ------------------------------


@given(
    payload=st.binary(min_size=1, max_size=3000),
    masked=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=20),
)
def test_pending_payload_streams_exactly_the_payload(impl, payload, masked, cuts) -> None:
    mask = b"\x01\x82\x03\xf4" if masked else None
    stream = encode_frame(Opcode.TEXT, payload, mask=mask) + encode_frame(
        Opcode.PING, b"", mask=mask
    )
    parser = impl.FrameParser(require_mask=masked)
    seen = b""
    header = None
    frames = []
    pos = 0
    for cut in cuts + [len(stream)]:
        frames += parser.feed(stream[pos : pos + cut])
        pos += cut
        pending = parser.pending
        if pending is not None:
            assert header is None or pending is header  # the same object until it completes
            header = pending
            expected = (Opcode.TEXT, len(payload), mask)
            assert (pending.opcode, pending.length, pending.mask) == expected
            seen += parser.pending_payload(len(seen))
            assert payload.startswith(seen)
        if pos >= len(stream):
            break
    assert parser.pending is None
    assert parser.pending_payload() == b""
    assert [(f.opcode, f.payload) for f in frames] == [(Opcode.TEXT, payload), (Opcode.PING, b"")]


def test_pending_is_set_once_the_header_is_complete(impl) -> None:
    parser = impl.FrameParser(require_mask=False)
    head = encode_header(Opcode.BINARY, 1000)
    assert parser.feed(head[:1]) == [] and parser.pending is None  # half a header
    assert parser.feed(head[1:]) == []
    assert parser.pending is not None and parser.pending.length == 1000
    assert parser.pending_payload() == b""
    parser.feed(b"abc")
    assert parser.pending_payload() == b"abc"
    assert parser.pending_payload(1) == b"bc"
    assert parser.pending_payload(3) == b"" == parser.pending_payload(99)
    with pytest.raises(ValueError):
        parser.pending_payload(-1)


def test_pending_is_cleared_by_an_error(impl) -> None:
    parser = impl.FrameParser(require_mask=False, max_frame_size=10)
    parser.feed(encode_header(Opcode.BINARY, 5) + b"ab")
    assert parser.pending is not None
    with pytest.raises(ProtocolError):
        parser.feed(b"cde" + encode_header(Opcode.BINARY, 11))
    assert parser.pending is None


def test_pending_payload_copies_only_the_new_bytes(impl) -> None:
    """A text frame arriving in TCP-sized reads is validated as it comes; reading the new part
    of its pending payload must cost that part, not the whole payload so far (which made a
    4 MiB frame in 1,460-byte reads take quadratic time in the pure twin)."""
    payload = bytes(range(256)) * (3 * 4096)  # 3 MiB
    stream = encode_frame(Opcode.BINARY, payload, mask=KEY)
    parser = impl.FrameParser(require_mask=True)
    parser.feed(stream[: len(stream) - 1460])
    seen = len(parser.pending_payload())
    parser.feed(stream[len(stream) - 1460 : len(stream) - 1])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        new = parser.pending_payload(seen)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert new == payload[seen:-1]
    assert peak < 64 * 1024, peak


def test_frames_longer_than_a_py_ssize_t_are_refused_before_any_cast(impl) -> None:
    """A 32-bit build cannot index 2**31 bytes: both twins refuse such a frame with 1009
    before buffering (the compiled one before casting the length to Py_ssize_t); their
    limit is sys.maxsize (see tests/c/length_guard.c for the 32-bit value)."""
    module = sys.modules[type(impl.FrameParser(require_mask=False)).__module__]
    assert module._MAX_BUFFERED == sys.maxsize


def test_the_pure_guard_on_a_32_bit_limit(monkeypatch) -> None:
    """The pure twin with a 32-bit Py_ssize_t limit: 2**31 - 1 waits for its payload,
    2**31 and more are refused with 1009 from the header alone."""
    monkeypatch.setattr(pure_frames, "_MAX_BUFFERED", 2**31 - 1)
    parser = pure_frames.FrameParser(require_mask=False)
    assert parser.feed(encode_header(Opcode.BINARY, 2**31 - 1)) == []
    assert parser.pending is not None
    for length in (2**31, 2**32 + 5, MAX_LENGTH):
        parser = pure_frames.FrameParser(require_mask=False)
        with pytest.raises(ProtocolError) as info:
            parser.feed(encode_frame(Opcode.TEXT, b"ok") + encode_header(Opcode.BINARY, length))
        assert info.value.code == 1009 and "cannot buffer" in str(info.value)
        assert [f.payload for f in info.value.frames] == [b"ok"]


# --- build_frame: a whole frame in one allocation ----------------------------------------


@given(
    opcode=st.sampled_from(DATA_OPCODES + CONTROL_OPCODES),
    payload=st.binary(max_size=300) | st.binary(min_size=65530, max_size=65600),
    fin=st.booleans(),
    rsv=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    mask=st.none() | st.binary(min_size=4, max_size=4),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_build_frame_is_the_header_then_the_masked_payload(
    impl, opcode, payload, fin, rsv, mask, kind
) -> None:
    rsv1, rsv2, rsv3 = rsv
    if opcode >= 8 and (not fin or len(payload) > 125):
        with pytest.raises(ValueError):
            impl.build_frame(opcode, kind(payload), fin, rsv1, rsv2, rsv3, mask)
        return
    frame = impl.build_frame(opcode, kind(payload), fin, rsv1, rsv2, rsv3, mask)
    expected = encode_frame(opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask)
    assert type(frame) is bytes and frame == expected


def test_build_frame_refuses_what_build_header_refuses(impl) -> None:
    for args in [(3, b""), (8, b"x" * 126), (2, b"", True, False, False, False, b"abc")]:
        with pytest.raises(ValueError):
            impl.build_frame(*args)
    with pytest.raises(TypeError):
        impl.build_frame(2, "text")


def test_the_pure_parser_waits_for_a_running_feed(monkeypatch) -> None:
    """pending_payload() and __init__() from another thread wait for a feed() in progress,
    as the compiled parser's critical section makes them wait: else pending_payload() could
    read a payload being unmasked in place (and mask it again), and __init__() could hand a
    second feed() the buffer the first one is still appending to."""
    payload = b"hello, world"
    frame = encode_frame(Opcode.TEXT, payload, mask=KEY)
    parser = pure_frames.FrameParser(require_mask=True)
    assert parser.feed(frame[:-1]) == [] and parser.pending is not None
    inside, go = threading.Event(), threading.Event()
    unmask = pure_frames.apply_mask_inplace

    def paused(buf, key) -> None:  # the feed() completing the frame stops after unmasking
        unmask(buf, key)
        inside.set()
        go.wait(10)

    monkeypatch.setattr(pure_frames, "apply_mask_inplace", paused)
    results: dict[str, object] = {}
    feeder = threading.Thread(target=lambda: results.update(fed=parser.feed(frame[-1:])))
    feeder.start()
    assert inside.wait(10)
    others = [
        threading.Thread(target=lambda: results.update(read=parser.pending_payload(0))),
        threading.Thread(target=lambda: parser.__init__(require_mask=False)),
    ]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(0.3)
    waiting = [thread.is_alive() for thread in others]
    go.set()
    for thread in [feeder, *others]:
        thread.join(10)
    assert waiting == [True, True]
    assert [f.payload for f in results["fed"]] == [payload]
    assert results["read"] == b""  # the frame completed first: nothing pending
    assert parser.require_mask is False and parser.pending is None
