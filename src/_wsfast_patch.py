"""Start-up side of ``WSFAST_PATCH`` (imported by ``wsfast_patch.pth`` only when it is set).

Importing wsfast costs more than a process that never touches a WebSocket library should pay,
so this module only puts a small finder at the front of ``sys.meta_path``: the first time a
library wsfast can patch is imported, the finder imports ``wsfast.dropin``, applies
``WSFAST_PATCH`` (see ``wsfast.dropin._startup``) and steps aside.
"""

from __future__ import annotations

import sys

# Top-level packages of the libraries in wsfast.dropin.hosts (kept in step by a test).
PACKAGES = frozenset(
    {"wsproto", "websocket", "ws4py", "autobahn", "tornado", "websockets", "aiohttp"}
)


class _FirstUse:
    """Applies WSFAST_PATCH when one of PACKAGES is first imported."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in PACKAGES:
            remove()
            import wsfast.dropin._startup  # noqa: F401  (patches, and installs the hook)
        return None


_FINDER = _FirstUse()


def remove() -> None:
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    if any(name in sys.modules for name in PACKAGES):
        import wsfast.dropin._startup  # noqa: F401  (a library is already there)
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


install()
