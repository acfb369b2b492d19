"""Reference-leak and memory-leak check of the compiled kernels and connection.

    python fuzz/leaks.py [--calls N] [--no-tracemalloc] [NAME_PART...]

Every public function and method of the compiled build, and its error paths, is called N
times (default a million; whole sessions, which build connections, N/100 times) after a
warm-up. Across those calls nothing may grow beyond half a unit per call, nor beyond a small
constant (caches, free lists), whichever is less:

- ``sys.getallocatedblocks()``: objects still allocated;
- RSS (``/proc/self/statm``);
- the reference count of every argument and of the shared objects the code returns
  (None, True, False, the opcodes, the exception classes);
- on a debug interpreter (``sys.gettotalrefcount``, e.g. Debian's ``python3.11-dbg``), the
  interpreter's total reference count: any reference leaked per call shows as N;
- ``tracemalloc``, over N/10 more calls (it slows every allocation): memory allocated during
  the calls and still held after them.

Exits non-zero, naming the case, on any growth beyond those bounds. CI runs it with
``--calls 100000`` (a leak of one block, reference or object per call still shows 100,000
times over); ``fuzz/debug_leaks.sh`` runs it on a debug interpreter.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import wsfast._connection_c as cc

import wsfast
from wsfast import ProtocolError, _mask
from wsfast import _compiled as k
from wsfast.codes import Opcode
from wsfast.events import Ping, Request
from wsfast.handshake import HandshakeError
from wsfast.permessage_deflate import ClientDeflateFactory, ServerDeflateFactory

KEY = b"\x37\xfa\x21\x3d"
PAGE = os.sysconf("SC_PAGE_SIZE")
# Allowed growth over all the calls of one case: well below one byte, block or reference
# per call, above what warm caches and free lists may still take.
# A client refills its masking keys 1024 at a time, so its blocks come and go by that much.
MAX_TRACED = 256 * 1024
MIN_TRACED = 32 * 1024
MAX_BLOCKS = 4096
MAX_RSS = 4 << 20
MAX_TOTAL_REFS = 4096

Case = tuple[str, Callable[[], Any], tuple[Any, ...], bool]  # name, call, watched, session


def _raises(fn: Callable[..., Any], exc: type[BaseException], *args: Any) -> Callable[[], None]:
    def call() -> None:
        try:
            fn(*args)
        except exc:
            return
        raise AssertionError(f"{fn!r} did not raise {exc.__name__}")

    return call


def _frame(op: int, payload: bytes, mask: bytes | None = KEY) -> bytes:
    return k.build_header(op, len(payload), mask=mask) + (
        k.apply_mask(payload, mask) if mask else payload
    )


def kernel_cases() -> Iterator[Case]:
    small, text = b"Hello!", "héllo wörld ☃".encode() * 20
    buf, ro = bytearray(1024), memoryview(bytes(64))
    view = memoryview(bytearray(300))[3:290]
    strided = memoryview(bytearray(64))[::2]
    yield "apply_mask bytes", lambda: k.apply_mask(small, KEY), (small,), False
    yield "apply_mask memoryview offset", lambda: k.apply_mask(view, KEY, 3), (view,), False
    yield "apply_mask_inplace bytearray", lambda: k.apply_mask_inplace(buf, KEY, 1), (buf,), False
    yield "apply_mask_inplace view", lambda: k.apply_mask_inplace(view, KEY), (view,), False
    yield "apply_mask bad mask", _raises(k.apply_mask, ValueError, small, b"abc"), (small,), False
    yield "apply_mask bad offset", _raises(k.apply_mask, ValueError, small, KEY, -1), (), False
    yield "apply_mask not a buffer", _raises(k.apply_mask, TypeError, "str", KEY), (), False
    yield "apply_mask not contiguous", _raises(k.apply_mask, BufferError, strided, KEY), (), False
    read_only = _raises(k.apply_mask_inplace, TypeError, ro, KEY)
    yield "apply_mask_inplace read-only", read_only, (), False
    yield "simd_path", _mask.simd_path, (), False
    yield "validate_utf8 valid", lambda: k.validate_utf8(text), (text,), False
    yield "validate_utf8 invalid", lambda: k.validate_utf8(b"ab\xed\xa0\x80"), (), False
    yield "validate_utf8 view", lambda: k.validate_utf8(view), (view,), False
    yield "validate_utf8 not a buffer", _raises(k.validate_utf8, TypeError, 5), (), False
    v = k.Utf8Validator()

    def validator() -> None:
        v.feed(text[:7])
        v.feed(text[7:])
        v.finish()
        v.reset()

    yield "Utf8Validator feed/finish/reset", validator, (v, text), False
    yield "Utf8Validator()", k.Utf8Validator, (), False
    yield "Utf8Validator.feed not a buffer", _raises(v.feed, TypeError, None), (v,), False
    masked = _frame(1, b"Hello")
    long_header = k.build_header(2, 70000, mask=KEY)
    yield "parse_header", lambda: k.parse_header(masked), (masked,), False
    yield "parse_header 64-bit", lambda: k.parse_header(long_header), (long_header,), False
    yield "parse_header incomplete", lambda: k.parse_header(masked[:3]), (), False
    yield "parse_header reserved", _raises(k.parse_header, ProtocolError, b"\x83\x00"), (), False
    yield "parse_header offset", _raises(k.parse_header, ValueError, masked, 99), (masked,), False
    yield "build_header", lambda: k.build_header(Opcode.TEXT, 300, mask=KEY), (), False
    yield "build_header bad", _raises(k.build_header, ValueError, 9, 200), (), False
    yield "Frame", lambda: k.Frame(Opcode.BINARY, small, fin=False), (small,), False
    frame = k.Frame(1, small)

    def frame_methods() -> None:
        hash(frame)
        repr(frame)
        frame == frame  # noqa: B015

    yield "Frame hash/repr/eq", frame_methods, (frame,), False
    yield "Frame bad opcode", _raises(k.Frame, ValueError, 3, small), (small,), False
    yield "FrameHeader", lambda: k.FrameHeader(True, False, False, False, Opcode.PING, True,
                                               KEY, 5, 6), (), False  # fmt: skip
    header = k.parse_header(masked)

    def header_methods() -> None:
        hash(header)
        repr(header)
        header == header  # noqa: B015

    yield "FrameHeader hash/repr/eq", header_methods, (header,), False
    stream = masked + _frame(9, b"ping") + _frame(2, bytes(200)) + _frame(0, b"")
    parser = k.FrameParser(require_mask=True, max_frame_size=1 << 20)
    yield "FrameParser.feed", lambda: parser.feed(stream), (parser, stream), False
    big = _frame(2, bytes(3000))

    def pending() -> None:
        parser.feed(big[:1500])
        assert parser.pending is not None
        parser.pending_payload(100)
        parser.feed(big[1500:])

    yield "FrameParser pending", pending, (parser, big), False
    yield "FrameParser()", lambda: k.FrameParser(require_mask=False), (), False
    bad = masked + b"\x83\x80" + KEY

    def parser_error() -> None:
        p = k.FrameParser(require_mask=True)
        for _ in range(2):  # the error, then the refusal of more input
            try:
                p.feed(bad)
            except ProtocolError:
                pass

    yield "FrameParser errors", parser_error, (bad,), False
    too_big = k.build_header(2, 1 << 40, mask=KEY)

    def parser_too_big() -> None:
        try:
            k.FrameParser(require_mask=True, max_frame_size=1000).feed(too_big)
        except ProtocolError:
            pass

    yield "FrameParser 1009", parser_too_big, (too_big,), False


def _open_pair(
    client_extensions: Any = (), server_extensions: Any = (), **kwargs: Any
) -> tuple[Any, Any]:
    """A client and a server after the handshake; ``kwargs`` go to both."""
    client = cc.ClientConnection("example.com", extensions=client_extensions, **kwargs)
    server = cc.ServerConnection(extensions=server_extensions, **kwargs)
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    return client, server


def connection_cases() -> Iterator[Case]:
    client, server = _open_pair()
    text, blob = "hello ☃", b"\x00\x01" * 40

    def text_round() -> None:
        client.send_text(text)
        server.receive_data(client.data_to_send())
        server.events()
        server.send_text(text)
        client.receive_data(server.data_to_send())
        client.events()

    yield "send_text/receive_data/events", text_round, (client, server, text), False

    def binary_round() -> None:
        client.send_binary(blob, fin=False)
        client.send_ping(b"p")
        client.send_binary(blob)
        server.receive_data(memoryview(client.data_to_send()))
        server.events()
        client.receive_data(bytearray(server.data_to_send()))  # the pong
        client.events()
        server.send_pong(b"q")
        server.chunks_to_send()

    yield "fragments/ping/pong/chunks_to_send", binary_round, (client, server, blob), False

    def broadcast() -> None:
        assert server.broadcast_key == ()
        server.frame_message(text)
        server.frame_message(blob)

    yield "broadcast_key/frame_message", broadcast, (server, text, blob), False
    refused = _raises(client.frame_message, cc.InvalidState, blob)
    yield "frame_message refused", refused, (client, blob), False
    request = cc.ClientConnection("example.com", subprotocols=["chat"]).data_to_send()

    def session() -> None:
        c, s = _open_pair(subprotocols=["chat"])
        c.send_text("bye")
        c.close(1000, "done")
        s.receive_data(c.data_to_send())
        s.events()
        c.receive_data(s.data_to_send())
        c.events()
        c.receive_eof()
        s.receive_eof()

    yield "session: handshake, message, close", session, (request,), True
    bad_request = request.replace(b"Version: 13", b"Version: 8")

    def refused() -> None:
        s = cc.ServerConnection()
        s.receive_data(bad_request)
        s.events()
        s.data_to_send()

    yield "session: refused handshake", refused, (bad_request,), True
    invalid = _frame(1, b"\xed\xa0\x80") + _frame(8, b"\x03\xe7")

    def violation(defer: bool) -> Callable[[], None]:
        def call() -> None:
            _, s = _open_pair(defer_failure=defer)
            s.receive_data(invalid)
            s.events()
            s.fail()
            s.data_to_send()
            s.receive_eof()

        return call

    yield "session: protocol violation", violation(False), (invalid,), True
    yield "session: deferred violation", violation(True), (invalid,), True
    rejection = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"

    def rejected() -> None:
        c = cc.ClientConnection("example.com")
        c.receive_data(rejection)
        c.events()

    yield "session: client rejected", rejected, (rejection,), True
    deflated = ("x" * 300, b"\x00" * 5000)

    def compressed(takeover: bool) -> Callable[[], None]:
        options = {"min_size": 0, "server_no_context_takeover": not takeover}

        def call() -> None:
            c, s = _open_pair([ClientDeflateFactory(**options)], [ServerDeflateFactory(**options)])
            for _ in range(2):
                c.send_text(deflated[0])
                c.send_binary(deflated[1], fin=False)
                c.send_binary(deflated[1])
                s.receive_data(c.data_to_send())
                s.events()
                s.send_text(deflated[0])
                c.receive_data(s.data_to_send())
                c.events()
            s.receive_data(b"\xc1\x85" + bytes(4) + b"\xff" * 5)  # not deflate data: 1007
            s.events()

        return call

    yield "session: permessage-deflate", compressed(True), deflated, True
    yield "session: deflate, no context takeover", compressed(False), deflated, True


# Objects every call may use and must give back: the singletons, the enums, the exception and
# event classes, and the types of the Cython runtime (generators, cyfunctions, ...).
SHARED = (True, False, *Opcode, *cc.State, ProtocolError, HandshakeError, ValueError, TypeError,
          Ping, Request, *(obj for obj in gc.get_objects()
                           if isinstance(obj, type) and str(obj.__module__).startswith("_cython")))


def _total_refs() -> int:
    """The interpreter's total reference count (debug builds only; else 0)."""
    return getattr(sys, "gettotalrefcount", lambda: 0)()


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _loop(call: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return time.perf_counter() - started


def check(case: Case, calls: int, trace: bool) -> tuple[bool, str]:
    """Warm up, then ``calls`` calls (a tenth of that for tracemalloc, which slows every
    allocation down; a hundredth for sessions); the verdict and a line of figures."""
    name, call, watched, session = case
    n = calls // 100 if session else calls
    _loop(call, min(n // 10, 20000))
    gc.collect()
    watch = (*watched, *SHARED)
    refs = [sys.getrefcount(obj) for obj in watch]
    total = _total_refs()
    blocks = sys.getallocatedblocks()
    rss0 = rss()
    elapsed = _loop(call, n)
    gc.collect()
    grown = {
        "blocks": (sys.getallocatedblocks() - blocks, min(MAX_BLOCKS, n // 2)),
        "rss bytes": (rss() - rss0, MAX_RSS),
        "total refs": (_total_refs() - total, min(MAX_TOTAL_REFS, n // 2)),
    }
    after = [sys.getrefcount(obj) for obj in watch]
    if trace:
        tracemalloc.start()
        elapsed += _loop(call, n // 10)
        gc.collect()
        # Half the smallest object per call, above what warm caches may still hold.
        limit = min(MAX_TRACED, max(16 * (n // 10), MIN_TRACED))
        grown["traced bytes"] = (tracemalloc.get_traced_memory()[0], limit)
        tracemalloc.stop()
    changed = [
        f"refcount of {obj!r:.40} {before} -> {now}"
        for obj, before, now in zip(watch, refs, after, strict=True)
        if now != before
    ]
    over = [f"{what} +{value}" for what, (value, limit) in grown.items() if value > limit]
    figures = ", ".join(f"{what} {value:+}" for what, (value, _) in grown.items())
    line = f"{name:<40} {n:>9,} calls {elapsed:6.1f} s  {figures}"
    problems = over + changed
    return not problems, line + ("" if not problems else "  LEAK: " + "; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run the cases whose name contains one of these")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    args = parser.parse_args(argv)
    if wsfast.implementation != "cython":
        raise SystemExit("the leak check needs the compiled build")
    debug = hasattr(sys, "gettotalrefcount")
    print(f"{sys.version.split()[0]}{' (debug build)' if debug else ''}; "
          f"wsfast from {os.path.dirname(wsfast.__file__)}; SIMD {_mask.simd_path()}")  # fmt: skip
    ok = True
    for case in (*kernel_cases(), *connection_cases()):
        if args.only and not any(part in case[0] for part in args.only):
            continue
        passed, line = check(case, args.calls, args.trace)
        print(line, flush=True)
        ok = ok and passed
    print("no leak" if ok else "LEAKS FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
