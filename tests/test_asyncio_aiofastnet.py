"""serve() and connect() with ``transport="aiofastnet"``: the asyncio layer's essential
behaviours on aiofastnet's compiled transports, on asyncio's loop and on uvloop.

Most tests run on both transports (``loop`` and ``aiofastnet``), so that they show the same
behaviour, not only a working one; so do, in their own modules, the reading pause at
max_queue (test_asyncio.py), the frames held back when a TLS peer ends (test_asyncio_review.py)
and the shared read buffer's condition (test_asyncio_faults.py; with TLS here). Skipped when
aiofastnet is not installed (it is in the test extra). 127.0.0.1 only, every wait bounded.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import ssl
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asyncio_helpers import (
    HOST,
    TIMEOUT,
    TRANSPORTS,
    accept_raw,
    assert_read_buffer_handed_back_to_back,
    client_frame,
    echo,
    echo_now,
    only_connection,
    raw_client,
    raw_upgrade,
    run,
    send_until_stalled,
    spy_on_read_buffer,
    tls_contexts,
    uri,
)

import wsfast
from wsfast.asyncio import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    ServerWebSocket,
    WebSocket,
    broadcast,
    connect,
    serve,
)
from wsfast.asyncio._transport import TransportName

MiB = 1024 * 1024
LOOPS = ["asyncio", "uvloop"]


@pytest.fixture
def aiofastnet() -> Any:
    return pytest.importorskip("aiofastnet")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> TransportName:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=LOOPS)
def run_on(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    """``run`` on a fresh loop of the parametrized kind."""
    return functools.partial(run, loop=request.param)


def transport_of(ws: WebSocket) -> Any:
    assert ws._transport is not None
    return ws._transport


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    return tls_contexts(tmp_path_factory.mktemp("tls"))


# --- choosing the transport ------------------------------------------------------------------


def test_an_unknown_transport_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'loop' or 'aiofastnet'"):
        serve(echo, HOST, 0, transport="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'loop' or 'aiofastnet'"):
        connect("ws://127.0.0.1:1/", transport="uvloop")  # type: ignore[arg-type]


def test_without_aiofastnet_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiofastnet", None)  # import aiofastnet -> ImportError
    with pytest.raises(ImportError, match=r"wsfast\[fastnet\]"):
        serve(echo, HOST, 0, transport="aiofastnet")
    with pytest.raises(ImportError, match=r"wsfast\[fastnet\]"):
        connect("ws://127.0.0.1:1/", transport="aiofastnet")
    serve(echo, HOST, 0)  # the default never imports it
    connect("ws://127.0.0.1:1/")


def test_the_default_is_the_loops_own_transport(aiofastnet: Any) -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                assert isinstance(transport_of(ws), asyncio.Transport)
                assert not type(transport_of(ws)).__module__.startswith("aiofastnet")
            async with connect(uri(server), transport="aiofastnet") as ws:
                assert type(transport_of(ws)).__module__.startswith("aiofastnet")

    run(main())


def test_on_a_loop_patched_by_aiofastnet_the_default_uses_it(aiofastnet: Any) -> None:
    """The other way to run on aiofastnet: patch the loop (aiofastnet.patch_loop, or
    asyncio.run(..., loop_factory=aiofastnet.loop_factory())); "loop" then means aiofastnet."""

    async def main() -> None:
        aiofastnet.patch_loop()
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as ws:
                assert type(transport_of(ws)).__module__.startswith("aiofastnet")
                assert type(transport_of(only_connection(server))).__module__.startswith(
                    "aiofastnet"
                )
                await ws.send("patched")
                assert await ws.recv() == "patched"

    run(main())


# --- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("client_transport", ["loop", "aiofastnet"])
def test_echo_text_binary_and_large_messages(
    aiofastnet: Any, run_on: Any, client_transport: TransportName
) -> None:
    """An aiofastnet server, with a client on either transport."""
    messages: list[str | bytes] = ["hello", "héllo wörld 日本語 🎉", "", b"", b"\x00\xff" * 40000]
    messages += [bytes(range(256)) * 4096, "é" * (MiB // 2 - 1)]  # 1 MiB, the default limit

    async def main() -> None:
        async with serve(echo, HOST, 0, transport="aiofastnet") as server:
            async with connect(uri(server), transport=client_transport) as ws:
                assert type(transport_of(only_connection(server))).__module__.startswith(
                    "aiofastnet"
                )
                for message in messages:
                    await ws.send(message)
                    reply = await ws.recv()
                    assert type(reply) is type(message) and reply == message
                await ws.send(memoryview(b"xyz"))
                assert await ws.recv() == b"xyz"
                assert ws.remote_address == (HOST, server.port)
                assert ws.local_address[0] == HOST
            assert ws.close_code == 1000

    run_on(main())


def test_on_message_callbacks_and_many_clients(aiofastnet: Any, run_on: Any) -> None:
    async def main() -> None:
        async with serve(None, HOST, 0, on_message=echo_now, transport="aiofastnet") as server:

            async def one(i: int) -> None:
                async with connect(uri(server), transport="aiofastnet") as ws:
                    for j in range(20):
                        await ws.send(f"{i}:{j}")
                        assert await ws.recv() == f"{i}:{j}"

            await asyncio.gather(*(one(i) for i in range(30)))

    run_on(main())


def test_ping_returns_a_latency(aiofastnet: Any, run_on: Any) -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, transport="aiofastnet") as server:
            async with connect(uri(server), transport="aiofastnet") as ws:
                latency = await ws.ping(b"hi")
                assert 0 <= latency < TIMEOUT

    run_on(main())


def test_a_message_over_max_message_size_closes_with_1009(transport: TransportName) -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, max_message_size=1000, transport=transport) as server:
            async with connect(uri(server), transport=transport) as ws:
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009

    run(main())


# --- closing ---------------------------------------------------------------------------------


def test_close_codes_both_ways(transport: TransportName) -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerWebSocket) -> None:
        if ws.path == "/fail":
            raise RuntimeError("boom")
        try:
            async for _ in ws:
                pass
        finally:
            seen["code"], seen["reason"] = ws.close_code, ws.close_reason

    async def main() -> None:
        async with serve(handler, HOST, 0, transport=transport) as server:
            ws = await connect(uri(server), transport=transport)
            await ws.close(4000, "bye")
            assert ws.close_code == 4000
            while "code" not in seen:
                await asyncio.sleep(0.01)
            assert (seen["code"], seen["reason"]) == (4000, "bye")

            async with connect(uri(server, "/fail"), transport=transport) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1011

            ws = await connect(uri(server), transport=transport)
        # Leaving serve() closes the connections it holds with 1001.
        with pytest.raises(ConnectionClosedOK) as ok:
            await ws.recv()
        assert ok.value.code == 1001

    run(main())


def test_a_reset_and_an_eof_without_a_close_frame_are_1006(transport: TransportName) -> None:
    async def main() -> None:
        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_raw(reader, writer)
            if (await reader.readexactly(1)) == b"\x81":  # the client's first frame: text
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # a reset
            else:
                writer.close()  # a plain FIN

        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        cases: list[tuple[str | bytes, type[OSError] | None]] = [("text", OSError), (b"b", None)]
        for first, cause in cases:
            ws = await connect(f"ws://{HOST}:{port}/", transport=transport)
            await ws.send(first)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1006
            if cause is not None:
                assert isinstance(info.value.__cause__, cause)
            await ws.wait_closed()
        server.close()

    run(main())


def test_a_half_closing_client_is_answered_and_dropped(transport: TransportName) -> None:
    """A client that sends a message and then shuts its sending side down: the message is
    handled, its echo sent, and the server ends the connection (1006, no close frame)."""
    seen: dict[str, Any] = {}

    async def handler(ws: ServerWebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed as exc:
            seen["code"] = exc.code
        seen.setdefault("code", ws.close_code)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with serve(handler, HOST, 0, transport=transport) as server:
            sock = await raw_client(server.port)
            await loop.sock_sendall(sock, client_frame(wsfast.Opcode.TEXT, b"last words"))
            sock.shutdown(socket.SHUT_WR)
            parser = wsfast.FrameParser(require_mask=False)
            frames: list[Any] = []
            while True:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
                if not data:
                    break  # the server closed the TCP connection
                frames += parser.feed(data)
            assert frames[0].payload == b"last words"
            while "code" not in seen:
                await asyncio.sleep(0.01)
            assert seen["code"] == 1006
            sock.close()

    run(main())


# --- backpressure ----------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["echo", "ping-flood"])
def test_a_peer_that_never_reads_leaves_the_write_buffer_bounded(
    transport: TransportName, attack: str
) -> None:
    """A client that floods an echo server (or sends pings) and reads nothing: the server
    stops reading and TCP pushes back on the client; it still serves others meanwhile."""

    async def main() -> None:
        if attack == "echo":
            server_cm = serve(
                None, HOST, 0, on_message=echo_now, write_limit=64 * 1024, transport=transport
            )
            data = client_frame(wsfast.Opcode.BINARY, b"e" * 16384)
        else:
            server_cm = serve(echo, HOST, 0, write_limit=64 * 1024, transport=transport)
            data = client_frame(wsfast.Opcode.PING, b"p" * 125) * 512
        async with server_cm as server:
            sock = await raw_client(server.port, rcvbuf=4096)
            sent = await send_until_stalled(sock, data, 48 * MiB)
            ws = only_connection(server)
            buffered = transport_of(ws).get_write_buffer_size()
            assert buffered <= 64 * 1024 + 512 * 1024, (sent, buffered)
            assert sent < 48 * MiB
            assert ws.writing_paused and not transport_of(ws).is_reading()
            async with connect(uri(server), transport=transport) as other:
                await other.send("hi")
                assert await other.recv() == "hi"
            sock.close()

    run(main())


def test_a_tls_peer_that_never_reads_is_pushed_back(
    transport: TransportName, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """The same flood over TLS: the server's write buffer stays near write_limit."""
    server_ctx, client_ctx = tls

    async def main() -> None:
        async with serve(
            None,
            HOST,
            0,
            on_message=echo_now,
            ssl=server_ctx,
            write_limit=64 * 1024,
            transport=transport,
        ) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port, ssl=client_ctx)
            writer.write(raw_upgrade(server.port))
            await reader.readuntil(b"\r\n\r\n")
            frame = client_frame(wsfast.Opcode.BINARY, b"e" * 16384)
            sent = 0
            while sent < 48 * MiB:
                writer.write(frame)
                sent += len(frame)
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except asyncio.TimeoutError:
                    break  # the server stopped reading
            assert sent < 48 * MiB
            ws = only_connection(server)
            assert ws.writing_paused and not transport_of(ws).is_reading()
            assert transport_of(ws).get_write_buffer_size() <= 64 * 1024 + 512 * 1024
            writer.transport.abort()

    run(main())


