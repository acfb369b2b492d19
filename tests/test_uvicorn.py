"""wsfast.uvicorn.WSFastProtocol under a real uvicorn: in this process (uvicorn.Server on a
socket of 127.0.0.1, port 0) for what needs the protocol object, and as
``uvicorn --ws wsfast.uvicorn:WSFastProtocol`` in a subprocess with a Starlette application
(tests/uvicorn_app.py) for what a user does. Skipped without uvicorn and starlette
(``pip install "wsfast[uvicorn]" starlette``); uvicorn's own WebSocket tests run against
the protocol in integrations/uvicorn_suite.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from wsfast import ClientConnection
from wsfast.asyncio import ConnectionClosed, connect


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 60)

    return asyncio.run(bounded())


uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from uvicorn_support import UvicornProcess  # noqa: E402

from wsfast.uvicorn import WSFastProtocol  # noqa: E402

websockets_client = pytest.importorskip("websockets.asyncio.client")
websockets_exceptions = pytest.importorskip("websockets.exceptions")

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@asynccontextmanager
async def serve(app: App, **options: Any) -> AsyncIterator[tuple[Any, int]]:
    """uvicorn.Server with WSFastProtocol in this loop; yields (server, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, ws=WSFastProtocol, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        sock.close()


async def only_connection(server: Any) -> WSFastProtocol:
    for _ in range(200):
        connections = [c for c in server.server_state.connections if isinstance(c, WSFastProtocol)]
        if connections:
            return connections[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no WebSocket connection on the server")


async def open_raw(port: int) -> tuple[socket.socket, Any]:
    """A non-blocking socket with a completed handshake and its sans-I/O ClientConnection."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    client = ClientConnection.from_uri(f"ws://127.0.0.1:{port}/")
    await loop.sock_sendall(sock, client.data_to_send())
    while client.state.name == "CONNECTING":
        data = await loop.sock_recv(sock, 4096)
        assert data, "the server closed during the handshake"
        client.receive_data(data)
    assert client.state.name == "OPEN", client.events()
    return sock, client


async def idle_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, then waits for the disconnect."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


# --- keepalive (what uvicorn's keepalive tests check through its own classes) -------------


def test_keepalive_pings_and_stays_open() -> None:
    async def main() -> None:
        async with serve(idle_app, ws_ping_interval=0.1, ws_ping_timeout=5.0) as (server, port):
            async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None):
                protocol = await only_connection(server)
                while protocol.ping_sent_at == 0.0:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)
                assert protocol.last_ping_rtt > 0.0  # the pong came back and counted
                assert not protocol.transport.is_closing()

    run(main())


def test_keepalive_disabled() -> None:
    async def main() -> None:
        async with serve(idle_app, ws_ping_interval=None) as (server, port):
            async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None):
                protocol = await only_connection(server)
                await asyncio.sleep(0.1)
                assert protocol.ping_timer is None and protocol.ping_sent_at == 0.0

    run(main())


# --- bounds ---------------------------------------------------------------------------------


def test_one_read_queues_at_most_a_slice_beyond_ws_max_queue() -> None:
    """A burst the application does not read, arriving in one read: the queue stops near
    ws_max_queue, the rest of the read waits unparsed with reading paused, and every message
    arrives in order once the application reads."""
    from wsfast.uvicorn import _SLICE

    proceed = asyncio.Event()
    received: list[str] = []
    count = 10_000  # 10 bytes each: 100 KB, more than one slice

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await proceed.wait()
        while len(received) < count:
            message = await receive()
            assert message["type"] == "websocket.receive", message
            received.append(message["text"])

    async def main() -> None:
        async with serve(app, ws_max_queue=4) as (server, port):
            sock, client = await open_raw(port)
            with sock:
                protocol = await only_connection(server)
                for i in range(count):
                    client.send_text(f"{i:04x}")
                burst = client.data_to_send()
                # The whole burst waits in the socket, so that the server reads it at once.
                protocol.transport.pause_reading()
                await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(sock, burst), 10)
                await asyncio.sleep(0.2)
                protocol.transport.resume_reading()
                deadline = time.monotonic() + 10
                while not protocol._queue and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert protocol._unparsed, "the burst was parsed whole"
                assert 4 <= len(protocol._queue) <= 4 + _SLICE // 10
                assert protocol.transport.is_reading() is False
                proceed.set()
                while len(received) < count and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert received == [f"{i:04x}" for i in range(count)]

    run(main())


def test_close_reads_past_a_full_queue_to_the_peers_close() -> None:
    """The application closes without reading a full queue and a held-back read: what is
    held back is parsed (and dropped) up to the peer's close frame, so the closing handshake
    ends at once instead of at the close timeout."""
    close_now = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await close_now.wait()
        await send({"type": "websocket.close", "code": 1000})

    async def main() -> float:
        async with serve(app, ws_max_queue=4) as (server, port):
            loop = asyncio.get_running_loop()
            sock, client = await open_raw(port)
            with sock:
                protocol = await only_connection(server)
                for i in range(10_000):
                    client.send_text(f"{i:04x}")
                protocol.transport.pause_reading()
                await asyncio.wait_for(loop.sock_sendall(sock, client.data_to_send()), 10)
                await asyncio.sleep(0.2)
                protocol.transport.resume_reading()
                while not protocol._unparsed:
                    await asyncio.sleep(0.01)
                close_now.set()
                t0 = time.monotonic()
                while client.state.name == "OPEN":
                    data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
                    assert data
                    client.receive_data(data)
                await loop.sock_sendall(sock, client.data_to_send())  # our close reply
                while await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
                    pass  # until the server closes TCP
                return time.monotonic() - t0

    assert run(main()) < 3.0  # the close timeout is 10 s


def test_reading_stops_while_the_write_buffer_is_full() -> None:
    """A peer that floods pings and never reads: the pongs stop at the transport's write
    buffer (reading pauses with writing), not in unbounded memory."""

    async def main() -> None:
        async with serve(idle_app) as (server, port):
            sock, client = await open_raw(port)
            try:
                protocol = await only_connection(server)
                for _ in range(1000):
                    client.send_ping(b"p" * 125)
                chunk = client.data_to_send()  # 131 KB of pings, answered by 127 KB of pongs
                loop = asyncio.get_running_loop()
                sent = 0
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and sent < 64 * len(chunk):
                    try:
                        await asyncio.wait_for(loop.sock_sendall(sock, chunk), 1.0)
                    except TimeoutError:
                        break  # the server stopped reading: the flood is held back by TCP
                    sent += len(chunk)
                # Paused with writing; reading may resume for a moment while the kernel
                # grows the socket's buffers, so the pause is awaited (bounded), not sampled.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not (
                    protocol._write_paused and protocol.transport.is_reading() is False
                ):
                    await asyncio.sleep(0.05)
                assert protocol._write_paused
                assert protocol.transport.is_reading() is False
                # At most the high-water mark plus the pongs of one read (256 KiB).
                assert protocol.transport.get_write_buffer_size() < 1024 * 1024
            finally:
                sock.close()

    run(main())


async def accept_and_flood(receive: Any, send: Any) -> Exception:
    """Accepts, then sends 64 KiB messages until send() raises; returns what it raised."""
    await receive()
    await send({"type": "websocket.accept"})
    try:
        while True:
            await send({"type": "websocket.send", "bytes": b"x" * 65536})
    except Exception as exc:
        return exc


async def writing_paused(protocol: WSFastProtocol) -> None:
    deadline = time.monotonic() + 10
    while not protocol._write_paused and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert protocol._write_paused


def test_closing_is_bounded_when_the_peer_never_reads() -> None:
    """A peer that never reads what the server writes: no pong comes, the keepalive closes,
    and the close frame waits behind a full write buffer, so closing TCP gracefully never
    ends; the transport is dropped after close_timeout (and the blocked send() ends)."""
    outcome: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        outcome.append(await accept_and_flood(receive, send))

    async def main() -> None:
        async with serve(app, ws_ping_interval=0.5, ws_ping_timeout=0.5) as (server, port):
            sock, client = await open_raw(port)
            with sock:
                protocol = await only_connection(server)
                protocol.close_timeout = 0.3
                await writing_paused(protocol)
                deadline = time.monotonic() + 5
                while not protocol.disconnected and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert protocol.disconnected, "the connection outlived close_timeout"
                while not outcome and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert outcome

    run(main())


def test_send_after_losing_a_full_transport_raises() -> None:
    """The transport is lost while writing is paused (resume_writing never comes): a send()
    then raises ClientDisconnected at once instead of waiting for the buffer to drain."""
    outcome: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        outcome.append(type(await accept_and_flood(receive, send)).__name__)
        try:
            await asyncio.wait_for(send({"type": "websocket.send", "bytes": b"x"}), 2)
        except Exception as exc:
            outcome.append(type(exc).__name__)

    async def main() -> None:
        async with serve(app) as (server, port):
            sock, client = await open_raw(port)
            with sock:
                await writing_paused(await only_connection(server))
            deadline = time.monotonic() + 10
            # (the socket is closed: the server's next write fails and loses the transport)
            while len(outcome) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    run(main())
    assert outcome == ["ClientDisconnected", "ClientDisconnected"], outcome


def test_cancelled_sends_while_writing_is_paused_leave_nothing_behind() -> None:
    """send() calls that time out while the peer does not read (an application retrying with
    wait_for) must not each leave a waiter behind until writing resumes."""
    import gc

    counts: list[int] = []

    def live_futures() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Future))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while not app_protocol:
            await asyncio.sleep(0.01)
        protocol = app_protocol[0]
        while not protocol._write_paused:
            await send({"type": "websocket.send", "bytes": b"x" * 65536})
        for rounds in (10, 200):
            for _ in range(rounds):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(send({"type": "websocket.send", "text": "x"}), 0.001)
            counts.append(live_futures())

    app_protocol: list[WSFastProtocol] = []

    async def main() -> None:
        async with serve(app, ws_ping_interval=None) as (server, port):
            sock, client = await open_raw(port)
            with sock:
                app_protocol.append(await only_connection(server))
                deadline = time.monotonic() + 20
                while len(counts) < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)

    run(main())
    assert len(counts) == 2 and counts[1] <= counts[0], counts


def test_receive_from_two_tasks_and_cancelled() -> None:
    """Two tasks waiting in receive() at once each get a message (as with uvicorn's own
    queue), and a receive() cancelled after its message was handed over loses nothing."""
    got: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        first = asyncio.ensure_future(receive())
        second = asyncio.ensure_future(receive())
        got.extend(await asyncio.wait_for(asyncio.gather(first, second), 5))
        protocol = app_protocol[0]
        cancelled = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # waiting
        protocol._deliver({"type": "websocket.receive", "text": "handed over"})
        cancelled.cancel()  # before it could return the message
        got.append(await asyncio.wait_for(receive(), 5))

    app_protocol: list[WSFastProtocol] = []

    async def main() -> None:
        async with serve(app) as (server, port):
            sock, client = await open_raw(port)
            with sock:
                app_protocol.append(await only_connection(server))
                await asyncio.sleep(0.1)  # both receive() calls wait
                client.send_text("a")
                client.send_text("b")
                await asyncio.get_running_loop().sock_sendall(sock, client.data_to_send())
                deadline = time.monotonic() + 10
                while len(got) < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)

    run(main())
    assert sorted(m.get("text") for m in got[:2]) == ["a", "b"]
    assert got[2] == {"type": "websocket.receive", "text": "handed over"}


def run_accepted_app(body: Any, got: list[Any], want: int) -> None:
    """Serve an application that accepts, then runs ``body(receive, protocol)`` (the
    connection's WSFastProtocol); a raw client stays connected until ``got`` holds ``want``
    items (10 s at most)."""
    app_protocol: list[WSFastProtocol] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while not app_protocol:
            await asyncio.sleep(0.01)
        await body(receive, app_protocol[0])

    async def main() -> None:
        async with serve(app) as (server, port):
            sock, _client = await open_raw(port)
            with sock:
                app_protocol.append(await only_connection(server))
                deadline = time.monotonic() + 10
                while len(got) < want and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)

    run(main())


def test_receive_cancelled_after_handover_while_another_waits() -> None:
    """A receive() cancelled after its message was handed over, while another receive() is
    already waiting, passes the message to the waiting one instead of queueing it (where no
    waiting call would ever see it). The earlier test reaches this on Python 3.12+, whose
    wait_for() awaits receive() in the calling task at once; here it is reached directly."""
    got: list[Any] = []

    async def body(receive: Any, protocol: WSFastProtocol) -> None:
        cancelled = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # waiting first
        waiting = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # waiting second
        protocol._deliver({"type": "websocket.receive", "text": "handed over"})
        cancelled.cancel()  # before it could return the message
        got.append(await asyncio.wait_for(waiting, 5))
        assert cancelled.cancelled()

    run_accepted_app(body, got, 1)
    assert got == [{"type": "websocket.receive", "text": "handed over"}]


def test_receive_again_after_cancelling_one_handed_a_message_keeps_the_order() -> None:
    """An application that cancels its receive() after a message was handed to it and then
    calls receive() itself gets that message before the one queued behind it (as with
    uvicorn's own queue), not the queued one first."""
    got: list[Any] = []

    async def body(receive: Any, protocol: WSFastProtocol) -> None:
        cancelled = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # waiting
        protocol._on_message({"type": "websocket.receive", "text": "1"})  # one read: handed
        protocol._on_message({"type": "websocket.receive", "text": "2"})  # and queued
        cancelled.cancel()  # before it could return the first
        got.append(await receive())  # (in this task at once, on every version)
        got.append(await receive())

    run_accepted_app(body, got, 2)
    assert [m["text"] for m in got] == ["1", "2"]


def test_data_before_the_answer_is_bounded() -> None:
    """A client that sends more than the connection keeps before the server has answered
    (RFC 6455 §4.1: it must wait) gets 400; the application's late accept raises OSError."""
    outcome: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await asyncio.sleep(0.3)
        outcome.append(await receive())
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            outcome.append(exc)

    async def main() -> bytes:
        async with serve(app) as (server, port):
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            with sock:
                client = ClientConnection.from_uri(f"ws://127.0.0.1:{port}/")
                await loop.sock_sendall(sock, client.data_to_send())
                await only_connection(server)  # uvicorn has handed the connection over
                await loop.sock_sendall(sock, b"x" * 40_000)
                answer = b""
                while chunk := await loop.sock_recv(sock, 65536):
                    answer += chunk
            while len(outcome) < 2:
                await asyncio.sleep(0.02)
            return answer

    answer = run(main())
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert outcome[0] == {"type": "websocket.disconnect", "code": 1006}
    assert isinstance(outcome[1], OSError)


# --- the whole stack in a subprocess: uvicorn --ws wsfast.uvicorn:WSFastProtocol ------------


@pytest.fixture(scope="module")
def uvicorn_server() -> Any:
    server = UvicornProcess()
    yield server
    print(server.stop())


def test_wsfast_client_echo_and_compression(uvicorn_server: UvicornProcess) -> None:
    async def main() -> None:
        url = f"ws://127.0.0.1:{uvicorn_server.port}/"
        async with connect(url, max_message_size=None) as ws:
            names = [ext.name for ext in ws._conn.extensions]  # type: ignore[attr-defined]
            assert names == ["permessage-deflate"]
            for message in ("x" * 64, "é" * 40_000, os.urandom(64), os.urandom(70_000)):
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send(b"a" * (1 << 20))  # compressed well: 1 MiB in a few KB
            assert await ws.recv() == b"a" * (1 << 20)
        async with connect(url, compression=None) as ws:
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(main())


def test_websockets_client_scope_subprotocol_close_code(uvicorn_server: UvicornProcess) -> None:
    async def main() -> None:
        url = f"ws://127.0.0.1:{uvicorn_server.port}"
        async with websockets_client.connect(f"{url}/") as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
        async with websockets_client.connect(
            f"{url}/info?a=1", subprotocols=["chat", "other"]
        ) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-app"] == "yes"
            assert ws.response.headers["server"] == "uvicorn"
            info = json.loads(await ws.recv())
            with pytest.raises(websockets_exceptions.ConnectionClosedError) as closed:
                await ws.recv()
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "done")
        assert info["path"] == "/info" and info["query_string"] == "a=1"
        assert info["subprotocols"] == ["chat", "other"] and info["scheme"] == "ws"
        assert info["extensions"] == ["websocket.http.response"]
        assert "sec-websocket-key" in info["header_names"]
        assert all(name == name.lower() for name in info["header_names"])

    run(main())


def test_denial_response(uvicorn_server: UvicornProcess) -> None:
    async def main() -> None:
        with pytest.raises(websockets_exceptions.InvalidStatus) as refused:
            async with websockets_client.connect(f"ws://127.0.0.1:{uvicorn_server.port}/deny"):
                pass
        response = refused.value.response
        assert response.status_code == 403 and response.body == b"go away"
        assert response.headers["content-length"] == "7"

    run(main())
    log = uvicorn_server.output()
    assert '"WebSocket /" [accepted]' in log
    assert '"WebSocket /deny" 403' in log


def test_graceful_shutdown_closes_with_1012() -> None:
    server = UvicornProcess()
    try:

        async def main() -> int | None:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                server.process.send_signal(__import__("signal").SIGINT)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        assert run(main()) == 1012
    finally:
        server.stop()
