"""UTF-8 validation: ``validate_utf8`` and the fail-fast incremental ``Utf8Validator``.

The references are CPython's strict decoder (``bytes.decode("utf-8")``) for whole inputs and
:func:`viable` below for prefixes.
"""

from __future__ import annotations

import array
import random
import threading
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st


def decodes(data: bytes) -> bool:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@cache
def proper_prefixes() -> frozenset[bytes]:
    """Every proper, non-empty prefix of the UTF-8 encoding of some Unicode scalar value.

    Only the last byte of an encoding depends on the low 6 bits of the code point, so one code
    point per aligned block of 64 yields all the proper prefixes.
    """
    out = set()
    for cp in range(0x80, 0x110000, 64):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        enc = chr(cp).encode("utf-8")
        out.update(enc[:k] for k in range(1, len(enc)))
    return frozenset(out)


def viable(data: bytes) -> bool:
    """The fail-fast oracle: ``data`` can still begin a valid UTF-8 string.

    True iff ``data`` is valid UTF-8, or valid UTF-8 followed by a proper prefix of the encoding
    of some character.
    """
    data = bytes(data)
    if decodes(data):
        return True
    prefixes = proper_prefixes()
    return any(len(data) >= k and data[-k:] in prefixes and decodes(data[:-k]) for k in (1, 2, 3))


# --- strategies ----------------------------------------------------------------------------

INTERESTING_BYTES = [
    0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
    0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF,
]  # fmt: skip

chars = st.characters(codec="utf-8")
pieces = st.one_of(
    st.text(chars, max_size=4).map(str.encode),  # valid characters
    chars.map(lambda c: c.encode()[:-1]),  # a truncated character (empty for ASCII)
    st.sampled_from(INTERESTING_BYTES).map(lambda b: bytes([b])),
    st.binary(max_size=3),
)
utf8ish = st.lists(pieces, max_size=40).map(b"".join)
texts = st.text(chars, max_size=120).map(str.encode)


@st.composite
def mutated_text(draw) -> bytes:
    """Encoded text (often long, to reach block-wise code paths) with a few bytes flipped,
    inserted, deleted or cut off."""
    unit = draw(st.text(chars, max_size=40))
    buf = bytearray((unit * draw(st.integers(1, 12))).encode())
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "insert":
            buf.insert(draw(st.integers(0, len(buf))), draw(st.integers(0, 255)))
        elif not buf:
            continue
        elif op == "flip":
            buf[draw(st.integers(0, len(buf) - 1))] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del buf[draw(st.integers(0, len(buf) - 1))]
        else:
            del buf[draw(st.integers(0, len(buf) - 1)) :]
    return bytes(buf)


any_input = st.one_of(st.binary(max_size=300), texts, utf8ish, mutated_text())


# --- the oracle itself ---------------------------------------------------------------------


def test_oracle() -> None:
    assert len(proper_prefixes()) == 17651
    for data in [b"", b"a", b"\xc2", b"\xe0\xa0", b"\xed\x9f", b"\xf0\x90", b"\xf4\x8f\xbf"]:
        assert viable(data), data
        assert viable(b"abc" + data), data
    for data in [b"\x80", b"\xc0", b"\xc1", b"\xe0\x80", b"\xed\xa0", b"\xf0\x8f", b"\xf4\x90",
                 b"\xf5", b"\xff", b"\xc2\x80\x80", b"\xe0\xa0\x80\x80"]:  # fmt: skip
        assert not viable(data), data
        assert not viable(data + b"\x80"), data


# --- known cases ---------------------------------------------------------------------------

