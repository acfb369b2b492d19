"""The demo's Redis broker against a real ``redis-server`` (one per test, on 127.0.0.1).

Skipped without ``redis-server`` or redis-py, unless ``WSFAST_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_support import RedisServer, redis_or_skip

from wsfast.cli.broker import (
    Change,
    OrderBoard,
    RedisBroker,
    Snapshot,
    apply_change,
    open_broker,
)
from wsfast.cli.demo import Shop

TIMEOUT = 30.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_or_skip(), tmp_path)
    yield server
    server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def new_snapshot(seed: int) -> Snapshot:
    board = OrderBoard(seed=seed)
    return Snapshot(0, list(board.orders.values()), board.next_id)


@contextlib.asynccontextmanager
async def brokers(url: str, n: int) -> AsyncIterator[list[RedisBroker]]:
    opened = []
    try:
        for i in range(n):
            broker = RedisBroker(url, seed=i)
            await broker.open()
            opened.append(broker)
        yield opened
    finally:
        for broker in opened:
            await broker.close()


class Follower:
    """Collects a broker's changes in a task; ``resyncs`` counts the None markers."""

    def __init__(self, broker: RedisBroker) -> None:
        self.changes: list[Change] = []
        self.resyncs = 0
        self._iterator = broker.changes()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert await self._iterator.__anext__() is None  # subscribed
        self.resyncs = 1
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for change in self._iterator:
            if change is None:
                self.resyncs += 1
            else:
                self.changes.append(change)

    async def wait_for(self, predicate: Any) -> None:
        while not predicate(self):
            assert self._task is not None and not self._task.done()
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._iterator.aclose()  # type: ignore[attr-defined]


def test_open_broker_picks_by_url() -> None:
    redis_or_skip()
    assert isinstance(open_broker("redis://127.0.0.1:6379/0"), RedisBroker)
    with pytest.raises(ValueError):
        open_broker("http://example.com/")


