"""Picks the kernels once, at import: compiled when built and allowed, else pure Python.

``WSFAST_NO_EXTENSIONS=1`` in the environment forces the pure kernels.
"""

from __future__ import annotations

import os

__all__ = ["implementation", "kernels"]

_DISABLED = os.environ.get("WSFAST_NO_EXTENSIONS", "").strip().lower() in {"1", "yes", "true", "on"}

implementation: str
if _DISABLED:
    from . import pure as kernels

    implementation = "python"
else:
    try:
        from . import _frames, _mask, _utf8  # noqa: F401
    except ImportError:
        from . import pure as kernels

        implementation = "python"
    else:
        from . import _compiled as kernels  # type: ignore[no-redef]

        implementation = "cython"
