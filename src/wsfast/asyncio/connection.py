"""The asyncio shell around a sans-I/O connection: one :class:`WebSocket` per TCP connection.

It is an :class:`asyncio.BufferedProtocol` (no streams): each read feeds the connection, its
events fill a bounded message queue, and what it has to send is written at once. It adds only
what needs a clock or a transport: backpressure both ways, keepalive pings, and timeouts for
closing. The protocol rules all live in :mod:`wsfast.connection`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..connection import Connection, State
from ..events import (
    Accepted,
    BinaryMessage,
    ConnectionTerminated,
    HandshakeFailed,
    Pong,
    ProtocolViolation,
    Rejected,
    Request,
    TextBytes,
    TextMessage,
)
from .exceptions import ConnectionClosed as ConnectionClosedException
from .exceptions import ConnectionClosedOK, InvalidHandshake

__all__ = ["WebSocket", "Message"]

logger = logging.getLogger("wsfast")

Message = str | bytes
"""A received message: ``str`` for text (``bytes`` when ``decode_text=False``), ``bytes``
for binary."""

OnMessage = Callable[["WebSocket", Message], None]
"""``on_message(ws, message)``: called for each message instead of queuing it for ``recv()``."""

_OPEN = State.OPEN
_CLOSED = State.CLOSED
_CONNECTING = State.CONNECTING
_CLOSING = State.CLOSING

_READ_SIZE = 256 * 1024
_BIG_WRITE = 64 * 1024
_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's receive buffer, shared by its connections.

    The transport reads into it and ``receive_data`` consumes it (copying what it keeps)
    before the loop reads again, so one buffer per thread serves every connection: no 256 KiB
    allocation per read (asyncio's default) and nothing per idle connection.
    """
    view: memoryview | None = getattr(_read_buffers, "view", None)
    if view is None:
        view = _read_buffers.view = memoryview(bytearray(_READ_SIZE))
    return view


