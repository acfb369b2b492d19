"""Chromium's own WebSocket client against wsfast's servers, driven over the DevTools protocol.

The echo checks run in ``echo.html`` against ``python -m wsfast serve``: the page's JavaScript
sends, compares what comes back byte for byte and resolves ``runTests()`` to a JSON verdict,
which the test reads with ``Runtime.evaluate(awaitPromise=true)``. The demo checks load the
page of ``python -m wsfast demo`` and read its DOM as the server pushes order updates.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, NO_CHROMIUM, REQUIRE_BROWSER, ServerProcess, SyncPage

pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER, reason=NO_CHROMIUM)

ECHO_PAGE = Path(__file__).with_name("echo.html").as_uri()
STATUSES = ["placed", "paid", "packed", "shipped", "delivered"]


def run_echo_group(page: SyncPage, server: ServerProcess, group: str) -> list[dict[str, Any]]:
    """Run one group of echo.html's checks; assert they all passed; return them."""
    url = f"ws://127.0.0.1:{server.port}/"
    page.goto(ECHO_PAGE)
    verdict = json.loads(page.evaluate(call("runTests", url, [group]), 30))
    failed = [c for c in verdict["checks"] if not c["ok"]]
    assert verdict["ok"] and not failed, json.dumps(failed, indent=2, ensure_ascii=False)
    return verdict["checks"]


def test_text_messages_echo_unchanged(page: SyncPage, echo_server: ServerProcess) -> None:
    checks = run_echo_group(page, echo_server, "text")
    assert [c["name"] for c in checks] == ["empty", "ascii", "cjk", "emoji", "mixed 70 KB"]


def test_binary_messages_echo_byte_identical(page: SyncPage, echo_server: ServerProcess) -> None:
    checks = run_echo_group(page, echo_server, "binary")
    assert [c["name"] for c in checks] == [
        f"{n} bytes" for n in (0, 125, 126, 65535, 65536, 1024 * 1024)
    ]


def test_burst_of_1000_messages_in_order(page: SyncPage, echo_server: ServerProcess) -> None:
    checks = run_echo_group(page, echo_server, "burst")
    assert [c["name"] for c in checks] == ["1000 messages in order"]


def test_compression_negotiated_and_byte_identical(
    page: SyncPage, echo_server: ServerProcess
) -> None:
    checks = run_echo_group(page, echo_server, "compression")
    assert [c["name"] for c in checks] == ["permessage-deflate negotiated"] + [
        f"compressed message {i}" for i in range(5)
    ]


def test_clean_close_1000(page: SyncPage, echo_server: ServerProcess) -> None:
    checks = run_echo_group(page, echo_server, "close")
    assert [c["name"] for c in checks] == ["echo before closing", "close event"]


# --- the demo -------------------------------------------------------------------------------

WAIT_FOR_ORDERS = """
new Promise((resolve, reject) => {
  const ready = () => window.demo && demo.state === "open"
    && document.querySelectorAll("#orders tr[data-id]").length > 0;
  if (ready()) return resolve(true);
  const timer = setInterval(() => { if (ready()) { clearInterval(timer); resolve(true); } }, 20);
  setTimeout(() => { clearInterval(timer); reject(new Error("no orders shown: " + demo.state)); },
             10000);
})
"""

# Watch the table (a MutationObserver, no polling) until `wanted` status changes were shown.
WATCH_ORDERS = """
(wanted) => new Promise((resolve) => {
  const rows = () => Object.fromEntries([...document.querySelectorAll("#orders tr[data-id]")]
    .map((row) => [row.dataset.id, row.querySelector(".status span").textContent]));
  const first = rows();
  let last = first;
  const changes = [];
  const done = () => {
    observer.disconnect();
    resolve(JSON.stringify({ first, last, changes, updates: demo.updates,
                             known: Object.keys(demo.orders).sort(), url: demo.url }));
  };
  const observer = new MutationObserver(() => {
    const now = rows();
    for (const id of new Set([...Object.keys(last), ...Object.keys(now)])) {
      if (last[id] !== now[id]) changes.push({ id, from: last[id] || null, to: now[id] || null });
    }
    last = now;
    if (changes.length >= wanted) done();
  });
  observer.observe(document.getElementById("orders"),
                   { childList: true, subtree: true, characterData: true });
  setTimeout(done, 10000);
})
"""


