"""Exceptions of the asyncio layer."""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
]

OK_CLOSE_CODES = frozenset({1000, 1001, 1005})


class ConnectionClosed(Exception):
    """The connection is closed; ``code`` and ``reason`` say how (1006: no close frame)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason

    @classmethod
    def for_close(cls, code: int, reason: str) -> ConnectionClosed:
        """The OK or Error subclass that fits ``code``."""
        kind = ConnectionClosedOK if code in OK_CLOSE_CODES else ConnectionClosedError
        return kind(code, reason)


class ConnectionClosedOK(ConnectionClosed):
    """Closed cleanly (1000, 1001, or a close frame without a code): iteration just stops."""


class ConnectionClosedError(ConnectionClosed):
    """Closed by an error: a protocol violation, an abnormal closure (1006) or an error code."""


class InvalidHandshake(Exception):
    """The opening handshake failed: refused by the server (``status`` is its HTTP status,
    ``body`` its body) or broke RFC 6455 §4 (``status`` 0 if no valid response came)."""

    def __init__(self, message: str, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ConcurrencyError(RuntimeError):
    """Two coroutines read one connection at once: ``recv()`` (or ``async for``) was called
    while another call was waiting for a message. Read from one task."""