class WebSocket(asyncio.BufferedProtocol):
    """One WebSocket connection: ``recv()``, ``send()``, ``async for``, ``ping()``, ``close()``.

    Built by :func:`wsfast.asyncio.serve` (for each client) and :func:`wsfast.asyncio.connect`.

    - Reading pauses while ``max_queue`` received messages wait for ``recv()``. Once
      ``close()`` has sent the close frame, reading goes on to the peer's, and messages that
      find the queue full are dropped.
    - ``send()`` waits while the transport's write buffer is above ``write_limit`` bytes.
    - Every ``ping_interval`` seconds a ping goes out; no pong within ``ping_timeout``
      closes the connection with 1011. None disables keepalive.
    - ``close()`` waits at most ``close_timeout`` seconds for the closing handshake and the
      end of TCP, then drops the transport.
    - With ``on_message``, each message is handed to ``on_message(ws, message)`` as soon as it
      is read, in the loop's own callback (no queue, no task switch); answer with
      :meth:`send_nowait`. The fastest way to serve many small messages.
    """

    __slots__ = (
        "_conn",
        "_loop",
        "_rbuf",
        "_on_message",
        "_dispatching",
        "_transport",
        "_messages",
        "_max_queue",
        "_reading_paused",
        "_backlog_step",
        "_waiter",
        "_write_limit",
        "_writing_paused",
        "_drain_waiter",
        "_pings",
        "_ping_interval",
        "_ping_timeout",
        "_close_timeout",
        "_keepalive_handle",
        "_ping_deadline",
        "_closer_handle",
        "_closed",
        "_close_exc",
        "_violation",
    )

    def __init__(
        self,
        conn: Connection,
        *,
        max_queue: int = 16,
        write_limit: int = 64 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        on_message: OnMessage | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._rbuf = _read_buffer()
        self._on_message = on_message
        self._dispatching = False  # inside _process: writes wait for its one flush
        self._transport: asyncio.Transport | None = None
        self._messages: deque[Message] = deque()
        self._max_queue = max_queue
        self._reading_paused = False
        self._backlog_step: asyncio.Handle | None = None  # see _process
        self._waiter: asyncio.Future[None] | None = None
        self._write_limit = write_limit
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._closer_handle: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_exc: ConnectionClosedException | None = None
        self._violation: str | None = None

    # --- what the application sees ---------------------------------------------------------

    @property
    def state(self) -> State:
        return self._conn.state

    @property
    def subprotocol(self) -> str | None:
        return self._conn.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006 if it ended without one)."""
        return None if self._close_exc is None else self._close_exc.code

    @property
    def close_reason(self) -> str | None:
        return None if self._close_exc is None else self._close_exc.reason

    @property
    def remote_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("sockname")

    async def recv(self) -> Message:
        """The next message; raises ConnectionClosed (OK or Error) once none can come."""
        while True:
            messages = self._messages
            if messages:
                message = messages.popleft()
                if self._reading_paused and len(messages) <= self._max_queue // 2:
                    self._resume_reading()
                return message
            if self._close_exc is not None:
                raise self._close_exc
            if self._conn.failing:
                # The messages before the peer's bad frame are answered: now fail.
                self._conn.fail()
                self._process()
                continue
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        """Messages until the connection closes: cleanly, the loop ends; otherwise
        ConnectionClosedError is raised."""
        messages = self._messages
        if messages and not self._reading_paused:
            return messages.popleft()
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send one text (``str``) or binary (bytes-like) message."""
        if self._conn.state is not _OPEN:
            await self._raise_closed()
        self._write_message(message)
        if self._writing_paused:
            await self._drain()

    def send_nowait(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send a message without waiting for the write buffer to drain (for ``on_message``
        callbacks); raises ConnectionClosed if the connection is not open."""
        if self._conn.state is not _OPEN:
            raise self._close_exc or ConnectionClosedException(1006, "the connection is closing")
        self._write_message(message)

    def _write_message(self, message: str | bytes | bytearray | memoryview) -> None:
        if type(message) is str:
            self._conn.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._conn.send_binary(message)
        else:
            raise TypeError(f"a message is str or bytes-like, not {type(message).__name__}")
        if not self._dispatching:
            self._flush()

    async def ping(self, data: bytes | None = None) -> float:
        """Send a ping and wait for its pong; returns the round-trip time in seconds.

        ``data`` (at most 125 bytes) defaults to 4 random bytes.
        """
        conn = self._conn
        if conn.state is not _OPEN:
            await self._raise_closed()
        payload = os.urandom(4) if data is None else bytes(data)
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        waiter: asyncio.Future[float] = self._loop.create_future()
        conn.send_ping(payload)
        self._pings[payload] = (waiter, self._loop.time())
        self._flush()
        try:
            return await waiter
        finally:
            if not waiter.done() or waiter.cancelled():
                self._pings.pop(payload, None)  # cancelled: forget it

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or join) the closing handshake and wait until the connection is closed."""
        conn = self._conn
        if conn.state is _OPEN:
            conn.close(code, reason)
            self._flush()
        elif conn.state is _CONNECTING and self._transport is not None:
            self._transport.abort()
        if self._reading_paused:
            # The peer's close frame waits behind unread messages: read on to reach it.
            self._resume_reading()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed, dropping it after ``close_timeout``."""
        if self._closed.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), self._close_timeout)
        except asyncio.TimeoutError:
            if self._transport is not None:
                self._transport.abort()
            await asyncio.shield(self._closed)

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any loop's stream transport (uvloop's do not subclass asyncio.Transport).
        self._transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=self._write_limit)  # type: ignore[attr-defined]
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rbuf

    def buffer_updated(self, nbytes: int) -> None:
        self._conn.receive_data(self._rbuf[:nbytes])
        self._process()

    def eof_received(self) -> bool | None:
        self._conn.receive_eof()
        self._process()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self._conn
        if conn.state is not _CLOSED:
            conn.receive_eof()
            self._process()
        self._cancel_timers()
        if self._close_exc is None:  # pragma: no cover - receive_eof always ends with CLOSED
            self._on_closed(1006, "")
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    # --- internals -------------------------------------------------------------------------

    def _process(self) -> None:
        """Hand the connection's new events on, then write what it has to send."""
        conn = self._conn
        self._dispatching = True
        try:
            while True:
                self._dispatch(conn.events())
                # A protocol violation waits (defer_failure) until the messages that came
                # before the bad frame have been handed over: at once for callbacks, at the
                # next recv() that finds the queue empty otherwise (bounded by close_timeout).
                if conn.failing and (self._on_message is not None or not self._messages):
                    conn.fail()
                    continue
                break
        finally:
            self._dispatching = False
        self._flush()  # one write for everything the events produced, replies included
        if conn.backlogged:
            # Frames read but not yet inflated (see Connection.backlogged): reading stops,
            # and they are inflated one receive_data call (about 1 MiB) per loop iteration
            # while the queue has room, so that a compressed burst neither fills memory nor
            # holds the loop.
            self._set_reading(False)
            if self._backlog_step is None:
                self._backlog_step = self._loop.call_soon(self._inflate_backlog)

    def _inflate_backlog(self) -> None:
        self._backlog_step = None
        if self._reading_paused:
            return  # the queue is full: recv() goes on with it (see _resume_reading)
        conn = self._conn
        if conn.backlogged:
            conn.receive_data(b"")
            self._process()  # (which schedules the next step if more is left)
        if not conn.backlogged and not self._reading_paused:
            self._set_reading(True)

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage or kind is TextBytes:
                if self._on_message is None:
                    self._push(event.data)
                else:
                    self._deliver(event.data)
            elif kind is Pong:
                self._on_pong(event.payload)
            elif kind is ConnectionTerminated:
                self._on_closed(event.code, event.reason)
            elif kind is ProtocolViolation:
                self._violation = event.message
                logger.debug("failing the connection: %s", self._violation)
                if self._closer_handle is None:
                    self._closer_handle = self._loop.call_later(
                        self._close_timeout, self._fail_now
                    )
            elif kind is Request:
                self._on_request(event)
            elif kind is Accepted:
                self._on_accepted(event)
            elif kind is Rejected or kind is HandshakeFailed:
                self._on_refused(event)
            else:
                self._on_other_event(event)

    def _flush(self) -> None:
        conn = self._conn
        transport = self._transport
        if transport is None:
            return
        chunks = conn.chunks_to_send()
        if len(chunks) == 1 and len(chunks[0]) < _BIG_WRITE:
            transport.write(chunks[0])
        elif chunks:
            # Small pieces are joined into one write; a large payload goes as a view, so that a
            # transport that cannot send it at once keeps one copy of the rest (bytes slicing
            # would make another).
            small: list[bytes] = []
            for chunk in chunks:
                if len(chunk) < _BIG_WRITE:
                    small.append(chunk)
                    continue
                if small:
                    transport.write(b"".join(small))
                    small = []
                transport.write(memoryview(chunk))
            if small:
                transport.write(b"".join(small))
        if conn.should_close_transport and not transport.is_closing():
            self._close_transport()

    def _close_transport(self) -> None:
        """Close the transport once its buffer is flushed, and drop it after close_timeout if
        the peer never reads that far."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        if self._closer_handle is not None:
            self._closer_handle.cancel()
        self._closer_handle = self._loop.call_later(self._close_timeout, transport.abort)

    def _push(self, message: Message) -> None:
        messages = self._messages
        if len(messages) >= self._max_queue and self._conn.state is _CLOSING:
            # Our close frame is out: reading goes on to the peer's, and what the queue has
            # no room for is dropped (a peer could otherwise fill memory until close_timeout).
            return
        messages.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if (
            len(messages) >= self._max_queue
            and not self._reading_paused
            and self._conn.state is _OPEN  # once closing, read on to the close frame and EOF
        ):
            self._reading_paused = True
            self._set_reading(False)

    def _deliver(self, message: Message) -> None:
        assert self._on_message is not None
        try:
            self._on_message(self, message)
        except ConnectionClosedException:
            pass
        except Exception:
            logger.exception("on_message failed")
            if self._conn.state is _OPEN:
                self._conn.close(1011, "internal error")

    def _resume_reading(self) -> None:
        self._reading_paused = False
        if not self._conn.backlogged:
            self._set_reading(True)
        elif self._backlog_step is None:
            self._backlog_step = self._loop.call_soon(self._inflate_backlog)

    def _set_reading(self, on: bool) -> None:
        """Pause or resume reading from the transport (both are idempotent)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if on:
                transport.resume_reading()
            else:
                transport.pause_reading()

    async def _drain(self) -> None:
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self._loop.create_future()
        # Shielded: cancelling one waiting send() must not cancel the others.
        await asyncio.shield(self._drain_waiter)
        if self._close_exc is not None and self._conn.state is _CLOSED:
            raise self._close_exc

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _raise_closed(self) -> None:
        """Sending is over: wait for the closing handshake to end, then raise how it ended."""
        if self._close_exc is None:
            await self.wait_closed()
        assert self._close_exc is not None
        raise self._close_exc

    def _on_pong(self, payload: bytes) -> None:
        deadline = self._ping_deadline
        if deadline is not None:
            deadline.cancel()
            self._ping_deadline = None
        pings = self._pings
        if payload not in pings:
            return  # unsolicited (RFC 6455 §5.5.3)
        now = self._loop.time()
        # A pong answers its ping and every earlier one (§5.5.3: peers may skip some).
        for key in list(pings):
            waiter, sent = pings.pop(key)
            if not waiter.done():
                waiter.set_result(now - sent)
            if key == payload:
                break

    def _on_closed(self, code: int, reason: str) -> None:
        self._close_exc = ConnectionClosedException.for_close(code, reason)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        for waiter_, _sent in self._pings.values():
            if not waiter_.done():
                waiter_.set_exception(self._close_exc)
        self._pings.clear()
        self._cancel_keepalive()
        if self._closer_handle is not None:
            self._closer_handle.cancel()
            self._closer_handle = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            # A client waits for the server to close TCP first (RFC 6455 §7.1.1), not forever.
            self._closer_handle = self._loop.call_later(self._close_timeout, transport.abort)

    def _fail_now(self) -> None:
        """The application did not come back for more within close_timeout: fail now."""
        self._closer_handle = None
        if self._conn.failing:
            self._conn.fail()
            self._process()

    def _start_keepalive(self) -> None:
        if self._ping_interval is not None:
            self._keepalive_handle = self._loop.call_later(self._ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        conn = self._conn
        if conn.state is not _OPEN:
            return
        conn.send_ping(os.urandom(4))
        self._flush()
        if self._ping_timeout is not None and self._ping_deadline is None:
            self._ping_deadline = self._loop.call_later(self._ping_timeout, self._ping_timed_out)
        self._start_keepalive()

    def _ping_timed_out(self) -> None:
        self._ping_deadline = None
        conn = self._conn
        logger.debug("no pong within %s s: closing the connection", self._ping_timeout)
        if conn.state is _OPEN:
            conn.close(1011, "keepalive ping timeout")
            self._flush()
        self._close_transport()

    def _cancel_keepalive(self) -> None:
        for name in ("_keepalive_handle", "_ping_deadline"):
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)

    def _cancel_timers(self) -> None:
        self._cancel_keepalive()
        for handle in (self._closer_handle, self._backlog_step):
            if handle is not None:
                handle.cancel()
        self._closer_handle = self._backlog_step = None

    # Hooks for the server and client sides.

    def _on_request(self, event: Request) -> None:
        raise InvalidHandshake("unexpected request event")

    def _on_accepted(self, event: Accepted) -> None:
        raise InvalidHandshake("unexpected handshake response")

    def _on_refused(self, event: Rejected | HandshakeFailed) -> None:
        pass

    def _on_other_event(self, event: Any) -> None:
        pass
