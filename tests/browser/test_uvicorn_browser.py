"""Chromium's own WebSocket against a Starlette application under
``uvicorn --ws wsfast.uvicorn:WSFastProtocol`` (tests/uvicorn_app.py): the echo.html checks
of test_browser.py, compression included. Skipped without uvicorn and starlette."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import CHROMIUM, NO_CHROMIUM, REQUIRE_BROWSER, SyncPage
from test_browser import run_echo_group

pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER, reason=NO_CHROMIUM)

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from uvicorn_support import UvicornProcess  # noqa: E402


@pytest.fixture(scope="module")
def uvicorn_echo() -> Iterator[UvicornProcess]:
    server = UvicornProcess()
    yield server
    print(server.stop())


@pytest.mark.parametrize("group", ["text", "binary", "burst", "compression", "close"])
def test_uvicorn_echo(page: SyncPage, uvicorn_echo: UvicornProcess, group: str) -> None:
    checks = run_echo_group(page, uvicorn_echo, group)  # type: ignore[arg-type]
    assert checks
    if group == "compression":
        assert checks[0]["name"] == "permessage-deflate negotiated"