VALID = {
    "empty": b"",
    "U+0000": b"\x00",
    "U+007F": b"\x7f",
    "U+0080": b"\xc2\x80",
    "U+07FF": b"\xdf\xbf",
    "U+0800": b"\xe0\xa0\x80",
    "U+D7FF": b"\xed\x9f\xbf",
    "U+E000": b"\xee\x80\x80",
    "U+FDD0": b"\xef\xb7\x90",
    "U+FFFD": b"\xef\xbf\xbd",
    "U+FFFE": b"\xef\xbf\xbe",
    "U+FFFF": b"\xef\xbf\xbf",
    "U+10000": b"\xf0\x90\x80\x80",
    "U+1FFFF": b"\xf0\x9f\xbf\xbf",
    "U+40000": b"\xf1\x80\x80\x80",
    "U+FFFFF": b"\xf3\xbf\xbf\xbf",
    "U+100000": b"\xf4\x80\x80\x80",
    "U+10FFFF": b"\xf4\x8f\xbf\xbf",
    "kosme": b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
    "all-ascii": bytes(range(128)),
    "boundaries-together": b"\x00\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
    b"\xf4\x8f\xbf\xbf",
}

_CONTINUATIONS = bytes(range(0x80, 0xC0))

INVALID = {
    # just above the last code point, and the 4/5/6-byte forms beyond it
    "U+110000": b"\xf4\x90\x80\x80",
    "U+13FFFF": b"\xf4\xbf\xbf\xbf",
    "U+140000": b"\xf5\x80\x80\x80",
    "U+1FFFFF": b"\xf7\xbf\xbf\xbf",
    "5-byte U+200000": b"\xf8\x88\x80\x80\x80",
    "5-byte U+3FFFFFF": b"\xfb\xbf\xbf\xbf\xbf",
    "6-byte U+4000000": b"\xfc\x84\x80\x80\x80\x80",
    "6-byte U+7FFFFFFF": b"\xfd\xbf\xbf\xbf\xbf\xbf",
    # unexpected continuation bytes
    "cont 80": b"\x80",
    "cont BF": b"\xbf",
    "cont 80 BF": b"\x80\xbf",
    "cont 80 BF 80": b"\x80\xbf\x80",
    "cont x4": b"\x80\xbf\x80\xbf",
    "cont x5": b"\x80\xbf\x80\xbf\x80",
    "cont x6": b"\x80\xbf\x80\xbf\x80\xbf",
    "cont x7": b"\x80\xbf\x80\xbf\x80\xbf\x80",
    "all continuations": _CONTINUATIONS,
    "ascii then cont": b"abc\x80",
    "2-byte char then extra cont": b"\xc2\x80\x80",
    "3-byte char then extra cont": b"\xe2\x82\xac\xbf",
    "4-byte char then extra cont": b"\xf0\x9f\x98\x80\x80",
    # lonely start bytes followed by a space
    "lonely 2-byte starts": b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0)),
    "lonely 3-byte starts": b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0)),
    "lonely 4-byte starts": b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8)),
    "lonely 5-byte starts": b"".join(bytes([b, 0x20]) for b in range(0xF8, 0xFC)),
    "lonely 6-byte starts": b"\xfc\x20\xfd\x20",
    # sequences with the last continuation byte missing
    "2-byte U+0000 cut": b"\xc0",
    "3-byte U+0000 cut": b"\xe0\x80",
    "4-byte U+0000 cut": b"\xf0\x80\x80",
    "5-byte U+0000 cut": b"\xf8\x80\x80\x80",
    "6-byte U+0000 cut": b"\xfc\x80\x80\x80\x80",
    "2-byte U+07FF cut": b"\xdf",
    "3-byte U+FFFF cut": b"\xef\xbf",
    "4-byte U+1FFFFF cut": b"\xf7\xbf\xbf",
    "5-byte U+3FFFFFF cut": b"\xfb\xbf\xbf\xbf",
    "6-byte U+7FFFFFFF cut": b"\xfd\xbf\xbf\xbf\xbf",
    "all cut sequences": b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
    b"\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
    "cut 2-byte then ascii": b"\xc2A",
    "cut 3-byte then ascii": b"\xe2\x82A",
    "cut 4-byte then ascii": b"\xf0\x9f\x98A",
    # impossible bytes
    "FE": b"\xfe",
    "FF": b"\xff",
    "FE FE FF FF": b"\xfe\xfe\xff\xff",
    # overlong '/'
    "overlong / 2": b"\xc0\xaf",
    "overlong / 3": b"\xe0\x80\xaf",
    "overlong / 4": b"\xf0\x80\x80\xaf",
    "overlong / 5": b"\xf8\x80\x80\x80\xaf",
    "overlong / 6": b"\xfc\x80\x80\x80\x80\xaf",
    # maximum overlongs
    "max overlong 2": b"\xc1\xbf",
    "max overlong 3": b"\xe0\x9f\xbf",
    "max overlong 4": b"\xf0\x8f\xbf\xbf",
    "max overlong 5": b"\xf8\x87\xbf\xbf\xbf",
    "max overlong 6": b"\xfc\x83\xbf\xbf\xbf\xbf",
    # overlong NUL
    "overlong NUL 2": b"\xc0\x80",
    "overlong NUL 3": b"\xe0\x80\x80",
    "overlong NUL 4": b"\xf0\x80\x80\x80",
    "overlong NUL 5": b"\xf8\x80\x80\x80\x80",
    "overlong NUL 6": b"\xfc\x80\x80\x80\x80\x80",
    # single surrogates
    "U+D800": b"\xed\xa0\x80",
    "U+DB7F": b"\xed\xad\xbf",
    "U+DB80": b"\xed\xae\x80",
    "U+DBFF": b"\xed\xaf\xbf",
    "U+DC00": b"\xed\xb0\x80",
    "U+DF80": b"\xed\xbe\x80",
    "U+DFFF": b"\xed\xbf\xbf",
    # paired surrogates (CESU-8)
    "U+D800 U+DC00": b"\xed\xa0\x80\xed\xb0\x80",
    "U+D800 U+DFFF": b"\xed\xa0\x80\xed\xbf\xbf",
    "U+DB7F U+DC00": b"\xed\xad\xbf\xed\xb0\x80",
    "U+DB7F U+DFFF": b"\xed\xad\xbf\xed\xbf\xbf",
    "U+DB80 U+DC00": b"\xed\xae\x80\xed\xb0\x80",
    "U+DB80 U+DFFF": b"\xed\xae\x80\xed\xbf\xbf",
    "U+DBFF U+DC00": b"\xed\xaf\xbf\xed\xb0\x80",
    "U+DBFF U+DFFF": b"\xed\xaf\xbf\xed\xbf\xbf",
    # never-valid bytes alone and with continuations
    **{f"{b:02X} alone": bytes([b]) for b in (0xC0, 0xC1, *range(0xF5, 0x100))},
    **{f"{b:02X} + cont": bytes([b]) + b"\x80\x80\x80" for b in (0xC0, 0xC1, *range(0xF5, 0x100))},
    # wrong second bytes after the constrained leads
    "E0 80": b"\xe0\x80\x80",
    "ED A0": b"\xed\xa0\x80",
    "F0 8F": b"\xf0\x8f\x80\x80",
    "F4 90": b"\xf4\x90\x80\x80",
    "valid then U+D800": "κόσμε".encode() + b"\xed\xa0\x80",
}

