"""A real Redis server for the tests: Debian's ``redis-server``, one per test, on 127.0.0.1.

:class:`RedisServer` starts ``redis-server`` on a free port of 127.0.0.1 with its files in a
temporary directory (append-only file on, fsync on every write, no snapshots, no other
config), waits until it answers PING, and can be killed, stopped and started again on the same
port and data. The tests that need it skip when ``redis-server`` or redis-py is missing,
unless ``WSFAST_REQUIRE_REDIS=1`` is set (CI's Redis step), which turns the skip into a
failure. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REQUIRE_REDIS = os.environ.get("WSFAST_REQUIRE_REDIS", "").strip().lower() in {
    "1",
    "yes",
    "true",
    "on",
}


def redis_or_skip() -> str:
    """The redis-server executable; skip (or fail under WSFAST_REQUIRE_REDIS=1) without it
    or without redis-py."""
    reason = None
    if REDIS_SERVER is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
    else:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            reason = 'redis-py is not installed (pip install ".[redis]")'
    if reason is not None:
        if REQUIRE_REDIS:
            pytest.fail(f"WSFAST_REQUIRE_REDIS is set but {reason}", pytrace=False)
        pytest.skip(reason)
    assert REDIS_SERVER is not None
    return REDIS_SERVER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port`` with its data in ``directory``."""

    def __init__(
        self, executable: str, directory: Path, *, persistent: bool = True, timeout: float = 10
    ) -> None:
        self.executable = executable
        self.directory = directory
        self.persistent = persistent
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        for _ in range(5):  # another process may take the free port before redis binds it
            self.port = free_port()
            with contextlib.suppress(RuntimeError):
                self.start()
                return
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        path = self.directory / "redis.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-3000:]
        return ""

    def start(self) -> None:
        """Start (again) on the same port and data; wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer within {self.timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: what is not on disk is lost (with appendfsync always, nothing is)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(self.timeout)

    def stop(self) -> None:
        """SIGTERM (Redis writes its data and exits), SIGKILL after the timeout."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, *, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()
