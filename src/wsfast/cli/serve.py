"""``python -m wsfast serve``: an echo server (text stays text, binary stays binary)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from ..asyncio import ServerWebSocket, serve

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


async def echo(ws: ServerWebSocket) -> None:
    """Send every message back as it came."""
    async for message in ws:
        await ws.send(message)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (8765)")
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        help="largest message accepted, in bytes (64 MiB; 0: unlimited)",
    )


async def run(host: str, port: int, max_message_size: int | None) -> None:
    """Serve until SIGINT/SIGTERM, then close every connection with 1001."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(echo, host, port, max_message_size=max_message_size) as server:
        address = server.sockets[0].getsockname()
        print(f"wsfast echo server on ws://{address[0]}:{address[1]}/", flush=True)
        await stop


def main(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.host, args.port, args.max_message_size or None))
    return 0
