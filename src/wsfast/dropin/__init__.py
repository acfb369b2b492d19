"""Drop-in speedups for the WebSocket libraries people already run.

``wsfast.patch()`` replaces the pure-Python (or slower) hot paths of wsproto, websocket-client,
ws4py, autobahn, tornado, websockets and aiohttp with adapters over wsfast's kernels, keeping
each library's behaviour; ``wsfast.unpatch()`` restores the originals. See
:mod:`wsfast.dropin.hosts` for what each patch replaces and when it declines.
"""

from ._core import calls, patch, patched, registry, status, unpatch, verify

__all__ = ["calls", "patch", "patched", "registry", "status", "unpatch", "verify"]