def test_the_board_is_created_once(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with brokers(redis_server.url, 4) as workers:
            assert await workers[0].snapshot() is None
            boards = [new_snapshot(seed) for seed in range(4)]
            made = await asyncio.gather(
                *(b.create(s) for b, s in zip(workers, boards, strict=True))
            )
            assert sorted(made) == [False, False, False, True]
            winner = boards[made.index(True)]
            for broker in workers:
                assert await broker.snapshot() == winner

    run(main())


def test_every_worker_sees_every_change_in_the_same_order(redis_server: RedisServer) -> None:
    """Two workers change the board at the same time (transactions that retry when another
    got in first): every subscriber gets changes 1..N once each, in order, identical; and
    the board is what the changes say."""

    async def main() -> None:
        async with brokers(redis_server.url, 2) as (a, b):
            start = new_snapshot(1)
            assert await a.create(start)
            followers = [Follower(a), Follower(b)]
            for follower in followers:
                await follower.start()

            async def steps(worker: RedisBroker) -> list[bool]:
                return [await worker.step() for _ in range(30)]

            made = await asyncio.gather(steps(a), steps(b))
            assert all(made[0]) and all(made[1])
            for follower in followers:
                await follower.wait_for(lambda f: len(f.changes) == 60)
            one, two = (f.changes for f in followers)
            assert [c.seq for c in one] == list(range(1, 61))
            assert one == two
            orders = {o["id"]: o for o in start.orders}
            for change in one:
                apply_change(orders, change.messages)
            snapshot = await b.snapshot()
            assert snapshot is not None and snapshot.seq == 60
            assert snapshot.orders == sorted(orders.values(), key=lambda o: int(o["id"][1:]))
            for follower in followers:
                await follower.stop()

    run(main())


def test_a_tick_makes_one_change_however_many_workers_try(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with brokers(redis_server.url, 4) as workers:
            await workers[0].create(new_snapshot(2))
            made = await asyncio.gather(*(w.step(7) for w in workers))
            assert made.count(True) == 1
            assert not await workers[1].step(7)  # taken
            assert not await workers[2].step(6)  # in the past
            assert await workers[3].step(8)
            snapshot = await workers[0].snapshot()
            assert snapshot is not None and snapshot.seq == 2

    run(main())


def test_no_change_without_a_board(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with brokers(redis_server.url, 1) as (broker,):
            assert not await broker.step()
            assert await broker.snapshot() is None

    run(main())


def test_a_redis_restart_loses_nothing_and_subscribers_resync(redis_server: RedisServer) -> None:
    """SIGKILL, not a clean shutdown: with the append-only file fsynced on every write, every
    change made before is there after the restart; the subscription comes back by itself and
    says that changes may have been missed (None)."""

    async def main() -> None:
        async with brokers(redis_server.url, 1) as (broker,):
            await broker.create(new_snapshot(3))
            follower = Follower(broker)
            await follower.start()
            for _ in range(10):
                await broker.step()
            before = await broker.snapshot()
            await asyncio.to_thread(redis_server.restart, hard=True)
            await follower.wait_for(lambda f: f.resyncs == 2)
            assert await broker.snapshot() == before
            assert await broker.step()
            await follower.wait_for(lambda f: len(f.changes) == 11)
            assert follower.changes[-1].seq == 11
            await follower.stop()

    run(main())


def test_redis_unreachable_raises_the_brokers_errors(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with brokers(redis_server.url, 1) as (broker,):
            await broker.create(new_snapshot(4))
            redis_server.stop()
            with pytest.raises(broker.errors):
                await broker.step()
            with pytest.raises(broker.errors):
                await broker.snapshot()
        unreachable = RedisBroker(redis_server.url, timeout=2)
        with pytest.raises(unreachable.errors):
            await unreachable.open()
        await unreachable.close()

    run(main())


# --- workers (Shop) over Redis ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def shops(url: str, n: int) -> AsyncIterator[list[Shop]]:
    """``n`` workers' Shops (no pages, no ticking: the test makes the changes)."""
    async with brokers(url, n) as opened:
        made = [Shop(broker, interval=3600, seed=i) for i, broker in enumerate(opened)]
        followers = [asyncio.create_task(shop.follow()) for shop in made]
        try:
            for shop in made:
                await shop.synced.wait()
            yield made
        finally:
            for task in followers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def converged(shops_: list[Shop], broker: RedisBroker) -> Snapshot:
    """Wait until every worker's copy is the board in Redis; that board."""
    while True:
        snapshot = await broker.snapshot()
        if snapshot is not None and all(
            shop.seq == snapshot.seq and list(shop.orders.values()) == snapshot.orders
            for shop in shops_
        ):
            return snapshot
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("persistent", [True, False], ids=["append-only file", "no persistence"])
def test_workers_converge_after_a_redis_restart(tmp_path: Path, persistent: bool) -> None:
    """With persistence, Redis keeps the board; without, it comes back empty and the first
    worker to notice stores its copy again. Either way no order is lost and every worker
    ends with the same board."""
    server = RedisServer(redis_or_skip(), tmp_path, persistent=persistent)

    async def main() -> None:
        async with shops(server.url, 2) as workers, brokers(server.url, 1) as (driver,):
            for _ in range(5):
                await driver.step()
            before = await converged(workers, driver)
            assert before.seq == 5
            await asyncio.to_thread(server.restart, hard=True)
            after = await converged(workers, driver)
            assert after == before
            for _ in range(5):
                await driver.step()
            assert (await converged(workers, driver)).seq == 10

    try:
        run(main())
    finally:
        server.stop()


def test_a_change_right_after_subscribing_is_not_missed(redis_server: RedisServer) -> None:
    """changes() yields its first None only once Redis confirmed the subscription: a change
    published at once (on another connection) is delivered, never lost between the
    subscription and the snapshot."""

    async def main() -> None:
        async with brokers(redis_server.url, 1) as (broker,):
            publisher = broker._client
            for i in range(100):
                iterator = broker.changes()
                assert await iterator.__anext__() is None
                await publisher.publish(
                    "wsfast:demo:changes", json.dumps({"seq": i, "messages": []})
                )
                change = await asyncio.wait_for(iterator.__anext__(), 5)
                assert change == Change(i, [])
                await iterator.aclose()  # type: ignore[attr-defined]

    run(main())


def test_a_worker_stops_while_it_ticks(redis_server: RedisServer) -> None:
    """Cancelling a worker's Shop ends it while its ticker is inside a Redis command.
    redis-py may swallow a cancellation that arrives during a command (its task then goes
    on); the Shop cancels its tasks again until they end, so a worker always stops."""

    async def main() -> None:
        async with brokers(redis_server.url, 2) as (broker, driver):
            await broker.create(new_snapshot(1))
            for _ in range(10):
                shop = Shop(broker, interval=0.0005)
                task = asyncio.create_task(shop.run())
                before = (await driver.snapshot() or new_snapshot(1)).seq
                while (await driver.snapshot() or new_snapshot(1)).seq < before + 5:
                    await asyncio.sleep(0.005)  # it ticks: a command is in flight nearly always
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=5)
                assert done, "the worker did not stop within 5 s"

    run(main())


def test_a_message_that_is_not_a_change_means_a_fresh_snapshot(redis_server: RedisServer) -> None:
    """Anything else published on the channel (by another program, an older version) is
    not a change: the subscriber says that changes may have been missed (None) and goes on,
    rather than ending (which left a worker serving a board that never changed again)."""

    async def main() -> None:
        async with brokers(redis_server.url, 1) as (broker,):
            await broker.create(new_snapshot(5))
            follower = Follower(broker)
            await follower.start()
            for junk in (
                "hello",
                "[1, 2]",
                '{"seq": 1}',
                '{"seq": "x", "messages": []}',
                '{"seq": 1, "messages": [{"type": "order"}]}',
            ):
                await broker._client.publish("wsfast:demo:changes", junk)
            assert await broker.step()
            await follower.wait_for(lambda f: len(f.changes) == 1)
            assert follower.changes[0].seq == 1
            assert follower.resyncs == 6
            await follower.stop()

    run(main())
