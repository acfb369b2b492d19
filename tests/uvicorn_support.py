"""``python -m uvicorn`` in a subprocess, on a listening socket made here (127.0.0.1, port 0)
and passed with ``--fd``: no free-port guessing. Everything has a timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
WSFAST_WS = "wsfast.uvicorn:WSFastProtocol"


class UvicornProcess:
    """``uvicorn uvicorn_app:app --ws wsfast.uvicorn:WSFastProtocol`` (or ``ws``) until
    ``stop()``; ``port`` is where it listens."""

    def __init__(self, *args: str, ws: str = WSFAST_WS, app: str = "uvicorn_app:app") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.log = tempfile.TemporaryFile()
        fd = self.sock.fileno()
        self.command = [
            sys.executable, "-m", "uvicorn", app, "--app-dir", str(TESTS), "--fd", str(fd),
            "--ws", ws, "--log-level", "info", *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSFAST_PATCH")}
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            pass_fds=[fd], env=env, start_new_session=True,
        )
        self._wait_started(20.0)

    def _wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while "Application startup complete" not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"uvicorn did not start in {timeout} s: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> str:
        """SIGINT (uvicorn's graceful shutdown), SIGKILL after 10 s; what it logged."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.sock.close()
        out = self.output()
        self.log.close()
        return out
