"""uvicorn's WebSocket protocol on wsfast's connection: ``--ws wsfast.uvicorn:WSFastProtocol``.

uvicorn's HTTP protocol parses the request head, sees ``Upgrade: websocket`` and hands the
transport to the class named by ``--ws`` (``uvicorn.run(app, ws=WSFastProtocol)`` works too),
feeding it the request head again. :class:`WSFastProtocol` behaves like uvicorn's own
websockets-sansio and wsproto protocols (the same constructor, ASGI messages, settings,
server state and log lines) and runs RFC 6455 in :class:`wsfast.ServerConnection`: the
compiled frame parser, masking and UTF-8 kernels, and wsfast's permessage-deflate.

Importing this module does not import uvicorn; the first :class:`WSFastProtocol` does (it
needs ``uvicorn.protocols.utils``), so ``pip install "wsfast[uvicorn]"`` is only needed to use it.

Flow control: reading pauses while a received message waits for the application (as in
uvicorn's backends), while the transport's write buffer is over its high-water mark (so a
peer that never reads cannot make us queue pongs or echoes without bound), and a single read
never queues more than about ``ws_max_queue`` messages (the rest of it is parsed once the
application has taken them).
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import os
from collections import deque
from typing import Any
from urllib.parse import unquote

from ._http import check_header_value
from .connection import ServerConnection, State
from .events import (
    BinaryMessage,
    CloseReceived,
    HandshakeFailed,
    Pong,
    ProtocolViolation,
    Request,
    TextMessage,
)
from .permessage_deflate import ServerDeflateFactory

__all__ = ["WSFastProtocol"]

_OPEN = State.OPEN
# A read longer than _WHOLE (a 64 KiB message and its header) is parsed _SLICE bytes at a
# time, until the queue holds ws_max_queue messages: at most ws_max_queue + _SLICE / 6 are
# queued from one read, however small its messages (uvicorn's own backends queue a read).
_SLICE = 64 * 1024
_WHOLE = _SLICE + 14
_TRACE = 5  # uvicorn.logging.TRACE_LOG_LEVEL
_utils: Any = None  # uvicorn.protocols.utils, imported by the first protocol built


def _uvicorn_utils() -> Any:
    global _utils
    if _utils is None:
        import uvicorn.protocols.utils as utils

        _utils = utils
    return _utils


def _status_line(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}"


def _latin1_pairs(headers: Any) -> list[tuple[str, str]]:
    return [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in headers]


class WSFastProtocol(asyncio.Protocol):
    """One WebSocket connection served to an ASGI application, for uvicorn.

    Built by uvicorn's HTTP protocol as ``WSFastProtocol(config=..., server_state=...,
    app_state=...)``. Uses ``config.ws_max_size`` (largest message, after decompression),
    ``ws_max_queue`` (messages one read may queue), ``ws_ping_interval`` /
    ``ws_ping_timeout`` (keepalive; 1011 when no pong comes), ``ws_per_message_deflate``
    (:class:`~wsfast.permessage_deflate.ServerDeflateFactory` with uvicorn's window of 12
    bits), ``root_path``, and the application as uvicorn loaded it (with its proxy-headers
    middleware). It registers in ``server_state.connections`` and ``server_state.tasks`` so
    that uvicorn's graceful shutdown closes it with 1012 and waits for its application task.
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self._utils = _uvicorn_utils()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path: str = config.root_path
        self.asgi_version: str = config.asgi_version
        self.app_state = app_state

        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        self.transport: Any = None
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}

        extensions = []
        if config.ws_per_message_deflate:
            # uvicorn's settings for its own backends: windows of 12 bits both ways.
            deflate = ServerDeflateFactory(server_max_window_bits=12, client_max_window_bits=12)
            extensions = [deflate]
        self.conn = ServerConnection(extensions=extensions, max_message_size=config.ws_max_size)

        # ASGI state
        self.handshake_complete = False  # accepted, refused or answered: no 500 any more
        self.close_sent = False
        self.disconnected = False
        self.initial_response: tuple[int, list[tuple[str, str]], bytes] | None = None
        self.close_timer: asyncio.TimerHandle | None = None  # our close frame awaits its reply
        self.close_timeout = 10.0
        self._abort_timer: asyncio.TimerHandle | None = None  # the transport closes: drop it then

        # Received messages the application has not taken yet, and its waiting receive()
        # calls (first come, first served, as with uvicorn's own queue).
        self._queue: deque[dict[str, Any]] = deque()
        self._waiters: deque[asyncio.Future[dict[str, Any]]] = deque()
        self._handed = 0  # messages handed to waiting receive() calls that have not returned
        self._max_queue = max(1, int(config.ws_max_queue))
        self._unparsed = memoryview(b"")  # the rest of a read, held back while the queue is full
        self.read_paused = False  # paused because a message waits in the queue
        self._write_paused = False  # the transport's write buffer is over its high-water mark
        self._reading = True  # the transport reads (neither reason to pause holds)
        self._drain_waiter: asyncio.Future[None] | None = None  # shared by waiting send() calls

        # Keepalive (the attribute names are uvicorn's).
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.pending_ping_payload: bytes | None = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        utils = self._utils
        self.connections.add(self)
        self.transport = transport
        self.server = utils.get_local_addr(transport)
        self.client = utils.get_remote_addr(transport)
        self.scheme = "wss" if utils.is_ssl(transport) else "ws"
        self._trace("WebSocket connection made")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_keepalive()
        code = 1005 if self.handshake_complete else 1006  # (uvicorn's codes)
        self._deliver({"type": "websocket.disconnect", "code": code})
        self.connections.discard(self)
        self._trace("WebSocket connection lost")
        self.handshake_complete = True
        self.disconnected = True
        self._unparsed = memoryview(b"")
        # A transport lost while its buffer is full never calls resume_writing(): nothing is
        # written any more, so no send() may wait for it.
        self._write_paused = False
        self._release_writers()
        self._cancel_close_timer()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass  # the transport closes itself; connection_lost reports it

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_writers()
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self._unparsed:  # (reading was paused; a transport may still deliver one read)
            self._unparsed = memoryview(self._unparsed.tobytes() + data)
            return
        if len(data) > _WHOLE and self.conn.state is _OPEN:
            self._unparsed = memoryview(data)
            self._parse_held_back()
            return
        self.conn.receive_data(data)
        self._handle_events()
        self._inflate_backlog()

    # --- uvicorn's server hooks ----------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: 1012 (service restart) to an open connection."""
        self.stop_keepalive()
        if self.close_sent:
            self._cancel_close_timer()
            self._close_transport()
            return
        if self.handshake_complete:
            self._deliver({"type": "websocket.disconnect", "code": 1012})
            if self.conn.state is _OPEN:
                self.conn.close(1012)
                self._flush()
        else:
            self.send_500_response()
        self._close_transport()

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)

    # --- reading -------------------------------------------------------------------------

    def _parse_held_back(self) -> None:
        """Parse the held-back rest of a read, a slice at a time, until the queue is full."""
        conn = self.conn
        while self._unparsed and self._room():
            view = self._unparsed
            self._unparsed = view[_SLICE:]
            conn.receive_data(view[:_SLICE])
            self._handle_events()
            self._inflate_backlog()
            if conn.state is not _OPEN and conn.state is not State.CLOSING:
                self._unparsed = memoryview(b"")
        self._update_reading()

    def _inflate_backlog(self) -> None:
        """Inflate the frames read but not inflated yet (Connection.backlogged) while the
        queue has room."""
        conn = self.conn
        while conn.backlogged and self._room():
            conn.receive_data(b"")
            self._handle_events()

    def _room(self) -> bool:
        """May more be parsed now? Not while ws_max_queue messages wait for the application,
        unless it has closed (what is received then is dropped, up to the peer's close)."""
        return self.close_sent or len(self._queue) < self._max_queue

    def _handle_events(self) -> None:
        conn = self.conn
        for event in conn.events():
            kind = type(event)
            if kind is TextMessage:
                self._on_message({"type": "websocket.receive", "text": event.data})  # type: ignore[attr-defined]
            elif kind is BinaryMessage:
                self._on_message({"type": "websocket.receive", "bytes": event.data})  # type: ignore[attr-defined]
            elif kind is Request:
                self._on_request(event)  # type: ignore[arg-type]
            elif kind is Pong:
                self._on_pong(event.payload)  # type: ignore[attr-defined]
            elif kind is CloseReceived:
                self._on_close(event)  # type: ignore[arg-type]
            elif kind is ProtocolViolation:
                # The connection failed itself (RFC 6455 §7.1.7): its close frame is out.
                self.logger.debug("WebSocket protocol error: %s", event.message)  # type: ignore[attr-defined]
                self._deliver(
                    {"type": "websocket.disconnect", "code": event.code, "reason": ""}  # type: ignore[attr-defined]
                )
                self.close_sent = True
            elif kind is HandshakeFailed:
                # The request broke RFC 6455 §4.2.1 (or the client sent data before our
                # answer, more than the connection keeps); the refusal is ready to send.
                if self.scope:
                    self._deliver({"type": "websocket.disconnect", "code": 1006})
                self.handshake_complete = True
                self.close_sent = True
        data = conn.data_to_send()
        if data:
            self.transport.write(data)
        if conn.should_close_transport:
            self._cancel_close_timer()
            self._close_transport()

    def _on_message(self, message: dict[str, Any]) -> None:
        if self.close_sent:
            return  # past websocket.close: dropped, so that reading goes on to the close frame
        if self._deliver(message) and not self.read_paused:
            self.read_paused = True
            self._update_reading()

    def _deliver(self, message: dict[str, Any]) -> bool:
        """Hand a message to the first waiting receive(), else queue it (True: queued)."""
        queue = self._queue
        queue.append(message)
        if len(queue) == 1:  # (else those before it go first)
            self._hand_queued()
        return bool(queue)

    def _hand_queued(self) -> None:
        """Hand queued messages to waiting receive() calls, once no handed message may come
        back (a receive() cancelled after the hand-over puts its message first again)."""
        queue = self._queue
        waiters = self._waiters
        while queue and waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # (else cancelled)
                waiter.set_result(queue.popleft())
                self._handed += 1
        if not queue and self.read_paused:
            self._resume_after_queue()

    def _update_reading(self) -> None:
        transport = self.transport
        reading = not (self.read_paused or self._write_paused)
        if reading == self._reading or transport is None or transport.is_closing():
            return
        self._reading = reading
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _on_request(self, event: Request) -> None:
        headers = [
            (name.lower().encode("ascii"), value.encode("latin-1")) for name, value in event.headers
        ]
        raw_path, _, query = event.target.partition("?")
        root_path = self.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": list(event.subprotocols),
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._deliver({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    def _on_close(self, event: CloseReceived) -> None:
        if self.close_sent:
            return  # the answer to our close frame: _handle_events closes the transport
        # The connection answered it; a send() from now on raises ClientDisconnected.
        self._deliver({"type": "websocket.disconnect", "code": event.code, "reason": event.reason})

    # --- keepalive -----------------------------------------------------------------------

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self.schedule_ping()

    def stop_keepalive(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
        self.pending_ping_payload = None

    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_timer = self.loop.call_later(delay, self.send_keepalive_ping)

    def send_keepalive_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing() or self.conn.state is not _OPEN:
            return
        # A random payload: a pong that echoes another (stale, unsolicited) does not count.
        self.pending_ping_payload = os.urandom(4)
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self._flush()
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
        else:
            self.schedule_ping()

    def _on_pong(self, payload: bytes) -> None:
        if self.pending_ping_payload is None or bytes(payload) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self.pong_timer is not None:  # else the next ping is scheduled already
            self.pong_timer.cancel()
            self.pong_timer = None
            self.schedule_ping()

    def keepalive_timeout(self) -> None:
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self._trace("WebSocket keepalive ping timeout")
        if self.conn.state is _OPEN:
            self.conn.close(1011, "keepalive ping timeout")
            self._flush()
        self.close_sent = True
        self._close_transport()

    # --- the ASGI application ------------------------------------------------------------

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except self._utils.ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete and self.initial_response is None:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.initial_response is not None and not self.close_sent:
            # A denial response whose body never ended: what was given is sent.
            self._send_denial()
        if self.close_timer is None:
            self._close_transport()

    def send_500_response(self) -> None:
        if self.initial_response is not None or self.handshake_complete:
            return
        if self.conn.state is State.CONNECTING and self.conn.request is not None:
            self.conn.reject(500, "Internal Server Error")
            self._flush()

    async def receive(self) -> dict[str, Any]:
        """The ASGI ``receive``: the next message, waiting for one."""
        queue = self._queue
        if queue and not self._handed:
            message = queue.popleft()
            if not queue and self.read_paused:
                self._resume_after_queue()
            return message
        # Nothing queued, or a message handed to another receive() is not returned yet: it
        # may come back (that call cancelled), and then it comes before what is queued.
        waiter: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:  # (cancelled, or the coroutine closed)
            if not waiter.done():  # (its task was cancelled, not it)
                waiter.cancel()
            if waiter.cancelled():
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            # Handed its message before the cancellation: the message goes first again.
            queue.appendleft(waiter.result())
            raise
        finally:
            if not waiter.cancelled():  # (handed a message)
                self._handed -= 1
                if not self._handed and queue:
                    self._hand_queued()
        return waiter.result()

    def _resume_after_queue(self) -> None:
        self.read_paused = False
        if self._unparsed:
            self._parse_held_back()
        else:
            self._inflate_backlog()
            self._update_reading()

    async def send(self, message: Any) -> None:
        """The ASGI ``send``."""
        if self._write_paused:
            await self._drain()
        if self.disconnected:
            raise self._utils.ClientDisconnected()
        kind = message["type"]
        if self.handshake_complete and self.initial_response is None:
            if self.close_sent:
                raise RuntimeError(
                    f"Unexpected ASGI message '{kind}', after sending 'websocket.close'."
                )
            conn = self.conn
            if conn.state is not _OPEN:
                raise self._utils.ClientDisconnected()
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is not None:
                    conn.send_binary(data)
                else:
                    text = message.get("text")
                    if text is not None:
                        conn.send_text(text)
                self.transport.write(conn.data_to_send())
            elif kind == "websocket.close":
                self._app_close(message.get("code", 1000), message.get("reason") or "")
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got '{kind}'."
                )
        elif self.initial_response is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
                )
            if self.close_sent:
                raise RuntimeError(f"Unexpected ASGI message '{kind}' after the response.")
            status, headers, body = self.initial_response
            self.initial_response = (status, headers, body + bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._send_denial()
        elif kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._deliver({"type": "websocket.disconnect", "code": 1006})
            self._log_request("403")
            self.handshake_complete = True
            self.close_sent = True
            if self.conn.state is State.CONNECTING:
                self.conn.reject(403, b"")
                self._flush()
            self.transport.close()
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self._log_request(str(status))
            self.initial_response = (status, _latin1_pairs(message.get("headers", ())), b"")
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def _accept(self, message: Any) -> None:
        self._log_request("[accepted]")
        headers = [(name.lower(), value) for name, value in _latin1_pairs(self.default_headers)]
        headers += _latin1_pairs(message.get("headers", ()))
        subprotocol = message.get("subprotocol") or None
        if self.transport.is_closing():
            return
        conn = self.conn
        if conn.state is not State.CONNECTING:
            raise self._utils.ClientDisconnected()
        if subprotocol is not None and subprotocol not in conn.request.subprotocols:  # type: ignore[union-attr]
            # uvicorn's own backends send the app's choice even if the client did not offer it.
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
            subprotocol = None
        conn.accept(subprotocol=subprotocol, extra_headers=headers)
        self.handshake_complete = True
        self._flush()
        self.start_keepalive()

    def _app_close(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self.conn.close(code, reason)  # first: ValueError for a code or reason it cannot send
        self._deliver({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._flush()
        self.close_sent = True
        if self.read_paused:
            # What waits in the queue is dropped from here on; read on to the peer's close.
            self.read_paused = False
            if self._unparsed:
                self._parse_held_back()
            self._update_reading()
        if not self.transport.is_closing():
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self.close_timer = None
        self.transport.close()

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    def _close_transport(self) -> None:
        """Close the transport once its write buffer is flushed; a peer that never reads that
        far has it dropped close_timeout later."""
        self.transport.close()
        if self._abort_timer is None and not self.disconnected:
            self._abort_timer = self.loop.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        self.transport.abort()

    def _send_denial(self) -> None:
        """The application's own HTTP response instead of the handshake (ASGI's
        ``websocket.http.response`` extension), then the end of the connection."""
        assert self.initial_response is not None
        status, headers, body = self.initial_response
        names = {name.lower() for name, _ in headers}
        lines = [_status_line(status)]
        for name, value in headers:
            check_header_value(name, value)
            lines.append(f"{name}: {value}")
        if "date" not in names:
            lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        if "connection" not in names:
            lines.append("Connection: close")
        if "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        if "content-type" not in names:
            lines.append("Content-Type: text/plain; charset=utf-8")
        self._deliver({"type": "websocket.disconnect", "code": 1006})
        self.close_sent = True
        self.handshake_complete = True
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.transport.close()

    # --- writing -------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)

    async def _drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = self.loop.create_future()
        # Shielded: cancelling one waiting send() must not cancel the others.
        await asyncio.shield(waiter)

    def _release_writers(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- logging -------------------------------------------------------------------------

    def _log_request(self, outcome: str) -> None:
        utils = self._utils
        self.logger.info(
            '%s - "WebSocket %s" %s',
            utils.get_client_addr(self.scope),
            utils.get_path_with_query_string(self.scope),
            outcome,
        )

    def _trace(self, message: str) -> None:
        if self.logger.level <= _TRACE:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(_TRACE, "%s%s", prefix, message)
