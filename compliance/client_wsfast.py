"""wsfast's client under test for the Autobahn fuzzing server.

Usage: python compliance/client_wsfast.py ws://127.0.0.1:PORT [--agent NAME]
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_client_driver import run

from wsfast.asyncio import ConnectionClosed, InvalidHandshake, connect


def connect_for_driver(uri: str, max_size: int | None = None) -> Any:
    """The driver's ``connect(uri, max_size=...)`` in wsfast's terms."""
    if max_size is None:
        return connect(uri)
    return connect(uri, max_message_size=max_size)


# Exceptions that end a case: the fuzzer closes, drops or breaks connections on purpose; the
# verdicts come from the fuzzing server's reports, not from this script.
CLOSED: tuple[type[BaseException], ...] = (ConnectionClosed, InvalidHandshake, OSError, EOFError)

if __name__ == "__main__":
    run(connect_for_driver, CLOSED, "wsfast")
