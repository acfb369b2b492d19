"""The WebSocket opening handshake (RFC 6455 §4), sans I/O.

Pure functions over parsed heads: the server checks a request and builds the 101 (or the
rejection), the client builds a request and checks the 101. :mod:`wsfast.connection` drives
them; they are usable on their own too.

Server-side refusals (RFC 6455 §4.2.1, §4.2.2, §4.4):

=====================================================================  =======================
what is wrong                                                          response
=====================================================================  =======================
malformed head, method not GET, not HTTP/1.1, no (or repeated) Host,   400 Bad Request
bad or missing Sec-WebSocket-Key, a body, malformed negotiation header
head larger than ``max_size`` or more than ``max_lines`` header lines  431
Upgrade without ``websocket`` or Connection without ``upgrade``        426 (+ Upgrade,
                                                                       Sec-WebSocket-Version)
Sec-WebSocket-Version missing or not 13                                426 (+ the same)
Origin not allowed                                                     403 Forbidden
=====================================================================  =======================

Every refusal carries a short ``text/plain`` body saying what was wrong.

Plain HTTP on the WebSocket port (``ServerConnection(plain_http=True)``): a request that does
not ask for ``Upgrade: websocket`` is checked by :func:`check_http_request` (a GET over
HTTP/1.1 with a Host and no body; 405 for another method, 400 otherwise) and left to the
application, which answers it with :func:`http_response`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http
import ipaddress
import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from ._http import (
    MAX_HEAD_SIZE,
    MAX_HEADER_LINES,
    HandshakeError,
    Headers,
    HeadReader,
    RequestHead,
    ResponseHead,
    check_header_value,
    is_token,
    parse_request_head,
    parse_response_head,
)

if TYPE_CHECKING:
    from .pure.frames import Frame

__all__ = [
    "GUID",
    "MAX_HEAD_SIZE",
    "MAX_HEADER_LINES",
    "MAX_REJECT_BODY",
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParams",
    "HandshakeError",
    "Headers",
    "HeadReader",
    "RequestHead",
    "ResponseHead",
    "ServerExtensionFactory",
    "UpgradeRequest",
    "accept_key",
    "accept_response",
    "build_request",
    "check_http_request",
    "check_request",
    "check_response",
    "generate_key",
    "http_response",
    "is_websocket_upgrade",
    "negotiate_extensions",
    "parse_extensions",
    "parse_request_head",
    "parse_response_head",
    "parse_uri",
    "reject_response",
    "serialize_extensions",
    "select_subprotocol",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 §1.3: appended to the client's key to compute Sec-WebSocket-Accept."""
MAX_REJECT_BODY = 64 * 1024
"""How many bytes of a rejection body (a non-101 response) the client keeps at most."""

_VERSION_HEADERS = (("Sec-WebSocket-Version", "13"),)
_UPGRADE_HEADERS = (("Upgrade", "websocket"), ("Connection", "Upgrade"), *_VERSION_HEADERS)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64-encoded (RFC 6455 §4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


# --- extensions (RFC 6455 §9) -----------------------------------------------------------

ExtensionParams = tuple[tuple[str, "str | None"], ...]
"""An extension's parameters in order: ``(name, value)``, value None for a bare name."""


class Extension(Protocol):
    """A negotiated extension (e.g. :class:`wsfast.permessage_deflate.PerMessageDeflate`).

    ``decode`` runs on the received frames that carry an RSV bit, and on every later frame
    of a message whose first frame carried one (extensions in reverse order of negotiation),
    before any RFC 6455 check that depends on the payload; the other frames pass it by, as
    they would unchanged. It must clear the RSV bits it consumes, because the connection
    fails the connection (1002) on any RSV bit left set (§5.2). ``max_size`` is what the
    message may still grow by (None: no limit); exceed it with ProtocolError(code=1009).
    ``encode`` runs on every frame we send, control frames included, in order of negotiation.

    An extension whose frames may carry more bytes than the message they hold (compression of
    incompressible data) also defines ``max_payload(max_size) -> int``, the most bytes a
    message of ``max_size`` bytes may take on the wire: the connection lets frames that large
    through its frame-size limit (frames without RSV bits are still held to
    ``max_message_size``).
    """

    name: str

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame: ...

    def encode(self, frame: Frame) -> Frame: ...


class ServerExtensionFactory(Protocol):
    """Server side of one extension's negotiation (e.g. permessage-deflate, RFC 7692)."""

    name: str

    def accept(
        self, params: ExtensionParams, accepted: Sequence[Extension]
    ) -> tuple[ExtensionParams, Extension] | None:
        """The response parameters and the extension for an offer, or None to decline it."""
        ...


class ClientExtensionFactory(Protocol):
    """Client side of one extension's negotiation."""

    name: str

    def offer(self) -> ExtensionParams:
        """The parameters to offer in Sec-WebSocket-Extensions."""
        ...

    def complete(self, params: ExtensionParams, accepted: Sequence[Extension]) -> Extension:
        """The extension for the server's answer; raise HandshakeError if unacceptable."""
        ...


_PARAM_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_extensions(values: Iterable[str]) -> list[tuple[str, ExtensionParams]]:
    """Parse Sec-WebSocket-Extensions values (RFC 6455 §9.1) into ``(name, params)``.

    Raises HandshakeError(400) on a malformed header.
    """
    out: list[tuple[str, ExtensionParams]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            if not item.strip(" \t"):
                continue
            name, *raw_params = _split_outside_quotes(item, ";")
            name = name.strip(" \t")
            if not is_token(name):
                raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}", 400)
            params: list[tuple[str, str | None]] = []
            for raw in raw_params:
                key, eq, val = raw.partition("=")
                key = key.strip(" \t")
                val = val.strip(" \t")
                if not is_token(key):
                    raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}", 400)
                if not eq:
                    params.append((key, None))
                    continue
                quoted = _PARAM_VALUE.fullmatch(val)
                if quoted is not None:
                    val = re.sub(r"\\(.)", r"\1", quoted.group(1))
                # RFC 6455 §9.1: a quoted value must still be a token once unquoted.
                if not is_token(val):
                    raise HandshakeError(f"malformed Sec-WebSocket-Extensions: {value!r}", 400)
                params.append((key, val))
            out.append((name, tuple(params)))
    return out