# every strict prefix of every multi-byte boundary character is a truncated, invalid string
TRUNCATED = {
    f"{name} cut to {k}": data[:k]
    for name, data in VALID.items()
    if name.startswith("U+") and len(data) > 1
    for k in range(1, len(data))
}

KNOWN = [
    *((name, data, True) for name, data in VALID.items()),
    *((name, data, False) for name, data in INVALID.items()),
    *((name, data, False) for name, data in TRUNCATED.items()),
]


@pytest.mark.parametrize(("data", "valid"), [k[1:] for k in KNOWN], ids=[k[0] for k in KNOWN])
def test_known_cases(impl, data, valid) -> None:
    assert decodes(data) is valid  # the table agrees with CPython
    assert impl.validate_utf8(data) is valid
    assert impl.validate_utf8(bytearray(data)) is valid
    assert impl.validate_utf8(memoryview(b"#" + data)[1:]) is valid

    v = impl.Utf8Validator()
    assert v.feed(data) is viable(data)
    assert v.finish() is valid

    v = impl.Utf8Validator()
    for i in range(len(data)):
        assert v.feed(data[i : i + 1]) is viable(data[: i + 1]), i
    assert v.finish() is valid


@pytest.mark.parametrize(("name", "data"), list(TRUNCATED.items()), ids=list(TRUNCATED))
def test_truncations_are_viable_but_unfinished(impl, name, data) -> None:
    v = impl.Utf8Validator()
    assert v.feed(b"ok " + data) is True
    assert v.finish() is False
    assert impl.validate_utf8(data + b" ") is False


