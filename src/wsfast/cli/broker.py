"""The demo's order board, and the brokers that keep it and carry its changes to every worker.

A :class:`Broker` holds the board (the current orders, the number of the last change) and
hands every change, in order, to every subscriber in every worker process:

- :class:`LocalBroker` keeps it in this process: the default, one worker, no dependency.
- :class:`RedisBroker` keeps it in Redis (``redis://HOST:PORT/DB``, redis-py's asyncio
  client: ``pip install "wsfast[redis]"``). A change is one transaction (``WATCH`` /
  ``MULTI`` / ``EXEC``) that updates the orders, counts the change and publishes it on a
  pub/sub channel, so every worker on every machine sees the same changes in the same order,
  and any of them can make the next one. Pub/sub delivers at most once: a subscriber that
  reconnects, or sees a gap in the change numbers, takes a fresh snapshot instead.

Redis layout (all under ``wsfast:demo:``): ``orders`` (a hash, order id to JSON),
``seq`` (the number of the last change), ``next-id``, ``tick`` (the last tick that made a
change), and the channel ``changes`` carrying ``{"seq": N, "messages": [...]}``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, NamedTuple

__all__ = [
    "STATUSES",
    "Broker",
    "Change",
    "LocalBroker",
    "OrderBoard",
    "RedisBroker",
    "Snapshot",
    "open_broker",
]

logger = logging.getLogger("wsfast.demo")

STATUSES = ("placed", "paid", "packed", "shipped", "delivered")
FIRST_ID = 1001

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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _order_key(order: Order) -> tuple[int, str]:
    ident = str(order["id"])
    return (int(ident[1:]) if ident[1:].isdigit() else -1, ident)


class OrderBoard:
    """The shop's orders. ``step()`` makes one change and returns the messages that tell it."""

    def __init__(self, size: int = 6, seed: int | None = None) -> None:
        if size < 1:
            raise ValueError("an order board needs at least one order")
        self._rng = random.Random(seed)
        self.next_id = FIRST_ID
        self.orders: dict[str, Order] = {}
        for i in range(size):  # spread over the statuses before delivered
            order = self._new_order()
            order["status"] = STATUSES[i % (len(STATUSES) - 1)]

    @classmethod
    def restore(cls, orders: Iterable[Order], next_id: int, seed: int | None = None) -> OrderBoard:
        """A board holding ``orders`` (copied), whose next order gets number ``next_id``."""
        board = cls.__new__(cls)
        board._rng = random.Random(seed)
        board.next_id = next_id
        board.orders = {o["id"]: dict(o) for o in sorted(orders, key=_order_key)}
        if not board.orders:
            raise ValueError("an order board needs at least one order")
        return board

    def _new_order(self) -> Order:
        order: Order = {
            "id": f"A{self.next_id}",
            "customer": self._rng.choice(_CUSTOMERS),
            "item": self._rng.choice(_ITEMS),
            "status": STATUSES[0],
            "updated": _now_ms(),
        }
        self.next_id += 1
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


def apply_change(orders: dict[str, Order], messages: Iterable[dict[str, Any]]) -> None:
    """Apply a change's messages to a copy of the board kept elsewhere (a worker's mirror)."""
    for message in messages:
        if message["type"] == "order":
            orders[message["order"]["id"]] = dict(message["order"])
        elif message["type"] == "remove":
            orders.pop(message["id"], None)


class Snapshot(NamedTuple):
    """The whole board after change number ``seq``; ``orders`` in id order."""

    seq: int
    orders: list[Order]
    next_id: int


class Change(NamedTuple):
    """Change number ``seq``: the messages that tell it (``order`` and ``remove``)."""

    seq: int
    messages: list[dict[str, Any]]


