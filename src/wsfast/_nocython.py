"""The ``cython`` names that ``_connection_py`` uses, for when it runs as Python.

Compiled by Cython (as ``wsfast._connection_c``), ``@cython.critical_section`` makes a method
hold the object's critical section on a free-threaded CPython, so that two threads never touch
the connection's C attributes at once (and compiles to nothing on a GIL build). Run as Python
on a GIL build, the decorator returns the function itself: no wrapper, no cost. Run as Python
on a free-threaded build, it holds a lock of the object's own (its ``_lock`` slot, made at the
first call, which is ``__init__``): the interpreter alone is not enough there, e.g.
``b"".join(out)`` over a list that another thread appends to crashes CPython 3.13t.
"""

from __future__ import annotations

import functools
import sysconfig
import threading
from typing import Any, TypeVar, cast

__all__ = ["compiled", "critical_section"]

_F = TypeVar("_F")

compiled = False

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
_making = threading.Lock()  # guards the first call's making of an object's lock


def critical_section(function: _F) -> _F:
    """``function`` unchanged on a GIL build; on a free-threaded one, ``function`` holding
    the object's reentrant lock (a public method may call another)."""
    if not FREE_THREADED:
        return function
    method = cast(Any, function)

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = getattr(self, "_lock", None)
        if lock is None:
            with _making:
                lock = getattr(self, "_lock", None)
                if lock is None:
                    lock = self._lock = threading.RLock()
        with lock:
            return method(self, *args, **kwargs)

    return cast(_F, locked)
