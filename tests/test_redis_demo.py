"""``python -m wsfast demo --workers 2 --broker redis://...`` against a real ``redis-server``.

Pages are played by wsfast clients that do what the page's JavaScript does: keep the board
from the snapshot and the changes after it, and reconnect with a growing delay when the
connection drops. Failures are real: a worker is killed with SIGKILL, Redis is killed and
started again. Skipped without ``redis-server`` or redis-py, unless
``WSFAST_REQUIRE_REDIS=1``; Linux only (the workers are found through /proc).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import Command
from redis_support import RedisServer, redis_or_skip

from wsfast.asyncio import ConnectionClosed, InvalidHandshake, connect
from wsfast.cli.broker import RedisBroker, Snapshot

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the workers through /proc"
)

TIMEOUT = 60.0


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


class Page:
    """What demo.html does, in Python: the board, and reconnecting with backoff."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seq = -1
        self.orders: dict[str, Any] = {}
        self.worker: int | None = None
        self.workers: list[int] = []  # every worker that sent a snapshot, in order
        self.snapshots: list[int] = []  # the seq of each snapshot, in order
        self.received: list[str] = []  # every message, in short, in order
        self.open = False
        self.connections = 0
        self.closes: list[int | None] = []
        self.changes: dict[int, list[dict[str, Any]]] = {}  # seq -> its messages
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def around(self, seq: int) -> list[str]:
        """The messages received for changes seq - 1 to seq + 1, in short."""
        return [r for r in self.received if abs(int(r.split()[0]) - seq) <= 1]

    def board(self) -> list[dict[str, Any]]:
        return sorted(self.orders.values(), key=lambda o: int(o["id"][1:]))

    def _on_message(self, message: dict[str, Any]) -> bool:
        """Apply one message; False when a change is missing (start again)."""
        kind = message["type"]
        self.received.append(
            f"{message['seq']} {kind if kind == 'snapshot' else summary([message])}"
        )
        if kind == "snapshot":
            self.orders = {o["id"]: o for o in message["orders"]}
            self.seq = message["seq"]
            self.worker = message["worker"]
            self.workers.append(message["worker"])
            self.snapshots.append(message["seq"])
            return True
        seq = message["seq"]
        if seq > self.seq + 1:
            return False
        if seq < self.seq:
            return True
        self.seq = seq
        self.changes.setdefault(seq, []).append(message)
        if kind == "order":
            self.orders[message["order"]["id"]] = message["order"]
        else:
            self.orders.pop(message["id"], None)
        return True

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                async with connect(self.url, open_timeout=5, close_timeout=2) as ws:
                    self.connections += 1
                    self.open = True
                    async for raw in ws:
                        message = json.loads(raw)
                        if not self._on_message(message):
                            break
                        if message["type"] == "snapshot":
                            delay = 0.05
                self.closes.append(ws.close_code)
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError) as exc:
                self.closes.append(getattr(exc, "code", None))
            finally:
                self.open = False
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)


def summary(messages: list[dict[str, Any]]) -> list[str]:
    """A change's messages in short: ``remove A1008``, ``order A1013 paid``."""
    return [
        f"remove {m['id']}"
        if m["type"] == "remove"
        else f"order {m['order']['id']} {m['order']['status']}"
        for m in messages
    ]


@pytest.fixture
def redis_path(tmp_path: Path) -> Path:
    redis_or_skip()
    return tmp_path


@contextlib.contextmanager
def demo_on(redis: RedisServer, interval: float) -> Iterator[Command]:
    command = Command(
        "demo", "--port", "0", "--workers", "2", "--broker", redis.url, "--interval", str(interval)
    )
    try:
        yield command
    finally:
        command.close()


@contextlib.asynccontextmanager
async def pages(port: int, n: int) -> AsyncIterator[list[Page]]:
    opened = [Page(f"ws://127.0.0.1:{port}/ws") for _ in range(n)]
    for page in opened:
        page.start()
    try:
        while not all(p.open and p.seq >= 0 for p in opened):
            await asyncio.sleep(0.01)
        yield opened
    finally:
        for page in opened:
            await page.stop()


@contextlib.asynccontextmanager
async def driver(url: str) -> AsyncIterator[RedisBroker]:
    """The test's own connection to the board: it makes the changes."""
    broker = RedisBroker(url, seed=99)
    await broker.open()
    try:
        yield broker
    finally:
        await broker.close()


async def converged(opened: list[Page], broker: RedisBroker) -> Snapshot:
    """Wait until every page is connected and shows the board held in Redis."""
    while True:
        with contextlib.suppress(*broker.errors):
            snapshot = await broker.snapshot()
            if snapshot is not None and all(
                p.open and p.seq == snapshot.seq and p.board() == snapshot.orders for p in opened
            ):
                return snapshot
        await asyncio.sleep(0.02)


