"""Which transports :func:`~wsfast.asyncio.serve` and :func:`~wsfast.asyncio.connect` open
connections on (their ``transport=`` keyword).

- ``"loop"`` (the default): the running loop's own ``create_server``/``create_connection``
  and their Unix twins: asyncio's selector transports, or uvloop's under uvloop (or
  aiofastnet's on a loop that ``aiofastnet.patch_loop`` patched).
- ``"aiofastnet"``: the compiled transports of the `aiofastnet` package (the optional extra
  ``wsfast[fastnet]``), on whatever loop is running: they register the socket with the loop's
  ``add_reader``/``add_writer``, so they replace uvloop's transports under uvloop too. Every
  argument the loop's methods take works the same way (TLS, ``sock=``, Unix sockets).

Nothing here imports aiofastnet unless it is asked for.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

__all__ = ["TransportName", "check_transport", "opener"]

TransportName = Literal["loop", "aiofastnet"]
_NAMES = ("loop", "aiofastnet")


def _aiofastnet() -> ModuleType:
    try:
        return importlib.import_module("aiofastnet")
    except ImportError as exc:
        raise ImportError(
            'transport="aiofastnet" needs the aiofastnet package: pip install "wsfast[fastnet]"',
            name="aiofastnet",
        ) from exc


def check_transport(transport: str) -> None:
    """Raise ValueError for an unknown name, ImportError if aiofastnet is asked for and
    missing (so that serve() and connect() fail when called, not when awaited)."""
    if transport not in _NAMES:
        raise ValueError(f"transport must be 'loop' or 'aiofastnet', not {transport!r}")
    if transport == "aiofastnet":
        _aiofastnet()


def opener(loop: asyncio.AbstractEventLoop, transport: str, method: str) -> Callable[..., Any]:
    """``loop.<method>`` (e.g. ``create_server``), or aiofastnet's function of that name
    bound to ``loop``: both take the same arguments."""
    if transport == "aiofastnet":
        return functools.partial(getattr(_aiofastnet(), method), loop)
    return getattr(loop, method)  # type: ignore[no-any-return]
