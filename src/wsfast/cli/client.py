"""``python -m wsfast client URI``: an interactive client.

Lines typed are sent as text messages; messages received are printed (binary ones as
``<N bytes: hex...>``). End of input (Ctrl-D) closes the connection with 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ..asyncio import ClientWebSocket, ConnectionClosed, InvalidHandshake, connect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", help="ws:// or wss:// URI to connect to")


def _show(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    preview = message[:32].hex(" ")
    return f"<{len(message)} bytes: {preview}{' ...' if len(message) > 32 else ''}>"


async def _print_incoming(ws: ClientWebSocket) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            print(f"< {_show(message)}", flush=True)


async def run(uri: str) -> int:
    try:
        ws = await connect(uri)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        print(f"cannot connect to {uri}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {uri} (Ctrl-D to close)", file=sys.stderr, flush=True)
    printer = asyncio.create_task(_print_incoming(ws))
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or printer.done():
                break
            try:
                await ws.send(line.rstrip("\r\n"))
            except ConnectionClosed:
                break
    finally:
        await ws.close()
        await printer
    print(f"closed: {ws.close_code} {ws.close_reason or ''}".rstrip(), file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run(args.uri))
    except KeyboardInterrupt:
        return 130
