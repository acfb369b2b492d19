"""asyncio WebSocket server and client on the sans-I/O core.

::

    from wsfast.asyncio import connect, serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 8765):
        async with connect("ws://127.0.0.1:8765/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
"""

from .broadcast import broadcast
from .client import ClientWebSocket, connect
from .connection import Message, OnMessage, WebSocket
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
)
from .server import Server, ServerWebSocket, serve

__all__ = [
    "ClientWebSocket",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "Message",
    "OnMessage",
    "Server",
    "ServerWebSocket",
    "WebSocket",
    "broadcast",
    "connect",
    "serve",
]
