"""Adapters for the hosts whose hot path is one function or one small class.

Each ``make_*`` takes the host module and the original object and returns the replacement,
with the original's contract: argument order, in-place or returned result, accepted types,
and the original itself for the odd inputs the kernels do not take the same way (a key that
is not 4 bytes, a payload that is not a bytearray, ...). wsproto has its own module.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from .. import Utf8Validator as _Validator
from .. import apply_mask, apply_mask_inplace

__all__ = [
    "make_aiohttp_mask",
    "make_autobahn_masker_factory",
    "make_autobahn_validator",
    "make_tornado_mask",
    "make_websocket_client_mask",
    "make_websocket_client_validate",
    "make_websockets_mask",
    "make_ws4py_mask",
    "make_ws4py_validator",
]


def _named(func: Callable[..., Any], module: types.ModuleType, original: Any) -> None:
    func.__module__ = module.__name__
    func.__qualname__ = getattr(original, "__qualname__", func.__name__)
    func.__doc__ = getattr(original, "__doc__", None) or func.__doc__


# --- websocket-client ----------------------------------------------------------------------


def make_websocket_client_mask(module: types.ModuleType, original: Any) -> Any:
    def _mask(mask_value: Any, data_value: Any) -> bytes:
        if len(mask_value) != 4:
            return original(mask_value, data_value)  # type: ignore[no-any-return]
        return apply_mask(data_value, mask_value)

    _named(_mask, module, original)
    return _mask


def make_websocket_client_validate(module: types.ModuleType, original: Any) -> Any:
    # Like the library's own validators (its DFA and wsaccel's), True unless a byte makes the
    # input invalid: a character cut short at the end is accepted.
    def _validate_utf8(utfbytes: Any) -> bool:
        return _Validator().feed(utfbytes)

    _named(_validate_utf8, module, original)
    return _validate_utf8


# --- ws4py ---------------------------------------------------------------------------------


def make_ws4py_mask(module: types.ModuleType, original: Any) -> Any:
    def mask(self: Any, data: Any) -> bytearray:
        key = self.masking_key
        if key is None or len(key) != 4:
            return original(self, data)  # type: ignore[no-any-return]
        out = bytearray(data)
        apply_mask_inplace(out, key)
        return out

    _named(mask, module, original)
    return mask


def make_ws4py_validator(module: types.ModuleType, original: Any) -> type:
    class Utf8Validator(original):  # type: ignore[misc]
        """ws4py's validator; ``validate`` and ``reset`` run on the wsfast kernel."""

        def reset(self) -> None:
            original.reset(self)
            self._wsfast = _Validator()

        def validate(self, ba: Any) -> tuple[bool, bool, int, int]:
            # ws4py's indexes: the failing byte's index, else the last index of the chunk
            # (0 when empty); the total adds them up.
            v = self._wsfast
            n = len(ba)
            count = v.feed_count(ba)
            if count < n:
                self.i += count
                self.state = 1
                return False, False, count, self.i
            last = n - 1 if n else 0
            self.i += last
            return True, v.finish(), last, self.i

    Utf8Validator.__module__ = module.__name__
    return Utf8Validator


# --- autobahn ------------------------------------------------------------------------------


class _AutobahnMasker:
    """autobahn's masker interface: ``process(data) -> bytes``, ``pointer()``, ``reset()``."""

    __slots__ = ("_mask", "_ptr")

    def __init__(self, mask: Any) -> None:
        self._mask = bytes(mask)
        self._ptr = 0

    def pointer(self) -> int:
        return self._ptr

    def reset(self) -> None:
        self._ptr = 0

    def process(self, data: Any) -> bytes:
        out = apply_mask(data, self._mask, self._ptr)
        self._ptr += len(out)
        return out


def make_autobahn_masker_factory(module: types.ModuleType, original: Any) -> Any:
    def create_xor_masker(mask: Any, length: int | None = None) -> Any:
        if len(mask) != 4:
            return original(mask, length)
        return _AutobahnMasker(mask)

    _named(create_xor_masker, module, original)
    return create_xor_masker


def make_autobahn_validator(module: types.ModuleType, original: Any) -> type:
    class Utf8Validator:
        """autobahn's incremental validator on the wsfast kernel.

        ``validate(ba)`` returns ``(valid, endsOnCodePoint, currentIndex, totalIndex)`` as
        autobahn's own does: on failure the index of the failing byte in the chunk and the
        running total up to it; else ``len(ba)`` and the running total. A failure is sticky
        until ``reset()``.
        """

        __slots__ = ("_index", "_v")

        def __init__(self) -> None:
            self._v = _Validator()
            self._index = 0

        def reset(self) -> None:
            self._v.reset()
            self._index = 0

        def validate(self, ba: Any) -> tuple[bool, bool, int, int]:
            v = self._v
            n = len(ba)
            count = v.feed_count(ba)
            self._index += count
            if count < n:
                return False, False, count, self._index
            return True, v.finish(), n, self._index

    Utf8Validator.__module__ = module.__name__
    return Utf8Validator


# --- tornado -------------------------------------------------------------------------------


def make_tornado_mask(module: types.ModuleType, original: Any) -> Any:
    def _websocket_mask(mask: bytes, data: bytes) -> bytes:
        try:
            return apply_mask(data, mask)
        except ValueError:
            raise ValueError("mask must be 4 bytes") from None

    _named(_websocket_mask, module, original)
    return _websocket_mask


# --- websockets ----------------------------------------------------------------------------


def make_websockets_mask(module: types.ModuleType, original: Any) -> Any:
    def apply_mask_(data: Any, mask: Any) -> bytes:
        try:
            return apply_mask(data, mask)
        except BufferError:  # a non-contiguous memoryview, which websockets accepts
            return apply_mask(bytes(data), bytes(mask))
        except ValueError:
            raise ValueError("mask must contain 4 bytes") from None

    apply_mask_.__name__ = "apply_mask"
    _named(apply_mask_, module, original)
    return apply_mask_


# --- aiohttp -------------------------------------------------------------------------------


def make_aiohttp_mask(module: types.ModuleType, original: Any) -> Any:
    def websocket_mask(mask: bytes, data: bytearray) -> None:
        if type(data) is not bytearray or len(mask) != 4:
            return original(mask, data)  # type: ignore[no-any-return]
        apply_mask_inplace(data, mask)
        return None

    _named(websocket_mask, module, original)
    return websocket_mask
