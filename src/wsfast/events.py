"""What a connection reports to the application: small frozen classes, one per kind.

A :class:`~wsfast.connection.ServerConnection` or :class:`~wsfast.connection.ClientConnection`
returns them from ``events()`` in the order things happened on the wire. Every connection
ends with exactly one :class:`ConnectionTerminated`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from ._http import Headers

__all__ = [
    "Event",
    "Request",
    "HttpRequest",
    "Accepted",
    "Rejected",
    "HandshakeFailed",
    "TextMessage",
    "TextBytes",
    "BinaryMessage",
    "Ping",
    "Pong",
    "CloseReceived",
    "ProtocolViolation",
    "ConnectionTerminated",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of all events."""


@dataclass(frozen=True, slots=True)
class Request(Event):
    """Server: a valid opening handshake (RFC 6455 §4.2.1) awaits ``accept()`` or ``reject()``.

    ``target`` is the request-target (path and query); ``subprotocols`` and ``extensions``
    (names) are what the client offered, in its order.
    """

    target: str
    host: str
    origin: str | None
    subprotocols: tuple[str, ...]
    extensions: tuple[str, ...]
    headers: Headers

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True, slots=True)
class HttpRequest(Event):
    """Server with ``plain_http=True``: a GET request that asks for no WebSocket upgrade (no
    ``Upgrade: websocket``), e.g. a browser loading a page from the WebSocket port.

    Answer it with ``respond()``, which sends the response and closes the connection.
    ``target`` is the request-target (path and query).
    """

    target: str
    headers: Headers

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True, slots=True)
class Accepted(Event):
    """Client: the server answered 101 and the connection is OPEN (RFC 6455 §4.1)."""

    subprotocol: str | None
    extensions: tuple[str, ...]
    headers: Headers


@dataclass(frozen=True, slots=True)
class Rejected(Event):
    """Client: the server refused the upgrade with a non-101 response (at most
    :data:`~wsfast.handshake.MAX_REJECT_BODY` bytes of its body are kept)."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class HandshakeFailed(Event):
    """The opening handshake broke the rules and the connection is closed.

    Server: the request was refused with ``status`` (400, 403, 426, 431). Client: the
    server's response (status ``status``; 0 if unreadable) failed a check of RFC 6455 §4.1.
    """

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class TextMessage(Event):
    """A complete text message (RFC 6455 §5.6)."""

    data: str


@dataclass(frozen=True, slots=True)
class TextBytes(Event):
    """A complete text message left as UTF-8 bytes (``decode_text=False``); it has been
    validated exactly like a :class:`TextMessage`."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BinaryMessage(Event):
    """A complete binary message (RFC 6455 §5.6)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping(Event):
    """A ping (RFC 6455 §5.5.2); answered automatically unless ``auto_pong=False``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """A pong (RFC 6455 §5.5.3), solicited or not."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived(Event):
    """The peer sent a valid close frame (RFC 6455 §5.5.1); 1005 when it carried no code.

    The connection has already answered it (or it answered ours).
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation(Event):
    """The peer broke RFC 6455; we failed the connection (§7.1.7) with close code ``code``
    (1002, 1007 or 1009) and ``message`` says what was wrong. No data events follow."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """The connection is CLOSED: nothing more will be sent or delivered. Always the last event.

    ``code`` and ``reason`` are the peer's close frame's (RFC 6455 §7.1.5, §7.1.6) if one
    arrived; else, if we failed the connection, the code we sent and what was wrong; else
    1006 (closed abnormally: no close frame, e.g. EOF or a refused handshake).

    Named ``ConnectionClosed`` before 0.2; that name is kept as a deprecated alias here and in
    :mod:`wsfast`, because :class:`wsfast.asyncio.ConnectionClosed` is the asyncio exception.
    """

    code: int
    reason: str


def deprecated_alias(module: str, name: str) -> Any:
    """The object a deprecated module-level name stands for, with a DeprecationWarning."""
    if name == "ConnectionClosed":
        warnings.warn(
            f"{module}.ConnectionClosed is deprecated: the event is ConnectionTerminated "
            "(wsfast.asyncio.ConnectionClosed is the asyncio exception)",
            DeprecationWarning,
            stacklevel=3,
        )
        return ConnectionTerminated
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return deprecated_alias(__name__, name)
