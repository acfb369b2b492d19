"""The opening handshake (RFC 6455 §4): keys, the bounded head parser, server and client checks.

Everything is sans-I/O: requests and responses are bytes handed to the functions or to a
ServerConnection / ClientConnection.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsfast.connection import ClientConnection, InvalidState, ServerConnection, State
from wsfast.events import (
    Accepted,
    BinaryMessage,
    ConnectionTerminated,
    HandshakeFailed,
    HttpRequest,
    Rejected,
    Request,
    TextMessage,
)
from wsfast.handshake import (
    HandshakeError,
    Headers,
    HeadReader,
    accept_key,
    build_request,
    check_http_request,
    check_request,
    generate_key,
    http_response,
    is_websocket_upgrade,
    negotiate_extensions,
    parse_extensions,
    parse_request_head,
    parse_response_head,
    parse_uri,
    reject_response,
    serialize_extensions,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="

GOOD_HEADERS: list[tuple[str, str]] = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def request_bytes(
    headers: Sequence[tuple[str, str]] = GOOD_HEADERS,
    start: str = "GET /chat?room=1 HTTP/1.1",
) -> bytes:
    lines = [start] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def replace(name: str, value: str | None) -> list[tuple[str, str]]:
    """GOOD_HEADERS with ``name`` set to ``value`` (removed when None)."""
    out = [(n, v) for n, v in GOOD_HEADERS if n.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


def split_response(data: bytes) -> tuple[int, Headers, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    response = parse_response_head(head)
    return response.status, response.headers, body


# --- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "accept"),
    [
        ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),  # RFC 6455 §1.3
        ("xqBt3ImNzJbYqRINxEFlkg==", "K7DJLdLooIwIG/MOpvWFB3y3FE8="),
    ],
)
def test_accept_key_vectors(key: str, accept: str) -> None:
    assert accept_key(key) == accept


def test_generate_key_is_16_random_bytes_in_base64() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


# --- headers and the head parser --------------------------------------------------------


def test_headers_are_case_insensitive_and_keep_repeats() -> None:
    headers = Headers([("Connection", "keep-alive, Upgrade"), ("X-A", "1"), ("x-a", "2")])
    assert headers["connection"] == "keep-alive, Upgrade"
    assert "CONNECTION" in headers and "missing" not in headers
    assert headers.tokens("Connection") == ["keep-alive", "upgrade"]
    assert headers.get_all("X-A") == ["1", "2"]
    assert headers.get("nope") is None
    with pytest.raises(KeyError):
        headers["nope"]


def test_a_repeated_header_reads_as_its_values_joined() -> None:
    """RFC 9110 §5.3: field lines of one name combine into one, comma-separated; the
    application gets a value, never an exception (get_all() keeps the lines apart)."""
    headers = Headers([("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2, ::1")])
    assert headers.get("X-Forwarded-For") == "10.0.0.1, 10.0.0.2, ::1"
    assert headers["x-forwarded-for"] == "10.0.0.1, 10.0.0.2, ::1"
    assert headers.get_all("X-Forwarded-For") == ["10.0.0.1", "10.0.0.2, ::1"]
    assert headers.get("Missing", "default") == "default"


def test_a_repeated_ordinary_header_reaches_the_application() -> None:
    server = ServerConnection()
    extra = [("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2")]
    server.receive_data(request_bytes(GOOD_HEADERS + extra))
    (request,) = server.events()
    assert isinstance(request, Request)
    assert request.headers.get("X-Forwarded-For") == "10.0.0.1, 10.0.0.2"


def test_token_lists_accept_empty_elements_and_repeated_fields() -> None:
    headers = Headers([("Connection", " , keep-alive,,"), ("Connection", "Upgrade ")])
    assert headers.tokens("connection") == ["keep-alive", "upgrade"]


def test_head_reader_assembles_a_head_fed_byte_by_byte() -> None:
    data = request_bytes() + b"\x81\x80rest"
    reader = HeadReader()
    result = None
    for i in range(len(data)):
        result = reader.feed(data[i : i + 1])
        if result is not None:
            break
    assert result is not None
    head, rest = result
    assert data.startswith(head + b"\r\n\r\n")
    # The rest arrives with later feeds, not through the reader.
    assert rest == b""
    request = parse_request_head(head)
    assert request.method == "GET" and request.target == "/chat?room=1"


def test_head_reader_returns_the_bytes_after_the_head() -> None:
    head, rest = HeadReader().feed(request_bytes() + b"frames") or (b"", b"")
    assert rest == b"frames"
    assert parse_request_head(head).headers["Host"] == "example.com"


def test_oversized_head_is_refused_without_buffering_more() -> None:
    reader = HeadReader(max_size=1024)
    assert reader.feed(b"GET / HTTP/1.1\r\n") is None
    with pytest.raises(HandshakeError) as info:
        for _ in range(100):
            reader.feed(b"X-Filler: " + b"a" * 100 + b"\r\n")
    assert info.value.status == 431


def test_head_of_exactly_max_size_is_accepted() -> None:
    data = request_bytes()
    assert HeadReader(max_size=len(data)).feed(data) is not None
    with pytest.raises(HandshakeError) as info:
        HeadReader(max_size=len(data) - 1).feed(data)
    assert info.value.status == 431


def test_too_many_header_lines_are_refused() -> None:
    headers = GOOD_HEADERS + [(f"X-{i}", "v") for i in range(200)]
    head, _ = HeadReader(max_size=1 << 20).feed(request_bytes(headers)) or (b"", b"")
    with pytest.raises(HandshakeError) as info:
        parse_request_head(head)
    assert info.value.status == 431
    assert parse_request_head(head, max_lines=500).method == "GET"


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    ],
)
def test_bare_lf_is_refused_at_once(data: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        HeadReader().feed(data)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "head",
    [
        b"GET /  HTTP/1.1",  # two spaces
        b"GET / HTTP/1.1 extra",
        b"GET /",
        b"GET / http/1.1",
        b"GET /a b HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET /\x01 HTTP/1.1",
        b"GET / HTTP/1.1\r\nHost : a",  # space before the colon
        b"GET / HTTP/1.1\r\nHost",  # no colon
        b"GET / HTTP/1.1\r\nHost: a\r\n folded",  # obs-fold
        b"GET / HTTP/1.1\r\nHost: a\x00b",
        b"GET / HTTP/1.1\r\nHost: a\rb",
        b"GET / HTTP/1.1\r\n: empty-name",
    ],
)
def test_malformed_request_heads_are_refused(head: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request_head(head)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "head", [b"HTTP/1.1 101", b"HTTP/1.1 1010 X", b"HTTP/1.1 abc Switching", b"XTTP/1.1 101 S"]
)
def test_malformed_response_heads_are_refused(head: bytes) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_response_head(head)
    assert info.value.status == 0


def test_response_head_with_empty_reason() -> None:
    response = parse_response_head(b"HTTP/1.1 101 \r\nUpgrade: websocket")
    assert response.status == 101 and response.reason == ""


# --- server side ------------------------------------------------------------------------


def check(headers: Sequence[tuple[str, str]], start: str = "GET / HTTP/1.1", **kw: object) -> None:
    head, _ = HeadReader().feed(request_bytes(headers, start)) or (b"", b"")
    check_request(parse_request_head(head), **kw)  # type: ignore[arg-type]


REFUSALS = [
    # (id, headers, start line, status)
    ("post", GOOD_HEADERS, "POST / HTTP/1.1", 400),
    ("http/1.0", GOOD_HEADERS, "GET / HTTP/1.0", 400),
    ("no host", replace("Host", None), None, 400),
    ("two hosts", GOOD_HEADERS + [("Host", "other")], None, 400),
    ("empty host", replace("Host", ""), None, 400),
    ("body", GOOD_HEADERS + [("Content-Length", "3")], None, 400),
    ("chunked", GOOD_HEADERS + [("Transfer-Encoding", "chunked")], None, 400),
    ("no upgrade", replace("Upgrade", None), None, 426),
    ("upgrade h2c", replace("Upgrade", "h2c"), None, 426),
    ("no connection", replace("Connection", None), None, 426),
    ("connection keep-alive", replace("Connection", "keep-alive"), None, 426),
    ("no key", replace("Sec-WebSocket-Key", None), None, 400),
    (
        "key of 15 bytes",
        replace("Sec-WebSocket-Key", base64.b64encode(b"x" * 15).decode()),
        None,
        400,
    ),
    (
        "key of 17 bytes",
        replace("Sec-WebSocket-Key", base64.b64encode(b"x" * 17).decode()),
        None,
        400,
    ),
    ("key not base64", replace("Sec-WebSocket-Key", "!" * 24), None, 400),
    ("two keys", GOOD_HEADERS + [("Sec-WebSocket-Key", KEY)], None, 400),
    ("no version", replace("Sec-WebSocket-Version", None), None, 426),
    ("version 8", replace("Sec-WebSocket-Version", "8"), None, 426),
    ("two versions", GOOD_HEADERS + [("Sec-WebSocket-Version", "13")], None, 426),
    ("bad subprotocol", GOOD_HEADERS + [("Sec-WebSocket-Protocol", "a b")], None, 400),
    ("bad extension", GOOD_HEADERS + [("Sec-WebSocket-Extensions", "x; =1")], None, 400),
]


@pytest.mark.parametrize(
    ("headers", "start", "status"),
    [pytest.param(h, s, st, id=i) for i, h, s, st in REFUSALS],
)
def test_each_request_failure_has_its_status(
    headers: list[tuple[str, str]], start: str | None, status: int
) -> None:
    with pytest.raises(HandshakeError) as info:
        check(headers, start or "GET / HTTP/1.1")
    assert info.value.status == status
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers
        assert ("Upgrade", "websocket") in info.value.headers


@pytest.mark.parametrize(
    ("id_", "headers", "start", "status"),
    [pytest.param(i, h, s, st, id=i) for i, h, s, st in REFUSALS],
)
def test_server_connection_refuses_with_status_header_and_body(
    id_: str, headers: list[tuple[str, str]], start: str | None, status: int
) -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(headers, start or "GET / HTTP/1.1"))
    events = server.events()
    assert isinstance(events[0], HandshakeFailed) and events[0].status == status
    assert events[-1] == ConnectionTerminated(1006, "")
    assert server.state is State.CLOSED and server.should_close_transport
    got_status, response_headers, body = split_response(server.data_to_send())
    assert got_status == status
    assert response_headers["Content-Type"].startswith("text/plain")
    assert int(response_headers["Content-Length"]) == len(body)
    assert body.decode().strip() == events[0].message
    if status == 426:
        assert response_headers["Sec-WebSocket-Version"] == "13"


def test_valid_request_variants_are_accepted() -> None:
    check(replace("Connection", "keep-alive, Upgrade"))
    check(replace("Upgrade", "WebSocket"))
    check(replace("Connection", "upgrade") + [("Content-Length", "0")])


def test_origin_check() -> None:
    allowed = {"https://good.example", None}
    check(GOOD_HEADERS, origins=allowed)  # no Origin: allowed by None
    check(GOOD_HEADERS + [("Origin", "https://good.example")], origins=allowed)
    with pytest.raises(HandshakeError) as info:
        check(GOOD_HEADERS + [("Origin", "https://evil.example")], origins=allowed)
    assert info.value.status == 403
    with pytest.raises(HandshakeError) as info:
        check(GOOD_HEADERS, origins={"https://good.example"})
    assert info.value.status == 403


def test_server_refuses_a_bad_origin_with_403() -> None:
    server = ServerConnection(origins=["https://good.example"])
    server.receive_data(request_bytes(GOOD_HEADERS + [("Origin", "https://evil.example")]))
    assert split_response(server.data_to_send())[0] == 403
    assert isinstance(server.events()[0], HandshakeFailed)


def test_server_refuses_oversized_and_malformed_heads() -> None:
    server = ServerConnection(max_head_size=512)
    server.receive_data(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 600)
    assert split_response(server.data_to_send())[0] == 431
    assert server.state is State.CLOSED
    server = ServerConnection(max_header_lines=4)
    server.receive_data(request_bytes())
    assert split_response(server.data_to_send())[0] == 431
    server = ServerConnection()
    server.receive_data(b"GET / HTTP/1.1\r\nHost a\r\n\r\n")
    assert split_response(server.data_to_send())[0] == 400


def test_server_accepts_and_answers_101() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes())
    (request,) = server.events()
    assert isinstance(request, Request)
    assert request.target == "/chat?room=1" and request.path == "/chat"
    assert request.query == "room=1" and request.host == "example.com"
    assert server.state is State.CONNECTING
    server.accept(extra_headers=[("X-Server", "wsfast")])
    assert server.state is State.OPEN and not server.should_close_transport
    status, headers, body = split_response(server.data_to_send())
    assert status == 101 and body == b""
    assert headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers.tokens("Upgrade") == ["websocket"]
    assert headers.tokens("Connection") == ["upgrade"]
    assert headers["X-Server"] == "wsfast"
    assert "Sec-WebSocket-Protocol" not in headers
    assert "Sec-WebSocket-Extensions" not in headers


def test_server_reject_sends_status_and_body_then_closes() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes())
    server.events()
    server.reject(401, "who are you?", headers=[("WWW-Authenticate", "Basic")])
    status, headers, body = split_response(server.data_to_send())
    assert (status, body) == (401, b"who are you?")
    assert headers["WWW-Authenticate"] == "Basic"
    assert server.state is State.CLOSED and server.should_close_transport
    assert server.events() == [ConnectionTerminated(1006, "")]
    with pytest.raises(InvalidState):
        server.accept()


def test_accept_and_reject_need_a_pending_request() -> None:
    server = ServerConnection()
    with pytest.raises(InvalidState):
        server.accept()
    with pytest.raises(InvalidState):
        server.reject()
    server.receive_data(request_bytes())
    server.accept()
    with pytest.raises(InvalidState):
        server.accept()


def test_reject_response_needs_a_final_status() -> None:
    with pytest.raises(ValueError):
        reject_response(101)


def test_server_refuses_data_piling_up_before_accept() -> None:
    server = ServerConnection(max_head_size=1024)
    server.receive_data(request_bytes())
    server.events()
    server.receive_data(b"\x81" * 2000)
    assert split_response(server.data_to_send())[0] == 400
    assert server.state is State.CLOSED


# --- plain HTTP on the WebSocket port (plain_http=True) -------------------------------------

PAGE_HEADERS = [("Host", "example.com"), ("Accept", "text/html"), ("Connection", "keep-alive")]


def test_plain_get_is_refused_with_426_by_default() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(PAGE_HEADERS, "GET / HTTP/1.1"))
    events = server.events()
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 426
    assert events[-1] == ConnectionTerminated(1006, "")
    status, headers, _ = split_response(server.data_to_send())
    assert status == 426 and headers["Upgrade"] == "websocket"
    with pytest.raises(InvalidState):
        server.respond(200, b"page")


def test_plain_get_is_left_to_the_application() -> None:
    server = ServerConnection(plain_http=True)
    data = request_bytes(PAGE_HEADERS, "GET /index.html?lang=en HTTP/1.1")
    server.receive_data(data[:20])
    assert server.events() == []
    server.receive_data(data[20:])
    (event,) = server.events()
    assert event == HttpRequest("/index.html?lang=en", Headers(PAGE_HEADERS))
    assert isinstance(event, HttpRequest)
    assert (event.path, event.query, event.headers["Accept"]) == (
        "/index.html",
        "lang=en",
        "text/html",
    )
    assert server.state is State.CONNECTING and server.data_to_send() == b""
    assert server.request is None and not server.should_close_transport
    page = "<!doctype html><p>héllo</p>".encode()
    server.respond(200, page, headers=[("Content-Type", "text/html; charset=utf-8")])
    raw = server.data_to_send()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    status, headers, body = split_response(raw)
    assert (status, body) == (200, page)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(page))
    assert headers.tokens("Connection") == ["close"]
    assert server.state is State.CLOSED and server.should_close_transport
    assert server.events() == [ConnectionTerminated(1006, "")]
    with pytest.raises(InvalidState):
        server.respond(200)
    server.receive_data(b"GET /again HTTP/1.1\r\n\r\n")  # ignored: CLOSED
    assert server.events() == [] and server.data_to_send() == b""


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, "Not Found\n", "text/plain; charset=utf-8"),
        (200, b"", None),
        (426, "this is a WebSocket endpoint", "text/plain; charset=utf-8"),
        (503, "busy", "text/html"),
    ],
)
def test_respond_with_text_empty_and_error_statuses(
    status: int, body: bytes | str, content_type: str | None
) -> None:
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET /ws HTTP/1.1"))
    server.events()
    extra = [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")] if status == 426 else []
    if content_type == "text/html":
        extra.append(("Content-Type", content_type))
    server.respond(status, body, headers=extra)
    got, headers, raw_body = split_response(server.data_to_send())
    assert got == status
    assert raw_body == (body.encode() if isinstance(body, str) else body)
    assert headers["Content-Length"] == str(len(raw_body))
    assert headers.get("Content-Type") == content_type
    assert "close" in headers.tokens("Connection")
    for name, value in extra:
        assert headers[name] == value


@pytest.mark.parametrize("status", [204, 304])
def test_respond_without_a_body(status: int) -> None:
    # RFC 9110 §8.6: no Content-Length in a 204; in a 304 it would describe another body.
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET / HTTP/1.1"))
    server.events()
    with pytest.raises(ValueError):
        server.respond(status, b"body")
    server.respond(status, headers=[("ETag", '"1"')])
    got, headers, raw_body = split_response(server.data_to_send())
    assert (got, raw_body, headers["ETag"]) == (status, b"", '"1"')
    assert "Content-Length" not in headers and headers["Connection"] == "close"


def test_respond_refuses_bad_arguments_and_keeps_the_request_pending() -> None:
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET / HTTP/1.1"))
    server.events()
    with pytest.raises(ValueError):
        server.respond(101)
    with pytest.raises(ValueError):
        server.respond(200, b"x", headers=[("Content-Length", "1")])
    with pytest.raises(ValueError):
        server.respond(200, b"x", headers=[("Transfer-Encoding", "chunked")])
    with pytest.raises(ValueError):
        server.respond(200, b"x", headers=[("X-Bad", "a\r\nInjected: 1")])
    assert server.state is State.CONNECTING and server.data_to_send() == b""
    # accept() and reject() are for WebSocket requests.
    with pytest.raises(InvalidState):
        server.accept()
    with pytest.raises(InvalidState):
        server.reject()
    server.respond(200, b"ok")
    assert split_response(server.data_to_send())[0] == 200


def test_respond_needs_a_pending_http_request() -> None:
    server = ServerConnection(plain_http=True)
    with pytest.raises(InvalidState):
        server.respond()
    server.receive_data(request_bytes())  # a WebSocket request
    with pytest.raises(InvalidState):
        server.respond()
    server.receive_eof()
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET / HTTP/1.1"))
    server.receive_eof()  # the browser went away before the answer
    assert server.events()[-1] == ConnectionTerminated(1006, "")
    with pytest.raises(InvalidState):
        server.respond()


def test_plain_http_still_upgrades_websocket_requests() -> None:
    # One port for both: the page, then the WebSocket it opens.
    client = ClientConnection("example.com", "/ws")
    server = ServerConnection(plain_http=True)
    server.receive_data(client.data_to_send())
    (request,) = server.events()
    assert isinstance(request, Request) and request.path == "/ws"
    server.accept()
    client.receive_data(server.data_to_send())
    assert isinstance(client.events()[0], Accepted)
    client.send_text("hi")
    server.receive_data(client.data_to_send())
    assert server.events() == [TextMessage("hi")]
    with pytest.raises(InvalidState):
        server.respond()


def test_data_after_a_plain_request_is_not_read() -> None:
    # A pipelined second request (or anything else) waits for nobody: respond() closes.
    server = ServerConnection(plain_http=True, max_head_size=1024)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET /a HTTP/1.1") + b"GET /b HTTP/1.1\r\n")
    server.receive_data(b"x" * 5000)
    assert server.events() == [HttpRequest("/a", Headers(PAGE_HEADERS))]
    assert server.data_to_send() == b"" and server.state is State.CONNECTING
    server.respond(200, b"a")
    assert split_response(server.data_to_send())[2] == b"a"


@pytest.mark.parametrize(
    ("start", "headers", "status"),
    [
        ("POST / HTTP/1.1", PAGE_HEADERS + [("Content-Length", "0")], 405),
        ("HEAD / HTTP/1.1", PAGE_HEADERS, 405),
        ("GET / HTTP/1.0", PAGE_HEADERS, 400),
        ("GET / HTTP/1.1", [("Accept", "*/*")], 400),  # no Host
        ("GET / HTTP/1.1", PAGE_HEADERS + [("Host", "other")], 400),
        ("GET / HTTP/1.1", PAGE_HEADERS + [("Content-Length", "3")], 400),
        # Upgrade: websocket makes it a WebSocket request, checked as such.
        ("GET / HTTP/1.1", replace("Connection", None), 426),
        ("GET / HTTP/1.1", replace("Sec-WebSocket-Key", None), 400),
        ("POST / HTTP/1.1", GOOD_HEADERS, 400),
    ],
    ids=[
        "post",
        "head",
        "http/1.0",
        "no host",
        "two hosts",
        "body",
        "upgrade without connection",
        "upgrade without key",
        "upgrade with post",
    ],
)
def test_plain_http_refusals(start: str, headers: list[tuple[str, str]], status: int) -> None:
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(headers, start))
    events = server.events()
    assert isinstance(events[0], HandshakeFailed) and events[0].status == status
    got, response_headers, _ = split_response(server.data_to_send())
    assert got == status
    if status == 405:
        assert response_headers["Allow"] == "GET"
    assert server.state is State.CLOSED and server.should_close_transport


def test_plain_request_helpers() -> None:
    assert is_websocket_upgrade(Headers(GOOD_HEADERS))
    assert is_websocket_upgrade(Headers([("Upgrade", "h2c, WebSocket")]))
    assert not is_websocket_upgrade(Headers(PAGE_HEADERS + [("Upgrade", "h2c")]))
    check_http_request(parse_request_head(request_bytes(PAGE_HEADERS, "GET / HTTP/1.1")[:-4]))
    with pytest.raises(HandshakeError) as info:
        check_http_request(parse_request_head(request_bytes(PAGE_HEADERS, "PUT / HTTP/1.1")[:-4]))
    assert (info.value.status, info.value.headers) == (405, (("Allow", "GET"),))
    response = http_response(200, "ok", [("Cache-Control", "no-store")])
    assert split_response(response) == (
        200,
        Headers(
            [
                ("Cache-Control", "no-store"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", "2"),
                ("Connection", "close"),
            ]
        ),
        b"ok",
    )


# --- subprotocols -----------------------------------------------------------------------


def negotiate(offer: str | None, **server_kw: object) -> tuple[ServerConnection, Headers]:
    headers = GOOD_HEADERS + ([("Sec-WebSocket-Protocol", offer)] if offer is not None else [])
    server = ServerConnection(**server_kw)  # type: ignore[arg-type]
    server.receive_data(request_bytes(headers))
    server.events()
    server.accept()
    return server, split_response(server.data_to_send())[1]


def test_server_picks_its_preferred_subprotocol_among_the_offer() -> None:
    server, headers = negotiate("chat, superchat", subprotocols=["superchat", "chat"])
    assert headers["Sec-WebSocket-Protocol"] == "superchat"
    assert server.subprotocol == "superchat"


def test_no_common_subprotocol_means_no_header() -> None:
    server, headers = negotiate("chat", subprotocols=["other"])
    assert "Sec-WebSocket-Protocol" not in headers and server.subprotocol is None


def test_subprotocol_hook() -> None:
    seen: list[Sequence[str]] = []

    def pick(offered: Sequence[str]) -> str | None:
        seen.append(offered)
        return offered[-1]

    server, headers = negotiate("a, b, c", select_subprotocol=pick)
    assert seen == [("a", "b", "c")]
    assert headers["Sec-WebSocket-Protocol"] == "c"


def test_accept_with_an_explicit_subprotocol() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(GOOD_HEADERS + [("Sec-WebSocket-Protocol", "a, b")]))
    server.events()
    with pytest.raises(ValueError):
        server.accept(subprotocol="c")
    server.accept(subprotocol="b")
    assert split_response(server.data_to_send())[1]["Sec-WebSocket-Protocol"] == "b"


# --- extensions -------------------------------------------------------------------------


def test_parse_and_serialize_extensions() -> None:
    offers = parse_extensions(
        ['permessage-deflate; client_max_window_bits, x-foo; a=1; b="two"', "x-bar"]
    )
    assert offers == [
        ("permessage-deflate", (("client_max_window_bits", None),)),
        ("x-foo", (("a", "1"), ("b", "two"))),
        ("x-bar", ()),
    ]
    assert serialize_extensions(offers[:1]) == "permessage-deflate; client_max_window_bits"


@pytest.mark.parametrize("value", ["a b", "x; =1", 'x; a="1', 'x; a="not a token"', "x;;"])
def test_malformed_extension_headers(value: str) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_extensions([value])
    assert info.value.status == 400


def split_by_hand(value: str, sep: str) -> list[str]:
    """The reference: split ``value`` at ``sep`` outside quoted strings, character by
    character (None for an unterminated quoted string)."""
    parts, current, quoted, escaped = [], "", False, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(current)
            current = ""
            continue
        current += ch
    return None if quoted else [*parts, current]  # type: ignore[return-value]


@given(st.text(alphabet='ab ;,"\\=', max_size=40))
def test_extension_headers_split_as_by_hand(value: str) -> None:
    from wsfast.handshake import _split_outside_quotes

    for sep in ",;":
        expected = split_by_hand(value, sep)
        if expected is None:
            with pytest.raises(HandshakeError):
                _split_outside_quotes(value, sep)
        else:
            assert _split_outside_quotes(value, sep) == expected


@pytest.mark.parametrize("quote", ["", '; x="1"'])
def test_a_long_extension_header_is_not_parsed_a_character_at_a_time(quote: str) -> None:
    """Hundreds of offers fit in one header (16 KiB); splitting them was a Python loop over
    every character (8-19 ms a request, 50 times a plain handshake). Counted in Python line
    events, not time: the work follows the number of offers, not of characters."""
    value = ", ".join(["permessage-deflate; server_max_window_bits=8" + quote] * 300)
    events = [0]

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename.endswith("handshake.py"):
            events[0] += event == "line"
            return tracer
        return None

    sys.settrace(tracer)
    try:
        offers = parse_extensions([value])
    finally:
        sys.settrace(None)
    assert len(offers) == 300
    assert events[0] < 100 * len(offers), events[0]  # it was 570-670 per offer


def test_unknown_extensions_are_declined() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(GOOD_HEADERS + [("Sec-WebSocket-Extensions", "x-unknown")]))
    (request,) = server.events()
    assert isinstance(request, Request) and request.extensions == ("x-unknown",)
    server.accept()
    assert "Sec-WebSocket-Extensions" not in split_response(server.data_to_send())[1]
    assert server.extensions == ()


def test_negotiate_extensions_asks_factories_in_offer_order() -> None:
    calls: list[tuple[str, object]] = []

    class Factory:
        def __init__(self, name: str, accept: bool) -> None:
            self.name = name
            self._accept = accept

        def accept(self, params: object, accepted: object) -> object:
            calls.append((self.name, params))
            return ((("p", "1"),), f"ext-{self.name}") if self._accept else None

    header, extensions = negotiate_extensions(
        [("b", ()), ("a", (("q", None),)), ("c", ())],
        [Factory("a", True), Factory("b", False), Factory("c", True)],  # type: ignore[list-item]
    )
    assert calls == [("b", ()), ("a", (("q", None),)), ("c", ())]
    assert header == "a; p=1, c; p=1"
    assert extensions == ["ext-a", "ext-c"]


# --- client side ------------------------------------------------------------------------


def test_build_request() -> None:
    data = build_request(
        "example.com",
        "/path?q=1",
        key=KEY,
        port=8080,
        origin="https://example.com",
        subprotocols=["chat", "superchat"],
        extra_headers=[("Authorization", "Bearer x")],
    )
    head, rest = HeadReader().feed(data) or (b"", b"")
    assert rest == b""
    request = parse_request_head(head)
    assert (request.method, request.target, request.version) == ("GET", "/path?q=1", "HTTP/1.1")
    headers = request.headers
    assert headers["Host"] == "example.com:8080"
    assert headers["Origin"] == "https://example.com"
    assert headers["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert headers["Authorization"] == "Bearer x"
    check_request(request)  # our own request passes our own server checks


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("::1", 8000, False, "[::1]:8000"),
        ("127.0.0.1", None, False, "127.0.0.1"),
    ],
)
def test_host_header(host: str, port: int | None, secure: bool, expected: str) -> None:
    data = build_request(host, key=KEY, port=port, secure=secure)
    head, _ = HeadReader().feed(data) or (b"", b"")
    assert parse_request_head(head).headers["Host"] == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target": "no-slash"},
        {"target": "/a b"},
        {"extra_headers": [("X", "a\r\nInjected: 1")]},
        {"extra_headers": [("Bad Name", "v")]},
        {"origin": "x\ny"},
        {"subprotocols": ["a b"]},
    ],
)
def test_build_request_refuses_what_could_split_the_head(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_request("example.com", key=KEY, **kwargs)  # type: ignore[arg-type]


def test_parse_uri() -> None:
    assert parse_uri("ws://example.com") == (False, "example.com", 80, "/")
    assert parse_uri("wss://example.com:9000/a/b?c=d") == (True, "example.com", 9000, "/a/b?c=d")
    assert parse_uri("ws://[::1]:8080/") == (False, "::1", 8080, "/")
    for bad in ["http://x/", "ws://x/#frag", "ws://user:pw@x/", "ws:///path"]:
        with pytest.raises(ValueError):
            parse_uri(bad)


def server_answer(client: ClientConnection, **accept_kw: object) -> bytes:
    server = ServerConnection(subprotocols=["chat"])
    server.receive_data(client.data_to_send())
    server.events()
    server.accept(**accept_kw)  # type: ignore[arg-type]
    return server.data_to_send()


def test_client_handshake_with_subprotocol() -> None:
    client = ClientConnection.from_uri("ws://example.com:8000/x?y", subprotocols=["chat"])
    assert client.state is State.CONNECTING
    client.receive_data(server_answer(client))
    (accepted,) = client.events()
    assert isinstance(accepted, Accepted) and accepted.subprotocol == "chat"
    assert client.state is State.OPEN and client.subprotocol == "chat"


def response_for(client: ClientConnection, *lines: str, accept: str | None = None) -> bytes:
    request = client.data_to_send()
    head, _ = HeadReader().feed(request) or (b"", b"")
    key = parse_request_head(head).headers["Sec-WebSocket-Key"]
    headers = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key) if accept is None else accept}",
        *lines,
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("lines", "accept", "message"),
    [
        ((), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Accept"),
        (("Sec-WebSocket-Protocol: other",), None, "subprotocol not offered"),
        (("Sec-WebSocket-Protocol: chat, other",), None, "more than one subprotocol"),
        (("Sec-WebSocket-Extensions: permessage-deflate",), None, "extension not offered"),
    ],
)
def test_client_refuses_an_invalid_101(
    lines: tuple[str, ...], accept: str | None, message: str
) -> None:
    client = ClientConnection("example.com", subprotocols=["chat"])
    client.receive_data(response_for(client, *lines, accept=accept))
    failed, closed = client.events()
    assert isinstance(failed, HandshakeFailed) and failed.status == 101
    assert message in failed.message
    assert closed == ConnectionTerminated(1006, "")
    assert client.state is State.CLOSED and client.should_close_transport


@pytest.mark.parametrize("drop", ["Upgrade: websocket", "Connection: Upgrade"])
def test_client_requires_upgrade_and_connection(drop: str) -> None:
    client = ClientConnection("example.com")
    data = response_for(client).replace(drop.encode() + b"\r\n", b"")
    client.receive_data(data)
    assert isinstance(client.events()[0], HandshakeFailed)


def test_client_reports_a_rejection_with_its_body() -> None:
    client = ClientConnection("example.com")
    client.data_to_send()
    response = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\n"
    client.receive_data(response + b"go")
    assert client.events() == []  # the body is not complete yet
    client.receive_data(b" away!!!")
    rejected, closed = client.events()
    assert isinstance(rejected, Rejected)
    assert (rejected.status, rejected.body) == (403, b"go away!!!")
    assert rejected.headers["Content-Length"] == "10"
    assert closed == ConnectionTerminated(1006, "")
    assert client.state is State.CLOSED and client.should_close_transport


def test_client_reads_a_rejection_body_until_eof_when_unsized() -> None:
    client = ClientConnection("example.com")
    client.receive_data(b"HTTP/1.1 400 Bad Request\r\n\r\nno")
    client.receive_data(b"pe")
    assert client.events() == []
    client.receive_eof()
    rejected, _ = client.events()
    assert isinstance(rejected, Rejected) and rejected.body == b"nope"


def test_client_rejection_without_body() -> None:
    client = ClientConnection("example.com")
    client.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    rejected, _ = client.events()
    assert isinstance(rejected, Rejected) and rejected.body == b""


def test_client_handshake_eof_and_garbage() -> None:
    client = ClientConnection("example.com")
    client.receive_data(b"HTTP/1.1 101 Switching")
    client.receive_eof()
    failed, closed = client.events()
    assert isinstance(failed, HandshakeFailed) and closed.code == 1006
    client = ClientConnection("example.com")
    client.receive_data(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert isinstance(client.events()[0], HandshakeFailed)
    assert client.state is State.CLOSED


def test_frames_in_the_same_chunk_as_the_handshake_are_processed() -> None:
    client = ClientConnection("example.com")
    server = ServerConnection()
    request = client.data_to_send()
    # A (misbehaving) client that sends a frame right behind its request: kept until accept.
    early = ClientConnection("example.com")
    early.receive_data(response_for(early))
    early.events()
    early.send_text("early")
    server.receive_data(request + early.data_to_send())
    assert [type(e) for e in server.events()] == [Request]
    server.accept()
    assert server.events() == [TextMessage("early")]
    # The server sends a frame right behind its 101.
    server.send_binary(b"hello")
    client.receive_data(server.data_to_send())
    accepted, message = client.events()
    assert isinstance(accepted, Accepted) and message == BinaryMessage(b"hello")


# --- request targets (RFC 9112 §3.2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "host", "target"),
    [
        ("GET /chat?room=1 HTTP/1.1", "example.com", "/chat?room=1"),
        ("GET http://example.com/chat?room=1 HTTP/1.1", "example.com", "/chat?room=1"),
        ("GET https://EXAMPLE.com:8443/a/b HTTP/1.1", "example.com:8443", "/a/b"),
        ("GET http://example.com HTTP/1.1", "example.com", "/"),
        ("GET http://example.com?q=1 HTTP/1.1", "example.com", "/?q=1"),
        ("GET http://[::1]:8000/x HTTP/1.1", "[::1]:8000", "/x"),
    ],
)
def test_absolute_form_is_reduced_to_its_path(start: str, host: str, target: str) -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(replace("Host", host), start))
    (request,) = server.events()
    assert isinstance(request, Request), request
    assert request.target == target and request.host == host


@pytest.mark.parametrize(
    ("start", "host"),
    [
        ("GET * HTTP/1.1", "example.com"),  # asterisk-form: OPTIONS only
        ("GET example.com:80 HTTP/1.1", "example.com:80"),  # authority-form: CONNECT only
        ("GET http://other.example/chat HTTP/1.1", "example.com"),  # not the Host
        ("GET http://example.com:81/chat HTTP/1.1", "example.com"),  # not the Host's port
        ("GET http://user@example.com/chat HTTP/1.1", "user@example.com"),  # userinfo
        ("GET ftp://example.com/chat HTTP/1.1", "example.com"),  # not http(s)
        ("GET http:///chat HTTP/1.1", "example.com"),  # no authority
        ("GET /chat#frag HTTP/1.1", "example.com"),  # no fragment in a request-target
        ("GET chat HTTP/1.1", "example.com"),
    ],
)
def test_other_request_targets_are_refused_with_400(start: str, host: str) -> None:
    server = ServerConnection()
    server.receive_data(request_bytes(replace("Host", host), start))
    event = server.events()[0]
    assert isinstance(event, HandshakeFailed) and event.status == 400, event
    assert split_response(server.data_to_send())[0] == 400


def test_plain_http_requests_get_the_same_target_rules() -> None:
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET http://example.com/page?x HTTP/1.1"))
    (event,) = server.events()
    assert isinstance(event, HttpRequest) and event.target == "/page?x"
    server = ServerConnection(plain_http=True)
    server.receive_data(request_bytes(PAGE_HEADERS, "GET * HTTP/1.1"))
    event = server.events()[0]
    assert isinstance(event, HandshakeFailed) and event.status == 400
