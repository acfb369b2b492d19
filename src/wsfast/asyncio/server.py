"""``serve()``: an asyncio WebSocket server over :class:`~wsfast.connection.ServerConnection`.

Log lines go to the ``wsfast.server`` logger: one at INFO per connection opened and one per
connection closed (with its id, remote address, path, close code and duration), errors of
handlers and hooks at ERROR. INFO lines show only where the application enables them (e.g.
``logging.basicConfig(level=logging.INFO)``); Python prints nothing below WARNING by itself.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Sequence
from typing import Any, ClassVar

from ..connection import DEFAULT_MAX_MESSAGE_SIZE, ServerConnection, State
from ..events import HandshakeFailed, HttpRequest, Rejected, Request
from ..handshake import Headers, reject_response
from ..permessage_deflate import ServerDeflateFactory, server_extensions
from ._transport import TransportName, check_transport, opener
from ._websocket_py import check_max_queue, check_write_limit
from .connection import OnMessage, WebSocket
from .exceptions import ConnectionClosed

__all__ = ["Server", "ServerWebSocket", "serve"]

logger = logging.getLogger("wsfast.server")

Handler = Callable[["ServerWebSocket"], Awaitable[Any]]
HttpResponse = tuple[int, Iterable[tuple[str, str]], bytes]
ProcessRequest = Callable[
    ["ServerWebSocket", Request], "HttpResponse | None | Awaitable[HttpResponse | None]"
]
HttpHandler = Callable[[str, Headers], "HttpResponse | None"]

_UPGRADE_REQUIRED: HttpResponse = (
    426,
    [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
    b"This is a WebSocket endpoint: it needs an Upgrade: websocket request.\n",
)
_INTERNAL_ERROR: HttpResponse = (500, [], b"Internal Server Error\n")
_BUSY = reject_response(503, "The server is busy: try again later.\n", [("Retry-After", "1")])


def _address(address: Any) -> str:
    """``host:port`` of a peer address, the path (or "unix") of a Unix socket's."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address) if address else "unix"


