"""Fuzz harness: the compiled ``apply_mask`` / ``apply_mask_inplace`` against their pure twins
and a byte-by-byte XOR written here, on the SIMD path chosen by ``WSFAST_ISA``.

Input: an options byte (bits 0-1 the data's buffer type, bits 2-3 the key's, bit 4 a large
offset, bit 5 a key of the wrong length, bit 6 a negative offset), a repeat count (the data
repeated, to reach the vector loops; 0xFF: past the 256 KiB above which the kernels release
the GIL), the key, the offset, a chunking plan, then the data.

Both builds give the same bytes, copying and in place (bytearray, an unaligned memoryview
into a larger buffer, and a buffer that ends where its heap block ends), nothing written past
the end of a result, whole and chunk by chunk with the running offset; masking twice gives
the data back; the same errors for a bad key or offset.

Run it once per path: ``WSFAST_ISA=avx512|avx2|sse2|scalar python fuzz/mask.py ...``.
"""

from __future__ import annotations

import itertools
import operator
import sys
from typing import Any

from _harness import (
    Input,
    as_buffer,
    check_isa,
    cut,
    encode_plan,
    expect,
    instrumented,
    run,
    terminated,
)

compiled: Any = None
pure: Any = None
BIG = 256 * 1024  # MASK_NOGIL_MIN
SPOT = 4096  # longer payloads: the reference XOR at both ends only


def load() -> None:
    """Import the code under test (see ``_harness.run``)."""
    global compiled, pure
    with instrumented():
        import wsfast.pure as pure
        from wsfast import _compiled as compiled
    check_isa()


def encode(data: bytes, key: bytes, *, offset: int = 0, repeat: int = 0, plan: bytes = b"",
           buffer: int = 0, key_buffer: int = 0) -> bytes:
    """A fuzz input (what the seed corpus is made of); ``key`` of 4 bytes."""
    big = offset > 0xFFFF
    options = buffer % 4 | (key_buffer % 4) << 2 | big << 4
    raw_offset = offset.to_bytes(8 if big else 2, "big")
    return bytes([options, repeat % 256]) + key + raw_offset + encode_plan(plan) + data


def reference(data: bytes, key: bytes, offset: int) -> bytes:
    rotated = key[offset % 4 :] + key[: offset % 4]
    return bytes(map(operator.xor, data, itertools.cycle(rotated)))


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except (ValueError, TypeError, BufferError) as exc:
        return type(exc).__name__, str(exc)


def check(data: bytes) -> None:
    inp = Input(data)
    options = inp.byte()
    repeat = inp.byte()
    bad_key = options & 0x20
    key = inp.take(inp.byte() % 8) if bad_key else inp.take(4).ljust(4, b"\0")
    offset = inp.uint(8 if options & 0x10 else 2)
    plan = inp.plan()
    payload = inp.rest()
    if repeat == 0xFF and payload:
        payload *= BIG // len(payload) + 1
    else:
        payload *= 1 + repeat % 8
    buffer = options & 3
    key_buf = as_buffer(key, options >> 2)
    if bad_key or options & 0x40:
        # Error paths: a key that is not 4 bytes, a negative offset.
        bad_offset = -1 - offset if options & 0x40 else offset
        for name in ("apply_mask", "apply_mask_inplace"):
            ours, theirs = getattr(compiled, name), getattr(pure, name)
            got = _outcome(lambda: ours(bytearray(payload), key, bad_offset))  # noqa: B023
            want = _outcome(lambda: theirs(bytearray(payload), key, bad_offset))  # noqa: B023
            expect(got[0] != "ok" or len(key) == 4 and bad_offset >= 0, "accepted", name, got)
            expect(got == want, "errors differ", name, got, want)
        return
    if len(payload) <= SPOT:
        expected = reference(payload, key, offset)
        expect(pure.apply_mask(payload, key, offset) == expected, "pure apply_mask differs")
    else:  # the twin throughout (fast), the byte-by-byte reference at both ends
        expected = pure.apply_mask(payload, key, offset)
        tail = len(payload) - SPOT
        expect(expected[:SPOT] == reference(payload[:SPOT], key, offset)
               and expected[tail:] == reference(payload[tail:], key, offset + tail),
               "pure apply_mask differs")  # fmt: skip
    got = compiled.apply_mask(as_buffer(payload, buffer), key_buf, offset)
    expect(type(got) is bytes and got == expected, "apply_mask differs from the reference")
    expect(terminated(got), "apply_mask wrote past the end of its result")
    inplace = bytearray(payload)
    compiled.apply_mask_inplace(inplace, key_buf, offset)
    expect(inplace == expected, "apply_mask_inplace on a bytearray differs")
    view = as_buffer(payload, 2)  # unaligned, inside a larger buffer
    outer = bytes(view.obj)
    compiled.apply_mask_inplace(view, key, offset)
    expect(view.tobytes() == expected, "apply_mask_inplace on a memoryview differs")
    start = len(outer) - len(payload) - 1
    expect(bytes(view.obj[:start]) == outer[:start] and view.obj[-1:] == outer[-1:],
           "apply_mask_inplace wrote outside the view")  # fmt: skip
    compiled.apply_mask_inplace(view, key, offset)
    expect(view.tobytes() == payload, "masking twice does not give the data back")
    exact = as_buffer(payload, 3)  # ends where its heap block ends (see as_buffer)
    compiled.apply_mask_inplace(exact, key_buf, offset)
    expect(exact.tobytes() == expected, "apply_mask_inplace on an exact buffer differs")
    pieces = []
    pos = 0
    for chunk in cut(payload, plan):
        pieces.append(compiled.apply_mask(chunk, key, offset + pos))
        pos += len(chunk)
    expect(b"".join(pieces) == expected, "masking in chunks differs from masking at once")


def main() -> None:
    run(check, load, "mask")


if __name__ == "__main__":
    sys.exit(main())
