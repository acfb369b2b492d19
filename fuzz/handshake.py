"""Fuzz harness: the bounded HTTP head reader and the opening-handshake checks (RFC 6455 §4),
on mutated requests and responses. (Named ``handshake``, not ``http``: a script's folder comes
first on ``sys.path``, and ``fuzz/http.py`` would hide the standard library's ``http``.)

Input: an options byte (bits 0-1 the mode, bits 2-4 the head size limit, bit 5 an Origin
allow-list, bit 6 UTF-8 rather than latin-1 text in mode 3), a header-line limit, a chunking
plan (see ``_harness.cut``), then the bytes.

Modes:
- 0, server: the request through ``HeadReader``, ``parse_request_head`` and ``check_request``
  (or ``check_http_request`` when it asks for no upgrade);
- 1, client: the response through ``HeadReader``, ``parse_response_head``, ``check_response``;
- 2, extensions: each line as a Sec-WebSocket-Extensions value through ``parse_extensions``;
- 3, our own responses: a header name and value through ``http_response``.

Every answer is defined: a parsed head or a ``HandshakeError`` with a documented status and a
message, never another exception. ``HeadReader`` matches, after every chunk, an independent
statement of its rule (CRLF lines only; a head and its CRLF CRLF within ``max_size``). What we
send back parses back: a refusal with its status, a 101 through the client's own checks,
negotiated extension parameters through ``serialize_extensions``, a header we accepted to
send as the very same header. An accepted request-target is a path (and query): the
request's own, or the path of an absolute-form URI whose authority is the Host.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from _harness import Input, cut, encode_plan, expect, instrumented, run

hs: Any = None
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
OFFERED = ("chat", "superchat")
ORIGINS = ("https://example.com", None)
SIZES = (16 * 1024, 4, 5, 16, 64, 256, 1024, 4096)
LINES = (128, 0, 1, 2, 3, 8)
SERVER_STATUSES = {400, 403, 405, 426, 431}
_BARE_LF = re.compile(rb"(?<!\r)\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def load() -> None:
    """Import the code under test (see ``_harness.run``)."""
    global hs
    with instrumented():
        import wsfast.handshake as hs


def encode(data: bytes, *, mode: int, size: int = SIZES[0], lines: int = LINES[0],
           origins: bool = False, plan: bytes = b"") -> bytes:
    """A fuzz input (what the seed corpus is made of)."""
    options = mode % 4 | SIZES.index(size) << 2 | origins << 5
    return bytes([options, LINES.index(lines)]) + encode_plan(plan) + data


def _expected_read(total: bytes, limit: int) -> Any:
    """What HeadReader must answer once ``total`` has been fed: its rule, stated again."""
    end = total.find(b"\r\n\r\n")
    scan_to = len(total) if end < 0 else end + 4
    if _BARE_LF.search(total, 0, min(scan_to, limit)):
        return 400
    if end < 0:
        return 431 if len(total) >= limit else None
    if end + 4 > limit:
        return 431
    return (total[:end], total[end + 4 :])


def read_head(data: bytes, plan: bytes, limit: int) -> tuple[bytes, bytes] | None:
    """Feed ``data`` in chunks; the head and the rest, or None (error or incomplete)."""
    reader = hs.HeadReader(limit)
    total = b""
    for chunk in cut(data, plan):
        total += chunk
        want = _expected_read(total, limit)
        try:
            got: Any = reader.feed(chunk)
        except hs.HandshakeError as exc:
            got = exc.status
            expect(str(exc), "a HeadReader error without a message")
        expect(got == want, "HeadReader differs from its rule", got, want, total[-40:])
        if got is not None:
            return got if isinstance(got, tuple) else None
    return None


def _check_headers(headers: Any) -> None:
    for name, value in headers:
        expect(_TOKEN.fullmatch(name), "a header name that is not a token", name)
        expect(not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value), "a control byte kept", value)
        expect(value == value.strip(" \t"), "a header value not stripped", value)


def _parse_back(response: bytes) -> Any:
    head, sep, _ = response.partition(b"\r\n\r\n")
    expect(sep, "our response has no end of head", response[:80])
    return hs.parse_response_head(head)


def _check_target(target: str, parsed: Any) -> None:
    """A request-target we accepted, in origin-form: the request's own when it was a path,
    else the path (and query) of an absolute-form URI whose authority is the Host."""
    expect(target.startswith("/") and "#" not in target, "a target not in origin-form", target)
    if parsed.target.startswith("/"):
        expect(target == parsed.target, "an origin-form target changed", target)
        return
    scheme, _, rest = parsed.target.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    expect(scheme.lower() in ("http", "https") and "@" not in authority
           and authority.lower() == parsed.headers.get_single("Host").lower(),
           "an absolute-form target of another authority passed", parsed.target)  # fmt: skip
    expect(rest[len(authority) :].lstrip("/") == target.lstrip("/"),
           "an absolute-form target reduced to another path", parsed.target, target)  # fmt: skip


def server(head: bytes, lines: int, origins: bool) -> None:
    try:
        parsed = hs.parse_request_head(head, max_lines=lines)
    except hs.HandshakeError as exc:
        expect(exc.status in (400, 431) and str(exc), "bad parse_request_head error", exc.status)
        return
    _check_headers(parsed.headers)
    try:
        if not hs.is_websocket_upgrade(parsed.headers):
            _check_target(hs.check_http_request(parsed), parsed)
            expect(parsed.method == "GET", "a plain HTTP request that is not GET passed")
        request = hs.check_request(parsed, origins=ORIGINS if origins else None)
    except hs.HandshakeError as exc:
        expect(exc.status in SERVER_STATUSES and str(exc), "bad refusal", exc.status, str(exc))
        expect(exc.status != 426 or ("Sec-WebSocket-Version", "13") in exc.headers,
               "a 426 without Sec-WebSocket-Version: 13")  # fmt: skip
        back = _parse_back(hs.reject_response(exc.status, f"{exc}\n", exc.headers))
        expect(back.status == exc.status, "our refusal does not parse back", back)
        return
    _check_target(request.target, parsed)
    expect(not origins or request.origin in ORIGINS, "an origin outside the allow-list passed")
    for name, params in request.extensions:
        again = hs.parse_extensions([hs.serialize_extensions([(name, params)])])
        expect(again == [(name, params)], "extension offer does not round-trip", again)
    chosen = hs.select_subprotocol(request.subprotocols, OFFERED)
    response = hs.accept_response(request.key, subprotocol=chosen)
    result = hs.check_response(_parse_back(response), key=request.key, subprotocols=OFFERED)
    expect(result == (chosen, []), "our 101 fails the client's checks", result)


def client(head: bytes, lines: int) -> None:
    try:
        response = hs.parse_response_head(head, max_lines=lines)
    except hs.HandshakeError as exc:
        expect(exc.status == 0 and str(exc), "bad parse_response_head error", exc.status)
        return
    _check_headers(response.headers)
    expect(100 <= response.status <= 999, "a status outside 100-999", response.status)
    try:
        subprotocol, extensions = hs.check_response(response, key=KEY, subprotocols=OFFERED)
    except hs.HandshakeError as exc:
        expect(exc.status == response.status and str(exc), "bad check_response error",
               exc.status, response.status)  # fmt: skip
        return
    expect(response.status == 101 and extensions == [], "accepted", response)
    expect(subprotocol is None or subprotocol in OFFERED, "a subprotocol not offered", subprotocol)


def extensions(data: bytes) -> None:
    for line in data.split(b"\n"):
        try:
            parsed = hs.parse_extensions([line.decode("latin-1")])
        except hs.HandshakeError as exc:
            expect(exc.status == 400 and str(exc), "bad parse_extensions error", exc.status)
            continue
        if parsed:
            again = hs.parse_extensions([hs.serialize_extensions(parsed)])
            expect(again == parsed, "extensions do not round-trip", parsed, again)


def our_response(data: bytes, utf8: bool) -> None:
    text = data.decode("utf-8", "replace") if utf8 else data.decode("latin-1")
    name, _, value = text.partition(":")
    try:
        response = hs.http_response(200, "body", [(name, value)])
    except ValueError:
        return
    parsed = _parse_back(response)
    expect(parsed.headers.get_all(name)[:1] == [value], "a header we sent reads back changed",
           name, value, parsed.headers)  # fmt: skip


def check(data: bytes) -> None:
    inp = Input(data)
    options = inp.byte()
    mode = options & 3
    limit = SIZES[(options >> 2) & 7]
    origins = bool(options & 0x20)
    lines = inp.choice(LINES)
    plan = inp.plan()
    rest = inp.rest()
    if mode == 2:
        extensions(rest)
        return
    if mode == 3:
        our_response(rest, bool(options & 0x40))
        return
    done = read_head(rest, plan, limit)
    if done is None:
        return
    if mode == 0:
        server(done[0], lines, origins)
    else:
        client(done[0], lines)


def main() -> None:
    run(check, load, "handshake")


if __name__ == "__main__":
    sys.exit(main())
