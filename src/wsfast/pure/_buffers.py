"""Buffer-protocol helpers shared by the pure kernels."""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["byte_view", "mask_key", "check_offset"]


def byte_view(data: Any, *, writable: bool = False) -> memoryview:
    """A flat unsigned-byte view of ``data``; refuses non-contiguous (and, if asked, read-only)."""
    view = memoryview(data)  # TypeError for objects without the buffer protocol
    if not view.c_contiguous:
        raise BufferError("wsfast needs a C-contiguous buffer")
    if writable and view.readonly:
        raise TypeError(f"a writable buffer is required, not read-only {type(data).__name__!r}")
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def check_offset(offset: Any) -> int:
    """``offset`` as an int, refusing negatives (ValueError) and non-integers (TypeError)."""
    value: int = operator.index(offset)
    if value < 0:
        raise ValueError(f"offset must be >= 0, not {value}")
    return value


def mask_key(mask: Any, offset: int) -> bytes:
    """The 4-byte masking key rotated so that it starts at payload byte ``offset``."""
    key = byte_view(mask)
    if key.nbytes != 4:
        raise ValueError(f"mask must be exactly 4 bytes, not {key.nbytes}")
    rot = offset & 3
    raw = key.tobytes()
    return raw[rot:] + raw[:rot]
