"""A strict, bounded reader and parser for HTTP/1.1 request and response heads (RFC 9112).

Only what the WebSocket opening handshake needs (RFC 6455 §4): a start line and header
fields, CRLF line endings, no obsolete line folding. Every limit is checked before more bytes
are buffered, so a peer can never make the reader hold more than ``max_size`` bytes of head.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_HEAD_SIZE",
    "MAX_HEADER_LINES",
    "HandshakeError",
    "Headers",
    "HeadReader",
    "RequestHead",
    "ResponseHead",
    "parse_request_head",
    "parse_response_head",
    "is_token",
    "check_header_value",
]

MAX_HEAD_SIZE = 16 * 1024
"""Default limit on a head in bytes, start line and final empty line included."""
MAX_HEADER_LINES = 128
"""Default limit on the number of header field lines."""

# RFC 9110 §5.6.2: token = 1*tchar
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field-value characters are VCHAR, obs-text, SP and HTAB.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_VALUE_STR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 §3.2: request-target; we accept origin-form and absolute-form characters only.
_TARGET = re.compile(rb"[\x21-\x7e]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
# RFC 9110 §15: a three-digit status code, 100-599 (600-999 are read as refusals).
_STATUS = re.compile(rb"[1-9][0-9]{2}")


class HandshakeError(Exception):
    """The opening handshake failed; ``status`` is the HTTP status that goes (or came) with it.

    On the server side ``status`` and ``headers`` are what the rejection response carries
    (RFC 6455 §4.2.2). On the client side ``status`` is the status the server answered with,
    or 0 when no response head could be read.
    """

    status: int
    headers: tuple[tuple[str, str], ...]

    def __init__(
        self, message: str, status: int = 400, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = tuple(headers)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status, self.headers))


def is_token(value: str) -> bool:
    """True iff ``value`` is an RFC 9110 §5.6.2 token."""
    return _TOKEN_STR.fullmatch(value) is not None


def check_header_value(name: str, value: str) -> None:
    """Refuse a header we are about to send if it could split the head (CR, LF, NUL...)."""
    if not is_token(name):
        raise ValueError(f"invalid header name {name!r}")
    if _BAD_VALUE_STR.search(value) or value != value.strip(" \t"):
        raise ValueError(f"invalid value for header {name!r}: {value!r}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} must be latin-1: {value!r}") from None


class Headers:
    """Immutable header fields in order, names compared case-insensitively (RFC 9110 §5.1).

    Repeated fields are kept: :meth:`get_all` gives their values apart. ``headers["name"]``
    (KeyError when absent) and :meth:`get` give one value, a repeated field's values joined
    with ", " as RFC 9110 §5.3 combines them (e.g. two X-Forwarded-For lines).
    :meth:`get_single` is for fields that may appear only once (Host, Sec-WebSocket-Key...).
    """

    __slots__ = ("_items", "_index")

    _items: tuple[tuple[str, str], ...]
    _index: dict[str, list[str]]

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple((str(name), str(value)) for name, value in items)
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), []).append(value)
        self._index = index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (repeated: the values joined with ", "); ``default`` when
        absent."""
        values = self._index.get(name.lower())
        return default if values is None else ", ".join(values)  # one value: that value

    def get_single(self, name: str) -> str | None:
        """The value of a field that may appear once, None when absent; HandshakeError (400)
        when repeated."""
        values = self._index.get(name.lower())
        if values is None:
            return None
        if len(values) > 1:
            raise HandshakeError(f"more than one {name} header", 400)
        return values[0]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order (empty list when absent)."""
        return list(self._index.get(name.lower(), ()))

    def tokens(self, name: str) -> list[str]:
        """The comma-separated elements of every ``name`` field, lowercased (RFC 9110 §5.6.1).

        Empty elements are skipped, as recipients must accept them.
        """
        out: list[str] = []
        for value in self._index.get(name.lower(), ()):
            for element in value.split(","):
                element = element.strip(" \t")
                if element:
                    out.append(element.lower())
        return out

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request head (RFC 9112 §3)."""

    method: str
    target: str
    version: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A parsed response head (RFC 9112 §4)."""

    version: str
    status: int
    reason: str
    headers: Headers


class HeadReader:
    """Buffers bytes until the empty line that ends a head; refuses heads over ``max_size``.

    ``feed(data)`` returns ``(head, rest)`` once the head is complete (``head`` without the
    final CRLF CRLF, ``rest`` the bytes after it) and None while more bytes are needed.
    """

    __slots__ = ("max_size", "_buf", "_scanned", "_done")

    def __init__(self, max_size: int = MAX_HEAD_SIZE) -> None:
        if max_size < 4:
            raise ValueError("max_size must be at least 4")
        self.max_size = max_size
        self._buf = bytearray()
        self._scanned = 0
        self._done = False

    def feed(self, data: bytes | bytearray | memoryview) -> tuple[bytes, bytes] | None:
        if self._done:
            raise RuntimeError("the head is already complete")
        buf = self._buf
        start = max(0, self._scanned - 3)
        # Never keep more than max_size bytes of head (plus, at most, one chunk of rest).
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        limit = self.max_size
        scan_to = len(buf) if end < 0 else end + 4
        if _BARE_LF.search(buf, max(0, start - 1), min(scan_to, limit)):
            raise HandshakeError("malformed HTTP head: lines must end with CRLF", 400)
        if end < 0:
            if len(buf) >= limit:
                raise HandshakeError(f"HTTP head larger than {limit} bytes", 431)
            self._scanned = len(buf)
            return None
        if end + 4 > limit:
            raise HandshakeError(f"HTTP head larger than {limit} bytes", 431)
        self._done = True
        head = bytes(buf[:end])
        rest = bytes(buf[end + 4 :])
        self._buf = bytearray()
        return head, rest


def _split_head(head: bytes, max_lines: int) -> tuple[bytes, Headers]:
    """The start line and the header fields of ``head`` (no final CRLF CRLF)."""
    lines = head.split(b"\r\n")
    if len(lines) - 1 > max_lines:
        raise HandshakeError(f"more than {max_lines} header lines", 431)
    start = lines[0]
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        if b"\r" in line:
            raise HandshakeError("malformed HTTP head: stray CR", 400)
        if line[:1] in (b" ", b"\t"):
            raise HandshakeError("obsolete line folding is not allowed (RFC 9112 §5.2)", 400)
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            raise HandshakeError(f"malformed header line {line[:64]!r}", 400)
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HandshakeError(f"invalid character in the {name.decode()} header", 400)
        items.append((name.decode("ascii"), value.decode("latin-1")))
    return start, Headers(items)


def parse_request_head(head: bytes, *, max_lines: int = MAX_HEADER_LINES) -> RequestHead:
    """Parse a request head; HandshakeError(400/431) when malformed or too long."""
    start, headers = _split_head(head, max_lines)
    parts = start.split(b" ")
    if (
        len(parts) != 3
        or _TOKEN.fullmatch(parts[0]) is None
        or _TARGET.fullmatch(parts[1]) is None
        or _VERSION.fullmatch(parts[2]) is None
    ):
        raise HandshakeError(f"malformed request line {start[:64]!r}", 400)
    method, target, version = (p.decode("ascii") for p in parts)
    return RequestHead(method, target, version, headers)


def parse_response_head(head: bytes, *, max_lines: int = MAX_HEADER_LINES) -> ResponseHead:
    """Parse a response head; HandshakeError(status 0) when malformed or too long."""
    try:
        start, headers = _split_head(head, max_lines)
    except HandshakeError as exc:
        raise HandshakeError(str(exc), 0) from None
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    version, _, rest = start.partition(b" ")
    status, sep, reason = rest.partition(b" ")
    if (
        not sep
        or _VERSION.fullmatch(version) is None
        or _STATUS.fullmatch(status) is None
        or _BAD_VALUE.search(reason)
    ):
        raise HandshakeError(f"malformed status line {start[:64]!r}", 0)
    return ResponseHead(version.decode("ascii"), int(status), reason.decode("latin-1"), headers)