def test_pages_on_both_workers_get_identical_updates(redis_path: Path) -> None:
    """The workers tick together (one change per tick between them); every page, whichever
    worker it is on, gets the same changes in the same order."""
    redis = RedisServer(redis_or_skip(), redis_path)
    try:
        with demo_on(redis, interval=0.05) as demo:
            assert "2 workers (SO_REUSEPORT)" in demo.banner
            workers = demo.wait_workers(2)

            async def main() -> None:
                async with pages(demo.port, 20) as opened:
                    assert {p.worker for p in opened} == set(workers)  # spread over both
                    start = max(p.seq for p in opened)
                    # Past change start + 30 everywhere: a change may send two messages, and
                    # only the next change's first one shows that both have arrived.
                    while min(p.seq for p in opened) <= start + 30:
                        await asyncio.sleep(0.02)
                    for seq in range(start + 1, start + 31):
                        told = [p.changes[seq] for p in opened]
                        # Each page's snapshots, closes and the messages it got around seq.
                        history = [
                            (p.workers, p.snapshots, p.closes, p.around(seq)) for p in opened
                        ]
                        assert all(t == told[0] for t in told), (seq, start, history)
                    assert all(p.closes == [] for p in opened)
                    demo.process.send_signal(signal.SIGTERM)
                    while any(p.open for p in opened):
                        await asyncio.sleep(0.01)
                    assert all(p.closes == [1001] for p in opened)

            run(main())
            assert demo.wait() == 0
            assert demo.stderr() == ""
    finally:
        redis.stop()


def test_killing_a_worker_leaves_every_page_converged(redis_path: Path) -> None:
    """SIGKILL one worker: its pages reconnect (to the other, or to its replacement), get a
    fresh snapshot, and every page shows the board in Redis, changes made meanwhile included."""
    redis = RedisServer(redis_or_skip(), redis_path)
    try:
        with demo_on(redis, interval=3600) as demo:
            workers = demo.wait_workers(2)

            async def main() -> None:
                async with driver(redis.url) as board, pages(demo.port, 10) as opened:
                    for _ in range(5):
                        await board.step()
                    await converged(opened, board)
                    victim = opened[0].worker
                    assert victim in workers
                    moved = [p for p in opened if p.worker == victim]
                    os.kill(victim, signal.SIGKILL)
                    for _ in range(5):
                        await board.step()
                    snapshot = await converged(opened, board)
                    assert snapshot.seq >= 10
                    for page in moved:
                        assert page.closes and page.closes[0] in (1006, None)
                        assert page.workers[-1] != victim and page.connections >= 2
                    new = demo.wait_workers(2, old=(victim,))
                    assert f"(pid {victim}) exited with signal SIGKILL" in demo.stderr()
                    # The replacement serves the same board.
                    async with pages(demo.port, 10) as more:
                        await converged(opened + more, board)
                        assert set(new) >= {p.worker for p in opened + more}

            run(main())
            assert demo.stop() == 0
    finally:
        redis.stop()


@pytest.mark.parametrize("persistent", [True, False], ids=["append-only file", "no persistence"])
def test_restarting_redis_leaves_every_page_converged(redis_path: Path, persistent: bool) -> None:
    """SIGKILL Redis and start it again: the pages stay connected, their workers resubscribe
    and send them a fresh snapshot, and no order is lost (kept by Redis's append-only file,
    or stored again from a worker's copy when Redis comes back empty)."""
    redis = RedisServer(redis_or_skip(), redis_path, persistent=persistent)
    try:
        with demo_on(redis, interval=3600) as demo:
            demo.wait_workers(2)

            async def main() -> None:
                async with driver(redis.url) as board, pages(demo.port, 10) as opened:
                    for _ in range(5):
                        await board.step()
                    before = await converged(opened, board)
                    snapshots = [len(p.workers) for p in opened]
                    await asyncio.to_thread(redis.restart, hard=True)
                    after = await converged(opened, board)
                    assert after == before  # nothing lost
                    while any(len(p.workers) == n for p, n in zip(opened, snapshots, strict=True)):
                        await asyncio.sleep(0.01)  # each page got a fresh snapshot
                    assert all(p.connections == 1 for p in opened)  # without reconnecting
                    for _ in range(5):
                        await board.step()
                    assert (await converged(opened, board)).seq == before.seq + 5

            run(main())
            assert demo.stop() == 0
    finally:
        redis.stop()
