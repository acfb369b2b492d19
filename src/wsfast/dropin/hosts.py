"""The libraries wsfast can speed up: which names each patch replaces, and when it declines.

Figures quoted below are from ``bench/dropin_*.py`` (same run, x86-64 AVX2 path). Where wsfast
runs its pure-Python kernels (``WSFAST_NO_EXTENSIONS=1``, PyPy, an install without a compiler)
only the names its pure code beats are replaced: masking is then no faster than the hosts' own
Python (0.6x-1.0x: wsproto, websocket-client, websockets, aiohttp) and far slower than their C
(0.01x-0.1x: tornado.speedups, websockets' C, autobahn's NVX), while the UTF-8 validators and
ws4py's per-byte mask still gain 45x-500x (``WSFAST_NO_EXTENSIONS=1 bench/dropin_bench.py``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .. import _speedups
from . import _adapters as a
from . import _wsproto
from ._core import Binding, Host, register

__all__ = ["HOSTS"]


def _params(*names: str) -> Any:
    """A check: the original is callable with exactly these leading parameter names."""

    def check(module: types.ModuleType, original: Any) -> str | None:
        if not callable(original):
            return f"{original!r} is not callable"
        import inspect

        try:
            sig = inspect.signature(original)
        except (TypeError, ValueError):
            return None  # a builtin without a signature: nothing more to check
        got = tuple(sig.parameters)[: len(names)]
        if got != names:
            return f"takes {got}, the adapter was written for {names}"
        return None

    return check


def _methods(*names: str) -> Any:
    """A check: the original is a class with these methods."""

    def check(module: types.ModuleType, original: Any) -> str | None:
        if not isinstance(original, type):
            return f"{original!r} is not a class"
        missing = [n for n in names if not callable(getattr(original, n, None))]
        if missing:
            return f"{original.__name__} has no {', '.join(missing)}"
        return None

    return check


def _first(*checks: Any) -> Any:
    """A check (or skip) that gives the first reason any of ``checks`` gives."""

    def check(module: types.ModuleType, original: Any) -> str | None:
        for c in checks:
            problem = c(module, original)
            if problem is not None:
                return problem  # type: ignore[no-any-return]
        return None

    return check


def _compiled_kernels(module: types.ModuleType, original: Any) -> str | None:
    """A skip: wsfast's kernels are pure Python here, and the host's own code is as fast."""
    if _speedups.implementation == "cython":
        return None
    return "wsfast runs its pure-Python kernels here, no faster than the library's own code"


def _has(*names: str) -> Any:
    """A check: the module defines these names too (the adapter uses them)."""

    def check(module: types.ModuleType, original: Any) -> str | None:
        missing = [n for n in names if not hasattr(module, n)]
        return f"{module.__name__} has no {', '.join(missing)}" if missing else None

    return check


# --- wsproto -------------------------------------------------------------------------------

_WSPROTO_DECODER = _first(
    _methods("process_buffer", "parse_header", "extension_processing", "receive_bytes"),
    _has("Frame", "Header", "RsvBits", "Opcode", "CloseReason", "ParseFailed", "Buffer",
         "XorMaskerNull"),
)

WSPROTO = Host(
    name="wsproto",
    package="wsproto",
    distribution="wsproto",
    versions=((1, 2), (2,)),
    replaces="frame_protocol.XorMaskerSimple (masking) and FrameDecoder (whole frames parsed "
    "and unmasked by the kernels)",
    bindings=[
        Binding(
            "wsproto.frame_protocol",
            "XorMaskerSimple",
            _wsproto.make_masker,
            check=_methods("process"),
            skip=_compiled_kernels,  # pure: 0.67x at 64 KiB
            counted=("process",),
        ),
        Binding(
            "wsproto.frame_protocol",
            "FrameDecoder",
            _wsproto.make_frame_decoder,
            check=_WSPROTO_DECODER,
            skip=_compiled_kernels,  # pure: 2.4x on 32 B frames but 0.51x on 64 KiB ones
            counted=("_wsfast_fast_path",),
        ),
        Binding(
            "wsproto.frame_protocol",
            "FrameProtocol",
            _wsproto.make_frame_protocol,
            check=_first(
                _methods("_parse_more_gen", "_process_close", "received_frames"),
                _has("MessageDecoder"),
            ),
            skip=_compiled_kernels,  # (goes with the decoder)
        ),
    ],
)

# --- websocket-client ----------------------------------------------------------------------

WEBSOCKET_CLIENT = Host(
    name="websocket-client",
    package="websocket",
    distribution="websocket-client",
    versions=((1, 6), (2,)),
    replaces="_abnf._mask (masking) and _utils._validate_utf8 (UTF-8 of every text message)",
    bindings=[
        Binding(
            "websocket._abnf",
            "_mask",
            a.make_websocket_client_mask,
            check=_params("mask_value", "data_value"),
            skip=_compiled_kernels,  # pure: 0.64x at 32 B, 0.99x at 64 KiB
        ),
        Binding(
            "websocket._utils",
            "_validate_utf8",
            a.make_websocket_client_validate,
            check=_params("utfbytes"),
        ),
    ],
)

# --- ws4py ---------------------------------------------------------------------------------


def _ws4py_alias(module: types.ModuleType, original: Any) -> str | None:
    frame = module.Frame
    if frame.__dict__.get("unmask") is not frame.__dict__.get("mask"):
        return "Frame.unmask is no longer an alias of Frame.mask"
    return _params("self", "data")(module, original)  # type: ignore[no-any-return]


WS4PY = Host(
    name="ws4py",
    package="ws4py",
    distribution="ws4py",
    versions=((0, 5), (0, 7)),
    replaces="framing.Frame.mask/unmask and streaming.Utf8Validator",
    bindings=[
        Binding("ws4py.framing", "Frame.mask", a.make_ws4py_mask, check=_ws4py_alias),
        Binding("ws4py.framing", "Frame.unmask", a.make_ws4py_mask, check=_ws4py_alias),
        Binding(
            "ws4py.streaming",
            "Utf8Validator",
            a.make_ws4py_validator,
            check=_methods("validate", "reset"),
            counted=("validate",),
        ),
    ],
)

# --- autobahn ------------------------------------------------------------------------------

def _autobahn_nvx_masker(module: types.ModuleType, original: Any) -> str | None:
    if original.__module__.startswith("autobahn.nvx"):  # pure over NVX: 0.07x at 64 KiB
        return _compiled_kernels(module, original)
    return None


AUTOBAHN = Host(
    name="autobahn",
    package="autobahn",
    distribution="autobahn",
    versions=((22,), (27,)),
    replaces="websocket.protocol.create_xor_masker and websocket.protocol.Utf8Validator",
    bindings=[
        Binding(
            "autobahn.websocket.protocol",
            "create_xor_masker",
            a.make_autobahn_masker_factory,
            check=_params("mask", "length"),
            skip=_autobahn_nvx_masker,
        ),
        Binding(
            "autobahn.websocket.protocol",
            "Utf8Validator",
            a.make_autobahn_validator,
            check=_methods("validate", "reset"),
            counted=("validate",),
        ),
    ],
)

# --- tornado -------------------------------------------------------------------------------


def _tornado_check(module: types.ModuleType, original: Any) -> str | None:
    util = sys.modules.get("tornado.util")
    speedups = sys.modules.get("tornado.speedups")
    known = [getattr(util, "_websocket_mask_python", None)]
    if speedups is not None:
        known.append(getattr(speedups, "websocket_mask", None))
    if original not in known:
        return "_websocket_mask is neither tornado's Python nor its C function"
    return None


def _tornado_speedups(module: types.ModuleType, original: Any) -> str | None:
    util = sys.modules.get("tornado.util")
    if original is not getattr(util, "_websocket_mask_python", None):  # pure over C: 0.05x
        return _compiled_kernels(module, original)
    return None


TORNADO = Host(
    name="tornado",
    package="tornado",
    distribution="tornado",
    versions=((6,), (7,)),
    replaces="websocket._websocket_mask (its C speedups are replaced too: wsfast is faster)",
    bindings=[
        Binding(
            "tornado.websocket",
            "_websocket_mask",
            a.make_tornado_mask,
            check=_tornado_check,
            skip=_tornado_speedups,
        ),
    ],
)

# --- websockets ----------------------------------------------------------------------------


WEBSOCKETS = Host(
    name="websockets",
    package="websockets",
    distribution="websockets",
    versions=((11,), (18,)),
    # Its C apply_mask too: the adapter measured 1.05x-1.28x faster from 6 B to 1 MiB
    # (bench/dropin_bench.py c-paths), and always where websockets runs its Python one.
    replaces="frames.apply_mask (and legacy.framing.apply_mask once legacy is imported)",
    bindings=[
        Binding(
            "websockets.frames",
            "apply_mask",
            a.make_websockets_mask,
            check=_params("data", "mask"),
            skip=_compiled_kernels,  # pure: 0.01x-0.1x against its C, 0.97x against its Python
        ),
        Binding(
            "websockets.legacy.framing",
            "apply_mask",
            a.make_websockets_mask,
            check=_params("data", "mask"),
            skip=_compiled_kernels,  # pure: 0.01x-0.1x against its C, 0.97x against its Python
        ),
    ],
)

# --- aiohttp -------------------------------------------------------------------------------


def _aiohttp_compiled(module: types.ModuleType, original: Any) -> str | None:
    helpers = sys.modules.get("aiohttp._websocket.helpers")
    if original is not getattr(helpers, "_websocket_mask_python", None):
        return "aiohttp's compiled mask is in use (its compiled reader calls it at C level)"
    return None


AIOHTTP = Host(
    name="aiohttp",
    package="aiohttp",
    distribution="aiohttp",
    versions=((3, 11), (4,)),
    replaces="the pure-Python reader's and writer's websocket_mask (AIOHTTP_NO_EXTENSIONS, PyPy)",
    bindings=[
        Binding(
            "aiohttp._websocket.reader_py",
            "websocket_mask",
            a.make_aiohttp_mask,
            check=_params("mask", "data"),
            skip=_first(_aiohttp_compiled, _compiled_kernels),  # pure: 0.6x
        ),
        Binding(
            "aiohttp._websocket.writer",
            "websocket_mask",
            a.make_aiohttp_mask,
            check=_params("mask", "data"),
            skip=_first(_aiohttp_compiled, _compiled_kernels),  # pure: 0.6x
        ),
    ],
)

HOSTS = [WSPROTO, WEBSOCKET_CLIENT, WS4PY, AUTOBAHN, TORNADO, WEBSOCKETS, AIOHTTP]
for _host in HOSTS:
    register(_host)
