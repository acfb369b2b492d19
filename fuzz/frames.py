"""Fuzz harness: the compiled ``FrameParser`` (and ``parse_header``, ``build_header``) against
its pure twin, on any bytes cut into any chunks.

Input: an options byte (bit 0 ``require_mask``, bits 1-2 the buffer type of the chunks (see
``_harness.as_buffer``), bits
3-5 all set: 300,000 0xFF bytes after the stream, so that a frame can be large enough for
the kernels to release the GIL), a ``max_frame_size`` choice, a chunking plan (see
``_harness.cut``), then the byte stream.

After every ``feed`` both parsers returned the same frames (opcode, fin, RSV bits, payload) or
raised the same ``ProtocolError`` (message, close code, and the frames completed before it);
they hold the same pending header and the same pending payload; once failed, both refuse
more input the same way. ``parse_header`` agrees at the start of every chunk, and each frame's
header rebuilt by ``build_header`` is the same bytes from both and parses back.

``python fuzz/frames.py [-max_total_time=S] [corpus/]``; seeds in ``fuzz/corpus/frames``.
"""

from __future__ import annotations

import sys
from typing import Any

from _harness import Input, as_buffer, cut, encode_plan, expect, instrumented, run, terminated

compiled: Any = None
pure: Any = None
ProtocolError: Any = None

LIMITS = (None, 0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 2**63 - 1, 2**63, 2**64)


def load() -> None:
    """Import the code under test (see ``_harness.run``)."""
    global compiled, pure, ProtocolError
    with instrumented():
        import wsfast.pure as pure
        from wsfast import ProtocolError
        from wsfast import _compiled as compiled


def encode(stream: bytes, *, require_mask: bool, limit: int | None = None,
           plan: bytes = b"", buffer: int = 0) -> bytes:
    """A fuzz input for these options (what the seed corpus is made of)."""
    options = int(require_mask) | (buffer % 4) << 1  # bits 3-5 clear: no padding
    return bytes([options, LIMITS.index(limit)]) + encode_plan(plan) + stream


def _frame(frame: Any) -> tuple[Any, ...]:
    return (int(frame.opcode), frame.fin, frame.rsv1, frame.rsv2, frame.rsv3, frame.payload)


def _header(header: Any) -> tuple[Any, ...] | None:
    if header is None:
        return None
    return (header.fin, header.rsv1, header.rsv2, header.rsv3, int(header.opcode),
            header.masked, header.mask, header.length, header.size)  # fmt: skip


def _feed(parser: Any, chunk: Any) -> tuple[str, Any]:
    try:
        frames = parser.feed(chunk)
    except ProtocolError as exc:
        return "error", (str(exc), exc.code, [_frame(f) for f in exc.frames])
    for frame in frames:
        expect(type(frame.payload) is bytes, "payload is not bytes", type(frame.payload))
        expect(terminated(frame.payload), "a payload written past its end")
    return "frames", [_frame(f) for f in frames]


def _parse_header(module: Any, data: Any) -> tuple[str, Any]:
    try:
        return "header", _header(module.parse_header(data))
    except ProtocolError as exc:
        return "error", (str(exc), exc.code)


def _check_rebuild(frame: tuple[Any, ...], header: tuple[Any, ...] | None) -> None:
    op, fin, rsv1, rsv2, rsv3, payload = frame
    flags = {"fin": fin, "rsv1": rsv1, "rsv2": rsv2, "rsv3": rsv3}
    mask = header[6] if header is not None else None
    ours = compiled.build_header(op, len(payload), mask=mask, **flags)
    theirs = pure.build_header(op, len(payload), mask=mask, **flags)
    expect(ours == theirs, "build_header differs", ours, theirs)
    back = _header(compiled.parse_header(ours))
    expect(back is not None and back[:6] == (fin, rsv1, rsv2, rsv3, op, mask is not None),
           "build_header does not parse back", ours, back)  # fmt: skip


def check(data: bytes) -> None:
    inp = Input(data)
    options = inp.byte()
    require_mask = bool(options & 1)
    buffer = (options >> 1) & 3
    limit = inp.choice(LIMITS)
    plan = inp.plan()
    stream = inp.rest()
    if options & 0x38 == 0x38:
        stream += b"\xff" * 300_000  # a payload, then a reserved opcode: the end
    ours = compiled.FrameParser(require_mask=require_mask, max_frame_size=limit)
    theirs = pure.FrameParser(require_mask=require_mask, max_frame_size=limit)
    failed = False
    for chunk in cut(stream, plan):
        expect(_parse_header(compiled, chunk) == _parse_header(pure, chunk),
               "parse_header differs", chunk[:16])  # fmt: skip
        pending_before = _header(ours.pending)
        got = _feed(ours, as_buffer(chunk, buffer))
        want = _feed(theirs, as_buffer(chunk, buffer))
        expect(got == want, "feed differs", got, want)
        if failed:
            expect(got[0] == "error", "a failed parser accepted more input", got)
        if got[0] == "error":
            failed = True
            frames = got[1][2]
        else:
            frames = got[1]
        # The first frame completed may be the one that was pending (its header is known).
        for i, frame in enumerate(frames[:64]):
            _check_rebuild(frame, pending_before if i == 0 else None)
        expect(_header(ours.pending) == _header(theirs.pending), "pending header differs",
               _header(ours.pending), _header(theirs.pending))  # fmt: skip
        for start in (0, len(chunk)):
            a = ours.pending_payload(start)
            b = theirs.pending_payload(start)
            expect(a == b, "pending_payload differs", start, a[:32], b[:32])
    expect(ours.require_mask == theirs.require_mask == require_mask, "require_mask differs")
    expect(ours.max_frame_size == theirs.max_frame_size == limit, "max_frame_size differs")


def main() -> None:
    run(check, load, "frames")


if __name__ == "__main__":
    sys.exit(main())
