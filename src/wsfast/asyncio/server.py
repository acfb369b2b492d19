"""``serve()``: an asyncio WebSocket server over :class:`~wsfast.connection.ServerConnection`."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Sequence
from typing import Any

from ..connection import DEFAULT_MAX_MESSAGE_SIZE, ServerConnection, State
from ..events import HandshakeFailed, HttpRequest, Rejected, Request
from ..handshake import Headers
from ..permessage_deflate import ServerDeflateFactory, server_extensions
from .connection import OnMessage, WebSocket
from .exceptions import ConnectionClosed

__all__ = ["Server", "ServerWebSocket", "serve"]

logger = logging.getLogger("wsfast")

Handler = Callable[["ServerWebSocket"], Awaitable[Any]]
HttpResponse = tuple[int, Iterable[tuple[str, str]], bytes]
ProcessRequest = Callable[["ServerWebSocket", Request], "HttpResponse | None"]
HttpHandler = Callable[[str, Headers], "HttpResponse | None"]

_UPGRADE_REQUIRED: HttpResponse = (
    426,
    [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
    b"This is a WebSocket endpoint: it needs an Upgrade: websocket request.\n",
)


class ServerWebSocket(WebSocket):
    """The server side of one connection, as passed to the handler.

    ``request`` is the client's opening handshake (path, headers, offered subprotocols).
    """

    __slots__ = ("_server", "request", "_handler_task", "_open_timer")

    def __init__(self, server: Server, conn: ServerConnection, **options: Any) -> None:
        super().__init__(conn, **options)
        self._server = server
        self.request: Request | None = None
        self._handler_task: asyncio.Task[None] | None = None
        self._open_timer: asyncio.TimerHandle | None = None

    @property
    def path(self) -> str:
        return "" if self.request is None else self.request.path

    @property
    def request_headers(self) -> Headers | None:
        return None if self.request is None else self.request.headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server._connections.add(self)
        if self._server._open_timeout is not None:
            self._open_timer = self._loop.call_later(
                self._server._open_timeout, self._open_timed_out
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open_timer is not None:
            self._open_timer.cancel()
        super().connection_lost(exc)
        if self._handler_task is None:
            self._server._connections.discard(self)

    def _open_timed_out(self) -> None:
        if self._conn.state is State.CONNECTING and self._transport is not None:
            logger.debug("opening handshake timed out")
            self._transport.abort()

    def _on_request(self, event: Request) -> None:
        self.request = event
        conn = self._conn
        assert isinstance(conn, ServerConnection)
        response = None
        process_request = self._server._process_request
        try:
            if process_request is not None:
                response = process_request(self, event)
            if response is not None:
                status, headers, body = response
                conn.reject(status, body, headers=headers)
                return
            conn.accept()  # ValueError if select_subprotocol chose a protocol not offered
        except Exception:
            logger.exception("answering the opening handshake failed")
            if conn.state is State.CONNECTING:
                conn.reject(500, b"Internal Server Error\n")
            return
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        self._start_keepalive()
        self._handler_task = self._loop.create_task(self._run_handler())

    def _on_other_event(self, event: Any) -> None:
        if type(event) is HttpRequest:
            self._on_http_request(event)

    def _on_http_request(self, event: HttpRequest) -> None:
        """A plain GET on the WebSocket port: the server's http_handler answers it."""
        conn = self._conn
        assert isinstance(conn, ServerConnection)
        handler = self._server._http_handler
        response = None
        if handler is not None:
            try:
                response = handler(event.path, event.headers)
            except Exception:
                logger.exception("http_handler failed")
                response = (500, [], b"Internal Server Error\n")
        try:
            status, headers, body = response if response is not None else _UPGRADE_REQUIRED
            conn.respond(status, body, headers=headers)
        except Exception:
            logger.exception("bad http_handler response")
            if conn.state is State.CONNECTING:
                conn.respond(500, b"Internal Server Error\n")

    def _on_refused(self, event: Rejected | HandshakeFailed) -> None:
        if isinstance(event, HandshakeFailed):
            logger.debug("refused a handshake: %s %s", event.status, event.message)

    async def _run_handler(self) -> None:
        try:
            if self._server._handler is None:
                # on_message does the work. (Not wait_closed(): it drops the transport after
                # close_timeout, which bounds a closing handshake, not a connection's life.)
                await asyncio.shield(self._closed)
                return
            await self._server._handler(self)
        except ConnectionClosed:
            pass  # e.g. recv() after the peer broke the protocol: nothing to report
        except Exception:
            logger.exception("connection handler failed")
            if self._conn.state is State.OPEN:
                await self.close(1011, "internal error")
        finally:
            try:
                await self.close()
            finally:
                self._server._connections.discard(self)


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
        open_timeout: float | None,
        close_timeout: float,
        connection_options: dict[str, Any],
        websocket_options: dict[str, Any],
    ) -> None:
        self._handler = handler
        self._process_request = process_request
        self._http_handler = http_handler
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._connection_options = connection_options
        self._websocket_options = websocket_options
        self._connections: set[ServerWebSocket] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    def _protocol(self) -> ServerWebSocket:
        conn = ServerConnection(**self._connection_options)
        return ServerWebSocket(self, conn, **self._websocket_options)

    @property
    def sockets(self) -> tuple[Any, ...]:
        return () if self._server is None else tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        return int(self.sockets[0].getsockname()[1])

    @property
    def connections(self) -> frozenset[ServerWebSocket]:
        return frozenset(self._connections)

    def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop listening and start closing every connection with ``code``."""
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
        """Wait until every connection and handler is done (each bounded by close_timeout)."""
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
    """Start a WebSocket server on ``host``:``port`` calling ``handler(ws)`` per connection.

    When the handler returns, the connection is closed with 1000 (1011 if it raised).
    ``on_message(ws, message)`` instead delivers each message by a plain callback, answered
    with ``ws.send_nowait()`` (then ``handler`` may be None: connections live until closed).
    ``process_request(ws, request)`` may answer the handshake itself with
    ``(status, headers, body)`` instead of accepting it. ``http_handler(path, headers)``
    answers plain (non-upgrade) GET requests on the same port with ``(status, headers, body)``,
    e.g. a page and its WebSocket endpoint on one port; None from it means 426. Options:
    ``subprotocols``/``select_subprotocol``, ``origins`` (allowed Origin values; None in the
    collection allows requests without one), ``max_message_size`` (default 1 MiB; None:
    unlimited), ``compression`` (``"deflate"``, the default: permessage-deflate with the
    defaults of :class:`~wsfast.permessage_deflate.ServerDeflateFactory`; a factory of your
    own settings; None: off), ``max_frame_size``, ``decode_text``, ``max_queue``, ``write_limit``,
    ``ping_interval``, ``ping_timeout``, ``open_timeout``, ``close_timeout``, ``ssl``, and
    any keyword of :meth:`asyncio.loop.create_server` (e.g. ``reuse_port``, ``backlog``).
    """

    def __init__(
        self,
        handler: Handler | None,
        host: str | Sequence[str] | None,
        port: int | None,
        *,
        on_message: OnMessage | None = None,
        subprotocols: Sequence[str] = (),
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        origins: Collection[str | None] | None = None,
        process_request: ProcessRequest | None = None,
        http_handler: HttpHandler | None = None,
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
        **create_server: Any,
    ) -> None:
        if handler is None and on_message is None:
            raise TypeError("serve() needs a handler, an on_message callback, or both")
        self._server = Server(
            handler,
            process_request=process_request,
            http_handler=http_handler,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            connection_options={
                "subprotocols": subprotocols,
                "select_subprotocol": select_subprotocol,
                "origins": origins,
                "extensions": server_extensions(compression),
                "max_message_size": max_message_size,
                "max_frame_size": max_frame_size,
                "decode_text": decode_text,
                "defer_failure": True,
                "plain_http": http_handler is not None,
            },
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
        self._ssl = ssl
        self._create_server = create_server

    async def _start(self) -> Server:
        loop = asyncio.get_running_loop()
        server = self._server
        server._server = await loop.create_server(
            server._protocol, self._host, self._port, ssl=self._ssl, **self._create_server
        )
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)