@pytest.mark.parametrize(
    "prefix",
    [b"\xed\xa0", b"\xed\xbf", b"\xf4\x90", b"\xf4\xbf", b"\xe0\x80", b"\xe0\x9f", b"\xf0\x80",
     b"\xf0\x8f", b"\xc0", b"\xc1", b"\xf5", b"\xf8", b"\xff", b"\x80", b"\xc2\xc2", b"\xe2\x82A",
     b"\xf0\x9f\x98\xf0"],
)  # fmt: skip
def test_fails_fast(impl, prefix) -> None:
    """False as soon as the bytes cannot begin any valid string, before any more arrive."""
    assert not viable(prefix)
    v = impl.Utf8Validator()
    assert v.feed(b"valid text ") is True
    assert v.feed(prefix) is False
    assert v.finish() is False

    v = impl.Utf8Validator()
    results = [v.feed(prefix[i : i + 1]) for i in range(len(prefix))]
    assert results[-1] is False


@pytest.mark.parametrize(
    "prefix",
    [b"\xed\x9f", b"\xed\x80", b"\xf4\x8f", b"\xf4\x80\x80", b"\xe0\xa0", b"\xf0\x90",
     b"\xf0\x90\x80", b"\xc2", b"\xdf", b"\xef\xbf", b"\xf3\xbf\xbf"],
)  # fmt: skip
def test_viable_prefixes_are_accepted(impl, prefix) -> None:
    v = impl.Utf8Validator()
    assert v.feed(prefix) is True
    assert v.finish() is False


def test_validator_is_sticky_and_resets(impl) -> None:
    v = impl.Utf8Validator()
    assert v.finish() is True  # nothing fed is the empty string
    assert v.feed(b"") is True
    assert v.feed(b"\xed\xa0") is False
    assert v.feed(b"\x80") is False
    assert v.feed(b"plain ascii") is False
    assert v.feed(b"") is False
    assert v.finish() is False
    v.reset()
    assert v.finish() is True
    assert v.feed("€".encode()[:1]) is True
    assert v.finish() is False
    v.reset()  # also forgets a pending partial character
    assert v.feed(b"A") is True
    assert v.finish() is True


def test_validators_are_independent(impl) -> None:
    a, b = impl.Utf8Validator(), impl.Utf8Validator()
    assert a.feed(b"\xe2\x82") is True
    assert b.feed(b"\xff") is False
    assert a.feed(b"\xac") is True
    assert a.finish() is True
    assert b.finish() is False


def test_character_split_across_many_fragments(impl) -> None:
    for ch in ["\x7f", "é", "€", "\ud7ff", "\ue000", "\uffff", "😀", "\U0010ffff"]:
        enc = ch.encode()
        v = impl.Utf8Validator()
        for i, b in enumerate(enc):
            assert v.feed(bytes([b])) is True
            assert v.finish() is (i == len(enc) - 1)
        assert v.feed(b"") is True
        assert v.finish() is True


# --- property tests ------------------------------------------------------------------------


@given(data=any_input)
def test_validate_matches_decode(impl, data) -> None:
    assert impl.validate_utf8(data) is decodes(data)


@given(data=st.text(chars, max_size=200))
def test_encoded_text_is_valid(impl, data) -> None:
    enc = data.encode()
    assert impl.validate_utf8(enc) is True
    v = impl.Utf8Validator()
    assert v.feed(enc) is True
    assert v.finish() is True


@given(data=st.one_of(utf8ish, mutated_text(), texts))
def test_validator_at_every_split_point(impl, data) -> None:
    valid = decodes(data)
    for cut in range(len(data) + 1):
        v = impl.Utf8Validator()
        assert v.feed(data[:cut]) is viable(data[:cut]), cut
        assert v.feed(data[cut:]) is viable(data), cut
        assert v.finish() is valid, cut


