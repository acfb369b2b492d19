"""Fuzz harness: the compiled ``validate_utf8`` and ``Utf8Validator`` against their pure twins
and against ``bytes.decode``, on the SIMD path chosen by ``WSFAST_ISA``.

Input: an options byte (bits 0-1 the buffer type, bits 2-7 how many ASCII bytes go before
the data, so that the bytes land anywhere in the 32-byte blocks of the AVX2 path), a byte
giving ASCII bytes after it (255: the data repeated past the 256 KiB above which the kernel
releases the GIL), a chunking plan (see ``_harness.cut``), then the data.

``validate_utf8`` agrees with ``bytes.decode("utf-8")`` (strict) in both builds. Fed in chunks,
both validators return, after every chunk, whether the bytes so far can still begin a valid
UTF-8 string (the fail-fast rule of RFC 6455 §8.1), computed here independently by trying
completions of the last character; ``finish()`` says whether they decode.

Run it once per path: ``WSFAST_ISA=avx2|sse2|scalar python fuzz/utf8.py ...`` (the harness
refuses to run if the path asked for is not the one in use).
"""

from __future__ import annotations

import functools
import itertools
import sys
from typing import Any

from _harness import Input, as_buffer, check_isa, cut, encode_plan, expect, instrumented, run

compiled: Any = None
pure: Any = None
BIG = 256 * 1024  # UTF8_NOGIL_MIN

# Continuation bytes at the edges of every range Unicode Table 3-7 distinguishes.
_CONTINUATIONS = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)
_COMPLETIONS = [
    bytes(c)
    for n in range(4)
    for c in itertools.product(_CONTINUATIONS, repeat=n)
]  # fmt: skip


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _viable_tail(tail: bytes) -> bool:
    return any(_decodes(tail + c) for c in _COMPLETIONS)


def viable(prefix: bytes) -> bool:
    """Can some valid UTF-8 string start with ``prefix``? Independent of the DFA: split at a
    byte that starts a character (UTF-8 is self-synchronising) and complete the short tail."""
    k = max(0, len(prefix) - 4)
    while k > 0 and 0x80 <= prefix[k] < 0xC0:
        k -= 1
    return _decodes(prefix[:k]) and _viable_tail(prefix[k:])


def load() -> None:
    """Import the code under test (see ``_harness.run``)."""
    global compiled, pure
    with instrumented():
        import wsfast.pure as pure
        from wsfast import _compiled as compiled
    check_isa()


def encode(data: bytes, *, before: int = 0, after: int = 0, plan: bytes = b"",
           buffer: int = 0) -> bytes:
    """A fuzz input (what the seed corpus is made of); ``before`` in 0..63, ``after`` 0..255."""
    return bytes([(before % 64) << 2 | buffer % 4, after % 256]) + encode_plan(plan) + data


def check(data: bytes) -> None:
    inp = Input(data)
    options = inp.byte()
    buffer = options & 3
    before = options >> 2
    after = inp.byte()
    plan = inp.plan()
    data = inp.rest()
    big = after == 255 and data
    if big:
        data *= BIG // len(data) + 1
    text = b"a" * before + data + b"z" * after
    valid = _decodes(text)
    for kind in range(4):
        got = compiled.validate_utf8(as_buffer(text, kind))
        expect(got is valid, "validate_utf8 differs from bytes.decode", kind, got, text[:64])
    expect(pure.validate_utf8(text) is valid, "pure validate_utf8 differs from bytes.decode")
    ours = compiled.Utf8Validator()
    theirs = pure.Utf8Validator()
    seen = b""
    alive = True
    for chunk in cut(text, plan, max_chunks=4 if big else 48):
        seen += chunk
        alive = alive and viable(seen)
        got = ours.feed(as_buffer(chunk, buffer))
        want = theirs.feed(chunk)
        expect(got is want is alive, "feed differs", got, want, alive, len(seen), seen[-8:])
        done = _decodes(seen)
        expect(ours.finish() is theirs.finish() is done, "finish differs", done)
    expect(not alive or valid is ours.finish(), "whole and chunked disagree")
    ours.reset()
    expect(ours.finish() and ours.feed(b"ok"), "reset did not forget")


def main() -> None:
    run(check, load, "utf8")


if __name__ == "__main__":
    sys.exit(main())
