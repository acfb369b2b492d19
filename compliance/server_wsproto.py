"""Second stand-in server under test: a `wsproto` echo server on asyncio streams.

Usage: python compliance/server_wsproto.py --host 127.0.0.1 --port PORT

wsproto is sans-I/O, like wsfast's protocol layer: this is a small model of
what ``python -m wsfast serve`` has to do.  Messages are reassembled and
echoed whole; no permessage-deflate.
"""

from __future__ import annotations

import argparse
import asyncio

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

MAX_SIZE = 2**25


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    parts: list = []
    size = 0
    done = False
    try:
        while not done:
            data = await reader.read(65536)
            ws.receive_data(data or None)
            out = bytearray()
            for event in ws.events():
                if isinstance(event, Request):
                    out += ws.send(AcceptConnection())
                elif isinstance(event, (TextMessage, BytesMessage)):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_SIZE:
                        out += ws.send(CloseConnection(code=1009))
                        done = True
                        break
                    if event.message_finished:
                        whole = (
                            "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                        )
                        parts, size = [], 0
                        cls = TextMessage if isinstance(whole, str) else BytesMessage
                        out += ws.send(cls(data=whole))
                elif isinstance(event, Ping):
                    out += ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        out += ws.send(event.response())
                    elif ws.state is ConnectionState.OPEN:  # protocol error found by wsproto
                        out += ws.send(CloseConnection(code=event.code, reason=event.reason))
                    done = True
                    break
            if out:
                writer.write(bytes(out))
                await writer.drain()
            if not data:
                done = True
    except (RemoteProtocolError, LocalProtocolError, ConnectionError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = await asyncio.start_server(handle, args.host, args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