class Broker(abc.ABC):
    """Where the board lives, and how its changes reach every subscriber, in order."""

    errors: tuple[type[BaseException], ...] = (OSError,)
    """What a call may raise while the broker is unreachable or restarting."""

    async def open(self) -> None:  # noqa: B027 - nothing to do for most brokers
        """Connect (raising one of :attr:`errors` if the broker cannot be reached)."""

    async def close(self) -> None:  # noqa: B027
        """Disconnect."""

    @abc.abstractmethod
    async def snapshot(self) -> Snapshot | None:
        """The board and the number of its last change; None when there is no board yet
        (a new broker, or a Redis server restarted without persistence)."""

    @abc.abstractmethod
    async def create(self, snapshot: Snapshot) -> bool:
        """Store ``snapshot`` as the board unless there is one; True if this call did."""

    @abc.abstractmethod
    async def step(self, tick: int | None = None) -> bool:
        """Make one change and publish it. With ``tick``, only if no change was made for
        that tick or a later one yet, by any worker (each tick makes at most one change
        however many workers try). False when no change was made (no board yet, or the tick
        was taken)."""

    @abc.abstractmethod
    def changes(self) -> AsyncIterator[Change | None]:
        """Every change from now on, in order. None means changes may have been missed
        before this point (it comes first, and after each reconnection): take a fresh
        snapshot, then skip changes it already contains."""


