"""``python -m wsfast demo``: a shop's order list updating live in the browser, on one port.

``GET /`` answers with a small page (``demo.html``: plain HTML, CSS and JavaScript, nothing
loaded from elsewhere). The page opens a WebSocket to ``/ws`` with the browser's own API and
the server pushes JSON text messages as orders move through placed, paid, packed, shipped and
delivered (one change every ``--interval`` seconds, shared by every open page):

- ``{"type": "snapshot", "seq": N, "orders": [ORDER, ...], "worker": PID}`` first, on every
  connection, and again whenever the worker had to start afresh;
- ``{"type": "order", "order": ORDER, "seq": N}`` when an order is added or moves on;
- ``{"type": "remove", "id": ID, "seq": N}`` when a delivered order leaves the list;
- ``{"type": "echo", "text": TEXT}`` for each text message the page sends (its echo box);
  binary messages are echoed as they are.

``ORDER`` is ``{"id", "customer", "item", "status", "updated"}`` (``updated`` in milliseconds
since the epoch); ``seq`` numbers the changes (one change may send a remove and an order).
The page connects to the host and port it came from; ``?ws=URI`` in its address points it
elsewhere; it reconnects with a growing delay when the connection drops.

The board lives in a broker (:mod:`wsfast.cli.broker`): in this process by default, or in
Redis with ``--broker redis://HOST:PORT/DB``, which lets ``--workers N`` processes (here or on
other machines) serve the same board. Each worker keeps a copy of the board, follows the
broker's changes and sends each one to its pages with :func:`wsfast.asyncio.broadcast`; a
page that cannot keep up is closed with 1013 and, reconnecting, starts from a fresh snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from ..asyncio import ConnectionClosed, ServerWebSocket, broadcast, serve
from ..events import Request
from ..permessage_deflate import ServerDeflateFactory
from . import workers
from .broker import (
    FIRST_ID,
    STATUSES,
    Broker,
    LocalBroker,
    Order,
    OrderBoard,
    Snapshot,
    apply_change,
    open_broker,
)

__all__ = [
    "STATUSES",
    "OrderBoard",
    "Shop",
    "add_arguments",
    "http_handler",
    "main",
    "page",
    "process_request",
    "run",
]

logger = logging.getLogger("wsfast.demo")

WS_PATH = "/ws"
PAGE_PATHS = frozenset({"/", "/index.html"})
MAX_BACKOFF = 5.0  # seconds between two tries to reach the broker, at most
STOP_TIMEOUT = 5.0  # seconds cancel() waits for tasks to end, at most

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


def compression() -> ServerDeflateFactory:
    """permessage-deflate without context takeover on the server's side: every update is
    compressed once and the same frame goes to every page (:func:`~wsfast.asyncio.broadcast`
    shares it), and an idle page holds no compressor between messages (~38 KiB each at the
    default window 12 and memLevel 5). The price: each message is compressed on its own, so
    repeats between messages do not shrink it further (JSON updates are small anyway)."""
    return ServerDeflateFactory(server_no_context_takeover=True)


def process_request(ws: ServerWebSocket, request: Request) -> HttpResponse | None:
    """WebSocket upgrades are for ``/ws`` only."""
    if request.path != WS_PATH:
        return 404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n"
    return None


class Shop:
    """One worker's side of the board: a copy of it, the open pages, and the tasks that
    follow the broker's changes (:meth:`follow`) and make one change per interval
    (:meth:`tick`, shared with the other workers through the broker)."""

    def __init__(
        self, broker: Broker | None = None, interval: float = 1.0, *, seed: int | None = None
    ) -> None:
        self.broker = broker if broker is not None else LocalBroker(seed)
        self.interval = interval
        self.seq = -1  # the last change in the copy; -1: no copy yet
        self.orders: dict[str, Order] = {}
        self.next_id = FIRST_ID
        self.pages: set[ServerWebSocket] = set()
        self.synced = asyncio.Event()  # set once the copy holds a snapshot
        self.worker = os.getpid()
        self._seed = seed

    # --- the copy and the pages -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The copy, as the message a page gets first."""
        return {
            "type": "snapshot",
            "seq": self.seq,
            "orders": [dict(o) for o in self.orders.values()],
            "worker": self.worker,
        }

    def publish(self, seq: int, messages: list[dict[str, Any]]) -> None:
        """Apply change ``seq`` to the copy and send its messages to every page."""
        apply_change(self.orders, messages)
        self.seq = seq
        for message in messages:
            if message["type"] == "order":
                number = message["order"]["id"][1:]
                if number.isdigit():
                    self.next_id = max(self.next_id, int(number) + 1)
            self._send_all(json.dumps({**message, "seq": seq}))

    def _send_all(self, text: str) -> None:
        # A page whose write buffer is full is closed (1013): it reconnects and starts afresh.
        broadcast(self.pages, text, slow="close")

    def _take(self, snapshot: Snapshot) -> None:
        self.orders = {o["id"]: dict(o) for o in snapshot.orders}
        self.seq = snapshot.seq
        self.next_id = snapshot.next_id
        self.synced.set()
        self._send_all(json.dumps(self.snapshot()))

    def _seed_snapshot(self) -> Snapshot:
        """A board for a broker that has none: our copy (the broker lost it, e.g. a Redis
        restart without persistence), or a new one."""
        if self.seq >= 0:
            return Snapshot(self.seq, list(self.orders.values()), self.next_id)
        board = OrderBoard(seed=self._seed)
        return Snapshot(0, list(board.orders.values()), board.next_id)

    # --- following the broker ---------------------------------------------------------------

    async def resync(self) -> None:
        """Take a fresh snapshot (storing our copy, or a new board, if the broker has none)
        and send it to every page; retries with a growing delay while the broker is away."""
        backoff = 0.05
        while True:
            try:
                snapshot = await self.broker.snapshot()
                if snapshot is not None:
                    break
                if await self.broker.create(self._seed_snapshot()):
                    continue  # read back what was stored
                # Another worker is storing one (or the store holds half a board): wait.
                level = logging.WARNING if backoff >= MAX_BACKOFF else logging.DEBUG
                logger.log(level, "no board in the broker yet; waiting")
            except self.broker.errors as exc:
                logger.warning("the broker is unreachable (%s); retrying", exc or type(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        self._take(snapshot)

    async def follow(self) -> None:
        """Apply the broker's changes to the copy and send them to the pages, in order,
        until cancelled. A gap in the numbers (or a reconnection) means a fresh snapshot."""
        async for change in self.broker.changes():
            if change is None or change.seq > self.seq + 1:
                await self.resync()
            elif change.seq == self.seq + 1:
                self.publish(change.seq, change.messages)
            # else: the snapshot holds it already

    async def tick(self) -> None:
        """Make one change every ``interval`` seconds, until cancelled. Ticks are numbered
        from the clock, so several workers make one change per tick between them."""
        while True:
            now = time.time()
            number = int(now // self.interval) + 1
            await asyncio.sleep(max(0.0, number * self.interval - now))
            try:
                await self.broker.step(number)
            except self.broker.errors as exc:
                logger.debug("no change this tick: %s", exc or type(exc))

    # --- one page ----------------------------------------------------------------------------

    async def handler(self, ws: ServerWebSocket) -> None:
        """One page: the snapshot and every change after it; echo what the page sends."""
        await self.synced.wait()
        # The snapshot goes out and the page joins in one step: no change can fall between.
        ws.send_nowait(json.dumps(self.snapshot()))
        self.pages.add(ws)
        try:
            async for message in ws:
                if isinstance(message, str):
                    await ws.send(json.dumps({"type": "echo", "text": message}))
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass  # the page went away without a clean close
        finally:
            self.pages.discard(ws)

    async def wait_synced(self, task: asyncio.Task[Any]) -> bool:
        """Wait until the copy holds a snapshot (True), or until ``task`` ends first (False;
        what it raised is raised)."""
        synced = asyncio.ensure_future(self.synced.wait())
        try:
            await asyncio.wait({task, synced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
        if self.synced.is_set():
            return True
        task.result()
        return False

    async def run(self) -> None:
        """Follow the broker and tick until cancelled (the board is synced first)."""
        follower = asyncio.create_task(self.follow())
        ticker: asyncio.Task[None] | None = None
        try:
            if not await self.wait_synced(follower):
                return
            ticker = asyncio.create_task(self.tick())
            await asyncio.gather(follower, ticker)
        finally:
            await cancel(follower, ticker)


async def cancel(
    *tasks: asyncio.Task[Any] | None, every: float = 0.05, timeout: float = STOP_TIMEOUT
) -> None:
    """Cancel ``tasks`` (None ones are skipped) and wait for all of them to end, cancelling
    again every ``every`` seconds those that go on: redis-py's asyncio client (8.x) may
    swallow a cancellation that arrives during a command, and a worker's ticker would then
    tick on and never stop. If the caller is cancelled meanwhile (as this function itself
    does to the task it stops), the tasks are still stopped first, then CancelledError is
    raised: a cleanup cut short would leave a task using what the caller closes next. The
    wait is bounded all the same: tasks still running after ``timeout`` seconds are left
    (with a warning naming them), so that a task that never ends cannot hold up a stop."""
    pending = {task for task in tasks if task is not None}
    interrupted = False
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(task.done() for task in pending):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            running = [task for task in pending if not task.done()]
            logger.warning("tasks still running %.0f s after cancel(): %r", timeout, running)
            break
        for task in pending:
            task.cancel()
        try:
            await asyncio.wait(pending, timeout=min(every, left))
        except asyncio.CancelledError:
            interrupted = True
    for task in pending:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.debug("stopped task %r ended with %r", task, task.exception())
    if interrupted:
        raise asyncio.CancelledError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    workers.add_listen_arguments(parser)
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between two order updates (1.0)",
    )
    parser.add_argument(
        "--broker",
        default="local",
        metavar="URL",
        help="where the board lives: 'local' (this process, the default) or "
        "redis://HOST:PORT/DB (shared by every worker; needs wsfast[redis])",
    )
    workers.add_argument(parser, "; more need --broker redis://...")


def banner(address: Any, extra: str = "") -> str:
    return (
        f"wsfast demo on {workers.url('http', address, '/')} "
        f"(WebSocket {workers.url('ws', address, WS_PATH)}){extra}"
    )


async def run(
    host: str | None,
    port: int | None,
    interval: float = 1.0,
    broker_url: str | None = None,
    *,
    sock: socket.socket | None = None,
    ready: Callable[[], None] | None = None,
    stop: asyncio.Future[None] | None = None,
) -> None:
    """Serve the demo until ``stop`` is done (default: until SIGINT/SIGTERM); then every
    page is closed with 1001; RuntimeError if the board stops following the broker. On
    ``sock`` (a worker) or ``host``:``port``; ``ready()`` is called once it serves (default:
    the banner is printed)."""
    if stop is None:
        stop = workers.stop_on_signals()
    broker = open_broker(broker_url)
    try:
        await broker.open()
    except broker.errors as exc:
        raise RuntimeError(f"cannot reach the broker {broker_url}: {exc}") from exc
    shop = Shop(broker, interval)
    background = asyncio.create_task(shop.run())
    try:
        if not await shop.wait_synced(background):
            raise RuntimeError("the board could not be read from the broker")
        async with serve(
            shop.handler,
            host,
            port,
            http_handler=http_handler,
            process_request=process_request,
            compression=compression(),
            **workers.listen_options(sock),
        ) as server:
            workers.announce(server, ready, banner)
            await asyncio.wait({stop, background}, return_when=asyncio.FIRST_COMPLETED)
            if background.done():  # the board no longer follows the broker: stop serving it
                failure = background.exception()
                message = f"the board stopped following the broker: {failure!r}"
                raise RuntimeError(message) from failure
    finally:
        try:
            await cancel(background)
        finally:
            await broker.close()


async def worker(
    args: argparse.Namespace,
    sock: socket.socket,
    ready: Callable[[], None],
    stop: asyncio.Future[None],
) -> None:
    """One worker process of ``--workers N`` (see :mod:`wsfast.cli.workers`)."""
    await run(None, None, args.interval, args.broker, sock=sock, ready=ready, stop=stop)


def main(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("error: --interval must be positive", file=sys.stderr)
        return 2
    try:
        open_broker(args.broker)
    except (ValueError, RuntimeError) as exc:  # not a broker URL; redis-py is missing
        print(f"error: --broker: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        if args.broker in (None, "local"):
            print(
                "error: --workers needs a board they share: --broker redis://HOST:PORT/DB",
                file=sys.stderr,
            )
            return 2
        return workers.supervise(
            worker,
            args,
            args.host,
            args.port,
            args.workers,
            lambda address, mode: banner(
                address, f", {args.workers} workers ({mode}), broker {args.broker}"
            ),
        )
    try:
        return workers.serve_here(
            run(args.host, args.port, args.interval, args.broker), args.host, args.port
        )
    except RuntimeError as exc:  # e.g. the broker cannot be reached
        print(f"error: {exc}", file=sys.stderr)
        return 1