# A quoted string (escapes included), an unterminated quote, or a run of other characters.
_QUOTED_OR_PLAIN = re.compile(r'"(?:[^"\\]|\\.)*"|"|[^"]+', re.DOTALL)


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    """Split ``value`` at ``sep`` outside quoted strings; HandshakeError(400) for an
    unterminated one. Works a run of characters at a time (regular expressions and
    str.split), never a Python loop per character: a header may hold hundreds of offers."""
    if '"' not in value:
        return value.split(sep)
    parts = [""]
    for match in _QUOTED_OR_PLAIN.finditer(value):
        chunk = match.group()
        if chunk == '"':
            raise HandshakeError(f"unterminated quoted string in {value!r}", 400)
        if chunk[0] == '"':
            parts[-1] += chunk
        else:
            first, *rest = chunk.split(sep)
            parts[-1] += first
            parts += rest
    return parts


def serialize_extensions(extensions: Iterable[tuple[str, ExtensionParams]]) -> str:
    """The Sec-WebSocket-Extensions value for ``(name, params)`` pairs."""
    items = []
    for name, params in extensions:
        item = name
        for key, value in params:
            item += f"; {key}" if value is None else f"; {key}={value}"
        items.append(item)
    return ", ".join(items)


def negotiate_extensions(
    offers: Sequence[tuple[str, ExtensionParams]],
    factories: Sequence[ServerExtensionFactory],
) -> tuple[str | None, list[Extension]]:
    """Accept offers in the client's order (RFC 6455 §9.1); unknown names are declined.

    Returns the Sec-WebSocket-Extensions response value (None when nothing was accepted) and
    the extensions to run, in order.
    """
    accepted: list[Extension] = []
    answer: list[tuple[str, ExtensionParams]] = []
    for name, params in offers:
        for factory in factories:
            if factory.name != name:
                continue
            result = factory.accept(params, accepted)
            if result is not None:
                response_params, extension = result
                accepted.append(extension)
                answer.append((name, response_params))
                break
    return (serialize_extensions(answer) if answer else None), accepted


# --- subprotocols (RFC 6455 §1.9, §4.2.2) ------------------------------------------------


def _parse_subprotocols(headers: Headers) -> tuple[str, ...]:
    out: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue
            if not is_token(item):
                raise HandshakeError(f"malformed Sec-WebSocket-Protocol: {value!r}", 400)
            out.append(item)
    return tuple(out)


