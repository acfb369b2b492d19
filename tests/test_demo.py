"""``python -m wsfast demo`` without a browser: the order board, the page, its HTTP answers and
the WebSocket endpoint, over wsfast's own client. (tests/browser/ drives the page itself.)"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from wsfast.asyncio import InvalidHandshake, connect, serve
from wsfast.cli import demo
from wsfast.cli.broker import LocalBroker
from wsfast.connection import State

STATUSES = list(demo.STATUSES)


# --- the order board -------------------------------------------------------------------------


def test_board_moves_orders_one_step_at_a_time() -> None:
    board = demo.OrderBoard(size=5, seed=7)
    shown = {o["id"]: o["status"] for o in board.snapshot()["orders"]}
    assert len(shown) == 5 and "delivered" not in shown.values()
    kinds = set()
    for _ in range(300):
        for message in board.step():
            kinds.add(message["type"])
            if message["type"] == "remove":
                assert shown.pop(message["id"]) == "delivered"
                continue
            order = message["order"]
            old = shown.get(order["id"])
            if old is None:
                assert order["status"] == "placed"
            else:
                assert STATUSES.index(order["status"]) == STATUSES.index(old) + 1
            shown[order["id"]] = order["status"]
        assert shown == {o["id"]: o["status"] for o in board.snapshot()["orders"]}
    assert kinds == {"order", "remove"}
    assert len(shown) == 5


def test_board_messages_are_copies() -> None:
    board = demo.OrderBoard(size=1, seed=1)
    snapshot = board.snapshot()
    (message,) = board.step()
    assert snapshot["orders"][0]["status"] == "placed"
    assert message["order"]["status"] == "paid"
    message["order"]["status"] = "lost"
    assert board.snapshot()["orders"][0]["status"] == "paid"


def test_board_needs_an_order() -> None:
    with pytest.raises(ValueError):
        demo.OrderBoard(size=0)


# --- the page and the HTTP side --------------------------------------------------------------


def test_page_is_self_contained() -> None:
    html = demo.page().decode("utf-8")
    assert html.startswith("<!doctype html>")
    assert "new WebSocket(" in html
    for name in ("onopen", "onmessage", "onclose", "onerror"):
        assert f".{name} =" in html
    # Nothing loaded from elsewhere: every src/href is a data: URL.
    assert re.findall(r'(?:src|href)\s*=\s*"(?!data:)[^"]*"', html) == []
    assert "@import" not in html and "url(" not in html


def test_http_handler_answers() -> None:
    status, headers, body = demo.http_handler("/", [])
    assert status == 200 and body == demo.page()
    assert ("Content-Type", "text/html; charset=utf-8") in headers
    assert demo.http_handler("/?ws=ws://127.0.0.1:1/ws", [])[:1] == (200,)
    assert demo.http_handler("/index.html", [])[:1] == (200,)
    assert demo.http_handler("/ws", []) is None  # the server asks for an upgrade
    assert demo.http_handler("/favicon.ico", [])[:1] == (404,)


def test_interval_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    assert demo.main(parser.parse_args(["--interval", "0"])) == 2
    assert "--interval" in capsys.readouterr().err


# --- the WebSocket side ----------------------------------------------------------------------


def run_demo(
    test: Callable[[int, demo.Shop], Awaitable[None]], interval: float = 0.02, **options: Any
) -> None:
    """Serve the demo's handler on a free port of 127.0.0.1 and run ``test(port, shop)``."""

    async def main() -> None:
        shop = demo.Shop(LocalBroker(seed=3), interval)
        async with serve(
            shop.handler, "127.0.0.1", 0, process_request=demo.process_request, **options
        ) as server:
            ticker = asyncio.create_task(shop.run())
            try:
                await asyncio.wait_for(test(server.port, shop), 20)
            finally:
                ticker.cancel()

    asyncio.run(main())


