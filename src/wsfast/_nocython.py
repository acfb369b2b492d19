"""The ``cython`` names that ``_connection_py`` uses, as no-ops for when it runs as Python.

Compiled by Cython (as ``wsfast._connection_c``), ``@cython.critical_section`` makes a method
hold the object's critical section on a free-threaded CPython, so that two threads never touch
the connection's C attributes at once (and compiles to nothing on a GIL build). Run as Python,
the interpreter already keeps attribute access memory-safe, and the decorator returns the
function itself: no wrapper, no cost.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["compiled", "critical_section"]

_F = TypeVar("_F")

compiled = False


def critical_section(function: _F) -> _F:
    """``function`` unchanged."""
    return function