class ServerWebSocket(WebSocket):
    """The server side of one connection, as passed to the handler.

    ``request`` is the client's opening handshake (path, headers, offered subprotocols).
    ``extra_headers`` are added to the 101 response: the server's ``extra_headers`` at
    first; ``process_request`` may add more for this connection (e.g. a session cookie).
    """

    __slots__ = (
        "_server",
        "request",
        "extra_headers",
        "_handler_task",
        "_answer_task",
        "_open_timer",
        "_handshaking",
        "_opened_at",
    )

    _pause_reading_with_writing: ClassVar[bool] = True

    def __init__(self, server: Server, conn: ServerConnection, **options: Any) -> None:
        super().__init__(conn, **options)
        self._server = server
        self.request: Request | None = None
        self.extra_headers: list[tuple[str, str]] = list(server._extra_headers)
        self._handler_task: asyncio.Task[None] | None = None
        self._answer_task: asyncio.Future[HttpResponse | None] | None = None  # async hook
        self._open_timer: asyncio.TimerHandle | None = None
        self._handshaking = False  # counted in the server's handshakes
        self._opened_at = 0.0

    @property
    def path(self) -> str:
        return "" if self.request is None else self.request.path

    @property
    def request_headers(self) -> Headers | None:
        return None if self.request is None else self.request.headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        if server._closed or server._over_capacity():
            # Counted here, where connections arrive one by one (the protocol factory may run
            # for a burst of them first); _Busy answers 503 on this transport instead. A
            # connection accepted just before Server.close() arrives here after it.
            logger.debug("closed, or over max_handshakes or max_connections: refusing with 503")
            busy = _Busy(server._close_timeout)
            transport.set_protocol(busy)
            busy.connection_made(transport)
            return
        super().connection_made(transport)
        server._connections.add(self)
        server._handshakes += 1
        self._handshaking = True
        if server._open_timeout is not None:
            self._open_timer = self._loop.call_later(server._open_timeout, self._open_timed_out)

    def _connection_ended(self, exc: Exception | None) -> None:
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        if self._answer_task is not None:
            self._answer_task.cancel()  # process_request is still running: never mind
        self._handshake_over()
        super()._connection_ended(exc)
        if self._opened_at and logger.isEnabledFor(logging.INFO):
            logger.info(
                "connection %d closed: %s %s, code %s, %.3f s",
                self.id,
                _address(self.remote_address),
                self.path,
                self.close_code,
                self._loop.time() - self._opened_at,
            )
        if self._handler_task is None:
            self._server._connections.discard(self)

    def _handshake_over(self) -> None:
        if self._handshaking:
            self._handshaking = False
            self._server._handshakes -= 1

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self._conn.state is State.CONNECTING and self._transport is not None:
            logger.debug("connection %d: opening handshake timed out", self.id)
            self._transport.abort()

    def _on_request(self, event: Request) -> None:
        self.request = event
        response: Any = None
        process_request = self._server._process_request
        if process_request is not None:
            try:
                response = process_request(self, event)
            except Exception:
                logger.exception("connection %d: process_request failed", self.id)
                response = _INTERNAL_ERROR
            if inspect.isawaitable(response):
                task = asyncio.ensure_future(response)
                self._answer_task = task
                task.add_done_callback(self._answered)
                return
        self._answer(response)
        # accept() fed the connection what came with the request: hand those events on too.
        self._dispatch(self._conn.events())

    def _answered(self, task: asyncio.Future[HttpResponse | None]) -> None:
        """A coroutine process_request is done (within open_timeout): answer with it."""
        self._answer_task = None
        if self._conn.state is not State.CONNECTING or self._transport is None:
            return  # the connection is gone (connection_lost cancelled the task)
        response: HttpResponse | None
        if task.cancelled():  # by something else: it awaited a future that was cancelled...
            logger.error("connection %d: process_request was cancelled", self.id)
            response = _INTERNAL_ERROR
        elif (error := task.exception()) is not None:
            logger.error("connection %d: process_request failed", self.id, exc_info=error)
            response = _INTERNAL_ERROR
        else:
            response = task.result()
        self._answer(response)
        self._process()

    def _answer(self, response: HttpResponse | None) -> None:
        """Accept (None) or refuse with ``(status, headers, body)``."""
        conn = self._conn
        assert isinstance(conn, ServerConnection)
        self._handshake_over()
        try:
            if response is not None:
                status, headers, body = response
                conn.reject(status, body, headers=headers)
                return
            conn.accept(extra_headers=self.extra_headers)  # ValueError: a bad subprotocol...
        except Exception:
            logger.exception("connection %d: answering the opening handshake failed", self.id)
            if conn.state is State.CONNECTING:
                conn.reject(500, b"Internal Server Error\n")
            return
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        self._opened_at = self._loop.time()
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "connection %d opened: %s %s",
                self.id,
                _address(self.remote_address),
                self.path,
            )
        self._start_keepalive()
        self._handler_task = self._loop.create_task(self._run_handler())

    def _on_other_event(self, event: Any) -> None:
        if type(event) is HttpRequest:
            self._on_http_request(event)

    def _on_http_request(self, event: HttpRequest) -> None:
        """A plain GET on the WebSocket port: the server's http_handler answers it."""
        conn = self._conn
        assert isinstance(conn, ServerConnection)
        self._handshake_over()
        handler = self._server._http_handler
        response = None
        if handler is not None:
            try:
                response = handler(event.path, event.headers)
            except Exception:
                logger.exception("connection %d: http_handler failed", self.id)
                response = _INTERNAL_ERROR
        try:
            status, headers, body = response if response is not None else _UPGRADE_REQUIRED
            conn.respond(status, body, headers=headers)
        except Exception:
            logger.exception("connection %d: bad http_handler response", self.id)
            if conn.state is State.CONNECTING:
                conn.respond(500, b"Internal Server Error\n")

    def _on_refused(self, event: Rejected | HandshakeFailed) -> None:
        self._handshake_over()
        if isinstance(event, HandshakeFailed):
            logger.debug(
                "connection %d: refused a handshake: %s %s", self.id, event.status, event.message
            )

    async def _run_handler(self) -> None:
        try:
            if self._server._handler is None:
                await self.wait_closed()  # on_message does the work, until the peer leaves
                return
            await self._server._handler(self)
        except ConnectionClosed:
            pass  # e.g. recv() after the peer broke the protocol: nothing to report
        except Exception:
            logger.exception("connection %d: handler failed", self.id)
            if self._conn.state is State.OPEN:
                await self.close(1011, "internal error")
        finally:
            try:
                await self.close()
            finally:
                self._server._connections.discard(self)


