"""``python -m wsfast serve``: an echo server (text stays text, binary stays binary)."""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Callable
from typing import Any

from ..asyncio import ServerWebSocket, serve
from . import workers

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


async def echo(ws: ServerWebSocket) -> None:
    """Send every message back as it came."""
    async for message in ws:
        await ws.send(message)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    workers.add_listen_arguments(parser)
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        help="largest message accepted, in bytes (64 MiB; 0: unlimited)",
    )
    workers.add_argument(parser)


def banner(address: Any, extra: str = "") -> str:
    return f"wsfast echo server on {workers.url('ws', address, '/')}{extra}"


async def run(
    host: str | None,
    port: int | None,
    max_message_size: int | None,
    *,
    sock: socket.socket | None = None,
    ready: Callable[[], None] | None = None,
    stop: asyncio.Future[None] | None = None,
) -> None:
    """Serve until ``stop`` is done (default: until SIGINT/SIGTERM), then close every
    connection with 1001. On ``sock`` (a worker) or ``host``:``port``; ``ready()`` is called
    once it serves (default: the banner is printed)."""
    if stop is None:
        stop = workers.stop_on_signals()
    options = workers.listen_options(sock)
    async with serve(echo, host, port, max_message_size=max_message_size, **options) as server:
        workers.announce(server, ready, banner)
        await stop


async def worker(
    args: argparse.Namespace,
    sock: socket.socket,
    ready: Callable[[], None],
    stop: asyncio.Future[None],
) -> None:
    """One worker process of ``--workers N`` (see :mod:`wsfast.cli.workers`)."""
    await run(None, None, args.max_message_size or None, sock=sock, ready=ready, stop=stop)


def main(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return workers.supervise(
            worker,
            args,
            args.host,
            args.port,
            args.workers,
            lambda address, mode: banner(address, f" ({args.workers} workers, {mode})"),
        )
    return workers.serve_here(
        run(args.host, args.port, args.max_message_size or None), args.host, args.port
    )
