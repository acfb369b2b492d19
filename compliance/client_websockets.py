"""Stand-in client under test: a `websockets` echo client for the fuzzing server.

Usage: python compliance/client_websockets.py ws://127.0.0.1:PORT [--agent NAME]

Needs ``websockets`` >= 13 (the asyncio implementation).
"""

from __future__ import annotations

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_client_driver import run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

if __name__ == "__main__":
    run(
        # No compression (groups 12/13 are not run); no keepalive pings.
        functools.partial(connect, compression=None, ping_interval=None),
        (ConnectionClosed, InvalidHandshake, OSError),
        "websockets",
    )