class _Busy(asyncio.Protocol):
    """A connection over the server's caps: answered 503 at once, its input discarded until
    the client closes (so that the answer is not lost to a reset), dropped after a timeout."""

    __slots__ = ("_timeout", "_timer")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(_BUSY)  # type: ignore[attr-defined]
        if transport.can_write_eof():  # type: ignore[attr-defined]
            transport.write_eof()  # type: ignore[attr-defined]
        else:  # TLS: close_notify after the answer
            transport.close()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, transport.abort)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class Server:
    """A listening WebSocket server; ``close()`` then ``await wait_closed()`` to stop it.

    Usable as ``async with``: leaving the block closes every connection with 1001.
    """

    def __init__(
        self,
        handler: Handler | None,
        *,
        process_request: ProcessRequest | None,
        http_handler: HttpHandler | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        max_handshakes: int | None = None,
        max_connections: int | None = None,
        open_timeout: float | None,
        close_timeout: float,
        connection_options: dict[str, Any],
        websocket_options: dict[str, Any],
    ) -> None:
        self._handler = handler
        self._process_request = process_request
        self._http_handler = http_handler
        self._extra_headers = tuple(extra_headers)
        self._max_handshakes = max_handshakes
        self._max_connections = max_connections
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._connection_options = connection_options
        self._websocket_options = websocket_options
        self._connections: set[ServerWebSocket] = set()
        self._handshakes = 0  # connections in their opening handshake
        self._closing: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closed = False  # close() was called: new connections are refused

    def _protocol(self) -> ServerWebSocket:
        conn = ServerConnection(**self._connection_options)
        return ServerWebSocket(self, conn, **self._websocket_options)

    def _over_capacity(self) -> bool:
        """Is a new connection over max_handshakes or max_connections?"""
        return (self._max_handshakes is not None and self._handshakes >= self._max_handshakes) or (
            self._max_connections is not None and len(self._connections) >= self._max_connections
        )

    @property
    def sockets(self) -> tuple[Any, ...]:
        return () if self._server is None else tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        return int(self.sockets[0].getsockname()[1])

    @property
    def connections(self) -> frozenset[ServerWebSocket]:
        """The connections held: in their opening handshake, open, or closing."""
        return frozenset(self._connections)

    def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop listening and start closing every connection with ``code``."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        for ws in list(self._connections):
            if ws.state is State.OPEN:
                task = ws._loop.create_task(ws.close(code, reason))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            elif ws.state is State.CONNECTING and ws._transport is not None:
                ws._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until every connection and handler is done (after :meth:`close`, each
        connection within close_timeout; handlers still busy then are cancelled)."""
        waits = [ws.wait_closed() for ws in list(self._connections)]
        tasks = [
            ws._handler_task
            for ws in list(self._connections)
            if ws._handler_task is not None
        ]
        await asyncio.gather(*waits, *self._closing, return_exceptions=True)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self._close_timeout)
            for task in pending:  # handlers still busy (not on the connection): stop them
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


class serve:  # used like a function: `await serve(...)` or `async with serve(...)`
    """Start a WebSocket server on ``host``:``port`` (or ``unix_path``) calling
    ``handler(ws)`` per connection.

    When the handler returns, the connection is closed with 1000 (1011 if it raised).
    ``on_message(ws, message)`` instead delivers each message by a plain callback, answered
    with ``ws.send_nowait()`` (then ``handler`` may be None: connections live until closed).

    ``process_request(ws, request)`` (a function or a coroutine function, bounded by
    ``open_timeout``) may refuse the handshake with ``(status, headers, body)``, or return
    None to accept it, after adding headers for the 101 to ``ws.extra_headers`` if it likes;
    ``extra_headers`` go on every 101. ``http_handler(path, headers)`` answers plain
    (non-upgrade) GET requests on the same port with ``(status, headers, body)``, e.g. a page
    and its WebSocket endpoint on one port; None from it means 426.

    ``max_handshakes`` caps the connections in their opening handshake at once,
    ``max_connections`` the connections held at once (handshaking, open or closing); a
    connection over either cap is answered 503 and closed (None: no cap).

    Options: ``subprotocols``/``select_subprotocol``, ``origins`` (allowed Origin values;
    None in the collection allows requests without one), ``max_message_size`` (default 1 MiB;
    None: unlimited), ``compression`` (``"deflate"``, the default: permessage-deflate with the
    defaults of :class:`~wsfast.permessage_deflate.ServerDeflateFactory`; a factory of your
    own settings; None: off), ``max_frame_size``, ``decode_text``, ``max_queue``,
    ``write_limit``, ``ping_interval``, ``ping_timeout``, ``open_timeout`` (with ``ssl``, it
    bounds the TLS handshake as well), ``close_timeout``, ``ssl``, and any keyword of
    :meth:`asyncio.loop.create_server` (e.g. ``reuse_port``, ``backlog``, ``sock``) or, with
    ``unix_path``, of :meth:`asyncio.loop.create_unix_server`.

    ``transport="aiofastnet"`` accepts connections on aiofastnet's compiled transports
    instead of the loop's own (``"loop"``, the default); it needs ``wsfast[fastnet]``
    (ImportError otherwise).
    """

    def __init__(
        self,
        handler: Handler | None,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        unix_path: str | None = None,
        on_message: OnMessage | None = None,
        subprotocols: Sequence[str] = (),
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        origins: Collection[str | None] | None = None,
        process_request: ProcessRequest | None = None,
        http_handler: HttpHandler | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        max_handshakes: int | None = None,
        max_connections: int | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        compression: str | ServerDeflateFactory | None = "deflate",
        max_frame_size: int | None = None,
        decode_text: bool = True,
        max_queue: int = 16,
        write_limit: int = 64 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float | None = 10.0,
        close_timeout: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
        transport: TransportName = "loop",
        **create_server: Any,
    ) -> None:
        check_transport(transport)
        if handler is None and on_message is None:
            raise TypeError("serve() needs a handler, an on_message callback, or both")
        if unix_path is not None and (host is not None or port is not None):
            raise TypeError("serve() takes host and port, or unix_path, not both")
        connection_options: dict[str, Any] = {
            "subprotocols": subprotocols,
            "select_subprotocol": select_subprotocol,
            "origins": origins,
            "extensions": server_extensions(compression),
            "max_message_size": max_message_size,
            "max_frame_size": max_frame_size,
            "decode_text": decode_text,
            "auto_pong": False,  # WebSocket answers pings (bounded while writing waits)
            "defer_failure": True,
            "plain_http": http_handler is not None,
        }
        # What every connection would refuse is refused here, once (else the server would
        # listen, then drop each client in its opening handshake).
        ServerConnection(**connection_options)
        check_max_queue(max_queue)
        check_write_limit(write_limit)
        self._server = Server(
            handler,
            process_request=process_request,
            http_handler=http_handler,
            extra_headers=extra_headers,
            max_handshakes=max_handshakes,
            max_connections=max_connections,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            connection_options=connection_options,
            websocket_options={
                "on_message": on_message,
                "max_queue": max_queue,
                "write_limit": write_limit,
                "ping_interval": ping_interval,
                "ping_timeout": ping_timeout,
                "close_timeout": close_timeout,
            },
        )
        self._host = host
        self._port = port
        self._unix_path = unix_path
        self._ssl = ssl
        self._transport = transport
        self._create_server = create_server

    async def _start(self) -> Server:
        loop = asyncio.get_running_loop()
        server = self._server
        options = dict(self._create_server)
        if self._ssl is not None and server._open_timeout is not None:
            # The TLS handshake comes before connection_made(), where open_timeout starts.
            options.setdefault("ssl_handshake_timeout", server._open_timeout)
        if self._unix_path is not None:
            create_unix_server = opener(loop, self._transport, "create_unix_server")
            server._server = await create_unix_server(
                server._protocol, self._unix_path, ssl=self._ssl, **options
            )
        else:
            create_server = opener(loop, self._transport, "create_server")
            server._server = await create_server(
                server._protocol, self._host, self._port, ssl=self._ssl, **options
            )
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)
