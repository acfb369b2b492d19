"""The asyncio shell around a sans-I/O connection: the compiled build when there is one.

The code lives in :mod:`wsfast.asyncio._websocket_py`, typed Python and the one source.
setup.py also compiles a copy of that file with Cython into ``wsfast.asyncio._websocket_c``
(C types from ``_websocket_c.pxd``). This module exports the compiled :class:`WebSocket` when
the compiled kernels are in use (:mod:`wsfast._speedups` decides: not with
``WSFAST_NO_EXTENSIONS=1``) and ``wsfast.asyncio._websocket_c`` imports; else the Python one.
``implementation`` says which: ``"cython"`` or ``"python"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _speedups
from ._websocket_py import Message, OnMessage

__all__ = ["WebSocket", "Message", "OnMessage", "implementation"]

implementation: str

if TYPE_CHECKING:
    from ._websocket_py import WebSocket
else:
    try:
        if _speedups.implementation != "cython":
            raise ImportError("the pure-Python kernels are in use")
        from ._websocket_c import WebSocket
    except ImportError:
        from ._websocket_py import WebSocket

        implementation = "python"
    else:
        implementation = "cython"
