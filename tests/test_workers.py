"""``--workers N``: N processes on one port (``wsfast.cli.workers``), with the echo server.

Each test runs ``python -m wsfast serve --workers 2`` (or the supervisor with a shared socket)
on a free port of 127.0.0.1 and talks to it with wsfast's client. Linux only: the workers
are found, and their connections counted, through /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cli_support import Command, alive, established_by_pid

from wsfast.asyncio import ClientWebSocket, ConnectionClosed, connect
from wsfast.cli import demo, serve, workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the workers through /proc"
)

TIMEOUT = 30.0


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture
def echo2() -> Iterator[Command]:
    command = Command("serve", "--port", "0", "--workers", "2")
    yield command
    command.close()


async def open_echoes(port: int, n: int) -> list[ClientWebSocket]:
    clients = [await connect(f"ws://127.0.0.1:{port}/", ping_interval=None) for _ in range(n)]
    for i, ws in enumerate(clients):
        await ws.send(f"hello {i}")
        assert await ws.recv() == f"hello {i}"
    return clients


async def close_codes(clients: list[ClientWebSocket]) -> list[int | None]:
    """Wait for each client's connection to end; the close codes."""
    for ws in clients:
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
    return [ws.close_code for ws in clients]


def test_connections_spread_over_the_workers(echo2: Command) -> None:
    assert "2 workers, SO_REUSEPORT" in echo2.banner
    pids = echo2.wait_workers(2)

    async def main() -> None:
        clients = await open_echoes(echo2.port, 40)
        counts = established_by_pid(echo2.port, pids)
        assert sum(counts.values()) == 40 and all(counts.values()), counts
        for ws in clients:
            await ws.close()

    run(main())


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_stopping_closes_every_client_with_1001(echo2: Command, how: str) -> None:
    pids = echo2.wait_workers(2)

    async def main() -> None:
        clients = await open_echoes(echo2.port, 20)
        if how == "SIGTERM":
            echo2.process.send_signal(signal.SIGTERM)
        else:
            echo2.signal_group(signal.SIGINT)  # what a terminal does on Ctrl-C
        assert await close_codes(clients) == [1001] * 20

    run(main())
    assert echo2.wait() == 0
    assert echo2.stderr() == ""
    assert not any(alive(pid) for pid in pids)


def test_a_dead_worker_is_replaced(echo2: Command) -> None:
    pids = echo2.wait_workers(2)
    os.kill(pids[0], signal.SIGKILL)
    new = echo2.wait_workers(2, old=(pids[0],))
    assert pids[1] in new
    assert f"(pid {pids[0]}) exited with signal SIGKILL; restarting it" in echo2.stderr()

    async def main() -> None:
        # Every connection is served, including those the kernel gave the new worker's socket.
        clients = await open_echoes(echo2.port, 40)
        counts = established_by_pid(echo2.port, new)
        assert all(counts.values()), counts
        for ws in clients:
            await ws.close()

    run(main())
    assert echo2.stop() == 0


def test_workers_end_when_the_supervisor_is_killed(echo2: Command) -> None:
    pids = echo2.wait_workers(2)

    async def main() -> None:
        clients = await open_echoes(echo2.port, 10)
        echo2.process.kill()  # no chance to tell the workers: their pipe ends
        assert await close_codes(clients) == [1001] * 10

    run(main())
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


SHARED_SOCKET = """
import argparse, sys
from wsfast.cli import serve, workers
args = argparse.Namespace(max_message_size=1 << 20)
sys.exit(workers.supervise(serve.worker, args, "127.0.0.1", 0, 2,
                           lambda a, m: serve.banner(a, f" ({m})"), reuse_port=False))
"""


def test_a_shared_socket_where_reuse_port_does_not_balance() -> None:
    command = Command(code=SHARED_SOCKET)
    try:
        assert command.banner.endswith("(shared socket)\n")
        pids = command.wait_workers(2)

        async def main() -> None:
            # Each worker accepts from the one socket: stop either, the other takes them all.
            for stopped, running in (pids, pids[::-1]):
                os.kill(stopped, signal.SIGSTOP)
                try:
                    clients = await open_echoes(command.port, 10)
                    assert established_by_pid(command.port, pids) == {stopped: 0, running: 10}
                    for ws in clients:
                        await ws.close()
                finally:
                    os.kill(stopped, signal.SIGCONT)
                while any(established_by_pid(command.port, pids).values()):
                    await asyncio.sleep(0.02)
            clients = await open_echoes(command.port, 10)
            command.process.send_signal(signal.SIGTERM)
            assert await close_codes(clients) == [1001] * 10

        run(main())
        assert command.wait() == 0
    finally:
        command.close()


def test_a_worker_that_cannot_start_stops_them_all() -> None:
    # The demo's workers need a Redis server; nothing listens on this one.
    command = [
        sys.executable, "-m", "wsfast", "demo", "--port", "0", "--workers", "2",
        "--broker", "redis://127.0.0.1:1/0",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.stdout == b""  # no banner
    if importlib.util.find_spec("redis") is None:  # said before any worker starts
        assert result.returncode == 2
        assert b'pip install "wsfast[redis]"' in result.stderr
    else:
        assert result.returncode == 1
        assert b"cannot reach the broker redis://127.0.0.1:1/0" in result.stderr


def test_the_demo_needs_a_shared_broker_for_workers(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    assert demo.main(parser.parse_args(["--workers", "2"])) == 2
    assert "--broker redis://" in capsys.readouterr().err
    assert demo.main(parser.parse_args(["--broker", "memcached://x"])) == 2
    assert "unknown broker" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--workers", "0"])


def test_worker_count() -> None:
    assert workers.worker_count("4") == 4
    for bad in ("0", "65", "two"):
        with pytest.raises(argparse.ArgumentTypeError):
            workers.worker_count(bad)


def test_reuse_port_balances_on_linux() -> None:
    assert workers.reuse_port_balances() is True


def test_banners_bracket_an_ipv6_address() -> None:
    address = ("::1", 8765, 0, 0)
    assert serve.banner(address) == "wsfast echo server on ws://[::1]:8765/"
    assert demo.banner(address).startswith("wsfast demo on http://[::1]:8765/ ")
    assert serve.banner(("127.0.0.1", 8765)) == "wsfast echo server on ws://127.0.0.1:8765/"


@pytest.mark.parametrize("command", [serve, demo], ids=["serve", "demo"])
def test_cli_port_taken(command: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        parser = argparse.ArgumentParser()
        command.add_arguments(parser)
        assert command.main(parser.parse_args(["--port", str(port)])) == 1
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
