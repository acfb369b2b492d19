"""RFC 6455 §5.3 masking: ``apply_mask`` and ``apply_mask_inplace``."""

from __future__ import annotations

import array
import random
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

RFC_KEY = b"\x37\xfa\x21\x3d"


def naive_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """The definition: octet i of the output is octet i of the input XOR mask[(offset + i) % 4]."""
    return bytes(b ^ mask[(i + offset) % 4] for i, b in enumerate(data))


_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]


def strided_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """Same as :func:`naive_mask`, at C speed: every fourth byte is translated by one key byte."""
    out = bytearray(data)
    for j in range(4):
        out[j::4] = bytes(data[j::4]).translate(_XOR_TABLES[mask[(j + offset) % 4]])
    return bytes(out)


def raw(buffer: object) -> bytes:
    return memoryview(buffer).tobytes()  # type: ignore[arg-type]


def readonly_buffers(data: bytes) -> list[object]:
    """``data`` as every kind of C-contiguous buffer the kernels must read."""
    big = bytearray(b"\xaa" * 3 + data + b"\x55" * 5)
    out: list[object] = [
        data,
        bytearray(data),
        memoryview(data),
        memoryview(big)[3 : 3 + len(data)],  # unaligned slice of a larger buffer
        array.array("B", data),
        memoryview(data).toreadonly(),
    ]
    if len(data) % 4 == 0:
        out.append(array.array("I", data))  # multi-byte items: only the raw bytes matter
        out.append(memoryview(data).cast("i"))
    if len(data) % 2 == 0 and data:
        out.append(memoryview(data).cast("B", (2, len(data) // 2)))  # C-contiguous, 2-D
    return out


def writable_buffers(data: bytes) -> list[object]:
    out: list[object] = [bytearray(data), memoryview(bytearray(data)), array.array("B", data)]
    if len(data) % 4 == 0:
        out.append(array.array("I", data))
    if len(data) % 2 == 0 and data:
        out.append(memoryview(bytearray(data)).cast("B", (2, len(data) // 2)))
    return out


masks = st.binary(min_size=4, max_size=4)
offsets = st.one_of(st.integers(0, 8), st.integers(0, 2**62))
payloads = st.binary(max_size=300)


# --- fixed examples ------------------------------------------------------------------------


def test_reference_helpers_agree() -> None:
    rng = random.Random(1)
    for n in range(40):
        data = rng.randbytes(n)
        for offset in range(5):
            assert strided_mask(data, RFC_KEY, offset) == naive_mask(data, RFC_KEY, offset)


def test_rfc6455_example(impl) -> None:
    # RFC 6455 §5.7: a masked text frame "Hello" with key 37 fa 21 3d.
    assert impl.apply_mask(b"Hello", RFC_KEY) == b"\x7f\x9f\x4d\x51\x58"
    assert impl.apply_mask(b"\x7f\x9f\x4d\x51\x58", RFC_KEY) == b"Hello"
    buf = bytearray(b"Hello")
    assert impl.apply_mask_inplace(buf, RFC_KEY) is None
    assert buf == b"\x7f\x9f\x4d\x51\x58"


def test_empty(impl) -> None:
    assert impl.apply_mask(b"", RFC_KEY) == b""
    assert type(impl.apply_mask(b"", RFC_KEY, 3)) is bytes
    buf = bytearray()
    impl.apply_mask_inplace(buf, RFC_KEY, 2)
    assert buf == b""


def test_zero_mask_is_identity_and_result_is_new_bytes(impl) -> None:
    data = bytearray(range(256)) * 3
    out = impl.apply_mask(data, b"\0\0\0\0")
    assert type(out) is bytes
    assert out == data
    out = impl.apply_mask(data, b"\xff\xff\xff\xff", 1)
    assert out == bytes(b ^ 0xFF for b in data)
    assert data == bytearray(range(256)) * 3  # the input is not modified


@pytest.mark.parametrize("mask_type", [bytes, bytearray, memoryview])
def test_mask_buffer_types(impl, mask_type) -> None:
    data = bytes(range(50))
    expected = naive_mask(data, RFC_KEY, 1)
    assert impl.apply_mask(data, mask_type(RFC_KEY), 1) == expected
    buf = bytearray(data)
    impl.apply_mask_inplace(buf, mask_type(RFC_KEY), 1)
    assert buf == expected


def test_mask_slice_of_larger_buffer(impl) -> None:
    key = memoryview(b"xx" + RFC_KEY + b"yy")[2:6]
    assert impl.apply_mask(b"Hello", key) == b"\x7f\x9f\x4d\x51\x58"


def test_mask_aliasing_the_buffer(impl) -> None:
    """The key is read before any byte is written, even when it lives in the buffer."""
    for n in (4, 5, 64, 1000):
        original = bytes((7 * i + 3) % 256 for i in range(n))
        key = original[:4]
        buf = bytearray(original)
        impl.apply_mask_inplace(buf, memoryview(buf)[:4], 1)
        assert buf == naive_mask(original, key, 1), n
        buf = bytearray(original)
        assert impl.apply_mask(buf, memoryview(buf)[:4], 2) == naive_mask(original, key, 2)


def test_every_buffer_type(impl) -> None:
    rng = random.Random(2)
    for n in (0, 1, 3, 4, 7, 8, 16, 31, 64, 100, 260):
        data = rng.randbytes(n)
        for offset in range(4):
            expected = naive_mask(data, RFC_KEY, offset)
            for buf in readonly_buffers(data):
                assert impl.apply_mask(buf, RFC_KEY, offset) == expected, (n, offset, buf)
            for buf in writable_buffers(data):
                impl.apply_mask_inplace(buf, RFC_KEY, offset)
                assert raw(buf) == expected, (n, offset, type(buf))


def test_all_small_lengths_alignments_and_offsets(impl) -> None:
    """Every length 0..140 at every start 0..15 inside a larger buffer, every key phase."""
    rng = random.Random(3)
    key = bytes([0x01, 0x80, 0x7F, 0xFE])
    outer = rng.randbytes(180)
    for n in range(141):
        for start in range(16):
            data = outer[start : start + n]
            for offset in range(4):
                expected = naive_mask(data, key, offset)
                view = memoryview(outer)[start : start + n]
                assert impl.apply_mask(view, key, offset) == expected, (n, start, offset)
                buf = bytearray(outer)
                impl.apply_mask_inplace(memoryview(buf)[start : start + n], key, offset)
                assert buf[start : start + n] == expected, (n, start, offset)
                assert buf[:start] == outer[:start], (n, start, offset)
                assert buf[start + n :] == outer[start + n :], (n, start, offset)


# Around the vector widths (16, 32, 64 bytes) and 4-vector turns of the SIMD loops.
_EDGE_LENGTHS = sorted(
    {w * k + d for w in (16, 32, 64) for k in (1, 2, 3, 4, 5, 8) for d in (-1, 0, 1)}
)


def test_every_alignment_mod_64_around_vector_edges(impl) -> None:
    """The x86 loops align their stores to the vector width and mask the two ends apart: every
    start 0..63 (every address mod 64), in place and not, bytes around the slice untouched."""
    rng = random.Random(64)
    key = bytes([0xA1, 0x02, 0x7E, 0xFF])
    outer = rng.randbytes(64 + 600 + 64)
    for n in _EDGE_LENGTHS:
        for start in range(64):
            offset = (n + start) % 4
            data = outer[start : start + n]
            expected = naive_mask(data, key, offset)
            assert impl.apply_mask(memoryview(outer)[start : start + n], key, offset) == expected
            buf = bytearray(outer)
            impl.apply_mask_inplace(memoryview(buf)[start : start + n], key, offset)
            assert buf[start : start + n] == expected, (n, start)
            assert buf[:start] == outer[:start] and buf[start + n :] == outer[start + n :]


@pytest.mark.parametrize("n", [65536, 65536 + 3, (1 << 20) + 13])
def test_large_buffers(impl, n) -> None:
    rng = random.Random(n)
    data = rng.randbytes(n)
    key = rng.randbytes(4)
    for offset in (0, 1, 2, 3):
        expected = strided_mask(data, key, offset)
        assert impl.apply_mask(data, key, offset) == expected
        assert impl.apply_mask(bytearray(data), key, offset) == expected
        buf = bytearray(data)
        impl.apply_mask_inplace(buf, key, offset)
        assert buf == expected
        big = bytearray(b"\xcc" * 7 + data + b"\x33" * 9)
        impl.apply_mask_inplace(memoryview(big)[7 : 7 + n], key, offset)
        assert big[7 : 7 + n] == expected
        assert big[:7] == b"\xcc" * 7 and big[7 + n :] == b"\x33" * 9


def test_offset_only_matters_modulo_4(impl) -> None:
    data = bytes(range(97))
    for offset in (
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        1001,
        2**31 - 1,
        2**31,
        2**32 + 1,
        2**62 + 3,
        sys.maxsize,
    ):
        expected = naive_mask(data, RFC_KEY, offset % 4)
        assert impl.apply_mask(data, RFC_KEY, offset) == expected, offset
        buf = bytearray(data)
        impl.apply_mask_inplace(buf, RFC_KEY, offset)
        assert buf == expected, offset


def test_offset_is_keyword_and_positional(impl) -> None:
    assert impl.apply_mask(b"Hello", RFC_KEY, offset=1) == impl.apply_mask(b"Hello", RFC_KEY, 1)
    assert impl.apply_mask(b"Hello", RFC_KEY, offset=1) == naive_mask(b"Hello", RFC_KEY, 1)


# --- property tests ------------------------------------------------------------------------


@given(data=payloads, mask=masks, offset=offsets)
def test_apply_mask_matches_naive(impl, data, mask, offset) -> None:
    assert impl.apply_mask(data, mask, offset) == naive_mask(data, mask, offset)
    assert impl.apply_mask(bytearray(data), mask, offset) == naive_mask(data, mask, offset)


@given(
    data=payloads,
    mask=masks,
    offset=offsets,
    before=st.integers(0, 70),
    after=st.integers(0, 70),
    fill=st.integers(0, 255),
)
def test_unaligned_slices_in_place_and_not(impl, data, mask, offset, before, after, fill) -> None:
    outer = bytes([fill]) * before + data + bytes([fill ^ 0x5A]) * after
    expected = naive_mask(data, mask, offset)
    view = memoryview(outer)[before : before + len(data)]
    assert impl.apply_mask(view, mask, offset) == expected

    buf = bytearray(outer)
    impl.apply_mask_inplace(memoryview(buf)[before : before + len(data)], mask, offset)
    assert buf[before : before + len(data)] == expected
    assert buf[:before] == outer[:before]  # nothing outside the slice is touched
    assert buf[before + len(data) :] == outer[before + len(data) :]


@given(
    n=st.integers(300, 9000),
    seed=st.integers(0, 2**32 - 1),
    mask=masks,
    offset=offsets,
    start=st.integers(0, 63),
)
def test_large_random_lengths(impl, n, seed, mask, offset, start) -> None:
    rng = random.Random(seed)
    outer = rng.randbytes(start + n + 5)
    data = outer[start : start + n]
    expected = strided_mask(data, mask, offset)
    assert impl.apply_mask(memoryview(outer)[start : start + n], mask, offset) == expected
    buf = bytearray(outer)
    impl.apply_mask_inplace(memoryview(buf)[start : start + n], mask, offset)
    assert buf[start : start + n] == expected
    assert buf[:start] == outer[:start] and buf[start + n :] == outer[start + n :]


@given(data=st.binary(max_size=400), mask=masks, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_chunked_masking_with_running_offset(impl, data, mask, cuts) -> None:
    """Masking a payload piece by piece, passing the bytes done so far as ``offset``."""
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    out = b"".join(
        impl.apply_mask(data[a:b], mask, a) for a, b in zip(bounds, bounds[1:], strict=False)
    )
    assert out == naive_mask(data, mask)
    buf = bytearray(data)
    for a, b in zip(bounds, bounds[1:], strict=False):
        impl.apply_mask_inplace(memoryview(buf)[a:b], mask, a)
    assert buf == naive_mask(data, mask)


@given(data=payloads, mask=masks, offset=offsets)
def test_mask_is_an_involution(impl, data, mask, offset) -> None:
    assert impl.apply_mask(impl.apply_mask(data, mask, offset), mask, offset) == data


_BAD_OFFSETS = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([sys.maxsize, sys.maxsize + 1, 2**64, -1])
)


@given(data=payloads, mask=st.binary(max_size=6), offset=_BAD_OFFSETS)
def test_compiled_and_pure_agree(compiled, pure, data, mask, offset) -> None:
    """Same result or same exception type, including odd mask sizes and out-of-range offsets."""

    def outcome(mod, inplace):
        try:
            if inplace:
                buf = bytearray(data)
                mod.apply_mask_inplace(buf, mask, offset)
                return bytes(buf)
            return mod.apply_mask(data, mask, offset)
        except Exception as exc:  # compare the kind of failure
            return type(exc)

    for inplace in (False, True):
        assert outcome(compiled, inplace) == outcome(pure, inplace)


# --- bad input -----------------------------------------------------------------------------

NOT_BUFFERS = ["abcd", "", 4, 0, None, [1, 2, 3, 4], (1, 2, 3, 4), 4.0, object()]


@pytest.mark.parametrize("mask", [b"", b"\x01", b"abc", b"abcde", b"abcdefgh", bytearray(3)])
@pytest.mark.parametrize("data", [b"", b"x", b"Hello, world!" * 10])
def test_mask_of_wrong_size(impl, data, mask) -> None:
    with pytest.raises(ValueError):
        impl.apply_mask(data, mask)
    buf = bytearray(data)
    with pytest.raises(ValueError):
        impl.apply_mask_inplace(buf, mask)
    assert buf == data


@pytest.mark.parametrize("mask", NOT_BUFFERS, ids=repr)
def test_mask_not_a_buffer(impl, mask) -> None:
    with pytest.raises(TypeError):
        impl.apply_mask(b"Hello", mask)
    buf = bytearray(b"Hello")
    with pytest.raises(TypeError):
        impl.apply_mask_inplace(buf, mask)
    assert buf == b"Hello"


def test_mask_not_contiguous(impl) -> None:
    mask = memoryview(b"a_b_c_d_")[::2]
    assert len(mask) == 4
    with pytest.raises((TypeError, BufferError)):
        impl.apply_mask(b"Hello", mask)
    with pytest.raises((TypeError, BufferError)):
        impl.apply_mask_inplace(bytearray(b"Hello"), mask)


@pytest.mark.parametrize("data", NOT_BUFFERS, ids=repr)
def test_data_not_a_buffer(impl, data) -> None:
    with pytest.raises(TypeError):
        impl.apply_mask(data, RFC_KEY)
    with pytest.raises(TypeError):
        impl.apply_mask_inplace(data, RFC_KEY)


@pytest.mark.parametrize("step", [2, 3, -1])
def test_data_not_contiguous(impl, step) -> None:
    base = bytearray(range(64))
    view = memoryview(base)[::step]
    with pytest.raises((TypeError, BufferError)):
        impl.apply_mask(view, RFC_KEY)
    with pytest.raises((TypeError, BufferError)):
        impl.apply_mask_inplace(view, RFC_KEY)
    assert base == bytearray(range(64))


def expect_value_error(fn, *args) -> None:
    """``fn(*args)`` must raise ValueError; any other outcome fails with a clear message."""
    try:
        fn(*args)
    except ValueError:
        return
    except Exception as exc:
        pytest.fail(f"{fn.__name__}{args!r} raised {type(exc).__name__} ({exc}), not ValueError")
    pytest.fail(f"{fn.__name__}{args!r} did not raise ValueError")


NEGATIVE_OFFSETS = [-1, -3, -4, -(2**31), -(2**63)]
# beyond a C ssize_t: the spec still says "negative is a ValueError"
HUGE_NEGATIVE_OFFSETS = [-(2**63) - 1, -(2**64), -(2**80)]


@pytest.mark.parametrize(
    "offset",
    NEGATIVE_OFFSETS + HUGE_NEGATIVE_OFFSETS,
    ids=["-1", "-3", "-4", "-2**31", "-2**63", "-2**63-1", "-2**64", "-2**80"],
)
@pytest.mark.parametrize("data", [b"", b"Hello"])
def test_negative_offset(impl, data, offset) -> None:
    expect_value_error(impl.apply_mask, data, RFC_KEY, offset)
    buf = bytearray(data)
    expect_value_error(impl.apply_mask_inplace, buf, RFC_KEY, offset)
    assert buf == data


@pytest.mark.parametrize("offset", [1.0, "1", None, b"\x01"], ids=repr)
def test_offset_not_an_integer(impl, offset) -> None:
    with pytest.raises(TypeError):
        impl.apply_mask(b"Hello", RFC_KEY, offset)
    with pytest.raises(TypeError):
        impl.apply_mask_inplace(bytearray(b"Hello"), RFC_KEY, offset)


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"Hello",
        lambda: memoryview(b"Hello"),
        lambda: memoryview(bytearray(b"Hello")).toreadonly(),
        lambda: b"",
    ],
    ids=["bytes", "memoryview(bytes)", "readonly-view", "empty-bytes"],
)
def test_in_place_refuses_read_only(impl, make) -> None:
    buf = make()
    before = raw(buf)
    with pytest.raises(TypeError):
        impl.apply_mask_inplace(buf, RFC_KEY)
    assert raw(buf) == before


def released_view(data: bytes | bytearray) -> memoryview:
    view = memoryview(data)
    view.release()
    return view


def test_released_memoryview(impl) -> None:
    for fn in (impl.apply_mask, impl.apply_mask_inplace):
        with pytest.raises(ValueError):
            fn(released_view(bytearray(b"Hello")), RFC_KEY)
        with pytest.raises(ValueError):
            fn(bytearray(b"Hello"), released_view(RFC_KEY))


def test_missing_arguments(impl) -> None:
    with pytest.raises(TypeError):
        impl.apply_mask(b"Hello")
    with pytest.raises(TypeError):
        impl.apply_mask_inplace(bytearray(b"Hello"))
    with pytest.raises(TypeError):
        impl.apply_mask(b"Hello", RFC_KEY, 0, 0)


# --- threads -------------------------------------------------------------------------------


def test_threads_on_16_mib(impl) -> None:
    """Several threads masking big buffers at once (the compiled kernels release the GIL)."""
    n = 16 * 1024 * 1024
    rng = random.Random(16)
    chunk = rng.randbytes(1 << 16)
    data = chunk * (n // len(chunk))
    keys = [rng.randbytes(4) for _ in range(4)]
    expected = [strided_mask(data, key, i) for i, key in enumerate(keys)]
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            ok = impl.apply_mask(data, keys[i], i) == expected[i]
            buf = bytearray(data)
            impl.apply_mask_inplace(buf, keys[i], i)
            results[i] = ok and buf == expected[i]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {i: True for i in range(len(keys))}


def test_top_level_is_one_of_the_twins() -> None:
    import wsfast.pure

    assert wsfast.apply_mask(b"Hello", RFC_KEY) == b"\x7f\x9f\x4d\x51\x58"
    if wsfast.implementation == "python":
        assert wsfast.apply_mask is wsfast.pure.apply_mask
    else:
        assert wsfast.apply_mask is not wsfast.pure.apply_mask
