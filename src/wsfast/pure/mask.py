"""RFC 6455 §5.3 masking in pure Python: the reference for ``wsfast._mask``.

Technique: the payload and the repeated key become two big integers and are XORed at once,
which CPython does a machine word at a time.
"""

from __future__ import annotations

from typing import Any

from ._buffers import byte_view, check_offset, mask_key

__all__ = ["apply_mask", "apply_mask_inplace"]


def _xor(view: memoryview, key: bytes) -> bytes:
    n = len(view)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(view, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def apply_mask(data: Any, mask: Any, offset: int = 0) -> bytes:
    """Return ``data`` XORed with the 4-byte ``mask``, as if ``offset`` bytes were masked before."""
    offset = check_offset(offset)
    view = byte_view(data)
    return _xor(view, mask_key(mask, offset))


def apply_mask_inplace(buffer: Any, mask: Any, offset: int = 0) -> None:
    """XOR the writable ``buffer`` with ``mask`` in place (see :func:`apply_mask`)."""
    offset = check_offset(offset)
    view = byte_view(buffer, writable=True)
    view[:] = _xor(view, mask_key(mask, offset))