def test_websocket_pushes_snapshot_then_changes() -> None:
    async def test(port: int, shop: demo.Shop) -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot" and len(first["orders"]) == 6
            assert first["worker"] == os.getpid()
            shown = {o["id"]: o["status"] for o in first["orders"]}
            seq = first["seq"]
            for _ in range(20):
                message = json.loads(await ws.recv())
                # One change after the other; a remove and the order replacing it share one.
                assert message["seq"] in (seq, seq + 1)
                seq = message["seq"]
                if message["type"] == "remove":
                    assert shown.pop(message["id"]) == "delivered"
                    continue
                assert message["type"] == "order"
                order = message["order"]
                old = shown.get(order["id"])
                want = "placed" if old is None else STATUSES[STATUSES.index(old) + 1]
                assert order["status"] == want
                shown[order["id"]] = order["status"]
        assert ws.close_code == 1000

    run_demo(test)


def test_websocket_echoes() -> None:
    async def test(port: int, shop: demo.Shop) -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            text = "h\u00e9llo \u4e16\u754c \U0001f680"
            await ws.send(text)
            await ws.send(b"\x00\xff" * 100)
            got = []
            while len(got) < 2:
                message = await ws.recv()
                if isinstance(message, bytes) or json.loads(message)["type"] == "echo":
                    got.append(message)
            assert got == [json.dumps({"type": "echo", "text": text}), b"\x00\xff" * 100]
            assert json.loads(got[0])["text"] == text

    run_demo(test, interval=10)


def test_every_page_gets_the_changes() -> None:
    async def test(port: int, shop: demo.Shop) -> None:
        async with (
            connect(f"ws://127.0.0.1:{port}/ws") as a,
            connect(f"ws://127.0.0.1:{port}/ws") as b,
        ):
            for ws in (a, b):
                assert json.loads(await ws.recv())["type"] == "snapshot"
            shop.publish(shop.seq + 1, [{"type": "remove", "id": "A1001"}])
            for ws in (a, b):
                assert json.loads(await ws.recv()) == {
                    "type": "remove",
                    "id": "A1001",
                    "seq": shop.seq,
                }
            assert "A1001" not in shop.orders

    run_demo(test, interval=10)


