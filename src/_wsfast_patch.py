"""Start-up side of ``WSFAST_PATCH`` (imported by ``wsfast_patch.pth`` only when it is set).

Importing wsfast costs more than a process that never touches a WebSocket library should pay,
so this module only puts a small finder at the front of ``sys.meta_path``: the first time a
library wsfast can patch is imported, the finder imports ``wsfast.dropin``, applies
``WSFAST_PATCH`` (see ``wsfast.dropin._startup``) and goes quiet: it stays in the list (one
flag test per import from then on), since taking itself out while the import machinery walks
the list would make it skip the next finder. Whatever goes wrong on the way (wsfast cannot be
imported, a warning turned into an error by ``-W error``) is reported on stderr and the
library's import goes on unpatched: a variable meant to speed a program up must never stop it.
"""

from __future__ import annotations

import os
import sys

# Top-level packages of the libraries in wsfast.dropin.hosts (kept in step by a test).
PACKAGES = frozenset(
    {"wsproto", "websocket", "ws4py", "autobahn", "tornado", "websockets", "aiohttp"}
)


class _FirstUse:
    """Applies WSFAST_PATCH when one of PACKAGES is first imported; finds nothing."""

    used = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if not self.used and fullname.partition(".")[0] in PACKAGES:
            self.used = True
            start()
        return None


_FINDER = _FirstUse()


def start() -> None:
    """Import ``wsfast.dropin._startup`` (which patches, and installs the import hook)."""
    try:
        import wsfast.dropin._startup  # noqa: F401
    except Exception as exc:  # (warnings raised as errors are Exceptions too)
        if sys.stderr is not None:
            value = os.environ.get("WSFAST_PATCH")
            print(f"wsfast: WSFAST_PATCH={value!r} not applied: {exc!r}", file=sys.stderr)


def install() -> None:
    if any(name in sys.modules for name in PACKAGES):
        start()  # a library is already there
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


install()
