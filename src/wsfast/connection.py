"""Sans-I/O WebSocket connections (RFC 6455): the compiled build when there is one.

The code lives in :mod:`wsfast._connection_py`, typed Python and the one source. setup.py
also compiles a copy of that file with Cython into ``wsfast._connection_c`` (C attribute types
from ``_connection_c.pxd``, the aiohttp reader pattern). This module exports the compiled
classes when the compiled kernels are in use (:mod:`wsfast._speedups` decides: not with
``WSFAST_NO_EXTENSIONS=1``) and ``wsfast._connection_c`` imports; else the Python ones.
``implementation`` says which: ``"cython"`` or ``"python"``.

Each implementation module defines its own :class:`State` and :class:`InvalidState`; use
the ones exported here, which belong to the classes exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _speedups

__all__ = [
    "State",
    "InvalidState",
    "Connection",
    "ServerConnection",
    "ClientConnection",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "implementation",
]

implementation: str

if TYPE_CHECKING:
    from ._connection_py import (
        DEFAULT_MAX_MESSAGE_SIZE,
        ClientConnection,
        Connection,
        InvalidState,
        ServerConnection,
        State,
    )
else:
    try:
        if _speedups.implementation != "cython":
            raise ImportError("the pure-Python kernels are in use")
        from ._connection_c import (
            DEFAULT_MAX_MESSAGE_SIZE,
            ClientConnection,
            Connection,
            InvalidState,
            ServerConnection,
            State,
        )
    except ImportError:
        from ._connection_py import (
            DEFAULT_MAX_MESSAGE_SIZE,
            ClientConnection,
            Connection,
            InvalidState,
            ServerConnection,
            State,
        )

        implementation = "python"
    else:
        implementation = "cython"
