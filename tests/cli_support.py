"""``python -m wsfast ...`` as a process for the tests: its banner, its workers, its end.

:class:`Command` starts the command in a session of its own (so that a Ctrl-C can be sent to
its process group as a terminal would), reads the port from the first line it prints, finds
its worker processes through ``/proc`` (Linux) and stops it with SIGTERM, SIGKILL after a
timeout. Every wait is bounded. The browser tests use it too (``tests/browser``).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADDRESS = re.compile(r"(?:ws|http)://127\.0\.0\.1:(\d+)/")
PROC = Path("/proc")


class Command:
    """``python -m wsfast ARGS`` (or ``python -c CODE`` with ``code=``) until ``stop()``."""

    def __init__(self, *args: str, code: str | None = None, timeout: float = 30.0) -> None:
        if code is not None:
            self.command = [sys.executable, "-c", code, *args]
        else:
            self.command = [sys.executable, "-m", "wsfast", *args]
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            self.banner = self.read_line(timeout)
            match = ADDRESS.search(self.banner)
            if match is None:
                raise RuntimeError(f"no address in {self.banner!r}{self._tail()}")
            self.port = int(match.group(1))
        except BaseException:
            self.kill()
            raise

    def read_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        data = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise TimeoutError(f"nothing printed in {timeout} s{self._tail()}")
                chunk = os.read(fd, 1)
                if not chunk:
                    raise RuntimeError(f"the command exited{self._tail()}")
                data += chunk
        return data.decode("utf-8", "replace")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def _tail(self) -> str:
        text = self.stderr()[-3000:]
        return f"; its stderr:\n{text}" if text else ""

    def workers(self) -> list[int]:
        """The pids of the worker processes (children started by multiprocessing's spawn)."""
        return sorted(
            pid
            for pid in children(self.process.pid)
            if b"spawn_main" in _read(PROC / str(pid) / "cmdline")
        )

    def wait_workers(
        self, count: int, timeout: float = 30.0, old: tuple[int, ...] = ()
    ) -> list[int]:
        """Wait until ``count`` workers run, none of them in ``old``."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.workers()
            if len(pids) == count and not set(pids) & set(old):
                return pids
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers: {pids}, wanted {count} new ones{self._tail()}")
            time.sleep(0.05)

    def signal_group(self, sig: int) -> None:
        """``sig`` to the whole process group, as a terminal sends Ctrl-C."""
        os.killpg(self.process.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL to the group after ``timeout``; the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def close(self) -> None:
        """Make sure nothing of it is left (its process group), and release its pipes."""
        self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def finish(self, timeout: float = 10.0) -> str:
        """``stop()`` (SIGTERM: it closes its connections and exits), then ``close()``; its
        stderr, for the test's output."""
        self.stop(timeout)
        err = self.stderr()
        self.close()
        return err


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    stat = _read(PROC / str(pid) / "stat")
    return bool(stat) and stat[stat.rfind(b")") + 2 :][:1] != b"Z"


def established_by_pid(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections to local ``port`` each of ``pids`` holds."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        for line in _read(PROC / "net" / table).decode().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    counts = {}
    for pid in pids:
        n = 0
        with contextlib.suppress(OSError):
            for fd in (PROC / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        n += 1
        counts[pid] = n
    return counts