# The echo log's lines once `text` came back.
WAIT_FOR_ECHO = """
(text) => new Promise((resolve, reject) => {
  const read = () => [...document.querySelectorAll("#echo-log li")]
    .map((item) => item.className + " " + item.textContent);
  if (demo.echoes.includes(text)) return resolve(read());
  const timer = setInterval(() => {
    if (demo.echoes.includes(text)) { clearInterval(timer); resolve(read()); }
  }, 20);
  setTimeout(() => { clearInterval(timer); reject(new Error("no echo: " + read())); }, 10000);
})
"""


def call(function: str, *args: Any) -> str:
    """A JavaScript expression calling ``function`` (source text) with JSON arguments."""
    return f"({function.strip()})({', '.join(json.dumps(a) for a in args)})"


def test_demo_page_shows_pushed_order_updates(page: SyncPage, demo_server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{demo_server.port}/")
    page.evaluate(WAIT_FOR_ORDERS, 15)
    state = json.loads(page.evaluate(call(WATCH_ORDERS, 8), 15))
    changes = state["changes"]
    assert len(changes) >= 8, state
    for change in changes:
        old, new = change["from"], change["to"]
        if old is None:  # a new order comes in placed
            assert new == "placed", change
        elif new is None:  # only a delivered order leaves
            assert old == "delivered", change
        else:  # one step on at a time
            assert STATUSES.index(new) == STATUSES.index(old) + 1, change
    assert sorted(state["last"]) == state["known"]  # the table shows what the page knows
    assert state["url"] == f"ws://127.0.0.1:{demo_server.port}/ws"
    assert state["updates"] > 1


def test_demo_echo_box(page: SyncPage, demo_server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{demo_server.port}/")
    page.evaluate(WAIT_FOR_ORDERS, 15)
    text = "h\u00e9llo, \u4e16\u754c \U0001f680"
    page.evaluate("document.getElementById('echo-input').focus()")
    page.insert_text(text)  # typed, as by a person
    assert page.evaluate("document.getElementById('echo-input').value") == text
    page.evaluate("document.getElementById('echo-send').click()")
    log = page.evaluate(call(WAIT_FOR_ECHO, text), 15)
    assert log[:2] == [f"received \u2190 {text}", f"sent \u2192 {text}"]
    assert page.evaluate("document.getElementById('echo-input').value") == ""


def test_demo_page_from_the_websocket_port(page: SyncPage, demo_server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{demo_server.port}/")
    page.evaluate(WAIT_FOR_ORDERS, 15)
    # The page found its WebSocket on its own host and port, and loaded nothing else.
    assert page.evaluate("demo.url") == f"ws://127.0.0.1:{demo_server.port}/ws"
    assert page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)") == []
    assert page.evaluate("document.title") == "wsfast demo: live orders"


def test_demo_page_with_ws_parameter(page: SyncPage, demo_server: ServerProcess) -> None:
    # The page opened from its file, pointed at the demo's endpoint with ?ws=.
    ws_url = f"ws://127.0.0.1:{demo_server.port}/ws"
    html = Path(str(resources.files("wsfast.cli").joinpath("demo.html")))
    page.goto(f"{html.as_uri()}?ws={ws_url}")
    page.evaluate(WAIT_FOR_ORDERS, 15)
    assert page.evaluate("demo.url") == ws_url
    assert page.evaluate("document.getElementById('url').textContent") == ws_url
