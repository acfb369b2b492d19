"""``python -m wsfast demo``: a shop's order list updating live in the browser, on one port.

``GET /`` answers with a small page (``demo.html``: plain HTML, CSS and JavaScript, nothing
loaded from elsewhere). The page opens a WebSocket to ``/ws`` with the browser's own API and
the server pushes JSON text messages as orders move through placed, paid, packed, shipped and
delivered (one change every ``--interval`` seconds, shared by every open page):

- ``{"type": "snapshot", "orders": [ORDER, ...]}`` first, on every connection;
- ``{"type": "order", "order": ORDER}`` when an order is added or moves on;
- ``{"type": "remove", "id": ID}`` when a delivered order leaves the list;
- ``{"type": "echo", "text": TEXT}`` for each text message the page sends (its echo box);
  binary messages are echoed as they are.

``ORDER`` is ``{"id", "customer", "item", "status", "updated"}`` (``updated`` in milliseconds
since the epoch). The page connects to the host and port it came from; ``?ws=URI`` in its
address points it elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections.abc import Iterable
from importlib import resources
from typing import Any

from ..asyncio import ConnectionClosed, ServerWebSocket, serve
from ..events import Request

STATUSES = ("placed", "paid", "packed", "shipped", "delivered")
WS_PATH = "/ws"
PAGE_PATHS = frozenset({"/", "/index.html"})
QUEUE_SIZE = 64  # messages waiting for one slow page before it gets a fresh snapshot instead

_CUSTOMERS = ("Ada", "Bruno", "Chidi", "Dana", "Emeka", "Fatima", "Goran", "Hana", "Ines", "Jun")
_ITEMS = (
    "teapot",
    "bicycle bell",
    "wool socks",
    "desk lamp",
    "chess set",
    "houseplant",
    "kettle",
    "notebook",
    "umbrella",
    "headphones",
)

Order = dict[str, Any]
HttpResponse = tuple[int, list[tuple[str, str]], bytes]


def page() -> bytes:
    """The demo page, as served."""
    return resources.files(__package__).joinpath("demo.html").read_bytes()


def http_handler(path: str, headers: Any) -> HttpResponse | None:
    """Plain HTTP GET on the demo's port: the page at ``/``; None for ``/ws`` (the server
    answers that it needs an upgrade); 404 for anything else."""
    path = path.partition("?")[0]
    if path in PAGE_PATHS:
        return (
            200,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Cache-Control", "no-store"),
                # Everything is inline; the page may open WebSockets anywhere (?ws=).
                (
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; "
                    "script-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src data:",
                ),
            ],
            page(),
        )
    if path == WS_PATH:
        return None
    return 404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n"


def process_request(ws: ServerWebSocket, request: Request) -> HttpResponse | None:
    """WebSocket upgrades are for ``/ws`` only."""
    if request.path != WS_PATH:
        return 404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n"
    return None


class OrderBoard:
    """The shop's orders. ``step()`` makes one change and returns the messages that tell it."""

    def __init__(self, size: int = 6, seed: int | None = None) -> None:
        if size < 1:
            raise ValueError("an order board needs at least one order")
        self._rng = random.Random(seed)
        self._next_id = 1001
        self.orders: dict[str, Order] = {}
        for i in range(size):  # spread over the statuses before delivered
            order = self._new_order()
            order["status"] = STATUSES[i % (len(STATUSES) - 1)]

    def _new_order(self) -> Order:
        order: Order = {
            "id": f"A{self._next_id}",
            "customer": self._rng.choice(_CUSTOMERS),
            "item": self._rng.choice(_ITEMS),
            "status": STATUSES[0],
            "updated": _now_ms(),
        }
        self._next_id += 1
        self.orders[order["id"]] = order
        return order

    def snapshot(self) -> dict[str, Any]:
        return {"type": "snapshot", "orders": [dict(o) for o in self.orders.values()]}

    def step(self) -> list[dict[str, Any]]:
        """Move one order (chosen at random) on; a delivered one leaves for a new order."""
        order = self.orders[self._rng.choice(list(self.orders))]
        if order["status"] == STATUSES[-1]:
            del self.orders[order["id"]]
            new = self._new_order()
            return [{"type": "remove", "id": order["id"]}, {"type": "order", "order": dict(new)}]
        order["status"] = STATUSES[STATUSES.index(order["status"]) + 1]
        order["updated"] = _now_ms()
        return [{"type": "order", "order": dict(order)}]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Shop:
    """Runs an :class:`OrderBoard` and pushes its changes to every connected page."""

    def __init__(self, board: OrderBoard, interval: float = 1.0) -> None:
        self.board = board
        self.interval = interval
        self._queues: set[asyncio.Queue[str]] = set()

    async def run(self) -> None:
        """One change every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.publish(self.board.step())

    def publish(self, messages: Iterable[dict[str, Any]]) -> None:
        for text in map(json.dumps, messages):
            for queue in self._queues:
                try:
                    queue.put_nowait(text)
                except asyncio.QueueFull:  # a page that cannot keep up starts afresh
                    self._restart(queue)

    def _restart(self, queue: asyncio.Queue[str]) -> None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(json.dumps(self.board.snapshot()))

    def subscribe(self) -> asyncio.Queue[str]:
        """A queue of the messages for one page: the snapshot, then every change."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._restart(queue)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._queues.discard(queue)

    async def handler(self, ws: ServerWebSocket) -> None:
        """One page: the snapshot and every change after it; echo what the page sends."""
        queue = self.subscribe()
        pusher = asyncio.create_task(self._push(ws, queue))
        try:
            async for message in ws:
                if isinstance(message, str):
                    await ws.send(json.dumps({"type": "echo", "text": message}))
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass  # the page went away without a clean close
        finally:
            self.unsubscribe(queue)
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher

    @staticmethod
    async def _push(ws: ServerWebSocket, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(ConnectionClosed):  # the handler ends too
            while True:
                await ws.send(await queue.get())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between two order updates (1.0)",
    )


def _url(scheme: str, address: Any, path: str) -> str:
    host, port = address[0], address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


async def run(host: str, port: int, interval: float = 1.0) -> None:
    """Serve the demo until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set_result, None)
    shop = Shop(OrderBoard(), interval)
    async with serve(
        shop.handler,
        host,
        port,
        http_handler=http_handler,
        process_request=process_request,
    ) as server:
        address = server.sockets[0].getsockname()
        print(
            f"wsfast demo on {_url('http', address, '/')} "
            f"(WebSocket {_url('ws', address, WS_PATH)})",
            flush=True,
        )
        ticker = asyncio.create_task(shop.run())
        try:
            await stop
        finally:
            ticker.cancel()


def main(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("error: --interval must be positive", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args.host, args.port, args.interval))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
