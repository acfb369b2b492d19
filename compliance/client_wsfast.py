"""wsfast's client under test for the Autobahn fuzzing server.

Usage: python compliance/client_wsfast.py ws://127.0.0.1:PORT [--agent NAME]

Written against the planned asyncio API::

    async with wsfast.asyncio.connect(uri, max_size=...) as ws:
        async for message in ws:
            await ws.send(message)
    await ws.recv()

It fails to import until ``wsfast.asyncio`` exists.  When it lands, check
that CLOSED below names what wsfast raises for a closed connection or a
failed handshake.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsfast.asyncio
from echo_client_driver import run

import wsfast.exceptions

# Exceptions that end a case: the fuzzer closes, drops or breaks connections
# on purpose.  The names are whichever of these wsfast defines (the asyncio
# layer does not exist yet); the verdicts come from the fuzzing server's
# reports, not from this script.
_NAMES = ("ConnectionClosed", "InvalidHandshake", "WebSocketError", "ProtocolError")
CLOSED: tuple[type[BaseException], ...] = tuple(
    obj
    for obj in (getattr(wsfast.exceptions, name, None) for name in _NAMES)
    if isinstance(obj, type) and issubclass(obj, BaseException)
) + (OSError, EOFError)

if __name__ == "__main__":
    run(wsfast.asyncio.connect, CLOSED, "wsfast")
