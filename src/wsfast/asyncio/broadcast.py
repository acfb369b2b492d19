"""``broadcast()``: one message to many connections, framed once, written without waiting.

Its reach into a connection is small and listed here: the sans-I/O connection's
:attr:`~wsfast.connection.Connection.broadcast_key` and
:meth:`~wsfast.connection.Connection.frame_message` (the framing itself), and of the
:class:`~wsfast.asyncio.WebSocket` its public ``writing_paused``, ``send_nowait()`` (the
connections framed one by one) and ``close()``, and internals with no public equivalent: its
sans-I/O connection, its transport (written to directly) and whether it is inside its own
read callback (then its pending replies go first, through ``send_nowait``).

With permessage-deflate, connections whose server side keeps no compression context share
one compressed frame per set of parameters (their ``broadcast_key``); those with context
takeover compress the message each on their own, through their own send path.

One reach into asyncio, for speed: on the default event loop's plain TCP transport, when
nothing waits in its buffer, the frame goes straight to the socket, which is exactly what
``transport.write()`` would do first (the rest, if the socket takes only part of it, and
every other case go through ``write()``); there, whether it is closing is read from its
``_closing``, which its ``is_closing()`` returns. With 10,000 connections and a 100-byte
message, the direct write saved 0.4-0.9 µs of the 1.4-2.1 µs CPU per connection that
``broadcast`` adds to the kernel's own send (6.6 µs) when every frame goes through
``write()``: a quarter to a half, depending on the run (``python bench/broadcast_race.py``,
rows "wsfast", "wsfast via write()" and "floor: socket.send").
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
from collections.abc import Iterable
from typing import Any, Literal

from ..connection import InvalidState, State
from .connection import WebSocket

__all__ = ["broadcast"]

_OPEN = State.OPEN
# asyncio's TCP transport on selector loops (None if a future Python renames it).
_PLAIN_TCP: Any = getattr(asyncio.selector_events, "_SelectorSocketTransport", None)

# The closing handshakes started for slow consumers (slow="close"), until they end.
_closing: dict[WebSocket, asyncio.Task[None]] = {}

SLOW_CLOSE_CODE = 1013
SLOW_CLOSE_REASON = "try again later"


def broadcast(
    connections: Iterable[WebSocket],
    message: str | bytes | bytearray | memoryview,
    *,
    slow: Literal["skip", "close"] = "skip",
) -> int:
    """Send ``message`` (text for ``str``, binary otherwise) to every open connection in
    ``connections`` without waiting; return how many were skipped.

    The message is framed once and the same bytes are written to each connection whose frames
    can be shared (every open server connection without extensions, and those whose
    extensions allow it); the others (clients, which mask each frame with a key of their own,
    or a compressor that keeps its context) are framed one by one.

    Skipped, and counted in the result: connections that are not open (still in the opening
    handshake, closing or closed) and slow consumers, whose transport's write buffer is above
    their ``write_limit`` (writing is paused). A slow consumer never gets more than that limit
    plus one message queued by ``broadcast``, so memory stays bounded however slowly it reads.
    With ``slow="close"`` a slow consumer is also closed with code 1013 (try again later):
    the closing handshake is bounded by its ``close_timeout``, and a client that reconnects
    starts afresh. With ``slow="skip"`` (the default) it stays open and misses the message.
    """
    if slow != "skip" and slow != "close":
        raise ValueError(f"slow must be 'skip' or 'close', not {slow!r}")
    if not isinstance(message, str):
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"a message is str or bytes-like, not {type(message).__name__}")
        if type(message) is not bytes:
            message = bytes(message)  # one copy, which a caller may not change under us
    frames: dict[tuple[Any, ...], bytes] = {}
    last_key: Any = frames  # no key is this object: the first connection looks its frame up
    frame = b""
    size = 0
    plain = _PLAIN_TCP
    skipped = 0
    for ws in connections:
        conn = ws._conn
        key = conn.broadcast_key
        if key is None and conn.state is not _OPEN:
            skipped += 1
            continue
        transport: Any = ws._transport
        direct = type(transport) is plain  # its is_closing() returns _closing
        if transport is None or (transport._closing if direct else transport.is_closing()):
            # Open, but its transport is going (e.g. a TLS peer ended while frames it sent
            # wait to be inflated): a write would only be dropped, and logged.
            skipped += 1
            continue
        if ws.writing_paused:
            skipped += 1
            if slow == "close":
                _close_slow(ws)
            continue
        if key is None or ws._dispatching:
            # Framed by this connection; inside its own read callback the connection's pending
            # replies go first, in the one write that ends the callback.
            try:
                ws.send_nowait(message)  # open: checked above
            except InvalidState:  # a fragmented message is being sent
                skipped += 1
            continue
        if key is not last_key:
            cached = frames.get(key)
            if cached is None:
                cached = frames[key] = conn.frame_message(message)
            frame, size, last_key = cached, len(cached), key
        if direct and not transport._buffer and not transport._conn_lost:
            try:
                sent = transport._sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # write() meets the error again and handles it as asyncio does
            if sent < size:
                transport.write(frame[sent:] if sent else frame)
        else:
            transport.write(frame)
    return skipped


def _close_slow(ws: WebSocket) -> None:
    if ws in _closing:
        return  # already closing; the task has not run yet
    task = ws._loop.create_task(ws.close(SLOW_CLOSE_CODE, SLOW_CLOSE_REASON))
    _closing[ws] = task
    task.add_done_callback(lambda _task: _closing.pop(ws, None))
