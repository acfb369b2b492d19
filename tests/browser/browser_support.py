"""Headless Chromium driven over the DevTools protocol, with wsfast's own client.

- :class:`LoopThread` runs an asyncio loop in a thread so that synchronous tests can share one
  browser (``loop.run(coro, timeout)``).
- :class:`Chromium` starts ``chromium --headless=new --remote-debugging-port=0`` in a fresh
  user data dir, reads the DevTools endpoint from its ``DevToolsActivePort`` file and connects
  to it with :func:`wsfast.asyncio.connect`.
- :class:`Page` is one tab (a flattened target session): ``goto(url)``, ``evaluate(js)``
  (awaiting promises), ``insert_text(text)``; it records console messages and uncaught
  exceptions for failure reports.
- :class:`ServerProcess` runs ``python -m wsfast ...`` and reads its address from the line it
  prints (``cli_support.Command``; ``finish()`` stops it and returns its stderr).

Everything has a timeout; nothing here sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from cli_support import Command

from wsfast.asyncio import ClientWebSocket, ConnectionClosed, connect

T = TypeVar("T")

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "chromium is not installed (Debian: apt-get install chromium)"
_TRUE = {"1", "yes", "true", "on"}
# Set in CI, where a missing browser must fail the browser tests rather than skip them.
REQUIRE_BROWSER = os.environ.get("WSFAST_REQUIRE_BROWSER", "").strip().lower() in _TRUE

# DevTools replies can be large (whole verdicts, screenshots): no small message limit.
CDP_MAX_MESSAGE_SIZE = 256 * 1024 * 1024

# Keep the browser on this machine, on top of what the flags switch off: every non-loopback
# request goes to a closed local port (loopback bypasses proxies), and no name or address
# other than 127.0.0.1 resolves (the rule applies to address literals too).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-breakpad",
    "--mute-audio",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


class CDPError(Exception):
    """A DevTools command failed, or the page's JavaScript threw."""


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cdp-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for it."""
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        try:
            return future.result(timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s") from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class SyncPage:
    """A :class:`Page` for synchronous tests: each call runs on the loop thread, bounded."""

    def __init__(self, loop: LoopThread, page: Page) -> None:
        self.loop = loop
        self.page = page

    @property
    def console(self) -> list[str]:
        return self.page.console

    def goto(self, url: str, timeout: float = 15.0) -> None:
        self.loop.run(self.page.goto(url, timeout), timeout + 5)

    def evaluate(self, expression: str, timeout: float = 20.0) -> Any:
        return self.loop.run(self.page.evaluate(expression, timeout), timeout + 5)

    def insert_text(self, text: str) -> None:
        self.loop.run(self.page.insert_text(text), 15)

    def screenshot(self, path: Path) -> None:
        self.loop.run(self.page.screenshot(path), 15)


class Chromium:
    """One headless Chromium process and one DevTools connection to its browser target."""

    def __init__(self, process: subprocess.Popen[bytes], ws: ClientWebSocket, log: Path) -> None:
        self.process = process
        self.ws = ws
        self.log = log
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[tuple[str | None, str], list[Callable[[dict[str, Any]], None]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def launch(cls, executable: str, user_data_dir: Path, timeout: float = 20.0) -> Chromium:
        flags = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        flags.append("about:blank")
        log = user_data_dir / "chromium.log"
        with open(log, "wb") as err:
            process = subprocess.Popen(
                flags,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # its own process group, ended as one in close()
            )
        try:
            endpoint = await _devtools_endpoint(process, user_data_dir, log, timeout)
            ws = await connect(
                endpoint,
                max_message_size=CDP_MAX_MESSAGE_SIZE,
                open_timeout=timeout,
                close_timeout=5,
            )
        except BaseException:
            _kill_group(process)
            raise
        return cls(process, ws, log)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                key = (message.get("sessionId"), message.get("method", ""))
                for listener in list(self._listeners.get(key, ())):
                    listener(message.get("params", {}))
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CDPError("the DevTools connection closed"))
            self._pending.clear()

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send one command and return its result (raises CDPError for an error reply)."""
        if self._reader.done():
            raise CDPError("the DevTools connection is closed")
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            command["sessionId"] = session_id
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.ws.send(json.dumps(command))
        try:
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(command["id"], None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def on(
        self, session_id: str | None, method: str, listener: Callable[[dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Call ``listener(params)`` for each event ``method``; returns the unsubscriber."""
        listeners = self._listeners.setdefault((session_id, method), [])
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    async def new_page(self) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        target_id = target["targetId"]
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target_id, "flatten": True}
        )
        page = Page(self, target_id, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page

    async def close(self) -> None:
        """Ask the browser to quit; end its process group if it does not within 10 s."""
        with contextlib.suppress(Exception):
            await self.send("Browser.close", timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        _kill_group(self.process)


class Page:
    """One tab, driven through a flattened DevTools session."""

    def __init__(self, browser: Chromium, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.console: list[str] = []
        browser.on(session_id, "Runtime.consoleAPICalled", self._on_console)
        browser.on(session_id, "Runtime.exceptionThrown", self._on_exception)

    def _on_console(self, params: dict[str, Any]) -> None:
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        self.console.append(f"console.{params['type']}: {args}")

    def _on_exception(self, params: dict[str, Any]) -> None:
        details = params["exceptionDetails"]
        text = details.get("exception", {}).get("description") or details.get("text")
        self.console.append(f"uncaught: {text}")

    async def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    async def goto(self, url: str, timeout: float = 15.0) -> None:
        """Navigate and wait for the load event."""
        loaded = asyncio.get_running_loop().create_future()

        def on_load(params: dict[str, Any]) -> None:
            if not loaded.done():
                loaded.set_result(None)

        unsubscribe = self.browser.on(self.session_id, "Page.loadEventFired", on_load)
        try:
            result = await self.send("Page.navigate", {"url": url}, timeout=timeout)
            if result.get("errorText"):
                raise CDPError(f"navigating to {url}: {result['errorText']}")
            await asyncio.wait_for(loaded, timeout)
        finally:
            unsubscribe()

    async def evaluate(self, expression: str, timeout: float = 20.0) -> Any:
        """The value of ``expression`` (a promise is awaited), as JSON-like Python data."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result["result"].get("value")

    async def insert_text(self, text: str) -> None:
        """Type ``text`` into the focused element, as an input method would."""
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, path: Path) -> None:
        import base64

        data = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(data["data"]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.browser.send("Target.closeTarget", {"targetId": self.target_id})


async def _devtools_endpoint(
    process: subprocess.Popen[bytes], user_data_dir: Path, log: Path, timeout: float
) -> str:
    """``ws://127.0.0.1:PORT/devtools/browser/ID`` from the DevToolsActivePort file."""
    path = user_data_dir / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError):
            lines = path.read_text().split()
            if len(lines) >= 2:  # the port, then the browser target's path
                return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {path.name} within {timeout} s:\n{_tail(log)}")


def _tail(path: Path, size: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_bytes()[-size:].decode("utf-8", "replace")
    return ""


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """End ``process`` and its process group (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


ServerProcess = Command  # ``python -m wsfast ARGS``; tests/cli_support.py has the helper
