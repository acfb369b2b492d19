"""What server users expect: async process_request, headers on the 101, caps with 503,
Unix sockets and connected sockets, log lines per connection. 127.0.0.1 or a Unix socket."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asyncio_helpers import HOST, echo, raw_upgrade, run, uri

import wsfast
from wsfast.asyncio import InvalidHandshake, ServerWebSocket, WebSocket, connect, serve
from wsfast.events import Request

unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")


def test_process_request_may_be_a_coroutine_function() -> None:
    async def authenticate(ws: ServerWebSocket, request: Request) -> Any:
        await asyncio.sleep(0.05)  # e.g. a database look-up
        if request.headers.get("Authorization") != "Bearer good":
            return (401, [("WWW-Authenticate", "Bearer")], b"who are you?\n")
        ws.extra_headers.append(("Set-Cookie", "session=42; HttpOnly"))
        return None

    async def main() -> None:
        async with serve(echo, HOST, 0, process_request=authenticate) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(uri(server), extra_headers=[("Authorization", "Bearer bad")])
            assert info.value.status == 401 and info.value.body == b"who are you?\n"
            async with connect(uri(server), extra_headers=[("Authorization", "Bearer good")]) as ws:
                assert ws.response_headers is not None
                assert ws.response_headers["Set-Cookie"] == "session=42; HttpOnly"
                await ws.send("in")
                assert await ws.recv() == "in"

    run(main())


def test_a_failing_coroutine_process_request_answers_500() -> None:
    async def broken(ws: ServerWebSocket, request: Request) -> Any:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    async def main() -> None:
        async with serve(echo, HOST, 0, process_request=broken) as server:
            with pytest.raises(InvalidHandshake) as info:
                await connect(uri(server))
            assert info.value.status == 500

    run(main())


def test_open_timeout_also_bounds_a_slow_process_request() -> None:
    cancelled = []

    async def stuck(ws: ServerWebSocket, request: Request) -> Any:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        async with serve(echo, HOST, 0, process_request=stuck, open_timeout=0.2) as server:
            with pytest.raises(InvalidHandshake):
                await connect(uri(server))
            await asyncio.sleep(0.05)
            assert cancelled == [True]
            assert not server.connections

    run(main())


def test_extra_headers_go_on_every_101() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, extra_headers=[("X-Server", "wsfast-test")]) as server:
            async with connect(uri(server)) as ws:
                assert ws.response_headers is not None
                assert ws.response_headers["X-Server"] == "wsfast-test"

    run(main())


async def _handshake_status(port: int) -> int:
    """Connect, send a valid handshake, return the status of the answer."""
    try:
        ws = await connect(f"ws://{HOST}:{port}/")
    except InvalidHandshake as exc:
        return exc.status
    await ws.close()
    return 101


def test_max_handshakes_refuses_with_503() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, max_handshakes=2, open_timeout=5) as server:
            silent = [await asyncio.open_connection(HOST, server.port) for _ in range(2)]
            while len(server.connections) < 2:
                await asyncio.sleep(0.01)
            assert await _handshake_status(server.port) == 503
            reader, writer = silent.pop()
            writer.close()
            while len(server.connections) > 1:
                await asyncio.sleep(0.01)
            assert await _handshake_status(server.port) == 101
            for _, writer in silent:
                writer.close()

    run(main())


def test_max_connections_refuses_with_503() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, max_connections=2) as server:
            first = await connect(uri(server))
            second = await connect(uri(server))
            assert await _handshake_status(server.port) == 503
            await first.close()
            while len(server.connections) > 1:
                await asyncio.sleep(0.01)
            assert await _handshake_status(server.port) == 101
            await second.close()

    run(main())


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_a_burst_of_connections_never_exceeds_the_cap(loop_name: str) -> None:
    """The cap is counted as connections arrive, not when the loop creates their protocol
    (a burst of accepts creates many protocols before any connection is made)."""

    async def status_of(port: int) -> tuple[bytes, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(raw_upgrade(port))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return head[9:12], writer  # kept open: the 101s count against the cap

    async def main() -> None:
        async with serve(echo, HOST, 0, max_connections=3) as server:
            answers = await asyncio.gather(*(status_of(server.port) for _ in range(30)))
            statuses = [status for status, _ in answers]
            assert statuses.count(b"101") == 3 and statuses.count(b"503") == 27
            assert len(server.connections) == 3
            for _, writer in answers:
                writer.close()

    run(main(), loop=loop_name)


@unix_only
def test_serve_on_a_unix_path_and_connect_with_a_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")

    async def main() -> None:
        async with serve(echo, unix_path=path) as server:
            assert server.sockets
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            async with connect("ws://localhost/chat", sock=sock) as ws:
                await ws.send("over unix")
                assert await ws.recv() == "over unix"
            async with connect("ws://localhost/chat", unix_path=path) as ws:
                await ws.send(b"again")
                assert await ws.recv() == b"again"

    run(main())


def test_connect_with_a_connected_tcp_socket() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            sock = socket.create_connection((HOST, server.port))
            async with connect(uri(server), sock=sock) as ws:
                await ws.send("tcp")
                assert await ws.recv() == "tcp"

    run(main())


@unix_only
def test_unix_sockets_on_uvloop(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")

    async def main() -> None:
        async with serve(echo, unix_path=path):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            async with connect("ws://localhost/", sock=sock) as ws:
                await ws.send("uv")
                assert await ws.recv() == "uv"

    run(main(), loop="uvloop")


def test_connections_are_logged_at_info_on_wsfast_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> int:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server, "/room/1?x=y")) as ws:
                await ws.send("hi")
                await ws.recv()
                (server_ws,) = server.connections
                ident = server_ws.id
            await asyncio.sleep(0.05)
        return ident

    with caplog.at_level(logging.INFO, logger="wsfast.server"):
        ident = run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "wsfast.server"]
    opened = [line for line in lines if "opened" in line]
    closed = [line for line in lines if "closed" in line]
    assert len(opened) == 1 and len(closed) == 1, lines
    assert f"connection {ident}" in opened[0] and HOST in opened[0] and "/room/1" in opened[0]
    assert f"connection {ident}" in closed[0] and "1000" in closed[0] and " s" in closed[0]


_ONE_CONNECTION = """
import asyncio, logging, sys
from wsfast.asyncio import connect, serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/here") as ws:
            await ws.send("x")
            await ws.recv()
        await asyncio.sleep(0.05)