@given(data=st.one_of(utf8ish, mutated_text(), st.binary(max_size=40)))
def test_validator_byte_by_byte(impl, data) -> None:
    v = impl.Utf8Validator()
    for i in range(len(data)):
        assert v.feed(data[i : i + 1]) is viable(data[: i + 1]), i
    assert v.finish() is decodes(data)


@given(data=st.one_of(utf8ish, mutated_text(), texts), cuts=st.lists(st.integers(0, 600)))
def test_validator_random_chunks(impl, data, cuts) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    v = impl.Utf8Validator()
    for a, b in zip(bounds, bounds[1:], strict=False):
        chunk = memoryview(data)[a:b] if a % 2 else bytearray(data[a:b])
        assert v.feed(chunk) is viable(data[:b]), (a, b)
    assert v.finish() is decodes(data)


@given(data=any_input, cuts=st.lists(st.integers(0, 600), max_size=6))
def test_compiled_and_pure_agree(compiled, pure, data, cuts) -> None:
    assert compiled.validate_utf8(data) is pure.validate_utf8(data)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    vc, vp = compiled.Utf8Validator(), pure.Utf8Validator()
    for a, b in zip(bounds, bounds[1:], strict=False):
        assert vc.feed(data[a:b]) is vp.feed(data[a:b])
    assert vc.finish() is vp.finish()


# --- block boundaries (SIMD and word-at-a-time paths) --------------------------------------

ASCII_RUN = (b"The quick brown fox jumps over the lazy dog. " * 12)[:512]
CJK_RUN = ("漢字かなカナ한국어中文" * 40).encode()[:600]  # 3-byte characters only
MIXED_RUN = ("aé€😀" * 60).encode()  # 1, 2, 3 and 4 bytes
assert decodes(CJK_RUN) and decodes(MIXED_RUN) and len(CJK_RUN) % 3 == 0

BAD_PIECES = [
    b"\x80", b"\xbf", b"\xff", b"\xfe", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
    b"\xed\xbf\xbf", b"\xf0\x80\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xc2",
    b"\xe2\x82", b"\xf0\x9f\x98", b"\xf8\x88\x80\x80\x80",
]  # fmt: skip
GOOD_PIECES = ["é", "€", "😀", "\U0010ffff", "\ud7ff"]

OFFSETS = sorted({*range(0, 131), *range(250, 262), *range(500, 512)})


def _check_both(impl, data: bytes, where: object) -> None:
    expected = decodes(data)
    assert impl.validate_utf8(data) is expected, where
    v = impl.Utf8Validator()
    assert v.feed(data) is viable(data), where
    assert v.finish() is expected, where


@pytest.mark.parametrize(
    "run", [ASCII_RUN, CJK_RUN, MIXED_RUN, ASCII_RUN[:257]], ids=["ascii", "cjk", "mixed", "257"]
)
def test_invalid_bytes_around_block_boundaries(impl, run) -> None:
    assert len(run) >= 256
    for offset in OFFSETS:
        if offset > len(run):
            continue
        for bad in BAD_PIECES:
            _check_both(impl, run[:offset] + bad + run[offset:], ("insert", offset, bad))
            _check_both(
                impl, run[:offset] + bad + run[offset + len(bad) :], ("replace", offset, bad)
            )


@pytest.mark.parametrize("run", [ASCII_RUN, CJK_RUN, MIXED_RUN], ids=["ascii", "cjk", "mixed"])
def test_invalid_tail_after_long_run(impl, run) -> None:
    for cut in range(len(run) - 70, len(run) + 1):
        for bad in BAD_PIECES:
            data = run[:cut] + bad
            _check_both(impl, data, (cut, bad))


def test_every_position_of_long_ascii_run(impl) -> None:
    for pos in range(len(ASCII_RUN)):
        for bad in (0x80, 0xFF, 0xC2, 0xE0):
            data = bytearray(ASCII_RUN)
            data[pos] = bad
            assert impl.validate_utf8(data) is False, (pos, bad)
        data = ASCII_RUN[:pos] + b"\xc3\xa9" + ASCII_RUN[pos:]
        assert impl.validate_utf8(data) is True, pos


