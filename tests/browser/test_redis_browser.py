"""The demo page in Chromium, served by two workers sharing a board in Redis.

``python -m wsfast demo --workers 2 --broker redis://...`` runs against a real ``redis-server``
(127.0.0.1, a free port, its own directory); the test makes the changes itself through the
demo's broker, opens several tabs, and checks after each step that every tab shows exactly
the board held in Redis: after changes, after one worker is killed (its tabs reconnect by
themselves, with the page's backoff, to the other worker or its replacement) and after Redis
is killed and started again. Skipped without Chromium (unless ``WSFAST_REQUIRE_BROWSER=1``),
``redis-server`` or redis-py (unless ``WSFAST_REQUIRE_REDIS=1``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    CHROMIUM,
    NO_CHROMIUM,
    REQUIRE_BROWSER,
    LoopThread,
    ServerProcess,
    SyncPage,
)
from redis_support import RedisServer, redis_or_skip

from wsfast.cli.broker import RedisBroker, Snapshot

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER, reason=NO_CHROMIUM),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]

TABS = 4

# What a tab shows: the change it is at, its connection, and its orders in id order.
STATE = """JSON.stringify({
  seq: demo.seq, state: demo.state, worker: demo.worker, reconnects: demo.reconnects,
  closes: demo.closes.map((c) => c.code),
  orders: Object.values(demo.orders).sort((a, b) => a.id.slice(1) - b.id.slice(1)),
  rows: [...document.querySelectorAll("#orders tr[data-id]")].map((row) => row.dataset.id + " "
        + row.querySelector(".status span").textContent),
})"""


@pytest.fixture
def redis_demo(tmp_path: Path) -> Iterator[tuple[RedisServer, ServerProcess]]:
    redis = RedisServer(redis_or_skip(), tmp_path)
    try:
        server = ServerProcess(
            "demo", "--host", "127.0.0.1", "--port", "0", "--workers", "2",
            "--broker", redis.url, "--interval", "3600",
        )  # fmt: skip
        try:
            yield redis, server
        finally:
            print(server.finish())
    finally:
        redis.stop()


class Board:
    """The test's own connection to the board in Redis, on the browser tests' loop."""

    def __init__(self, loop: LoopThread, url: str) -> None:
        self.loop = loop
        self.broker = RedisBroker(url, seed=7)
        loop.run(self.broker.open(), 15)

    def step(self, n: int) -> None:
        for _ in range(n):
            assert self.loop.run(self.broker.step(), 15)

    def snapshot(self) -> Snapshot | None:
        try:
            return self.loop.run(self.broker.snapshot(), 15)
        except self.broker.errors:
            return None

    def close(self) -> None:
        self.loop.run(self.broker.close(), 15)


def states(tabs: list[SyncPage]) -> list[dict[str, Any]]:
    return [json.loads(tab.evaluate(STATE, 10)) for tab in tabs]


def converge(tabs: list[SyncPage], board: Board, timeout: float = 30) -> list[dict[str, Any]]:
    """Wait until every tab is connected and shows the board in Redis, rows included."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = board.snapshot()
        shown = states(tabs)
        if snapshot is not None:
            rows = [f"{o['id']} {o['status']}" for o in snapshot.orders]
            if all(
                s["state"] == "open"
                and s["seq"] == snapshot.seq
                and s["orders"] == snapshot.orders
                and s["rows"] == rows
                for s in shown
            ):
                return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"tabs did not converge on {snapshot}: {shown}")
        time.sleep(0.1)


def test_tabs_stay_on_the_board_in_redis_through_failures(
    cdp_loop: LoopThread, browser: Any, redis_demo: tuple[RedisServer, ServerProcess]
) -> None:
    redis, server = redis_demo
    assert "2 workers (SO_REUSEPORT)" in server.banner
    board = Board(cdp_loop, redis.url)
    tabs = [SyncPage(cdp_loop, cdp_loop.run(browser.new_page(), 15)) for _ in range(TABS)]
    try:
        for tab in tabs:
            tab.goto(f"http://127.0.0.1:{server.port}/")
        converge(tabs, board)

        board.step(3)
        shown = converge(tabs, board)
        assert all(s["reconnects"] == 0 for s in shown)

        # A worker dies: its tabs see the connection drop (1006) and come back by themselves.
        victim = shown[0]["worker"]
        os.kill(victim, signal.SIGKILL)
        board.step(3)
        shown = converge(tabs, board)
        moved = [s for s in shown if 1006 in s["closes"]]
        assert moved and all(s["reconnects"] >= 1 and s["worker"] != victim for s in moved)

        # Redis dies and comes back (its append-only file keeps every change).
        before = board.snapshot()
        redis.restart(hard=True)
        shown = converge(tabs, board)
        assert board.snapshot() == before
        board.step(3)
        converge(tabs, board)
    finally:
        for tab in tabs:
            print("browser console:", *tab.console or ["(empty)"], sep="\n  ")
            cdp_loop.run(tab.page.close(), 15)
        board.close()
