# cython: binding=True, nonecheck=True
# (Compiled, its def methods are then Python functions, as in this build: asyncio and inspect
# see recv(), send()... as coroutine functions, e.g. code deciding whether to await ws.send.
# nonecheck: a C call on a typed attribute that is still None, e.g. _conn of a subclass whose
# __init__ skipped WebSocket.__init__, raises AttributeError, as in this build, not a crash.)
"""The asyncio shell around a sans-I/O connection: one :class:`WebSocket` per TCP connection.

This file is the one source of the shell; import it from :mod:`wsfast.asyncio.connection`,
which exports the compiled build when there is one. setup.py compiles a copy of this file
with Cython as ``wsfast.asyncio._websocket_c``; ``_websocket_c.pxd`` gives the C types of
:class:`_WebSocketCore` (its attributes and its internal methods, which become C calls). A
``cdef class`` cannot derive from :class:`asyncio.BufferedProtocol` (a Python class), so
:class:`_WebSocketCore` holds the state and the code, and :class:`WebSocket` adds the
protocol base (loops check ``isinstance(protocol, asyncio.BufferedProtocol)``) and nothing
else: its ``__slots__`` are empty, as those of asyncio's protocol classes are.

It is an :class:`asyncio.BufferedProtocol` (no streams): each read feeds the connection, its
events fill a bounded message queue (or go to an ``on_message`` callback), and what it has to
send is written at once. It adds only what needs a clock or a transport: backpressure both
ways, keepalive pings, and the timers of closing. The protocol rules all live in
:mod:`wsfast.connection`.

Timers, one per purpose, each None while it is not running:

- ``_keepalive_timer``: the next keepalive ping (``ping_interval``);
- ``_pong_timer``: the deadline for a pong (``ping_timeout``); then closing with 1011;
- ``_fail_timer``: a protocol violation found by the connection waits at most
  ``close_timeout`` for the application to take the messages that came before the bad
  frame (``defer_failure``), then fails the connection;
- ``_closing_timer``: once closing began (our close frame sent, or the connection CLOSED
  with TCP still open: the server flushing, the client waiting for the server's EOF), the
  transport is dropped ``close_timeout`` later, whatever the callers do (cancel ``close()``,
  wrap it in ``wait_for``...). ``close()`` and ``wait_closed()`` only wait. It also bounds
  the handing over of frames held back when the peer ended the transport (connection_lost).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import operator
import os
import sys
import threading
import types
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from ..connection import Connection, InvalidState, State
from ..events import (
    Accepted,
    BinaryMessage,
    ConnectionTerminated,
    Event,
    HandshakeFailed,
    Ping,
    Pong,
    ProtocolViolation,
    Rejected,
    Request,
    TextBytes,
    TextMessage,
)
from ..exceptions import ProtocolError
from .exceptions import ConcurrencyError, ConnectionClosedOK, InvalidHandshake
from .exceptions import ConnectionClosed as ConnectionClosedException

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
_BIG_WRITE = 256 * 1024  # a payload at least this large is written on its own (see _flush)
_read_buffers = threading.local()
_ids = itertools.count(1)


def _task_getter() -> Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]:
    """What answers ``asyncio.current_task(loop)`` for a given loop, the cheapest way.

    From Python 3.12 on (and wherever asyncio lacks its C part) that is
    ``asyncio.current_task`` itself. On 3.10 and 3.11 it is a Python function (some 1,000
    instructions a call, on every read that wakes a recv()) whose body, for a loop given, is
    ``_current_tasks.get(loop)``: a dict that the C Task writes to as it enters and leaves
    each step. There the bound ``get`` of that dict is the answer, once it is shown to be the
    very dict the function reads and the C ``_enter_task`` and ``_leave_task`` write (a task
    entered for a key of our own is seen, then gone); else ``asyncio.current_task``.
    """
    current_task = asyncio.current_task
    if sys.version_info >= (3, 12) or type(current_task) is not types.FunctionType:
        return current_task
    try:
        import _asyncio
    except ImportError:  # asyncio without its C part
        return current_task
    c_part: Any = _asyncio
    tasks = getattr(c_part, "_current_tasks", None)
    if (
        current_task.__globals__.get("_current_tasks") is not tasks
        or vars(asyncio.tasks).get("_current_tasks") is not tasks
        or tasks is None
    ):
        return current_task
    key, task = object(), object()
    c_part._enter_task(key, task)
    entered = tasks.get(key)  # cannot raise: a fresh key, hashed by its id
    c_part._leave_task(key, task)
    if entered is not task or key in tasks:
        return current_task
    getter: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = tasks.get
    return getter


_current_task = _task_getter()
_Handle = asyncio.Handle
_NOT_CANCELLED: Any = object()  # _Wait's cancel message until it is cancelled (None is a message)


def _read_buffer() -> memoryview:
    """This thread's receive buffer, shared by its connections.

    It relies on a property of every asyncio loop (the standard ones and uvloop): for one
    read, the transport calls its protocol's ``get_buffer()``, fills the buffer, then calls
    ``buffer_updated()`` at once, with no other callback in between; and ``receive_data``
    consumes the bytes (copying what it keeps) before returning. So one buffer per thread
    serves every connection of that thread's loop: no 256 KiB allocation per read (asyncio's
    default) and nothing per idle connection. tests/test_asyncio_faults.py checks the
    property on asyncio and uvloop.
    """
    view: memoryview | None = getattr(_read_buffers, "view", None)
    if view is None:
        view = _read_buffers.view = memoryview(bytearray(_READ_SIZE))
    return view


def check_max_queue(max_queue: int) -> int:
    """``max_queue`` as an int >= 1 (serve() and connect() check it when called, each
    WebSocket again)."""
    # An int in both builds (the compiled one stores a C integer: 1e3 would be refused).
    max_queue = operator.index(max_queue)
    if max_queue < 1:
        raise ValueError("max_queue must be >= 1")
    return max_queue


def check_write_limit(write_limit: int) -> None:
    """Refuse a ``write_limit`` that connection_made() would pass to the transport and see
    refused there, once the connection is in use (serve() and connect() check it when called,
    each WebSocket again)."""
    if not write_limit >= 0:  # a str raises TypeError; NaN is not >= 0
        raise ValueError(f"write_limit must be >= 0, not {write_limit!r}")


def _cancel(timer: asyncio.Handle | None) -> None:
    if timer is not None:
        timer.cancel()


class _Wait:
    """What a waiting ``recv()`` awaits: a future in the protocol :class:`asyncio.Task`
    accepts (``_asyncio_future_blocking``, ``get_loop()``, ``add_done_callback()``...), made
    for one reason: a message that a read delivers can resume the waiting task at the end of
    that read's ``buffer_updated()``, instead of in the loop's next iteration after another
    poll (see :meth:`_WebSocketCore.buffer_updated`). When other callbacks are ready, it
    resumes after them, with the recv()s other reads completed meanwhile, through one
    callback for them all (see :func:`_resume_later`). Otherwise (cancelled, completed from a
    timer, when the read raises) it behaves as :class:`asyncio.Future` does: its callbacks go
    through ``call_soon``.

    It is its own iterator (``__await__`` returns it; ``__next__`` does what asyncio's
    future iterator does), and it keeps its first callback, the waiting task's, in two slots:
    a wait allocates no generator, list or tuple."""

    __slots__ = (
        "_loop",
        "_done",
        "_cancel_message",
        "_fn",
        "_context",
        "_more",
        "_asyncio_future_blocking",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done = False
        self._cancel_message: Any = _NOT_CANCELLED
        self._fn: Callable[[Any], object] | None = None  # the first callback, and its context
        self._context: Any = None
        self._more: list[tuple[Callable[[Any], object], Any]] | None = None  # the others
        self._asyncio_future_blocking: Any = False

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancel_message is not _NOT_CANCELLED

    def result(self) -> None:
        if not self._done:
            raise asyncio.InvalidStateError("Result is not ready.")
        message = self._cancel_message
        if message is not _NOT_CANCELLED:
            raise asyncio.CancelledError() if message is None else asyncio.CancelledError(message)

    def exception(self) -> BaseException | None:
        self.result()
        return None

    def add_done_callback(self, fn: Callable[[Any], object], *, context: Any = None) -> None:
        if context is None:
            context = contextvars.copy_context()
        if self._done:
            self._loop.call_soon(fn, self, context=context)
        elif self._fn is None:
            self._fn = fn
            self._context = context
        elif self._more is None:
            self._more = [(fn, context)]
        else:
            self._more.append((fn, context))

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        if self._done:  # its callbacks are as good as scheduled (see _wake): none to remove
            return 0
        entries = self._take_callbacks()
        kept = [entry for entry in entries if entry[0] != fn]
        for kept_fn, context in kept:
            self.add_done_callback(kept_fn, context=context)
        return len(entries) - len(kept)

    def cancel(self, msg: Any = None) -> bool:
        if self._done:
            return False
        self._cancel_message = msg
        self._finish(False)
        return True

    def set_result(self, result: None) -> None:
        """Complete it; its callbacks go through ``call_soon``."""
        if self._done:
            raise asyncio.InvalidStateError("invalid state")
        self._finish(False)

    def _take_callbacks(self) -> list[tuple[Callable[[Any], object], Any]]:
        """Its callbacks with their contexts, in the order they were added; none is left."""
        fn = self._fn
        if fn is None:
            return []
        entries = [(fn, self._context)]
        if self._more is not None:
            entries += self._more
        self._fn = self._context = self._more = None
        return entries

    def _finish(self, now: bool) -> None:
        """Mark it done and run its callbacks: ``now`` here, else through ``call_soon``
        (``now`` only where no task is running, since a task cannot start inside another)."""
        self._done = True
        if self._more is None:  # the usual case: the waiting task's callback, or none
            fn = self._fn
            if fn is not None:
                context = self._context
                self._fn = self._context = None
                self._run_callback(fn, context, now)
            return
        entries = self._take_callbacks()
        for i in range(len(entries)):
            fn, context = entries[i]
            try:
                self._run_callback(fn, context, now)
            except BaseException:
                # One leaves the loop (a KeyboardInterrupt, say): the others run in a later
                # pass, as they would had each gone through call_soon.
                for fn, context in entries[i + 1 :]:
                    self._loop.call_soon(fn, self, context=context)
                raise

    def _run_callback(self, fn: Callable[[Any], object], context: Any, now: bool) -> None:
        if not now:
            self._loop.call_soon(fn, self, context=context)
            return
        try:
            context.run(fn, self)
        except Exception as exc:  # reported, as the loop does for its callbacks
            self._loop.call_exception_handler(
                {"message": f"Exception in callback {fn!r}", "exception": exc, "future": self}
            )

    def __await__(self) -> Any:  # an iterator, not the Generator typing expects
        return self

    def __next__(self) -> _Wait:
        # asyncio's future iterator: yield the future once to the task, which blocks on it;
        # once done, end with its result (None, or CancelledError raised).
        if not self._done:
            if self._asyncio_future_blocking:
                raise RuntimeError("await wasn't used with future")
            self._asyncio_future_blocking = True
            return self
        self.result()
        raise StopIteration

    def send(self, value: Any) -> _Wait:
        # A value sent in is ignored, as asyncio's future iterator does (a Task sends None,
        # which goes to __next__ directly).
        return self.__next__()


def _resume_later(ready: deque[Any], waiter: _Wait) -> None:
    """Have ``waiter``'s callbacks (its task's wake-up) run after the callbacks already in the
    loop's ready queue (``ready``, asyncio's ``loop._ready``): with the waiters of the reads
    just before, when the queue's last callback is their batch, else in a batch of its own
    (through call_soon, one callback per waiter, in debug mode). With many connections, one
    pass of the loop then resumes all the recv()s its reads completed with one callback, not
    one each; and a batch only grows while it is the queue's last callback, so callbacks
    still run in the order they were scheduled."""
    if ready:
        last = ready[-1]
        if type(last) is _Handle and getattr(last, "_callback", None) is _resume_batch:
            last._args[0].append(waiter)
            return
    loop = waiter._loop
    if loop.get_debug():
        # One callback per task, so that debug mode's slow-callback reports name the task
        # (and time it alone): no batch is started while debug mode is on.
        waiter._finish(False)
        return
    loop.call_soon(_resume_batch, [waiter])


def _resume_batch(woken: list[_Wait]) -> None:
    """Run the callbacks of the waiters in ``woken``, in order (see _resume_later). If one
    raises an exception that leaves the loop (a KeyboardInterrupt, say), those after it run
    in a later pass."""
    for i in range(len(woken)):
        waiter = woken[i]
        try:
            waiter._finish(True)
        except BaseException:
            if i + 1 < len(woken):
                waiter._loop.call_soon(_resume_batch, woken[i + 1 :])
            raise


class _WebSocketCore:
    """The state and the code of :class:`WebSocket` (see the module's docstring)."""

    __slots__ = (
        "_conn",
        "_loop",
        "_rbuf",
        "_on_message",
        "_dispatching",
        "_transport",
        "_messages",
        "_max_queue",
        "_queue_full",
        "_reading_paused",
        "_backlog_step",
        "_peer_ended",
        "_lost",
        "_waiter",
        "_reading",
        "_woken",
        "_loop_ready",
        "_write_limit",
        "_writing_paused",
        "_drain_waiter",
        "_latest_ping",
        "_pings",
        "_ping_interval",
        "_ping_timeout",
        "_close_timeout",
        "_keepalive_timer",
        "_pong_timer",
        "_fail_timer",
        "_closing_timer",
        "_closed",
        "_close_code",
        "_close_reason",
        "_close_cause",
        "id",
    )

    # Stop reading while writing is paused (so that TCP pushes back on a peer that sends but
    # does not read). Servers do; a client keeps reading: if both peers stopped reading while
    # their own sends wait, full-duplex traffic between them could deadlock.
    _pause_reading_with_writing: ClassVar[bool] = False

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
        if not isinstance(conn, Connection):
            # The compiled build types _conn as the compiled Connection (C calls on the read
            # path), which wsfast.connection exports whenever this build is in use.
            cls = type(conn)
            raise TypeError(
                "conn must be a wsfast.connection.Connection, "
                f"not {cls.__module__}.{cls.__qualname__}"
            )
        max_queue = check_max_queue(max_queue)
        check_write_limit(write_limit)
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._rbuf = _read_buffer()
        self._on_message = on_message
        self._dispatching = False  # inside _pump: writes wait for its one flush
        self._transport: asyncio.Transport | None = None
        self._messages: deque[Message] = deque()
        self._max_queue = max_queue
        self._queue_full = False  # max_queue messages wait (until half of them are taken)
        self._reading_paused = False  # what we asked of the transport
        self._backlog_step: asyncio.Handle | None = None  # see _pump
        # See connection_lost: the peer ended the transport with frames still held back
        # (_peer_ended); the transport is gone while they are handed over (_lost).
        self._peer_ended = False
        self._lost = False
        self._waiter: _Wait | None = None
        self._reading = False  # inside buffer_updated (see _wake)
        self._woken: _Wait | None = None  # the waiter that read completed (see _wake)
        # The loop's queue of callbacks ready to run, where the loop is asyncio's own (a
        # private attribute, read only; None elsewhere, e.g. uvloop). A waiting recv() is
        # resumed inside buffer_updated only when that queue is empty: when other reads are
        # still to be handled in this pass of the loop, it resumes after them, in one batch
        # with the others woken meanwhile (see _resume_later), which keeps the replies of
        # many connections together (one poll for all of them, not one each).
        ready = getattr(self._loop, "_ready", None)
        self._loop_ready: deque[Any] | None = ready if isinstance(ready, deque) else None
        self._write_limit = write_limit
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._latest_ping: bytes | None = None  # to answer once writing resumes
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._fail_timer: asyncio.TimerHandle | None = None
        self._closing_timer: asyncio.TimerHandle | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._close_code: int | None = None
        self._close_reason = ""
        self._close_cause: BaseException | None = None
        self.id = next(_ids)
        # Messages come from events() as their data alone (str or bytes), not as events: no
        # object per message (see _dispatch_events).
        conn._give_bare_messages()

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
        return self._close_code

    @property
    def close_reason(self) -> str | None:
        return None if self._close_code is None else self._close_reason

    @property
    def remote_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        return None if self._transport is None else self._transport.get_extra_info("sockname")

    @property
    def writing_paused(self) -> bool:
        """True while the transport's write buffer is above ``write_limit`` (until it drains
        to a quarter of it); see :meth:`drain`."""
        return self._writing_paused

    async def recv(self) -> Message:
        """The next message; raises ConnectionClosed (OK or Error) once none can come.

        One call at a time: a second call while one waits raises :class:`ConcurrencyError`.
        """
        while True:
            if self._messages:
                return self._take()
            waiter = self._message_waiter()
            if waiter is not None:
                try:
                    await waiter
                finally:
                    if self._waiter is waiter:
                        self._waiter = None

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        """Messages until the connection closes: cleanly, the loop ends; otherwise
        ConnectionClosedError is raised. (recv() without a coroutine of its own.)"""
        while True:
            if self._messages:
                return self._take()
            try:
                waiter = self._message_waiter()
            except ConnectionClosedOK:
                raise StopAsyncIteration from None
            if waiter is not None:
                try:
                    await waiter
                finally:
                    if self._waiter is waiter:
                        self._waiter = None

    def _take(self) -> Message:
        """The oldest queued message (there is one); reading resumes once half the queue
        is taken."""
        messages = self._messages
        message: Message = messages.popleft()
        if self._queue_full and len(messages) <= self._max_queue // 2:
            self._queue_full = False
            self._resume_reading_if_allowed()
        return message

    def _message_waiter(self) -> _Wait | None:
        """The queue is empty: the future that the next message (or the end) completes, which
        the caller awaits then sets ``_waiter`` back to None (unless another call took its
        place); None to look at the queue again at once. Raises how the connection closed,
        or ConcurrencyError if a recv() waits (one whose wait is cancelled no longer does:
        it only has to wake up to raise CancelledError)."""
        if self._close_code is not None:
            raise self._closed_error()
        if self._conn._is_failing():
            # The messages before the peer's bad frame are answered: now fail.
            self._conn.fail()
            self._pump()
            return None
        if self._waiter is not None and not self._waiter.cancelled():
            raise ConcurrencyError(
                "recv() is already waiting for the next message on this connection"
            )
        waiter = _Wait(self._loop)
        self._waiter = waiter
        return waiter

    async def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send one text (``str``) or binary (bytes-like) message."""
        if not self._conn._is_open():
            await self._raise_closed()
        self._write_message(message)
        if self._writing_paused:
            await self._drain()

    def send_nowait(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send a message without waiting for the write buffer to drain (for ``on_message``
        callbacks; see :attr:`writing_paused`); raises ConnectionClosed once the connection
        is closing, InvalidState before the opening handshake is complete."""
        if not self._conn._is_open():
            raise self._not_open_error()
        self._write_message(message)

    async def drain(self) -> None:
        """Wait until the write buffer has drained below the low-water mark (at once if
        writing is not paused); raises ConnectionClosed if the connection closes meanwhile.
        ``send()`` does this by itself; this is for :meth:`send_nowait` users."""
        if self._writing_paused:
            await self._drain()

    def _write_message(self, message: str | bytes | bytearray | memoryview) -> None:
        if type(message) is str:
            self._conn._send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._conn._send_binary(message)
        elif isinstance(message, str):  # a str subclass (a StrEnum member...): text too
            self._conn._send_text(message)
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
        """Start (or join) the closing handshake and wait until the connection is closed.

        Once our close frame is out, the connection ends within ``close_timeout`` seconds
        even if this call is cancelled or times out (the connection owns that timer).
        """
        conn = self._conn
        if conn.state is _OPEN:
            self._start_closing(code, reason)
        elif conn.state is _CONNECTING and self._transport is not None:
            self._transport.abort()
        # The peer's close frame may wait behind unread messages: read on to reach it.
        self._resume_reading()
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (its transport gone), however long it takes.

        Bounding a close is :meth:`close`'s job.
        """
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
        self._reading = True
        handled = False
        try:
            self._conn.receive_data(self._rbuf[:nbytes])
            self._pump()
            handled = True
        finally:
            self._reading = False
            woken = self._woken
            if woken is not None:
                # A recv() waits for what this read delivered: its task resumes now rather
                # than after another pass of the loop (a poll), when nothing else is ready to
                # run (see _loop_ready) and no task is running (one cannot start inside
                # another); never while an exception leaves the read (a KeyboardInterrupt,
                # say): the task's code would hold it up and see it as its own.
                # Otherwise, after a read that was handled on asyncio's loop, it resumes
                # after the callbacks already ready, along with the other recv()s woken
                # since (see _resume_later); else through call_soon, as an asyncio.Future
                # would.
                self._woken = None
                ready = self._loop_ready
                if not handled or ready is None:
                    woken._finish(False)
                elif not ready and _current_task(self._loop) is None:
                    woken._finish(True)
                else:
                    _resume_later(ready, woken)

    def eof_received(self) -> bool | None:
        if self._conn.backlogged:
            # A TLS transport reports the peer's close_notify in the same read as the data
            # before it, even with reading paused: the frames held back go first (see
            # connection_lost).
            self._peer_ended = True
        else:
            self._conn.receive_eof()
            self._pump()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        transport = self._transport
        if (
            exc is None
            and self._conn.backlogged
            # The peer ended: eof_received said so, or nothing on our side closed the
            # transport (Python 3.10's TLS transport ends the connection at the peer's
            # close_notify without calling eof_received; a transport that we closed or
            # aborted, and from 3.11 on every lost one, reports is_closing()).
            and (self._peer_ended or (transport is not None and not transport.is_closing()))
        ):
            # The peer's frames held back arrived before its end: they are handed over step
            # by step as usual (what they produce to send is dropped), then the connection
            # ends; within close_timeout, or without them, if the application does not take
            # them.
            self._lost = True
            self._writing_paused = False  # nothing is written any more
            self._wake_writer()
            self._start_closing_timer()
            if self._backlog_step is None:
                self._backlog_step = self._loop.call_soon(self._inflate_backlog)
            return
        self._connection_ended(exc)

    def _connection_ended(self, exc: Exception | None) -> None:
        """The transport is gone (see connection_lost): end the connection."""
        if exc is not None and self._close_cause is None:
            self._close_cause = exc
        conn = self._conn
        if conn.state is not _CLOSED:
            conn.receive_eof()
            self._pump()
        self._cancel_timers()
        if self._close_code is None:  # pragma: no cover - receive_eof always ends with CLOSED
            self._on_closed(1006, "")
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._pause_reading_with_writing and self._conn.state is _OPEN:
            self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._latest_ping is not None:
            # Not from here: the transport may call this in the middle of our own writes.
            self._loop.call_soon(self._answer_latest_ping)
        self._wake_writer()
        self._resume_reading_if_allowed()

    # --- internals -------------------------------------------------------------------------

    def _process(self) -> None:
        """Hand the connection's new events on, then write what it has to send (for the
        subclasses: inside, :meth:`_pump` is a C call in the compiled build)."""
        self._pump()

    def _dispatch(self, events: list[Any]) -> None:
        """Hand these events on (for the subclasses; see :meth:`_dispatch_events`)."""
        self._dispatch_events(events)

    def _pump(self) -> None:
        conn = self._conn
        self._dispatching = True
        try:
            while True:
                self._dispatch_events(conn.events())
                # A protocol violation waits (defer_failure) until the messages that came
                # before the bad frame have been handed over: at once for callbacks, at the
                # next recv() that finds the queue empty otherwise (bounded by _fail_timer).
                if conn._is_failing() and (self._on_message is not None or not self._messages):
                    conn.fail()
                    continue
                break
        finally:
            self._dispatching = False
        self._flush()  # one write for everything the events produced, replies included
        if conn._is_backlogged():
            # Frames read but not yet inflated (see Connection.backlogged): reading stops,
            # and they are inflated one receive_data call (about 1 MiB) per loop iteration
            # while reading is allowed, so that a compressed burst neither fills memory nor
            # holds the loop.
            self._pause_reading()
            if self._backlog_step is None:
                self._backlog_step = self._loop.call_soon(self._inflate_backlog)

    def _inflate_backlog(self) -> None:
        self._backlog_step = None
        if not self._may_read():
            return  # recv() or resume_writing() goes on with it (see _resume_reading)
        conn = self._conn
        if conn.backlogged:
            conn.receive_data(b"")
            self._pump()  # (which schedules the next step if more is left)
        if not conn.backlogged:
            if self._lost:
                self._connection_ended(None)  # the end that came after them
            else:
                self._resume_reading_if_allowed()

    def _dispatch_events(self, events: list[Any]) -> None:
        on_message = self._on_message
        for event in events:
            kind = type(event)
            if kind is bytes or kind is str:  # a message's data (see __init__)
                if on_message is None:
                    self._push(event)
                else:
                    self._deliver(event)
            elif kind is BinaryMessage or kind is TextMessage or kind is TextBytes:
                if on_message is None:
                    self._push(event.data)
                else:
                    self._deliver(event.data)
            elif kind is Ping:
                self._on_ping(event.payload)
            elif kind is Pong:
                self._on_pong(event.payload)
            elif kind is ConnectionTerminated:
                self._on_closed(event.code, event.reason)
            elif kind is ProtocolViolation:
                self._on_violation(event)
            elif kind is Request:
                self._on_request(event)
            elif kind is Accepted:
                self._on_accepted(event)
            elif kind is Rejected or kind is HandshakeFailed:
                self._on_refused(event)
            elif isinstance(event, Event):
                self._on_other_event(event)
            elif on_message is None:  # a message's data of another type, e.g. an extension's
                self._push(event)
            else:
                self._deliver(event)

    def _flush(self) -> None:
        conn = self._conn
        transport = self._transport
        if transport is None:
            return
        chunks = conn.chunks_to_send()
        if self._lost:
            return  # the transport is gone (see connection_lost)
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
        if conn._closes_transport() and not transport.is_closing():
            self._close_transport()

    def _close_transport(self) -> None:
        """Close the transport once its buffer is flushed; the closing timer drops it if the
        peer never reads that far."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        self._start_closing_timer()

    def _start_closing(self, code: int, reason: str) -> None:
        """Send our close frame (RFC 6455 §7.1.2) and start the closing timer."""
        self._conn.close(code, reason)
        self._start_closing_timer()
        if not self._dispatching:
            self._pump()

    def _start_closing_timer(self) -> None:
        if self._closing_timer is None and self._transport is not None:
            self._closing_timer = self._loop.call_later(self._close_timeout, self._closing_timeout)

    def _closing_timeout(self) -> None:
        self._closing_timer = None
        if self._lost:
            self._connection_ended(None)  # without the frames still held back
            return
        self._peer_ended = False  # the deadline is over for them too
        transport = self._transport
        if transport is not None:
            logger.debug(
                "connection %d: not closed within close_timeout (%s s): dropping it",
                self.id,
                self._close_timeout,
            )
            if self._close_cause is None:
                self._close_cause = TimeoutError(
                    f"the closing handshake took more than close_timeout ({self._close_timeout} s)"
                )
            transport.abort()

    def _push(self, message: Message) -> None:
        messages = self._messages
        if len(messages) >= self._max_queue and self._conn.state is _CLOSING:
            # Our close frame is out: reading goes on to the peer's, and what the queue has
            # no room for is dropped (a peer could otherwise fill memory until close_timeout).
            return
        messages.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter._done:
            self._wake(waiter)
        if (
            len(messages) >= self._max_queue
            and not self._queue_full
            and self._conn.state is _OPEN  # once closing, read on to the close frame and EOF
        ):
            self._queue_full = True
            self._pause_reading()

    def _wake(self, waiter: _Wait) -> None:
        """Complete recv()'s waiter. Inside buffer_updated, it is completed once the read is
        handled (the shell's state is whole again then), and its task may resume right there
        (see buffer_updated); elsewhere through call_soon."""
        if self._reading:
            waiter._done = True
            self._woken = waiter
        else:
            waiter.set_result(None)

    def _deliver(self, message: Message) -> None:
        assert self._on_message is not None
        try:
            self._on_message(self, message)  # type: ignore[arg-type]  # always a WebSocket
        except ConnectionClosedException:
            pass
        except Exception:
            logger.exception("connection %d: on_message failed", self.id)
            if self._conn.state is _OPEN:
                self._start_closing(1011, "internal error")

    def _pause_reading(self) -> None:
        if self._reading_paused:
            return
        transport = self._transport
        if transport is not None and not self._lost and not transport.is_closing():
            self._reading_paused = True
            transport.pause_reading()

    def _resume_reading(self) -> None:
        """Read again (frames waiting to be inflated first: see _inflate_backlog)."""
        if self._conn.backlogged:
            if self._backlog_step is None:
                self._backlog_step = self._loop.call_soon(self._inflate_backlog)
            return
        if not self._reading_paused:
            return
        self._reading_paused = False
        transport = self._transport
        # Once lost (see connection_lost), a transport may still say it is not closing
        # (Python 3.10's TLS transport), and then fail on resume_reading().
        if transport is not None and not self._lost and not transport.is_closing():
            transport.resume_reading()

    def _may_read(self) -> bool:
        """The queue has room and (servers) writing is not paused; once closing, always: we
        read on to the peer's close frame."""
        if self._conn.state is not _OPEN:
            return True
        return not (self._queue_full or (self._writing_paused and self._pause_reading_with_writing))

    def _resume_reading_if_allowed(self) -> None:
        """Read again if both the queue and (servers) the write buffer allow it."""
        if self._may_read():
            self._resume_reading()

    async def _drain(self) -> None:
        if not self._closed.done():  # the transport is gone: nothing will resume writing
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = self._loop.create_future()
            # Shielded: cancelling one waiting send() must not cancel the others.
            await asyncio.shield(self._drain_waiter)
        if self._close_code is not None and self._conn.state is _CLOSED:
            raise self._closed_error()

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _raise_closed(self) -> None:
        """Sending is over: wait for the closing handshake to end, then raise how it ended.
        Before the opening handshake is complete (e.g. from process_request), raise at once:
        waiting would wait for a handshake that waits for the caller."""
        if self._conn.state is _CONNECTING:
            raise self._not_open_error()
        if self._close_code is None:
            await self.wait_closed()  # bounded by the closing timer
        raise self._closed_error()

    def _not_open_error(self) -> Exception:
        """Why nothing can be sent now: the handshake is not complete, or the connection is
        closing or closed."""
        if self._conn.state is _CONNECTING:
            return InvalidState("cannot send before the opening handshake is complete")
        return self._closed_error()

    def _closed_error(self) -> ConnectionClosedException:
        """A new exception saying how the connection closed, chained to the cause (a
        protocol violation, a transport error, a timeout) if any. Never raise one object
        twice: each raise would add to its traceback and keep more frames alive."""
        code = self._close_code
        if code is None:
            error = ConnectionClosedException(1006, "the connection is closing")
        else:
            error = ConnectionClosedException.for_close(code, self._close_reason)
        error.__cause__ = self._close_cause  # as `raise error from cause` would
        return error

    def _on_ping(self, payload: bytes) -> None:
        if self._conn.state is not _OPEN:
            return
        if self._writing_paused:
            self._latest_ping = payload  # answer only the latest (RFC 6455 §5.5.3)
        else:
            self._conn.send_pong(payload)

    def _answer_latest_ping(self) -> None:
        payload = self._latest_ping
        self._latest_ping = None
        if payload is not None and not self._writing_paused and self._conn.state is _OPEN:
            self._conn.send_pong(payload)
            self._flush()
        elif payload is not None and self._writing_paused:
            self._latest_ping = payload  # paused again meanwhile: keep it

    def _on_pong(self, payload: bytes) -> None:
        timer = self._pong_timer
        if timer is not None:
            timer.cancel()
            self._pong_timer = None
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

    def _on_violation(self, event: ProtocolViolation) -> None:
        logger.debug("connection %d: failing the connection: %s", self.id, event.message)
        if self._close_cause is None:
            self._close_cause = ProtocolError(event.message, event.code)
        if self._fail_timer is None and self._conn.failing:
            self._fail_timer = self._loop.call_later(self._close_timeout, self._fail_now)

    def _fail_now(self) -> None:
        """The application did not come back for more within close_timeout: fail now."""
        self._fail_timer = None
        if self._conn.failing:
            self._conn.fail()
            self._pump()

    def _on_closed(self, code: int, reason: str) -> None:
        self._close_code = code
        self._close_reason = reason
        waiter = self._waiter
        if waiter is not None and not waiter._done:
            self._wake(waiter)
        for ping_waiter, _sent in self._pings.values():
            if not ping_waiter.done():
                ping_waiter.set_exception(self._closed_error())
        self._pings.clear()
        _cancel(self._keepalive_timer)
        _cancel(self._pong_timer)
        _cancel(self._fail_timer)
        self._keepalive_timer = self._pong_timer = self._fail_timer = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            # A client waits for the server to close TCP first (RFC 6455 §7.1.1), not forever;
            # a server closes it in _flush.
            self._start_closing_timer()

    def _start_keepalive(self) -> None:
        if self._ping_interval is not None:
            self._keepalive_timer = self._loop.call_later(self._ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        self._keepalive_timer = None
        conn = self._conn
        if conn.state is not _OPEN:
            return
        conn.send_ping(os.urandom(4))
        self._flush()
        if self._ping_timeout is not None and self._pong_timer is None:
            self._pong_timer = self._loop.call_later(self._ping_timeout, self._ping_timed_out)
        self._start_keepalive()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        timeout = self._ping_timeout
        logger.debug("connection %d: no pong within %s s: closing the connection", self.id, timeout)
        if self._close_cause is None:
            self._close_cause = TimeoutError(f"no pong within ping_timeout ({timeout} s)")
        if self._conn.state is _OPEN:
            self._start_closing(1011, "keepalive ping timeout")
        self._close_transport()

    def _cancel_timers(self) -> None:
        _cancel(self._keepalive_timer)
        _cancel(self._pong_timer)
        _cancel(self._fail_timer)
        _cancel(self._closing_timer)
        _cancel(self._backlog_step)
        self._keepalive_timer = self._pong_timer = self._fail_timer = None
        self._closing_timer = None
        self._backlog_step = None

    # Hooks for the server and client sides.

    def _on_request(self, event: Request) -> None:
        raise InvalidHandshake("unexpected request event")

    def _on_accepted(self, event: Accepted) -> None:
        raise InvalidHandshake("unexpected handshake response")

    def _on_refused(self, event: Rejected | HandshakeFailed) -> None:
        pass

    def _on_other_event(self, event: Any) -> None:
        pass


class WebSocket(_WebSocketCore, asyncio.BufferedProtocol):
    """One WebSocket connection: ``recv()``, ``send()``, ``async for``, ``ping()``, ``close()``.

    Built by :func:`wsfast.asyncio.serve` (for each client) and :func:`wsfast.asyncio.connect`.

    - Reading pauses while ``max_queue`` received messages wait for ``recv()``. Once
      ``close()`` has sent the close frame, reading goes on to the peer's, and messages that
      find the queue full are dropped.
    - ``send()`` waits while the transport's write buffer is above ``write_limit`` bytes
      (:attr:`writing_paused`; :meth:`drain` waits for it). A server also stops reading
      meanwhile, so TCP pushes back on a client that sends but does not read. While writing
      is paused only the latest ping is answered (RFC 6455 §5.5.3), once it resumes.
    - Every ``ping_interval`` seconds a ping goes out; no pong within ``ping_timeout``
      closes the connection with 1011. None disables keepalive.
    - Once our close frame is out, the connection ends within ``close_timeout`` seconds: the
      transport is dropped if the closing handshake or the end of TCP takes longer.
    - With ``on_message``, each message is handed to ``on_message(ws, message)`` as soon as it
      is read, in the loop's own callback (no queue, no task switch); answer with
      :meth:`send_nowait`. The fastest way to serve many small messages.

    ``id`` is a number for this connection, unique in the process; log lines carry it.

    It takes its connection over: from then on that connection's ``events()`` gives each
    message as its data alone (``str`` or ``bytes``), not as an event.
    """

    __slots__ = ()