def test_valid_characters_straddling_block_boundaries(impl) -> None:
    for piece in GOOD_PIECES:
        enc = piece.encode()
        for offset in OFFSETS:
            _check_both(impl, ASCII_RUN[:offset] + enc + ASCII_RUN[offset:], (offset, piece))
            data = ASCII_RUN[:offset] + enc * 40 + ASCII_RUN[offset:]
            assert impl.validate_utf8(data) is True, (offset, piece)


PAIR_TAILS = [b"", b"\x80", b"\xbf\xbf", b"\x80\x80\x80", b"A"]


@pytest.mark.parametrize("pos", [31, 69, 157])
def test_every_byte_pair_inside_a_long_run(impl, pos) -> None:
    """Every (non-ASCII lead, any byte) pair, with a few tails, straddling a 32-byte block
    boundary (31), inside a block (69) and at the end of the buffer (157)."""
    run = b"x" * 160
    for b1 in range(0x80, 0x100):
        for b2 in range(256):
            for tail in PAIR_TAILS:
                piece = bytes([b1, b2]) + tail
                data = run[:pos] + piece + run[pos + len(piece) :]
                assert impl.validate_utf8(data) is decodes(data), data[pos - 1 :]
    v = impl.Utf8Validator()
    for b1 in range(0x80, 0x100):
        for b2 in range(256):
            data = run[:pos] + bytes([b1, b2])
            v.reset()
            assert v.feed(data) is viable(data), data[pos - 1 :]


def test_long_inputs(impl) -> None:
    rng = random.Random(7)
    text = "".join(chr(rng.choice([0x41, 0xE9, 0x20AC, 0x1F600, 0x10FFFF])) for _ in range(20000))
    data = text.encode()
    assert impl.validate_utf8(data) is True
    for pos in rng.sample(range(len(data)), 40):
        bad = bytearray(data)
        bad[pos] = 0xFF
        assert impl.validate_utf8(bad) is False, pos
        v = impl.Utf8Validator()
        assert v.feed(bad) is False, pos


# --- buffer types and bad input ------------------------------------------------------------