def test_slow_page_is_closed_and_starts_afresh() -> None:
    """A page that stops reading is closed with 1013 once its write buffer is full (memory
    stays bounded); reconnecting, it starts from a fresh snapshot."""

    async def test(port: int, shop: demo.Shop) -> None:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(stalled, ("127.0.0.1", port))
        await loop.sock_sendall(
            stalled,
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        while len(shop.pages) < 1:
            await asyncio.sleep(0.01)
        (page,) = shop.pages
        page._transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        big = {"type": "order", "order": dict(next(iter(shop.orders.values())))}
        big["order"]["customer"] = "x" * 2000
        while page.state is State.OPEN:
            shop.publish(shop.seq + 1, [big])
            await asyncio.sleep(0)
            buffered = page._transport.get_write_buffer_size()  # type: ignore[union-attr]
            assert buffered <= 64 * 1024 + 4096
        assert page not in shop.pages or page.state is not State.OPEN
        stalled.close()
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot" and first["seq"] == shop.seq

    run_demo(test, interval=3600, close_timeout=1)


def test_websocket_only_on_ws_path() -> None:
    async def test(port: int, shop: demo.Shop) -> None:
        with pytest.raises(InvalidHandshake) as info:
            await connect(f"ws://127.0.0.1:{port}/other")
        assert info.value.status == 404

    run_demo(test)


# --- one port for both: serve(http_handler=...) ----------------------------------------------


async def http_get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_page_and_websocket_on_one_port() -> None:
    async def test(port: int, shop: demo.Shop) -> None:
        status, headers, body = await http_get(port, "/")
        assert status == 200 and body == demo.page()
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert (await http_get(port, "/nope"))[0] == 404
        assert (await http_get(port, "/ws"))[0] == 426  # Upgrade Required
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"

    run_demo(test, http_handler=demo.http_handler)


def test_cli_demo_command() -> None:
    """``python -m wsfast demo``: the banner, the page, the endpoint, and a clean exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wsfast", "demo", "--port", "0", "--interval", "0.05"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the demo printed nothing in 20 s"
        banner = process.stdout.readline().decode()
        match = re.match(r"wsfast demo on http://127\.0\.0\.1:(\d+)/ \(WebSocket ws://", banner)
        assert match, banner
        port = int(match.group(1))

        async def check() -> None:
            status, _, body = await http_get(port, "/")
            assert status == 200 and body == demo.page()
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                assert json.loads(await ws.recv())["type"] == "snapshot"
                assert json.loads(await ws.recv())["type"] in ("order", "remove")

        asyncio.run(asyncio.wait_for(check(), 20))
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert process.stderr is not None
        assert process.stderr.read() == b""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_cli_demo_broker_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--broker", "redis://127.0.0.1:1/0"])
    if importlib.util.find_spec("redis") is None:
        assert demo.main(args) == 2  # redis-py is missing: said at once
        assert 'pip install "wsfast[redis]"' in capsys.readouterr().err
    else:
        assert demo.main(args) == 1
        assert "cannot reach the broker redis://127.0.0.1:1/0" in capsys.readouterr().err


class _BrokenFeed(LocalBroker):
    """A broker whose change feed fails after its first change."""

    async def changes(self) -> Any:
        feed = super().changes()
        yield await feed.__anext__()  # None: take a snapshot
        yield await feed.__anext__()  # the first change
        raise ValueError("the feed broke")


def test_demo_stops_serving_when_the_board_stops_following(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker whose board no longer follows the broker ends with an error (a supervisor
    replaces it), rather than serving a board that never changes again until stopped."""
    monkeypatch.setattr(demo, "open_broker", lambda url: _BrokenFeed(seed=1))

    async def main() -> None:
        stop = asyncio.get_running_loop().create_future()  # never done
        with pytest.raises(RuntimeError, match="the board stopped following") as caught:
            await asyncio.wait_for(
                demo.run("127.0.0.1", 0, 0.01, None, ready=lambda: None, stop=stop), 10
            )
        assert isinstance(caught.value.__cause__, ValueError)

    asyncio.run(main())


def test_cancel_stops_every_task_even_when_its_caller_is_cancelled_meanwhile() -> None:
    """A worker's shutdown cancels Shop.run with cancel(), which cancels it again every
    0.05 s; Shop.run's own cleanup (cancel(follower, ticker)) must not be cut short by
    that, or the ticker outlives the broker it uses ("'NoneType' object has no attribute
    'pipeline'" from a Redis broker already closed)."""

    async def stubborn(log: list[str]) -> None:
        # Like redis-py during a command: the first cancellation is swallowed.
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("swallowed")
        await asyncio.sleep(0.2)  # several of the caller's re-cancellations happen meanwhile
        log.append("ended")

    async def main() -> None:
        log: list[str] = []
        first = asyncio.create_task(stubborn(log))
        second = asyncio.create_task(stubborn(log))

        async def owner() -> None:
            try:
                await asyncio.sleep(10)
            finally:
                await demo.cancel(first, None, second)

        task = asyncio.create_task(owner())
        await asyncio.sleep(0.01)
        await asyncio.wait_for(demo.cancel(task, every=0.01), 5)
        assert task.cancelled()
        assert first.done() and second.done()
        assert log.count("swallowed") == 2

    asyncio.run(main())


def test_cancel_gives_up_on_a_task_that_never_ends(caplog: pytest.LogCaptureFixture) -> None:
    """cancel() holds back its caller's cancellation while it waits, so its caller cannot cut
    the wait short: a task that swallows every cancellation must not hold up a stop forever.
    It is left running after ``timeout``, with a warning."""

    async def main() -> None:
        release = asyncio.Event()

        async def deaf() -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    pass  # swallowed, every time

        task = asyncio.create_task(deaf())
        stopping: asyncio.Task[None] | None = None
        try:
            await asyncio.sleep(0)
            stopping = asyncio.create_task(demo.cancel(task, every=0.01, timeout=0.2))
            await asyncio.wait({stopping}, timeout=3)
            assert stopping.done()
            assert not task.done()
        finally:  # else asyncio.run() would wait for it forever
            release.set()
            await asyncio.wait({task} if stopping is None else {task, stopping}, timeout=3)
        assert stopping.result() is None

    with caplog.at_level(logging.WARNING, logger="wsfast.demo"):
        asyncio.run(main())
    assert "tasks still running" in caplog.text
