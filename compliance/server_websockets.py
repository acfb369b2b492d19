"""Stand-in server under test: a `websockets` echo server.

Usage: python compliance/server_websockets.py --host 127.0.0.1 --port PORT

Used to validate the harness until ``python -m wsfast serve`` exists.
Needs ``websockets`` >= 13 (the asyncio implementation).
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 2**25  # group 9 sends messages of up to 16 MiB


async def echo(ws) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    async with serve(
        echo,
        args.host,
        args.port,
        max_size=MAX_SIZE,
        compression=None,  # groups 12/13 (permessage-deflate) are not run
        ping_interval=None,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