class LocalBroker(Broker):
    """The board in this process: for one worker."""

    QUEUE_SIZE = 256  # changes waiting for one subscriber before it is told to start afresh

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._board: OrderBoard | None = None
        self._seq = 0
        self._tick = -1
        self._queues: set[asyncio.Queue[Change | None]] = set()

    async def snapshot(self) -> Snapshot | None:
        board = self._board
        if board is None:
            return None
        return Snapshot(self._seq, [dict(o) for o in board.orders.values()], board.next_id)

    async def create(self, snapshot: Snapshot) -> bool:
        if self._board is not None:
            return False
        self._board = OrderBoard.restore(snapshot.orders, snapshot.next_id, self._seed)
        self._seq = snapshot.seq
        return True

    async def step(self, tick: int | None = None) -> bool:
        board = self._board
        if board is None or (tick is not None and tick <= self._tick):
            return False
        if tick is not None:
            self._tick = tick
        self._seq += 1
        change = Change(self._seq, board.step())
        for queue in self._queues:
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:  # a subscriber that fell behind starts afresh
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
        return True

    async def changes(self) -> AsyncIterator[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(self.QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield None
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)


PREFIX = "wsfast:demo:"
ORDERS = PREFIX + "orders"
SEQ = PREFIX + "seq"
NEXT_ID = PREFIX + "next-id"
TICK = PREFIX + "tick"
CHANNEL = PREFIX + "changes"

_WATCH_TRIES = 20  # concurrent changes retried before a step gives up


class RedisBroker(Broker):
    """The board in Redis; changes through pub/sub. See the module's docstring."""

    def __init__(
        self,
        url: str,
        seed: int | None = None,
        *,
        timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self._seed = seed
        self._rng = random.Random(seed)
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._client: Any = None
        self._subscriber: Any = None
        try:
            from redis.exceptions import RedisError
        except ImportError:
            raise RuntimeError(
                'the Redis broker needs redis-py: pip install "wsfast[redis]"'
            ) from None
        self.errors = (RedisError, OSError, asyncio.TimeoutError)

    async def open(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options: dict[str, Any] = {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
        }
        # Commands are tried again once on a new connection (pooled connections are stale
        # after a Redis restart); a transaction whose WATCH was lost that way fails with
        # WatchError, and step() starts it again from what Redis holds then.
        self._client = aioredis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 1), **options)
        # The subscription is never retried inside the client: a lost connection must be seen
        # here, since what was published while it was down is gone (hence a fresh snapshot).
        self._subscriber = aioredis.Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=max(1, int(self._timeout)),
            **options,
        )
        await self._client.ping()

    async def close(self) -> None:
        for client in (self._client, self._subscriber):
            if client is not None:
                await client.aclose()
        self._client = self._subscriber = None

    async def snapshot(self) -> Snapshot | None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(ORDERS)
            pipe.get(SEQ)
            pipe.get(NEXT_ID)
            raw, seq, next_id = await pipe.execute()
        if seq is None or not raw:
            return None
        orders = sorted((json.loads(v) for v in raw.values()), key=_order_key)
        return Snapshot(int(seq), orders, int(next_id or FIRST_ID))

    async def create(self, snapshot: Snapshot) -> bool:
        from redis.exceptions import WatchError

        async with self._client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(SEQ)
                if await pipe.exists(SEQ):
                    return False
                pipe.multi()
                pipe.delete(ORDERS)
                pipe.hset(ORDERS, mapping={o["id"]: json.dumps(o) for o in snapshot.orders})
                pipe.set(NEXT_ID, snapshot.next_id)
                pipe.set(SEQ, snapshot.seq)
                await pipe.execute()
                return True
            except WatchError:  # another worker made it first
                return False

    async def step(self, tick: int | None = None) -> bool:
        from redis.exceptions import WatchError

        async with self._client.pipeline(transaction=True) as pipe:
            for attempt in range(_WATCH_TRIES):
                try:
                    await pipe.watch(SEQ, TICK)
                    if tick is not None:
                        last = await pipe.get(TICK)
                        if last is not None and int(last) >= tick:
                            return False
                    seq = await pipe.get(SEQ)
                    raw = await pipe.hgetall(ORDERS)
                    if seq is None or not raw:
                        return False  # no board (yet): a worker creates it on resync
                    next_id = int(await pipe.get(NEXT_ID) or FIRST_ID)
                    board = OrderBoard.restore(
                        (json.loads(v) for v in raw.values()), next_id, self._rng.getrandbits(64)
                    )
                    messages = board.step()
                    change = Change(int(seq) + 1, messages)
                    pipe.multi()
                    for message in messages:
                        if message["type"] == "order":
                            order = message["order"]
                            pipe.hset(ORDERS, order["id"], json.dumps(order))
                        else:
                            pipe.hdel(ORDERS, message["id"])
                    pipe.set(NEXT_ID, board.next_id)
                    pipe.set(SEQ, change.seq)
                    if tick is not None:
                        pipe.set(TICK, tick)
                    pipe.publish(CHANNEL, json.dumps(change._asdict()))
                    await pipe.execute()
                    return True
                except WatchError:
                    # Another worker changed the board meanwhile: start again, after a random
                    # pause so that workers stepping in lock-step fall out of it.
                    await asyncio.sleep(random.random() * 0.001 * (attempt + 1))
        return False

    async def changes(self) -> AsyncIterator[Change | None]:
        backoff = 0.05
        while self._subscriber is not None:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # Only once Redis confirms is every later change sure to come here.
                confirmed = await pubsub.get_message(timeout=self._timeout)
                if confirmed is None or confirmed["type"] != "subscribe":
                    raise asyncio.TimeoutError(f"no subscription confirmed: {confirmed!r}")
                yield None  # anything published before now is taken from a snapshot
                backoff = 0.05
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message["type"] != "message":
                        continue
                    change = _parse_change(message["data"])
                    if change is None:
                        logger.warning("not a change on %s: %.80r", CHANNEL, message["data"])
                    yield change  # None: take a fresh snapshot rather than trust it
            except self.errors as exc:
                logger.warning("Redis subscription lost (%s); reconnecting", exc or type(exc))
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await pubsub.aclose()
            # Back off (with jitter) before subscribing again.
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self._max_backoff)


def _is_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("type") == "remove":
        return isinstance(message.get("id"), str)
    order = message.get("order")
    return message.get("type") == "order" and isinstance(order, dict) and "id" in order


def _parse_change(data: bytes | str) -> Change | None:
    """The change a message on the channel carries; None when it is not one."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    seq, messages = value.get("seq"), value.get("messages")
    if type(seq) is not int or not isinstance(messages, list):
        return None
    if not all(_is_message(m) for m in messages):
        return None
    return Change(seq, messages)


def open_broker(url: str | None, seed: int | None = None) -> Broker:
    """``None`` or ``local``: a :class:`LocalBroker`; ``redis://...`` or ``rediss://...``: a
    :class:`RedisBroker`. Raises ValueError for anything else."""
    if url is None or url == "local":
        return LocalBroker(seed)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBroker(url, seed)
    raise ValueError(f"unknown broker {url!r}: use 'local' or redis://HOST:PORT/DB")
