"""Worker processes for ``python -m wsfast serve|demo --workers N``: N processes, one port.

The supervisor (the process started from the command line) creates the listening sockets and
starts N worker processes (``multiprocessing``'s spawn method, the same on every OS), each
serving with its own event loop:

- Where ``SO_REUSEPORT`` balances connections (Linux), each worker gets a listening socket of
  its own, all bound to the same address with ``SO_REUSEPORT``, and the kernel spreads new
  connections over them.
- Elsewhere the workers share one listening socket and each accepts from it.

The supervisor keeps the sockets open, so a worker that dies is replaced on the same socket
(connections waiting in its queue are not lost). On SIGINT (Ctrl-C) or SIGTERM it tells every
worker to stop, through a pipe that also ends them if the supervisor itself is killed; each
worker closes its connections with 1001 (going away) and exits. A worker still running after
``stop_timeout`` seconds is killed.

This lives with the command line rather than in :mod:`wsfast.asyncio`: it is process
supervision (signals, restarts, exit statuses), which applications usually leave to a
process manager; the library side is only ``serve(..., sock=...)`` and ``reuse_port=True``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = [
    "BACKLOG",
    "Worker",
    "add_argument",
    "add_listen_arguments",
    "announce",
    "listen_options",
    "reuse_port_balances",
    "serve_here",
    "stop_on_signals",
    "supervise",
    "url",
    "worker_count",
]

BACKLOG = 1024
START_TIMEOUT = 30.0  # seconds for a worker to start serving
RESTART_DELAY = 1.0  # first delay before a dead worker is replaced; doubles up to 30 s
SLOW_STOP_REPORT = 10.0  # a worker still stopping after this long says what it waits for

# A worker: ``target(args, sock, ready, stop)`` serves on ``sock`` (passing ``backlog=BACKLOG``
# on), calls ``ready()`` once it accepts connections and returns after ``stop`` is done, with
# every connection closed (1001).
Target = Callable[
    [argparse.Namespace, socket.socket, Callable[[], None], "asyncio.Future[None]"],
    Awaitable[None],
]


def worker_count(value: str) -> int:
    """argparse type for ``--workers``: an integer from 1 to 64."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError("--workers must be between 1 and 64")
    return n


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port`` for a command that listens."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")


def add_argument(parser: argparse.ArgumentParser, note: str = "") -> None:
    """``--workers N`` for a command."""
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help=f"worker processes on the port (1{note})",
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def stop_on_signals() -> asyncio.Future[None]:
    """A future of the running loop, done on SIGINT or SIGTERM (where the loop can catch
    signals: not on Windows)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, _resolve, stop)
    return stop


def listen_options(sock: socket.socket | None) -> dict[str, Any]:
    """``serve()`` keywords for a worker's listening socket (none without one)."""
    return {} if sock is None else {"sock": sock, "backlog": BACKLOG}


def url(scheme: str, address: Any, path: str) -> str:
    """``scheme://host:port{path}`` for a listening socket's address (IPv6 in brackets)."""
    host, port = address[0], address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


def announce(
    server: Any, ready: Callable[[], None] | None, banner: Callable[[Any], str]
) -> None:
    """Say that ``server`` serves: ``ready()`` in a worker, else print ``banner(address)``."""
    if ready is not None:
        ready()
    else:
        print(banner(server.sockets[0].getsockname()), flush=True)


def reuse_port_balances() -> bool:
    """True where ``SO_REUSEPORT`` spreads connections over the sockets that share a port
    (Linux); elsewhere it exists with other meanings or not at all."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _listening_socket(address: tuple[Any, ...], family: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def listen(host: str | None, port: int, count: int, reuse_port: bool) -> list[socket.socket]:
    """``count`` sockets listening on ``host``:``port`` with SO_REUSEPORT, or one socket.

    The first address ``host`` resolves to is used; port 0 picks one free port for all.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _name, address = infos[0]
    first = _listening_socket(address, family, reuse_port)
    socks = [first]
    try:
        address = first.getsockname()  # the real port when port was 0
        for _ in range(count - 1 if reuse_port else 0):
            socks.append(_listening_socket(address, family, reuse_port))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def serve_here(server: Coroutine[Any, Any, None], host: str | None, port: int) -> int:
    """Run ``server`` (serving ``host``:``port`` in this process) until it returns or Ctrl-C;
    the exit status. An address that cannot be served on is reported as :func:`supervise`
    reports it."""
    try:
        asyncio.run(server)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


# --- in the worker process ----------------------------------------------------------------


def _worker_main(
    target: Target,
    args: argparse.Namespace,
    sock: socket.socket,
    conn: multiprocessing.connection.Connection,
) -> None:
    """A worker process: run ``target`` until the supervisor says stop (or goes away)."""
    try:
        asyncio.run(_worker(target, args, sock, conn))
    except KeyboardInterrupt:  # Ctrl-C before the loop took over the signal
        pass
    except BaseException as exc:
        text = str(exc) if type(exc) is RuntimeError else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            conn.send(("error", text))
        raise SystemExit(1) from None


async def _worker(
    target: Target,
    args: argparse.Namespace,
    sock: socket.socket,
    conn: multiprocessing.connection.Connection,
) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_on_signals()

    def watch() -> None:  # any message, or the pipe's end, means stop
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            loop.call_soon_threadsafe(_resolve, stop)

    threading.Thread(target=watch, name="wsfast-worker-stop", daemon=True).start()

    def ready() -> None:
        conn.send(("ready", os.getpid()))

    async def report_slow_stop() -> None:
        await stop
        await asyncio.sleep(SLOW_STOP_REPORT)
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                print(f"worker {os.getpid()} still stopping: {task!r}", file=sys.stderr)
                task.print_stack(limit=3, file=sys.stderr)

    reporter = asyncio.create_task(report_slow_stop())
    try:
        await target(args, sock, ready, stop)
    finally:
        reporter.cancel()


