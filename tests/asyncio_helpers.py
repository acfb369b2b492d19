"""Helpers shared by the asyncio tests: loopback only, every wait bounded."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import socket
import ssl
import subprocess
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

import wsfast
from wsfast.asyncio import WebSocket
from wsfast.handshake import accept_key

HOST = "127.0.0.1"
TIMEOUT = 10.0
MASK = b"\x0a\x0b\x0c\x0d"

# serve()/connect()'s transport=, for @pytest.mark.parametrize("transport", TRANSPORTS):
# aiofastnet's is skipped where the package is not installed (it is in the test extra).
TRANSPORTS = [
    pytest.param("loop", id="loop"),
    pytest.param(
        "aiofastnet",
        id="aiofastnet",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("aiofastnet") is None, reason="aiofastnet is not installed"
        ),
    ),
]


def run(coro: Awaitable[Any], loop: str = "asyncio") -> Any:
    """Run ``coro`` on a fresh event loop of asyncio's (``loop="asyncio"``) or uvloop's
    (``loop="uvloop"``; the test is skipped if uvloop is missing), failing after TIMEOUT
    seconds. The loop is closed afterwards; the event-loop policy is not changed."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, TIMEOUT)

    try:
        if loop not in ("asyncio", "uvloop"):
            raise ValueError(f"loop must be 'asyncio' or 'uvloop', not {loop!r}")
        runner = asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run
    except BaseException:
        if inspect.iscoroutine(coro):
            coro.close()  # never to be awaited: no "never awaited" warning
        raise
    return runner(bounded())


def only_connection(server: Any) -> Any:
    """The server's one connection (a ServerWebSocket)."""
    (ws,) = server.connections
    return ws


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def echo_now(ws: Any, message: Any) -> None:
    ws.send_nowait(message)


def uri(server: Any, path: str = "/") -> str:
    return f"ws://{HOST}:{server.port}{path}"


def raw_upgrade(port: int, path: str = "/") -> bytes:
    """A valid client opening handshake."""
    key = wsfast.generate_key()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(opcode: wsfast.Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    """One masked frame, as a client sends it."""
    head = wsfast.build_header(opcode, len(payload), fin=fin, mask=MASK)
    return head + wsfast.apply_mask(payload, MASK)


async def raw_client(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    """A non-blocking socket that completed the opening handshake (101 read) and will then
    read nothing unless the test does; ``rcvbuf`` shrinks its receive buffer first."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, raw_upgrade(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), TIMEOUT)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode("latin-1"))
    return sock


async def send_until_stalled(
    sock: socket.socket, chunk: bytes, total: int, stall: float = 0.5
) -> int:
    """Send ``chunk`` repeatedly, up to ``total`` bytes or until a send makes no progress for
    ``stall`` seconds (the peer stopped reading); returns the bytes sent."""
    loop = asyncio.get_running_loop()
    sent = 0
    while sent < total:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, chunk), stall)
        except asyncio.TimeoutError:
            break
        sent += len(chunk)
    return sent


async def accept_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The server half of a raw peer: read a client's opening handshake, answer 101."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode()
    )
    await writer.drain()


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a throwaway certificate for 127.0.0.1 (made in ``folder`` by
    the openssl command), and a client context that trusts it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


def spy_on_read_buffer(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record every WebSocket.get_buffer() and buffer_updated() call as ("get" or
    "updated", id of the connection), for :func:`assert_read_buffer_handed_back_to_back`."""
    calls: list[tuple[str, int]] = []
    get_buffer = WebSocket.get_buffer
    buffer_updated = WebSocket.buffer_updated

    def spy_get(self: WebSocket, sizehint: int) -> Any:
        calls.append(("get", id(self)))
        return get_buffer(self, sizehint)

    def spy_updated(self: WebSocket, nbytes: int) -> None:
        calls.append(("updated", id(self)))
        buffer_updated(self, nbytes)

    monkeypatch.setattr(WebSocket, "get_buffer", spy_get)
    monkeypatch.setattr(WebSocket, "buffer_updated", spy_updated)
    return calls


def assert_read_buffer_handed_back_to_back(calls: list[tuple[str, int]]) -> None:
    """The one read buffer per thread is safe only if the transport calls get_buffer() and
    buffer_updated() of one protocol back to back (see wsfast.asyncio.connection)."""
    assert len(calls) > 400
    for i, (what, who) in enumerate(calls):
        if what == "updated":
            assert calls[i - 1] == ("get", who)