if sys.argv[1:] == ["info"]:
    logging.basicConfig(level=logging.INFO)
asyncio.run(main())
"""


@pytest.mark.parametrize("configured", [False, True])
def test_info_lines_show_only_when_the_application_enables_them(configured: bool) -> None:
    """In a process of its own: pytest's log capture would hide Python's last-resort output."""
    args = [sys.executable, "-c", _ONE_CONNECTION] + (["info"] if configured else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    if configured:
        assert "INFO:wsfast.server:connection" in done.stderr and "/here" in done.stderr
        assert done.stderr.count("opened") == 1 and done.stderr.count("closed") == 1
    else:
        assert done.stderr == ""


def test_debug_lines_carry_the_connection_id(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> int:
        async with serve(echo, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            await reader.readuntil(b"\r\n\r\n")
            (ws,) = server.connections
            writer.write(wsfast.build_header(wsfast.Opcode.TEXT, 2) + b"hi")  # not masked
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return ws.id

    with caplog.at_level(logging.DEBUG, logger="wsfast"):
        ident = run(main())
    failing = [r.getMessage() for r in caplog.records if "must be masked" in r.getMessage()]
    assert failing and all(f"connection {ident}" in line for line in failing), failing


def test_connection_ids_are_distinct() -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            clients = [await connect(uri(server)) for _ in range(3)]
            ids = {ws.id for ws in server.connections} | {ws.id for ws in clients}
            assert len(ids) == 6
            for ws in clients:
                await ws.close()

    run(main())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_queue": 0}, ValueError),
        ({"max_queue": 1e3}, TypeError),
        ({"max_message_size": -1}, ValueError),
        ({"max_frame_size": -1}, ValueError),
    ],
)
def test_serve_refuses_an_option_every_connection_would_refuse(
    options: dict[str, Any], error: type[Exception]
) -> None:
    """An option the connections check is refused by serve() itself, once, when it is
    called: not by each connection as it arrives (the server would listen, then drop every
    client in the opening handshake)."""
    with pytest.raises(error):
        serve(echo, HOST, 0, **options)
    serve(echo, HOST, 0, max_queue=1, max_message_size=0, max_frame_size=None)


@pytest.mark.parametrize(("max_queue", "error"), [(0, ValueError), (1e3, TypeError)])
def test_connect_refuses_a_bad_max_queue_before_connecting(
    max_queue: Any, error: type[Exception]
) -> None:
    """connect() checks max_queue when called, as serve() does: not in the protocol
    factory, after a TCP connection to the server was made."""
    with pytest.raises(error):
        connect("ws://127.0.0.1:1/", max_queue=max_queue)


@pytest.mark.parametrize(("write_limit", "error"), [(-1, ValueError), ("10", TypeError)])
def test_a_write_limit_the_transport_would_refuse_is_refused_at_once(
    write_limit: Any, error: type[Exception]
) -> None:
    """serve(), connect() and WebSocket refuse it when called: the transport refused it in
    connection_made(), so that a server's connection went untracked (server.close() never
    closed it) on asyncio's loop and never opened on uvloop."""
    with pytest.raises(error):
        serve(echo, HOST, 0, write_limit=write_limit)
    with pytest.raises(error):
        connect("ws://127.0.0.1:1/", write_limit=write_limit)

    async def main() -> None:
        from wsfast.connection import ServerConnection

        with pytest.raises(error):
            WebSocket(ServerConnection(), write_limit=write_limit)

    run(main())
    serve(echo, HOST, 0, write_limit=0)