# --- in the supervisor ----------------------------------------------------------------------


class Worker:
    """One worker process, as the supervisor sees it."""

    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index = index
        self.sock = sock
        self.process: Any = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.ready = False
        self.failures = 0  # exits in a row before serving
        self.restart_at: float | None = None

    def start(self, target: Target, args: argparse.Namespace) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker_main,
            args=(target, args, self.sock, child),
            name=f"wsfast-worker-{self.index}",
        )
        process.start()
        child.close()
        self.process, self.conn, self.ready = process, parent, False
        self.restart_at = None

    def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.send("stop")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _describe(status: int | None) -> str:
    if status is not None and status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
    return f"status {status}"


def supervise(
    target: Target,
    args: argparse.Namespace,
    host: str | None,
    port: int,
    workers: int,
    banner: Callable[[tuple[Any, ...], str], str],
    *,
    reuse_port: bool | None = None,
    stop_timeout: float = 15.0,
) -> int:
    """Run ``workers`` processes of ``target`` on one port until SIGINT/SIGTERM; the exit
    status. ``banner(address, mode)`` is printed once all of them serve (``mode``:
    ``"SO_REUSEPORT"`` or ``"shared socket"``)."""
    if reuse_port is None:
        reuse_port = reuse_port_balances()
    try:
        socks = listen(host, port, workers, reuse_port)
    except OSError as exc:
        print(f"cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    address = socks[0].getsockname()
    pool = [Worker(i, socks[i if reuse_port else 0]) for i in range(workers)]
    stopping = False
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    old_wakeup = signal.set_wakeup_fd(wake_w.fileno())
    status = 0
    try:
        for worker in pool:
            worker.start(target, args)
        if not _wait_ready(pool, lambda: stopping):
            status = 0 if stopping else 1
        else:
            mode = "SO_REUSEPORT" if reuse_port else "shared socket"
            print(banner(address, mode), flush=True)
            _watch(pool, target, args, lambda: stopping, wake_r)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        _stop_all(pool, stop_timeout)
        for sock in socks:
            sock.close()
        wake_r.close()
        wake_w.close()
    return status


def _receive(worker: Worker) -> tuple[str, Any] | None:
    """A message from a worker, if one is waiting; None otherwise or at the pipe's end."""
    conn = worker.conn
    if conn is None:
        return None
    try:
        if conn.poll():
            message: tuple[str, Any] = conn.recv()
            return message
    except (EOFError, OSError):
        pass
    return None


def _wait_ready(pool: list[Worker], stopping: Callable[[], bool]) -> bool:
    """Wait until every worker serves; False (after printing why) if one cannot."""
    deadline = time.monotonic() + START_TIMEOUT
    while not all(w.ready for w in pool):
        if stopping():
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"the workers did not start within {START_TIMEOUT:.0f} s", file=sys.stderr)
            return False
        waiting = [w for w in pool if not w.ready]
        objects: list[Any] = [w.conn for w in waiting] + [w.process.sentinel for w in waiting]
        multiprocessing.connection.wait(objects, min(left, 0.5))
        for worker in waiting:
            message = _receive(worker)
            if message is not None and message[0] == "ready":
                worker.ready = True
            elif message is not None and message[0] == "error":
                print(f"worker {worker.index}: {message[1]}", file=sys.stderr)
                return False
            elif not worker.process.is_alive():
                code = _describe(worker.process.exitcode)
                print(f"worker {worker.index} exited with {code}", file=sys.stderr)
                return False
    return True


def _watch(
    pool: list[Worker],
    target: Target,
    args: argparse.Namespace,
    stopping: Callable[[], bool],
    wake: socket.socket,
) -> None:
    """Until a signal: replace workers that die, after a delay that grows while they keep
    dying before they serve."""
    while not stopping():
        now = time.monotonic()
        timeouts = [w.restart_at - now for w in pool if w.restart_at is not None]
        objects: list[Any] = [wake]
        for worker in pool:
            if worker.restart_at is None:
                objects.append(worker.process.sentinel)
                if worker.conn is not None and not worker.ready:
                    objects.append(worker.conn)
        multiprocessing.connection.wait(objects, max(0.0, min(timeouts, default=1.0)))
        with contextlib.suppress(BlockingIOError):
            while wake.recv(512):
                pass
        if stopping():
            return
        now = time.monotonic()
        for worker in pool:
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    worker.start(target, args)
                continue
            message = _receive(worker)
            if message is not None and message[0] == "ready":
                worker.ready = True
                worker.failures = 0
            elif message is not None and message[0] == "error":
                print(f"worker {worker.index}: {message[1]}", file=sys.stderr)
            if not worker.process.is_alive():
                worker.process.join()
                if not worker.ready:
                    worker.failures += 1
                delay = min(RESTART_DELAY * 2 ** max(worker.failures - 1, 0), 30.0)
                print(
                    f"worker {worker.index} (pid {worker.process.pid}) exited with "
                    f"{_describe(worker.process.exitcode)}; restarting it in {delay:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                worker.close()
                worker.restart_at = now + delay


def _stop_all(pool: list[Worker], timeout: float) -> None:
    running = [w for w in pool if w.process is not None and w.process.is_alive()]
    for worker in running:
        worker.stop()
    deadline = time.monotonic() + timeout
    for worker in running:
        worker.process.join(max(0.0, deadline - time.monotonic()))
    for worker in running:
        if worker.process.is_alive():
            print(f"worker {worker.index} did not stop in {timeout:.0f} s: killed", file=sys.stderr)
            worker.process.kill()
            worker.process.join(5)
    for worker in pool:
        worker.close()