def select_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The default choice: the first of ``supported`` (server preference) that was offered."""
    for protocol in supported:
        if protocol in offered:
            return protocol
    return None


# --- server side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """A request that passed every RFC 6455 §4.2.1 check; ``target`` is its path and query
    (an absolute-form request-target reduced to them)."""

    target: str
    host: str
    key: str
    origin: str | None
    subprotocols: tuple[str, ...]
    extensions: tuple[tuple[str, ExtensionParams], ...]
    headers: Headers


def _valid_key(key: str) -> bool:
    if len(key) != 24:
        return False
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return len(raw) == 16


def is_websocket_upgrade(headers: Headers) -> bool:
    """Does a request ask for the WebSocket protocol (``websocket`` in Upgrade)?"""
    return "websocket" in headers.tokens("Upgrade")


def _check_get(head: RequestHead, what: str) -> tuple[str, str]:
    """The checks every GET we answer passes (RFC 9112 §3.2, §6); returns the Host and the
    request-target in origin-form."""
    if head.version != "HTTP/1.1":
        raise HandshakeError(f"HTTP/1.1 is required, not {head.version}", 400)
    headers = head.headers
    host = headers.get_single("Host")
    if host is None or not host:
        raise HandshakeError("missing Host header", 400)
    if "Transfer-Encoding" in headers or headers.get_single("Content-Length") not in (None, "0"):
        raise HandshakeError(f"{what} cannot have a body", 400)
    return host, _origin_form(head.target, host)


def _origin_form(target: str, host: str) -> str:
    """The path and query of a GET's request-target (RFC 9112 §3.2): origin-form as it is;
    absolute-form (an http or https URI, RFC 6455 §4.1) reduced to its path and query, when
    its authority is the Host; anything else (``*``, authority-form) refused with 400."""
    if "#" in target:
        raise HandshakeError("a request-target has no fragment (RFC 9112 §3.2)", 400)
    if target.startswith("/"):
        return target
    try:
        parts = urlsplit(target)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise HandshakeError(
            f"the request-target must be a path or an http(s) URI, not {target[:64]!r}", 400
        )
    if "@" in parts.netloc or parts.netloc.lower() != host.lower():
        raise HandshakeError(
            f"the request-target's authority {parts.netloc[:64]!r} is not the Host {host!r}",
            400,
        )
    path = parts.path or "/"
    query = target.find("?")  # the query as sent, an empty one included (as in origin-form)
    return path if query < 0 else path + target[query:]


def check_http_request(head: RequestHead) -> str:
    """Check a plain HTTP request (no upgrade) for the application to answer; returns its
    request-target in origin-form (path and query).

    A GET over HTTP/1.1 with a Host and no body; HandshakeError(405, with ``Allow: GET``) for
    another method, HandshakeError(400) for the rest.
    """
    if head.method != "GET":
        raise HandshakeError(f"the method must be GET, not {head.method}", 405, (("Allow", "GET"),))
    return _check_get(head, "a GET request")[1]


def check_request(
    head: RequestHead, *, origins: Collection[str | None] | None = None
) -> UpgradeRequest:
    """Check a client's opening handshake (RFC 6455 §4.2.1); HandshakeError says why not.

    ``origins``, when given, lists the allowed Origin values (None allows a request without
    one); anything else is refused with 403.
    """
    if head.method != "GET":
        raise HandshakeError(f"the method must be GET, not {head.method}", 400)
    host, target = _check_get(head, "an upgrade request")
    headers = head.headers
    if not is_websocket_upgrade(headers):
        raise HandshakeError(
            "this is a WebSocket endpoint: expected 'Upgrade: websocket'", 426, _UPGRADE_HEADERS
        )
    if "upgrade" not in headers.tokens("Connection"):
        raise HandshakeError(
            "this is a WebSocket endpoint: expected 'Connection: Upgrade'", 426, _UPGRADE_HEADERS
        )
    key = headers.get_single("Sec-WebSocket-Key")
    if key is None:
        raise HandshakeError("missing Sec-WebSocket-Key header", 400)
    if not _valid_key(key):
        raise HandshakeError(f"Sec-WebSocket-Key is not 16 bytes in base64: {key!r}", 400)
    version = headers.get_all("Sec-WebSocket-Version")
    if version != ["13"]:
        raise HandshakeError(
            f"unsupported Sec-WebSocket-Version {', '.join(version) or '(missing)'}; "
            "only 13 is supported",
            426,
            _UPGRADE_HEADERS,
        )
    origin = headers.get_single("Origin")
    if origins is not None and origin not in origins:
        raise HandshakeError(f"origin {origin!r} is not allowed", 403)
    return UpgradeRequest(
        target,
        host,
        key,
        origin,
        _parse_subprotocols(headers),
        tuple(parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))),
        headers,
    )


def _serialize_response(
    status: int, headers: Iterable[tuple[str, str]], body: bytes = b""
) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}"]
    for name, value in headers:
        check_header_value(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def accept_response(
    key: str,
    *,
    subprotocol: str | None = None,
    extensions: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The 101 Switching Protocols response for a checked request (RFC 6455 §4.2.2 step 5)."""
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions is not None:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    headers.extend(extra_headers)
    return _serialize_response(101, headers)


