"""The demo page's reconnection, in Chromium: a missed change, and the growing delay.

Against ``python -m wsfast demo`` (the ``demo_server`` fixture); the page's own state
(``window.demo``) is read over the DevTools protocol.
"""

from __future__ import annotations

import json
import time

import pytest
from browser_support import CHROMIUM, NO_CHROMIUM, REQUIRE_BROWSER, ServerProcess, SyncPage

pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER, reason=NO_CHROMIUM)

OPEN_WITH_A_SNAPSHOT = """
(count) => new Promise((resolve, reject) => {
  const ready = () => demo.state === "open" && demo.snapshots >= count;
  const timer = setInterval(() => {
    if (ready()) { clearInterval(timer); resolve(true); }
  }, 20);
  setTimeout(() => { clearInterval(timer); reject(new Error("state " + demo.state)); }, 15000);
})
"""


def wait_open(page: SyncPage, snapshots: int) -> None:
    page.evaluate(f"({OPEN_WITH_A_SNAPSHOT.strip()})({snapshots})", 20)


def state(page: SyncPage) -> dict[str, object]:
    return dict(
        json.loads(
            page.evaluate(
                "JSON.stringify({seq: demo.seq, snapshots: demo.snapshots, delay: demo.delay, "
                "reconnects: demo.reconnects, closes: demo.closes.map((c) => c.code)})"
            )
        )
    )


def test_a_missed_change_starts_the_page_afresh(page: SyncPage, demo_server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{demo_server.port}/")
    wait_open(page, 1)
    # A change two ahead of the page: it closes (4000), reconnects and takes a new snapshot.
    page.evaluate(
        "demo.socket.onmessage({data: JSON.stringify({type: 'remove', id: 'A1', "
        "seq: demo.seq + 2})})"
    )
    wait_open(page, 2)
    after = state(page)
    assert after["closes"] == [4000] and after["reconnects"] == 1
    assert after["delay"] == 500  # a snapshot resets the delay


def test_the_delay_grows_while_the_server_is_away(
    page: SyncPage, demo_server: ServerProcess
) -> None:
    page.goto(f"http://127.0.0.1:{demo_server.port}/")
    wait_open(page, 1)
    # Nothing listens on port 1: each try fails and the next waits twice as long.
    page.evaluate("demo.url = 'ws://127.0.0.1:1/ws'; demo.socket.close()")
    deadline = time.monotonic() + 15
    while state(page)["reconnects"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    away = state(page)
    assert away["reconnects"] >= 3
    assert away["delay"] >= 4000  # 500 ms doubled for each failed try
    page.evaluate(f"demo.url = 'ws://127.0.0.1:{demo_server.port}/ws'")
    wait_open(page, 2)
    assert state(page)["delay"] == 500
