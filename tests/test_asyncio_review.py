"""The asyncio layer after the merge of backpressure and permessage-deflate's backlog: hostile
peers and careless callers, each test a defect found by review. 127.0.0.1 only, every wait
bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncio_helpers import HOST, echo, raw_client, run, uri

from wsfast.asyncio import ConnectionClosed, ServerWebSocket, connect, serve
from wsfast.connection import InvalidState

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
