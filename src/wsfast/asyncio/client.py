"""``connect()``: an asyncio WebSocket client over :class:`~wsfast.connection.ClientConnection`."""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
from collections.abc import Generator, Iterable, Sequence
from typing import Any

from ..connection import DEFAULT_MAX_MESSAGE_SIZE, ClientConnection
from ..events import Accepted, HandshakeFailed, Rejected
from ..handshake import Headers, parse_uri
from ..permessage_deflate import ClientDeflateFactory, client_extensions
from ._transport import TransportName, check_transport, opener
from ._websocket_py import check_max_queue, check_write_limit
from .connection import OnMessage, WebSocket
from .exceptions import InvalidHandshake

__all__ = ["ClientWebSocket", "connect"]


class ClientWebSocket(WebSocket):
    """The client side of one connection; ``response_headers`` are the server's 101 headers."""

    __slots__ = ("_opened", "response_headers")

    def __init__(self, conn: ClientConnection, **options: Any) -> None:
        super().__init__(conn, **options)
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self.response_headers: Headers | None = None

    def _on_accepted(self, event: Accepted) -> None:
        self.response_headers = event.headers
        self._start_keepalive()
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_refused(self, event: Rejected | HandshakeFailed) -> None:
        if isinstance(event, Rejected):
            error = InvalidHandshake(
                f"the server refused the WebSocket handshake: HTTP {event.status}",
                event.status,
                event.body,
            )
        else:
            error = InvalidHandshake(event.message, event.status)
        if not self._opened.done():
            self._opened.set_exception(error)

    def _connection_ended(self, exc: Exception | None) -> None:
        super()._connection_ended(exc)
        if not self._opened.done():
            self._opened.set_exception(
                InvalidHandshake("the connection closed during the opening handshake")
            )
            self._opened.exception()  # nobody may await it any more (connect() timed out)


class connect:  # used like a function: `await connect(...)` or `async with connect(...)`
    """Open a WebSocket connection to a ``ws://`` or ``wss://`` URI.

    ``await connect(uri)`` returns the open :class:`ClientWebSocket`; ``async with connect(uri)
    as ws:`` also closes it at the end. Raises :class:`InvalidHandshake` if the server refuses
    or answers wrongly, :class:`OSError` if it cannot be reached, and TimeoutError after
    ``open_timeout``.

    ``sock`` (an already connected stream socket, TCP or Unix) or ``unix_path`` (a Unix
    socket's path) replace connecting to the URI's host and port; the URI still gives the
    Host header, the path and ``wss://``.

    Options: ``origin``, ``subprotocols``, ``extra_headers``, ``max_message_size`` (default
    1 MiB; None: unlimited), ``compression`` (``"deflate"``, the default: offer
    permessage-deflate with the defaults of
    :class:`~wsfast.permessage_deflate.ClientDeflateFactory`; a factory; None: off),
    ``max_frame_size``, ``decode_text``, ``max_queue``, ``write_limit``, ``ping_interval``,
    ``ping_timeout``, ``close_timeout``, ``ssl`` (a context; wss:// uses a default one),
    ``on_message`` (a callback per message instead of ``recv()``; see :class:`WebSocket`),
    plus any keyword of :meth:`asyncio.loop.create_connection` (or, with ``unix_path``,
    :meth:`~asyncio.loop.create_unix_connection`).

    ``transport="aiofastnet"`` connects on aiofastnet's compiled transports instead of the
    loop's own (``"loop"``, the default); it needs ``wsfast[fastnet]`` (ImportError otherwise).
    """

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extra_headers: Iterable[tuple[str, str]] = (),
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        compression: str | ClientDeflateFactory | None = "deflate",
        max_frame_size: int | None = None,
        decode_text: bool = True,
        max_queue: int = 16,
        write_limit: int = 64 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float | None = 10.0,
        close_timeout: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
        on_message: OnMessage | None = None,
        sock: socket.socket | None = None,
        unix_path: str | None = None,
        transport: TransportName = "loop",
        **create_connection: Any,
    ) -> None:
        check_transport(transport)
        # Here, not in the protocol factory after the TCP connection is made:
        check_max_queue(max_queue)
        check_write_limit(write_limit)
        if sock is not None and unix_path is not None:
            raise TypeError("connect() takes sock or unix_path, not both")
        self._uri = uri
        self._sock = sock
        self._unix_path = unix_path
        self._connection_options: dict[str, Any] = {
            "origin": origin,
            "subprotocols": subprotocols,
            "extra_headers": tuple(extra_headers),
            "extensions": client_extensions(compression),
            "max_message_size": max_message_size,
            "max_frame_size": max_frame_size,
            "decode_text": decode_text,
            "auto_pong": False,  # WebSocket answers pings (bounded while writing waits)
            "defer_failure": True,
        }
        self._websocket_options: dict[str, Any] = {
            "on_message": on_message,
            "max_queue": max_queue,
            "write_limit": write_limit,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
        }
        self._open_timeout = open_timeout
        self._ssl = ssl
        self._transport = transport
        self._create_connection = create_connection
        self._ws: ClientWebSocket | None = None

    async def _connect(self) -> ClientWebSocket:
        loop = asyncio.get_running_loop()
        secure, host, port, target = parse_uri(self._uri)
        if port is None:
            port = 443 if secure else 80
        ssl = self._ssl
        if secure and ssl is None:
            ssl = ssl_module.create_default_context()
        elif not secure and ssl is not None:
            raise ValueError("ssl= is for wss:// URIs")
        conn = ClientConnection(
            host, target, port=port, secure=secure, **self._connection_options
        )

        def factory() -> ClientWebSocket:
            return ClientWebSocket(conn, **self._websocket_options)

        async def open_() -> ClientWebSocket:
            ws: ClientWebSocket
            options = dict(self._create_connection)
            if ssl is not None:
                options.setdefault("server_hostname", host)
            sock = self._sock
            unix = self._unix_path is not None or (
                sock is not None and sock.family == getattr(socket, "AF_UNIX", None)
            )
            create = opener(
                loop, self._transport, "create_unix_connection" if unix else "create_connection"
            )
            if self._unix_path is not None:
                _transport, ws = await create(factory, self._unix_path, ssl=ssl, **options)
            elif sock is not None:
                _transport, ws = await create(factory, sock=sock, ssl=ssl, **options)
            else:
                _transport, ws = await create(factory, host, port, ssl=ssl, **options)
            try:
                await ws._opened
            except BaseException:
                if ws._transport is not None:
                    ws._transport.abort()
                raise
            return ws

        return await asyncio.wait_for(open_(), self._open_timeout)

    def __await__(self) -> Generator[Any, None, ClientWebSocket]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientWebSocket:
        self._ws = await self._connect()
        return self._ws

    async def __aexit__(self, *exc: object) -> None:
        assert self._ws is not None
        await self._ws.close()