def http_response(
    status: int, body: bytes | str = b"", headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """A complete HTTP/1.1 response after which the server closes the connection.

    ``status`` (200-599) and ``headers``, then ``Content-Length`` (except for 204 and 304,
    which have no body, RFC 9110 §8.6) and ``Connection: close``, then ``body``; a str body
    is sent in UTF-8 as ``text/plain`` unless ``headers`` has a Content-Type. ``headers`` may
    not set the message length (Content-Length, Transfer-Encoding): that is done here.
    """
    headers = tuple(headers)
    for name, _ in headers:
        if name.lower() in ("content-length", "transfer-encoding"):
            raise ValueError(f"{name} is set by the connection, not by the caller")
    if status in (204, 304):
        if body:
            raise ValueError(f"a {status} response has no body")
        return _final_response(status, b"", headers, length=False)
    return _final_response(status, body, headers)


def reject_response(
    status: int, body: bytes | str = b"", headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """A complete refusal: ``status``, ``headers``, and ``body`` (a str is sent as text/plain)."""
    return _final_response(status, body, headers)


def _final_response(
    status: int, body: bytes | str, headers: Iterable[tuple[str, str]], *, length: bool = True
) -> bytes:
    if not 200 <= status <= 599:
        raise ValueError(f"the response needs a final status in 200..599, not {status}")
    all_headers = list(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in all_headers):
            all_headers.append(("Content-Type", "text/plain; charset=utf-8"))
    if length:
        all_headers.append(("Content-Length", str(len(body))))
    all_headers.append(("Connection", "close"))
    return _serialize_response(status, all_headers, body)


# --- client side -------------------------------------------------------------------------


def parse_uri(uri: str) -> tuple[bool, str, int, str]:
    """``(secure, host, port, target)`` of a ``ws://`` or ``wss://`` URI (RFC 6455 §3)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URI (ws:// or wss://): {uri!r}")
    if parts.fragment:
        raise ValueError(f"a WebSocket URI cannot have a fragment: {uri!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"user info in WebSocket URIs is not supported: {uri!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"missing host in {uri!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return secure, host, port, target


def _host_header(host: str, port: int | None, secure: bool) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    if port is None or port == (443 if secure else 80):
        return host
    return f"{host}:{port}"


def build_request(
    host: str,
    target: str = "/",
    *,
    key: str,
    port: int | None = None,
    secure: bool = False,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The client's opening handshake (RFC 6455 §4.1)."""
    if not target.startswith("/") or re.fullmatch(r"[\x21-\x7e]+", target) is None:
        raise ValueError(f"the request target must be an absolute path (and query): {target!r}")
    for protocol in subprotocols:
        if not is_token(protocol):
            raise ValueError(f"a subprotocol must be a token: {protocol!r}")
    headers = [
        ("Host", _host_header(host, port, secure)),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        headers.append(("Origin", origin))
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions is not None:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    headers.extend(extra_headers)
    lines = [f"GET {target} HTTP/1.1"]
    for name, value in headers:
        check_header_value(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check_response(
    head: ResponseHead,
    *,
    key: str,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[str | None, list[Extension]]:
    """Check the server's 101 (RFC 6455 §4.1, client steps 1-6).

    Returns the subprotocol and the extensions in use; HandshakeError (with the response's
    status) says what is wrong.
    """
    status = head.status
    if status != 101:
        raise HandshakeError(f"the server answered {status} {head.reason}, not 101", status)
    if head.version != "HTTP/1.1":
        raise HandshakeError(f"expected HTTP/1.1, got {head.version}", status)
    headers = head.headers
    if "websocket" not in headers.tokens("Upgrade"):
        raise HandshakeError("missing 'Upgrade: websocket' in the response", status)
    if "upgrade" not in headers.tokens("Connection"):
        raise HandshakeError("missing 'Connection: Upgrade' in the response", status)
    try:
        accept = headers.get_single("Sec-WebSocket-Accept")
        protocols = headers.get_all("Sec-WebSocket-Protocol")
        answered = parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
    except HandshakeError as exc:
        raise HandshakeError(str(exc), status) from None
    if accept != accept_key(key):
        raise HandshakeError(f"wrong Sec-WebSocket-Accept {accept!r}", status)
    subprotocol: str | None = None
    if protocols:
        if len(protocols) > 1 or "," in protocols[0]:
            raise HandshakeError("the server chose more than one subprotocol", status)
        subprotocol = protocols[0].strip(" \t")
        if subprotocol not in subprotocols:
            raise HandshakeError(
                f"the server chose a subprotocol not offered: {subprotocol!r}", status
            )
    accepted: list[Extension] = []
    for name, params in answered:
        for factory in extensions:
            if factory.name == name:
                try:
                    accepted.append(factory.complete(params, accepted))
                except HandshakeError as exc:
                    raise HandshakeError(str(exc), status) from None
                break
        else:
            raise HandshakeError(f"the server chose an extension not offered: {name!r}", status)
    return subprotocol, accepted
