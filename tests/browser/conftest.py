"""Fixtures for the browser tests: one headless Chromium, a fresh tab per test,
and wsfast servers (``python -m wsfast serve`` and ``python -m wsfast demo``) on 127.0.0.1.

Chromium and the servers live as long as the test module. The tests are skipped when
``chromium`` is not on PATH (Debian: ``apt-get install chromium``), unless
``WSFAST_REQUIRE_BROWSER=1`` is set, which turns that skip into a failure. Every step has its
own timeout (launching the browser 30 s, a page load 15 s, a page's checks 20-30 s, a
server's start 20 s and its stop 10 s before SIGKILL).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import (
    CHROMIUM,
    NO_CHROMIUM,
    REQUIRE_BROWSER,
    Chromium,
    LoopThread,
    ServerProcess,
    SyncPage,
)

# How often the demo moves an order on in these tests (the CLI default is 1 s).
DEMO_INTERVAL = 0.2


@pytest.fixture(scope="module")
def cdp_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def browser(cdp_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    if CHROMIUM is None:
        if REQUIRE_BROWSER:
            pytest.fail(f"WSFAST_REQUIRE_BROWSER is set but {NO_CHROMIUM}")
        pytest.skip(NO_CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    chromium = cdp_loop.run(Chromium.launch(CHROMIUM, profile), 30)
    yield chromium
    cdp_loop.run(chromium.close(), 30)


@pytest.fixture
def page(cdp_loop: LoopThread, browser: Chromium) -> Iterator[SyncPage]:
    tab = cdp_loop.run(browser.new_page(), 15)
    yield SyncPage(cdp_loop, tab)
    # Shown by pytest when the test failed.
    print("browser console:", *tab.console or ["(empty)"], sep="\n  ")
    cdp_loop.run(tab.close(), 15)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ServerProcess]:
    """``python -m wsfast serve`` on a free port of 127.0.0.1."""
    server = ServerProcess("serve", "--host", "127.0.0.1", "--port", "0")
    yield server
    print(server.finish())


@pytest.fixture(scope="module")
def demo_server() -> Iterator[ServerProcess]:
    """``python -m wsfast demo`` on a free port of 127.0.0.1, changing an order every 0.2 s."""
    server = ServerProcess(
        "demo", "--host", "127.0.0.1", "--port", "0", "--interval", str(DEMO_INTERVAL)
    )
    yield server
    print(server.finish())
