"""The asyncio layer after the merge of backpressure and permessage-deflate's backlog: hostile
peers and careless callers, each test a defect found by review. 127.0.0.1 only, every wait
bounded."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from typing import Any

import pytest
from asyncio_helpers import (
    HOST,
    TRANSPORTS,
    client_frame,
    echo,
    raw_client,
    raw_upgrade,
    run,
    tls_contexts,
    uri,
)
from test_asyncio_deflate import zeros_frame

from wsfast import ClientConnection, Opcode
from wsfast.asyncio import ConnectionClosed, ServerWebSocket, connect, serve
from wsfast.connection import InvalidState
from wsfast.permessage_deflate import ClientDeflateFactory

MiB = 1024 * 1024


def test_drain_after_the_connection_is_lost_while_writing_is_paused_raises() -> None:
    """drain() used to wait forever once the transport was gone with writing paused: nothing
    resumes writing after connection_lost, and each call made a new waiter."""
    outcome: dict[str, Any] = {}

    async def main() -> None:
        paused = asyncio.get_running_loop().create_future()

        async def flood(ws: ServerWebSocket) -> None:
            while not ws.writing_paused:
                ws.send_nowait(b"x" * 65536)
                await asyncio.sleep(0)
            paused.set_result(None)
            await ws.wait_closed()
            try:
                await asyncio.wait_for(ws.drain(), 2)
            except ConnectionClosed as exc:
                outcome["raised"] = exc.code
            except asyncio.TimeoutError:
                outcome["raised"] = "hang"

        async with serve(flood, HOST, 0, write_limit=16384, close_timeout=0.5) as server:
            sock = await raw_client(server.port, rcvbuf=4096)
            await asyncio.wait_for(paused, 5)
            sock.close()
            while "raised" not in outcome:
                await asyncio.sleep(0.01)

    run(main())
    assert outcome["raised"] == 1006, outcome


def test_sending_before_the_handshake_is_complete_raises_at_once() -> None:
    """send() and ping() from process_request (the connection still CONNECTING) used to wait
    for the connection to close, which it never did with open_timeout=None: the handshake
    waited on process_request, process_request on the close. send_nowait() said 1006."""
    raised: dict[str, Any] = {}

    async def process_request(ws: ServerWebSocket, request: Any) -> None:
        for name, call in [
            ("send", lambda: ws.send("early")),
            ("ping", lambda: ws.ping()),
            ("send_nowait", lambda: asyncio.sleep(0, ws.send_nowait("early"))),
        ]:
            try:
                await asyncio.wait_for(call(), 2)
            except (InvalidState, asyncio.TimeoutError, ConnectionClosed) as exc:
                raised[name] = type(exc).__name__

    async def main() -> None:
        async with serve(
            echo, HOST, 0, process_request=process_request, open_timeout=None
        ) as server:
            async with connect(uri(server)) as ws:
                await ws.send("after")
                assert await ws.recv() == "after"

    run(main())
    assert raised == dict.fromkeys(["send", "ping", "send_nowait"], "InvalidState"), raised


# --- a TLS peer that ends right after a compressed burst ---------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context and a client context that trusts it (a throwaway certificate)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    return tls_contexts(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
@pytest.mark.parametrize("reads", [True, False])
def test_frames_held_back_when_a_tls_peer_ends_are_still_delivered(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], loop_name: str, reads: bool, transport: Any
) -> None:
    """A TLS transport reports the peer's close_notify in the same read as the data before
    it, although reading is paused: the compressed frames held back (Connection.backlogged)
    used to be dropped there, 38 of 40 messages lost and the peer's close frame with them
    (1006 instead of 1000). They are delivered, within max_queue; a handler that does not
    read still sees the connection end within close_timeout."""
    server_ctx, client_ctx = tls
    seen: dict[str, Any] = {}

    async def handler(ws: ServerWebSocket) -> None:
        if not reads:
            await ws.wait_closed()
            seen["code"] = ws.close_code
            return
        await asyncio.sleep(0.3)  # the queue fills, the rest is held back
        seen["queued"] = len(ws._messages)
        count = 0
        try:
            async for message in ws:
                assert message == b"\x00" * (MiB - 1)
                count += 1
        finally:  # raising (1006), the loop still ends the test: a failure, not a hang
            seen["count"], seen["code"] = count, ws.close_code

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with serve(
            handler, HOST, 0, ssl=server_ctx, max_queue=4, close_timeout=1.0, transport=transport
        ) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port, ssl=client_ctx)
            client = ClientConnection(HOST, extensions=[ClientDeflateFactory()])
            writer.write(client.data_to_send())
            client.receive_data(await reader.readuntil(b"\r\n\r\n"))
            assert [e.extensions for e in client.events()] == [("permessage-deflate",)]
            close = client_frame(Opcode.CLOSE, (1000).to_bytes(2, "big"))
            writer.write(zeros_frame(MiB - 1) * 40 + close)
            await writer.drain()
            start = loop.time()
            writer.close()  # close_notify right after the close frame
            while "code" not in seen:
                assert loop.time() - start < 10, seen
                await asyncio.sleep(0.01)
            seen["took"] = loop.time() - start

    run(main(), loop=loop_name)
    if reads:
        assert (seen["count"], seen["code"]) == (40, 1000), seen
        assert seen["queued"] <= 4 + 2, seen  # max_queue, plus one receive_data budget
    else:
        assert seen["code"] == 1006 and seen["took"] < 5, seen


# --- the server's shutdown -------------------------------------------------------------------


def test_a_connection_accepted_while_the_server_closes_is_not_served() -> None:
    """A connection the loop accepted before Server.close() but handed to its protocol
    after it (connection_made comes a loop iteration or two after accept()) used to be
    served by the closed server: its handler ran after wait_closed() had returned, and
    nothing would ever close it."""
    handled: list[str] = []

    async def handler(ws: ServerWebSocket) -> None:
        handled.append(ws.path)
        await ws.wait_closed()

    async def main() -> None:
        starting = serve(handler, HOST, 0)
        server = starting._server
        make = server._protocol

        def factory() -> ServerWebSocket:
            # The loop makes the transport next, which schedules connection_made(): close()
            # runs in between, as it may when called while connections arrive.
            asyncio.get_running_loop().call_soon(server.close)
            return make()

        server._protocol = factory  # type: ignore[method-assign]
        await starting
        port = server.port
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(raw_upgrade(port, "/late"))
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        # (From Python 3.12 on, asyncio's own wait_closed() also waits for the refused
        # connection, which lingers until the client closes: read the answer first.)
        await asyncio.wait_for(server.wait_closed(), 5)
        assert not answer.startswith(b"HTTP/1.1 101"), answer
        assert handled == [] and not server.connections

    run(main())


def test_closing_a_backlogged_connection_still_ends_within_close_timeout() -> None:
    """close() against a peer that floods compressed messages and never answers: the
    closing timer drops the transport with frames still held back, and the connection ends
    then. Only the peer's own end waits for the frames held back (see the TLS test above):
    after our own abort, inflating them first would stretch close_timeout."""
    state: dict[str, Any] = {}

    async def closes(ws: ServerWebSocket) -> None:
        await asyncio.sleep(0.2)  # the queue fills, frames are held back
        state["backlogged"] = ws._conn.backlogged
        loop = asyncio.get_running_loop()
        start = loop.time()
        await ws.close()
        state["took"] = loop.time() - start

    async def main() -> None:
        async with serve(closes, HOST, 0, max_queue=4, close_timeout=0.3) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            client = ClientConnection(HOST, extensions=[ClientDeflateFactory()])
            writer.write(client.data_to_send())
            client.receive_data(await reader.readuntil(b"\r\n\r\n"))
            frame = zeros_frame(MiB - 1)
            try:
                while "took" not in state:
                    writer.write(frame * 64)
                    await writer.drain()
            except ConnectionError:
                pass
            writer.close()

    run(main())
    assert state["backlogged"], state
    # One close_timeout (1 s), never two.
    # One close_timeout, not two (the second one spent inflating what is held back).
    assert 0.25 < state["took"] < 0.55, state


def test_open_timeout_also_bounds_the_tls_handshake(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A client that opens TCP to a wss server and never starts TLS was held for asyncio's
    own ssl_handshake_timeout (60 s): open_timeout started only once TLS was up, and
    max_handshakes could not count it."""
    server_ctx, _client_ctx = tls

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with serve(echo, HOST, 0, ssl=server_ctx, open_timeout=0.5) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            start = loop.time()
            try:
                assert await asyncio.wait_for(reader.read(), 5) == b""
            except ConnectionError:
                pass
            assert loop.time() - start < 4
            writer.close()

    run(main())


def test_a_process_request_that_ends_cancelled_is_answered_500() -> None:
    """A coroutine process_request whose task ends cancelled by something else than the end
    of its connection (it awaited a future another task cancelled) left the handshake
    unanswered, holding the connection and its handshake slot until open_timeout, or for
    ever with open_timeout=None."""

    async def process_request(ws: ServerWebSocket, request: Any) -> None:
        shared = asyncio.get_running_loop().create_future()
        shared.cancel()  # e.g. a lookup shared with a request that went away
        await shared

    async def main() -> None:
        async with serve(
            echo, HOST, 0, process_request=process_request, open_timeout=None
        ) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw_upgrade(server.port))
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.startswith(b"HTTP/1.1 500 "), answer
            assert server._handshakes == 0
            writer.close()

    run(main())