def test_buffer_types(impl) -> None:
    good = "κόσμε €".encode()
    good += b"!" * (-len(good) % 4)
    bad = b"\xff" + good[1:]
    for data, expected in ((good, True), (bad, False)):
        buffers = [
            data,
            bytearray(data),
            memoryview(data),
            memoryview(b"\x80\x80" + data + b"\xff")[2:-1],
            array.array("B", data),
            array.array("I", data),
            memoryview(data).cast("i"),
            memoryview(data).cast("B", (2, len(data) // 2)),
        ]
        for buf in buffers:
            assert impl.validate_utf8(buf) is expected, buf
            v = impl.Utf8Validator()
            assert v.feed(buf) is expected, buf
            assert v.finish() is expected, buf


NOT_BUFFERS = ["text", "", 0, 1, None, [0x41], 1.5, object()]


@pytest.mark.parametrize("data", NOT_BUFFERS, ids=repr)
def test_not_a_buffer(impl, data) -> None:
    with pytest.raises(TypeError):
        impl.validate_utf8(data)
    v = impl.Utf8Validator()
    assert v.feed(b"\xe2\x82") is True
    with pytest.raises(TypeError):
        v.feed(data)
    assert v.feed(b"\xac") is True  # the failed call changed nothing
    assert v.finish() is True


@pytest.mark.parametrize("step", [2, -1])
def test_not_contiguous(impl, step) -> None:
    view = memoryview(b"a\xffb\xffc\xff")[::step]
    with pytest.raises((TypeError, BufferError)):
        impl.validate_utf8(view)
    with pytest.raises((TypeError, BufferError)):
        impl.Utf8Validator().feed(view)


def test_released_memoryview(impl) -> None:
    view = memoryview(b"abc")
    view.release()
    with pytest.raises(ValueError):
        impl.validate_utf8(view)
    v = impl.Utf8Validator()
    with pytest.raises(ValueError):
        v.feed(view)
    assert v.finish() is True


def test_bad_calls(impl) -> None:
    with pytest.raises(TypeError):
        impl.validate_utf8()
    with pytest.raises(TypeError):
        impl.validate_utf8(b"a", b"b")
    with pytest.raises(TypeError):
        impl.Utf8Validator().feed()


@pytest.mark.parametrize("args", [(b"abc",), (None,), (1, 2)], ids=repr)
def test_validator_constructor_takes_no_arguments(impl, args) -> None:
    """``Utf8Validator()`` has no parameters; arguments must not be silently ignored."""
    try:
        impl.Utf8Validator(*args)
    except TypeError:
        return
    pytest.fail(f"Utf8Validator{args!r} accepted (and ignored) its arguments")


def test_threads_on_16_mib(impl) -> None:
    unit = ("ascii κόσμε 漢字 😀 " * 64).encode()
    good = unit * (16 * 1024 * 1024 // len(unit))
    bad = bytearray(good)
    bad[-5] = 0xC0
    inputs = [good, bytes(bad), good, bytes(bad)]
    results: dict[int, object] = {}

    def work(i: int) -> None:
        try:
            v = impl.Utf8Validator()
            results[i] = (impl.validate_utf8(inputs[i]), v.feed(inputs[i]) and v.finish())
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: (True, True), 1: (False, False), 2: (True, True), 3: (False, False)}


# --- feed_count: where the input became invalid ----------------------------------------------


def first_bad_index(data: bytes) -> int:
    """The oracle for ``feed_count``: the length of the longest viable prefix of ``data``
    (``len(data)`` when all of it is viable)."""
    for i in range(len(data)):
        if not viable(data[: i + 1]):
            return i
    return len(data)


@pytest.mark.parametrize(
    "data, count",
    [(b"", 0), (b"abc", 3), (b"ab\xffc", 2), (b"\xed\xa0\x80", 1), (b"\xe2\x82", 2),
     (b"caf\xc3\xa9 \xc0", 6), (b"x" * 100 + b"\xf4\x90", 101), (b"\x80", 0)],
)  # fmt: skip
def test_feed_count_known(impl, data, count) -> None:
    v = impl.Utf8Validator()
    assert v.feed_count(data) == count
    assert v.finish() is (count == len(data) and decodes(data))


def test_feed_count_is_sticky_and_continues(impl) -> None:
    v = impl.Utf8Validator()
    assert v.feed_count(b"edited") == 6
    assert v.feed_count(b"\xe2\x82") == 2  # a character left open...
    assert v.feed_count(b"\xac!") == 2  # ...and finished
    assert v.feed_count(b"\xed") == 1
    assert v.feed_count(b"\xa0\x80") == 0  # the error is the first byte of this chunk
    assert v.feed_count(b"abc") == 0  # rejected for good
    assert v.feed_count(b"") == 0
    assert v.feed(b"a") is False
    v.reset()
    assert v.feed_count(b"abc") == 3


@given(data=any_input, cuts=st.lists(st.integers(0, 400), max_size=4))
def test_feed_count_matches_oracle(impl, data, cuts) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    v = impl.Utf8Validator()
    bad = first_bad_index(data)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        expected = hi - lo if bad >= hi else max(bad - lo, 0)
        assert v.feed_count(data[lo:hi]) == expected
    assert v.finish() is decodes(data)


@pytest.mark.parametrize("size", [64, 1000, 300 * 1024])
def test_feed_count_long_inputs(impl, size) -> None:
    good = ("κόσμε " * size).encode()[:size]
    good = good[: len(good.decode("utf-8", "ignore").encode())]
    for pos in (0, len(good) // 2, len(good) - 1):
        bad = bytearray(good)
        bad[pos : pos + 1] = b"\xff"
        v = impl.Utf8Validator()
        assert v.feed_count(bytes(bad)) == pos
    v = impl.Utf8Validator()
    assert v.feed_count(memoryview(good)) == len(good)


def test_feed_count_refuses_what_feed_refuses(impl) -> None:
    v = impl.Utf8Validator()
    for data in NOT_BUFFERS:
        with pytest.raises(TypeError):
            v.feed_count(data)
    with pytest.raises((TypeError, BufferError)):
        v.feed_count(memoryview(b"a\xffb\xff")[::2])
    assert v.feed_count(b"ok") == 2