def test_send_waits_while_the_server_reads_nothing(transport: TransportName) -> None:
    """The client's send() waits above write_limit; it goes on once the peer reads."""

    async def main() -> None:
        go = asyncio.Event()

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_raw(reader, writer)
            await go.wait()
            while await reader.read(65536):
                pass
            writer.close()

        server = await asyncio.start_server(peer, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(
            f"ws://{HOST}:{port}/", write_limit=64 * 1024, close_timeout=0.5, transport=transport
        )
        blocked = None
        for _ in range(4096):  # at most 256 MiB
            send = asyncio.ensure_future(ws.send(b"b" * 65536))
            await asyncio.sleep(0)
            if not send.done():
                blocked = send
                break
            await send
        assert blocked is not None and ws.writing_paused
        assert transport_of(ws).get_write_buffer_size() <= 64 * 1024 + 65536 + 16
        await asyncio.sleep(0.2)
        assert not blocked.done()
        go.set()
        await asyncio.wait_for(blocked, 5)
        await ws.close()
        server.close()

    run(main())


def test_broadcast(transport: TransportName) -> None:
    """broadcast() writes to transports other than asyncio's own through write()."""

    async def main() -> None:
        async with serve(echo, HOST, 0, compression=None, transport=transport) as server:
            clients = [await connect(uri(server), transport=transport) for _ in range(3)]
            while len(server.connections) < 3:
                await asyncio.sleep(0.01)
            assert broadcast(server.connections, "to all") == 0
            assert [await ws.recv() for ws in clients] == ["to all"] * 3
            for ws in clients:
                await ws.close()

    run(main())


# --- TLS, Unix sockets, sock= --------------------------------------------------------------


def test_wss(aiofastnet: Any, run_on: Any, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls

    async def main() -> None:
        async with serve(echo, HOST, 0, ssl=server_ctx, transport="aiofastnet") as server:
            url = f"wss://{HOST}:{server.port}/"
            async with connect(url, ssl=client_ctx, transport="aiofastnet") as ws:
                assert transport_of(ws).get_extra_info("ssl_object") is not None
                messages: list[str | bytes] = ["secret", b"\x01" * (MiB // 2)]
                for message in messages:
                    await ws.send(message)
                    assert await ws.recv() == message
                assert await ws.ping() >= 0
            assert ws.close_code == 1000

    run_on(main())


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_socket_and_sock(aiofastnet: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "ws.sock")
            async with serve(echo, unix_path=path, transport="aiofastnet"):
                async with connect("ws://localhost/", unix_path=path, transport="aiofastnet") as ws:
                    await ws.send("over unix")
                    assert await ws.recv() == "over unix"
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(path)
                async with connect("ws://localhost/", sock=sock, transport="aiofastnet") as ws:
                    await ws.send("over sock=")
                    assert await ws.recv() == "over sock="

    run(main())


# --- connecting ------------------------------------------------------------------------------


def test_connecting_to_a_closed_port_raises_an_os_error(transport: TransportName) -> None:
    async def main() -> None:
        probe = socket.socket()
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        with pytest.raises(ConnectionRefusedError):
            await connect(f"ws://{HOST}:{port}/", transport=transport)

    run(main())


@pytest.mark.parametrize("how", ["cancel", "open_timeout"])
def test_a_connect_stopped_during_the_handshake_drops_the_connection(
    transport: TransportName, how: str
) -> None:
    """A server that accepts TCP and never answers the handshake: cancelling connect() (or
    its open_timeout) closes the TCP connection."""

    async def main() -> None:
        ended = asyncio.get_running_loop().create_future()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            ended.set_result(await reader.read())  # b"" once the client closed
            writer.close()

        server = await asyncio.start_server(silent, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        url = f"ws://{HOST}:{port}/"
        if how == "cancel":
            task = asyncio.ensure_future(connect(url, transport=transport))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(asyncio.TimeoutError):
                await connect(url, open_timeout=0.2, transport=transport)
        assert await asyncio.wait_for(ended, 5) == b""
        server.close()

    run(main())


def test_over_max_connections_the_answer_is_503(transport: TransportName) -> None:
    """The server hands the extra connection to another protocol (set_protocol)."""

    async def main() -> None:
        async with serve(echo, HOST, 0, max_connections=1, transport=transport) as server:
            async with connect(uri(server), transport=transport) as ws:
                with pytest.raises(InvalidHandshake) as info:
                    await connect(uri(server), transport=transport)
                assert info.value.status == 503
                await ws.send("still here")
                assert await ws.recv() == "still here"

    run(main())


def test_a_raw_request_gets_101_and_a_pipelined_frame_is_answered(transport: TransportName) -> None:
    async def main() -> None:
        async with serve(echo, HOST, 0, transport=transport) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port) + client_frame(wsfast.Opcode.TEXT, b"early"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            parser = wsfast.FrameParser(require_mask=False)
            frames: list[Any] = []
            while not frames:
                frames += parser.feed(await asyncio.wait_for(reader.read(4096), 5))
            assert frames[0].payload == b"early"
            writer.close()

    run(main())


# --- the shared read buffer ------------------------------------------------------------------


def test_aiofastnet_hands_over_the_read_buffer_back_to_back_with_tls(
    aiofastnet: Any,
    run_on: Any,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared read buffer's condition (tests/test_asyncio_faults.py checks plain TCP on
    both transports) on aiofastnet's TLS transport: many connections reading at once."""
    server_ctx, client_ctx = tls
    calls = spy_on_read_buffer(monkeypatch)

    async def main() -> None:
        async with serve(echo, HOST, 0, ssl=server_ctx, transport="aiofastnet") as server:

            async def one(i: int) -> None:
                url = f"wss://{HOST}:{server.port}/"
                async with connect(url, ssl=client_ctx, transport="aiofastnet") as ws:
                    for j in range(10):
                        message = bytes([i]) * (1 + 5000 * j)
                        await ws.send(message)
                        assert await ws.recv() == message

            await asyncio.gather(*(one(i) for i in range(20)))

    run_on(main())
    assert_read_buffer_handed_back_to_back(calls)
