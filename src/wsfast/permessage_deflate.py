"""permessage-deflate (RFC 7692): negotiation for both roles and per-connection compression.

Every RFC 7692 rule lives here; the connection only routes frames to :class:`PerMessageDeflate`
(see :class:`wsfast.handshake.Extension` for the contract).

- :class:`ServerDeflateFactory` answers a client's offers (§7.1), walked in the client's
  order: an offer with an unknown, repeated or invalid parameter is declined (the next one is
  tried), never an error response. ``server_max_window_bits=8`` is declined too: zlib cannot
  compress with a 256-byte window. ``client_max_window_bits=8`` is accepted (zlib inflates it).
- :class:`ClientDeflateFactory` offers ``permessage-deflate; client_max_window_bits`` (the
  bare form: the server picks the client's window) and checks the server's answer; an answer
  that breaks §7.1 fails the handshake.
- :class:`PerMessageDeflate` compresses and inflates messages (§7.2). Receiving, the limits
  hold on the inflated size: the compressed size of a message is checked first, against what
  a deflate encoder may write for ``max_message_size`` bytes (:meth:`~PerMessageDeflate.
  max_payload`: incompressible data grows), then it is inflated with ``max_length =
  remaining + 1`` (never 0, which zlib reads as "unlimited"), and the connection fails with
  1009 as soon as the output exceeds the limit. A message may hold
  at most :data:`MAX_STREAMS` deflate streams (blocks with BFINAL set, §7.2.3.4, end one): a
  flood of tiny streams fails with 1009. Data that does not inflate fails with 1007; RSV1 on
  a continuation or control frame with 1002.

A stream ended by a BFINAL block is followed by a new inflater primed with the last window of
output (``zdict``), so messages after it inflate correctly with context takeover. For that the
receiving side keeps references to the last window's worth of its output (at most twice the
window, usually the window itself).

Memory: the compressor and the inflater are created on first use (an idle connection that
never sent or received a compressed message holds neither) and, without context takeover,
dropped at the end of each message. zlib's deflate state costs ``2**(window_bits + 2) +
2**(mem_level + 9)`` bytes plus ~6 KiB; inflate ``2**window_bits`` plus ~7 KiB.

Backends: the standard library's :mod:`zlib` by default; ``backend="zlib-ng"`` (the
``zlib-ng`` package) or ``"isal"`` (the ``isal`` package: levels 0-3 only, so the level is
capped at 3) when installed, or ``"auto"`` for the first of isal, zlib-ng, zlib that imports.
The environment variable ``WSFAST_ZLIB`` sets the default. Both alternatives use more memory
per connection than zlib at small windows (see the README).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any, TypeVar

from .codes import Opcode
from .exceptions import ProtocolError
from .handshake import Extension, ExtensionParams, HandshakeError

__all__ = [
    "BACKENDS",
    "EXTENSION_NAME",
    "MAX_STREAMS",
    "ClientDeflateFactory",
    "PerMessageDeflate",
    "ServerDeflateFactory",
    "client_extensions",
    "server_extensions",
    "zlib_backend",
]

EXTENSION_NAME = "permessage-deflate"
MAX_STREAMS = 64
"""Deflate streams (each ended by a block with BFINAL set) one message may hold."""
BACKENDS = {"zlib": "zlib", "zlib-ng": "zlib_ng.zlib_ng", "isal": "isal.isal_zlib"}
"""Backend names and the modules that provide them (the same API as :mod:`zlib`)."""

_TAIL = b"\x00\x00\xff\xff"  # §7.2.2: appended before inflating; §7.2.1: removed after deflating
_EMPTY_BLOCK = b"\x00" + _TAIL  # an empty stored block: what follows a BFINAL block (§7.2.1)
_SMALL_TAIL = 2048  # below this payload size, payload + _TAIL is cheaper than a second call
# Incompressible data (see PerMessageDeflate.encode): frames of at least _PROBE_MIN bytes count;
# one that saves less than a tenth makes the next ones probed first, by compressing _PROBE
# bytes from their middle with a small throwaway compressor.
_PROBE_MIN = 4096
_PROBE = 1024
_CONT = Opcode.CONTINUATION
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_NO_VALUE = ("server_no_context_takeover", "client_no_context_takeover")
_BITS = ("server_max_window_bits", "client_max_window_bits")
_backends: dict[str, ModuleType] = {}
_F = TypeVar("_F", "ServerDeflateFactory", "ClientDeflateFactory")


def zlib_backend(name: str | None = None) -> ModuleType:
    """The zlib module for ``name`` ("zlib", "zlib-ng", "isal" or "auto"; None reads the
    ``WSFAST_ZLIB`` environment variable, default "zlib"). ImportError if it is not installed,
    ValueError for an unknown name."""
    if name is None:
        name = os.environ.get("WSFAST_ZLIB", "").strip().lower() or "zlib"
    module = _backends.get(name)
    if module is not None:
        return module
    if name == "auto":
        for candidate in ("isal", "zlib-ng", "zlib"):
            try:
                module = zlib_backend(candidate)
            except ImportError:
                continue
            break
        assert module is not None  # zlib is always there
    elif name in BACKENDS:
        module = importlib.import_module(BACKENDS[name])
    else:
        raise ValueError(f"unknown zlib backend {name!r}: one of {', '.join(BACKENDS)}, auto")
    _backends[name] = module
    return module


def _backend_name(module: ModuleType) -> str:
    for name, path in BACKENDS.items():
        if module.__name__ == path:
            return name
    return module.__name__


def _check_bits(name: str, value: int | None, low: int = 9) -> None:
    if value is not None and not (isinstance(value, int) and low <= value <= 15):
        raise ValueError(f"{name} must be an int in {low}..15, not {value!r}")


def _shrinks(zlib: ModuleType, payload: Any) -> bool:
    """Whether _PROBE bytes from the middle of ``payload`` compress by a tenth or more."""
    middle = len(payload) // 2
    sample = memoryview(payload)[middle - _PROBE // 2 : middle + _PROBE // 2]
    probe = zlib.compressobj(1, zlib.DEFLATED, -10, 4)  # window 1 KiB, 12 KiB of state
    size = len(probe.compress(sample)) + len(probe.flush())
    return size * 10 <= _PROBE * 9


class _Options:
    """Settings shared by both factories."""

    __slots__ = ("level", "mem_level", "min_size", "backend")

    def __init__(self, level: int, mem_level: int, min_size: int, backend: str | None) -> None:
        if not (isinstance(level, int) and -1 <= level <= 9):
            raise ValueError(f"level must be an int in -1..9, not {level!r}")
        if not (isinstance(mem_level, int) and 1 <= mem_level <= 9):
            raise ValueError(f"mem_level must be an int in 1..9, not {mem_level!r}")
        if not (isinstance(min_size, int) and min_size >= 0):
            raise ValueError(f"min_size must be an int >= 0, not {min_size!r}")
        module = zlib_backend(backend)  # fails here, not at the first connection
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size
        self.backend = _backend_name(module)

    def _extension(
        self, send_bits: int, recv_bits: int, send_takeover: bool, recv_takeover: bool
    ) -> PerMessageDeflate:
        return PerMessageDeflate(
            send_bits=send_bits,
            recv_bits=recv_bits,
            send_takeover=send_takeover,
            recv_takeover=recv_takeover,
            level=self.level,
            mem_level=self.mem_level,
            min_size=self.min_size,
            backend=self.backend,
        )


def _parse(params: ExtensionParams) -> dict[str, int | None] | None:
    """The parameters of one offer or answer as {name: window bits or None}; None if one is
    unknown, repeated or has a bad value (RFC 7692 §7.1)."""
    out: dict[str, int | None] = {}
    for key, value in params:
        if key in out:
            return None
        if key in _NO_VALUE:
            if value is not None:
                return None
            out[key] = None
        elif key in _BITS:
            if value is None:
                if key == "server_max_window_bits":
                    return None
                out[key] = None  # a bare client_max_window_bits (offers only)
                continue
            # §7.1.2: 1*DIGIT, 8..15, no leading zero.
            if not (value.isdigit() and value.isascii() and value[0] != "0"):
                return None
            bits = int(value)
            if not 8 <= bits <= 15:
                return None
            out[key] = bits
        else:
            return None
    return out


def _deflate_taken(accepted: Sequence[Extension]) -> bool:
    # One permessage-deflate per connection; RSV1 cannot serve two extensions.
    return any(ext.name == EXTENSION_NAME or isinstance(ext, PerMessageDeflate) for ext in accepted)


class ServerDeflateFactory(_Options):
    """The server side of permessage-deflate's negotiation (RFC 7692 §7.1).

    - ``server_max_window_bits`` (9-15, default 12): the window we compress with, at most; sent
      in every answer, lowered to the client's ``server_max_window_bits`` when it asks less.
    - ``client_max_window_bits`` (9-15, default 12): the window we ask the client to compress
      with, when its offer has ``client_max_window_bits`` (we inflate with that window; a
      client that does not offer the parameter may use 15, and we inflate with 15).
    - ``require_client_max_window_bits``: decline offers without it (memory: window 15).
    - ``server_no_context_takeover`` / ``client_no_context_takeover``: reset the compression
      context after every message on our side / ask the client to. Offers asking for either
      get it. Without context on our side, :func:`wsfast.asyncio.broadcast` compresses a
      message once for all such connections (see :attr:`PerMessageDeflate.broadcast_key`).
    - ``level`` (zlib's, default 1: its fastest), ``mem_level`` (default 5), ``min_size``
      (messages shorter than this many bytes go uncompressed; default 128), ``backend``.
    """

    __slots__ = (
        "name",
        "server_max_window_bits",
        "client_max_window_bits",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "require_client_max_window_bits",
    )

    def __init__(
        self,
        *,
        server_max_window_bits: int = 12,
        client_max_window_bits: int = 12,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        require_client_max_window_bits: bool = False,
        level: int = 1,
        mem_level: int = 5,
        min_size: int = 128,
        backend: str | None = None,
    ) -> None:
        _check_bits("server_max_window_bits", server_max_window_bits)
        _check_bits("client_max_window_bits", client_max_window_bits)
        super().__init__(level, mem_level, min_size, backend)
        self.name = EXTENSION_NAME
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.require_client_max_window_bits = require_client_max_window_bits

    def accept(
        self, params: ExtensionParams, accepted: Sequence[Extension]
    ) -> tuple[ExtensionParams, Extension] | None:
        """Our answer to one offer and the extension, or None to decline it (§7.1)."""
        offer = _parse(params)
        if offer is None or _deflate_taken(accepted):
            return None
        answer: list[tuple[str, str | None]] = []
        # §7.1.1: either side's reset is ours to add; one the client asks for is granted.
        send_takeover = not (
            self.server_no_context_takeover or "server_no_context_takeover" in offer
        )
        recv_takeover = not (
            self.client_no_context_takeover or "client_no_context_takeover" in offer
        )
        if not send_takeover:
            answer.append(("server_no_context_takeover", None))
        if not recv_takeover:
            answer.append(("client_no_context_takeover", None))
        # §7.1.2.1: we may always announce our window; when the client limits it, at most that.
        send_bits = self.server_max_window_bits
        asked = offer.get("server_max_window_bits")
        if asked is not None:
            if asked < 9:
                return None  # zlib cannot compress with window 8: decline this offer
            send_bits = min(send_bits, asked)
        if send_bits < 15 or asked is not None:
            answer.append(("server_max_window_bits", str(send_bits)))
        # §7.1.2.2: client_max_window_bits only if offered, at most the offered value.
        if "client_max_window_bits" in offer:
            recv_bits = min(self.client_max_window_bits, offer["client_max_window_bits"] or 15)
            if recv_bits < 15 or offer["client_max_window_bits"] is not None:
                answer.append(("client_max_window_bits", str(recv_bits)))
        elif self.require_client_max_window_bits:
            return None
        else:
            recv_bits = 15
        extension = self._extension(send_bits, recv_bits, send_takeover, recv_takeover)
        return tuple(answer), extension


class ClientDeflateFactory(_Options):
    """The client side of permessage-deflate's negotiation (RFC 7692 §7.1).

    Offers ``client_max_window_bits`` bare (None, the default: the server chooses) or with a
    value (9-15), and asks for ``server_max_window_bits`` (9-15), ``server_no_context_takeover``
    and ``client_no_context_takeover`` when set. ``window_bits`` (9-15, default 12) caps the
    window we compress with, whatever the server allows (a smaller window than allowed is
    always valid). ``level``, ``mem_level``, ``min_size`` and ``backend`` as for the server.
    """

    __slots__ = (
        "name",
        "client_max_window_bits",
        "server_max_window_bits",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "window_bits",
    )

    def __init__(
        self,
        *,
        client_max_window_bits: int | None = None,
        server_max_window_bits: int | None = None,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        window_bits: int = 12,
        level: int = 1,
        mem_level: int = 5,
        min_size: int = 128,
        backend: str | None = None,
    ) -> None:
        _check_bits("client_max_window_bits", client_max_window_bits)
        _check_bits("server_max_window_bits", server_max_window_bits)
        _check_bits("window_bits", window_bits)
        super().__init__(level, mem_level, min_size, backend)
        self.name = EXTENSION_NAME
        self.client_max_window_bits = client_max_window_bits
        self.server_max_window_bits = server_max_window_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.window_bits = window_bits

    def offer(self) -> ExtensionParams:
        """Our offer's parameters."""
        params: list[tuple[str, str | None]] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        bits = self.client_max_window_bits
        params.append(("client_max_window_bits", None if bits is None else str(bits)))
        return tuple(params)

    def complete(self, params: ExtensionParams, accepted: Sequence[Extension]) -> Extension:
        """The extension for the server's answer; HandshakeError if it breaks §7.1."""
        answer = _parse(params)
        if answer is None:
            raise HandshakeError(f"invalid permessage-deflate parameters: {params!r}")
        if _deflate_taken(accepted):
            raise HandshakeError("permessage-deflate accepted twice")
        if self.server_no_context_takeover and "server_no_context_takeover" not in answer:
            raise HandshakeError("the server ignored server_no_context_takeover")
        recv_bits = 15
        if "server_max_window_bits" in answer:
            bits = answer["server_max_window_bits"]
            assert bits is not None  # _parse refuses a bare one
            if self.server_max_window_bits is not None and bits > self.server_max_window_bits:
                raise HandshakeError(f"server_max_window_bits={bits} is more than asked")
            recv_bits = bits
        elif self.server_max_window_bits is not None:
            raise HandshakeError("the server ignored server_max_window_bits")
        allowed = self.client_max_window_bits or 15
        if "client_max_window_bits" in answer:
            bits = answer["client_max_window_bits"]
            if bits is None:
                raise HandshakeError("client_max_window_bits needs a value in an answer")
            if bits > allowed:
                raise HandshakeError(f"client_max_window_bits={bits} is more than offered")
            allowed = bits
        return self._extension(
            min(allowed, self.window_bits),
            recv_bits,
            "client_no_context_takeover" not in answer and not self.client_no_context_takeover,
            "server_no_context_takeover" not in answer,
        )


class PerMessageDeflate:
    """permessage-deflate on one connection (RFC 7692 §7.2): the negotiated extension.

    ``send_bits``/``recv_bits``: the windows we compress and inflate with (a ``send_bits`` of
    8 means we never compress: zlib cannot; every message then goes uncompressed, which §6
    allows). ``*_takeover``: whether the context carries over between messages.
    """

    __slots__ = (
        "name",
        "send_bits",
        "recv_bits",
        "send_takeover",
        "recv_takeover",
        "level",
        "mem_level",
        "min_size",
        "backend",
        "_zlib",
        "_compressor",
        "_decompressor",
        "_sending",
        "_skeptical",
        "_receiving",
        "_recv_bound",
        "_recv_size",
        "_streams",
        "_window",
        "_window_size",
    )

    def __init__(
        self,
        *,
        send_bits: int = 15,
        recv_bits: int = 15,
        send_takeover: bool = True,
        recv_takeover: bool = True,
        level: int = 1,
        mem_level: int = 5,
        min_size: int = 0,
        backend: str | None = None,
    ) -> None:
        _check_bits("send_bits", send_bits, 8)
        _check_bits("recv_bits", recv_bits, 8)
        self.name = EXTENSION_NAME
        self.send_bits = send_bits
        self.recv_bits = recv_bits
        self.send_takeover = send_takeover
        self.recv_takeover = recv_takeover
        self._zlib = zlib_backend(backend)
        self.backend = _backend_name(self._zlib)
        self.level = min(level, 3) if self.backend == "isal" else level
        self.mem_level = mem_level
        self.min_size = min_size if send_bits >= 9 else -1  # -1: never compress
        self._compressor: Any = None
        self._decompressor: Any = None
        self._sending = False  # a compressed message is being sent (fragments follow)
        self._skeptical = False  # the last large frame did not shrink: probe before compressing
        self._receiving = False  # a compressed message is being received
        self._recv_bound: int | None = None  # max_payload() of the message being received
        self._recv_size = 0  # its compressed bytes so far
        self._streams = 0
        # The last output, for a new inflater's zdict after a BFINAL block.
        self._window: list[bytes] = []
        self._window_size = 0

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(send_bits={self.send_bits}, recv_bits={self.recv_bits}, "
            f"send_takeover={self.send_takeover}, recv_takeover={self.recv_takeover}, "
            f"level={self.level}, mem_level={self.mem_level}, backend={self.backend!r})"
        )

    @property
    def broadcast_key(self) -> tuple[Any, ...] | None:
        """What decides how a whole message we send is encoded, when only the message does:
        without context takeover on our side each message starts a fresh compressor, so
        connections with equal keys compress it to the same bytes and may share one frame
        (:func:`wsfast.asyncio.broadcast`). None with context takeover (the bytes depend on
        what this connection sent before) or while a compressed message is being sent."""
        if self._sending:
            return None
        if self.min_size < 0:
            return (EXTENSION_NAME,)  # never compressed: every message goes as it is
        if self.send_takeover:
            return None
        return (
            EXTENSION_NAME,
            self.backend,
            self.send_bits,
            self.level,
            self.mem_level,
            self.min_size,
        )

    @property
    def idle(self) -> bool:
        """Neither a compressor nor an inflater is allocated."""
        return self._compressor is None and self._decompressor is None

    # --- sending (§7.2.1) --------------------------------------------------------------------

    def encode(self, frame: Any) -> Any:
        """Compress a data frame of a message we send; control frames pass unchanged.

        A message is compressed or not as a whole, decided on its first frame: not when it is
        a whole message under ``min_size`` bytes, nor (with context takeover) when the last
        frame of at least 4 KiB saved less than a tenth of its size and 1 KiB from the middle
        of this one, compressed alone, does not save a tenth either: incompressible data
        (media, encrypted or compressed bytes) then costs no deflate on either side. RSV1
        goes on the first frame only (§6). Each frame is compressed and flushed in this one
        call, and its output is always sent: the peer's inflater has then seen what our
        compressor saw.
        """
        op = frame.opcode
        payload = frame.payload
        if op is _CONT:
            if not self._sending:
                return frame
        elif op is _TEXT or op is _BINARY:
            min_size = self.min_size
            if min_size < 0 or (frame.fin and len(payload) < min_size):
                return frame
            if self._skeptical and len(payload) >= _PROBE_MIN and not _shrinks(self._zlib, payload):
                return frame  # _skeptical stays: the next large frame is probed too
            self._sending = True
        else:
            return frame
        zlib = self._zlib
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = zlib.compressobj(
                self.level, zlib.DEFLATED, -max(self.send_bits, 9), self.mem_level
            )
        data = compressor.compress(payload)
        flushed = compressor.flush(zlib.Z_SYNC_FLUSH)
        fin = frame.fin
        if fin:
            # §7.2.1: the sync flush ends with an empty stored block; its 4 last bytes go.
            if flushed.endswith(_TAIL):
                flushed = flushed[:-4]
            self._sending = False
            if not self.send_takeover:
                self._compressor = None
        if data:
            data += flushed
        else:
            data = flushed
        n = len(payload)
        if n >= _PROBE_MIN and self.send_takeover:
            # Without context takeover a message's bytes depend on it alone (broadcast_key).
            # A probed frame that shrank lands here too: its real result decides.
            self._skeptical = len(data) * 10 > n * 9
        return type(frame)(op, data, fin, op is not _CONT, frame.rsv2, frame.rsv3)

    # --- receiving (§7.2.2) ------------------------------------------------------------------

    def max_payload(self, max_size: int) -> int:
        """The most compressed bytes a message of ``max_size`` bytes may take (see
        :class:`wsfast.handshake.Extension`). Deflate makes incompressible data larger: by up
        to 1/8 with fixed Huffman codes (9 bits for half the byte values; zlib-ng's level 1
        writes them), 5 bytes a block when stored, plus a flush marker per frame."""
        return max_size + (max_size >> 3) + 1024

    def decode(self, frame: Any, *, max_size: int | None) -> Any:
        """Inflate a frame of a compressed message (RSV1 on its first frame).

        ``max_size``: how many more bytes the message may have (None: no limit); ProtocolError
        with 1009 once the output would exceed it (or the message's compressed size exceeds
        :meth:`max_payload` of it), 1007
        when the data does not inflate, 1002 for RSV1 on a continuation or control frame.
        """
        op = frame.opcode
        if op is _CONT:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame (RFC 7692 §6)", 1002)
            if not self._receiving:
                return frame
        elif op is _TEXT or op is _BINARY:
            if not frame.rsv1:
                return frame
            self._receiving = True
            self._recv_bound = None if max_size is None else self.max_payload(max_size)
            self._recv_size = 0
            self._streams = 0
        else:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a control frame (RFC 7692 §6)", 1002)
            return frame
        payload = frame.payload
        bound = self._recv_bound
        size = self._recv_size + len(payload)
        if bound is not None and size > bound:
            # The compressed size first: a message is refused before any of it is inflated.
            raise ProtocolError(f"compressed message of more than {bound} bytes", 1009)
        self._recv_size = size
        fin = frame.fin
        if fin and not size:
            # No compressed bytes at all: the empty message (§7.2.1 would send b"\x00"); the
            # inflater is left untouched, as the tail alone would leave it inside a block.
            data = b""
        elif fin and len(payload) < _SMALL_TAIL:
            data = self._inflate(payload + _TAIL, max_size)
        else:
            data = self._inflate(payload, max_size)
            if fin and self._decompressor is not None:
                more = self._inflate(_TAIL, None if max_size is None else max_size - len(data))
                if more:
                    data += more
        if fin:
            self._receiving = False
            if not self.recv_takeover:
                self._decompressor = None
                self._window = []
                self._window_size = 0
        return type(frame)(op, data, fin, False, frame.rsv2, frame.rsv3)

    def _inflate(self, data: bytes, room: int | None) -> bytes:
        """Inflate ``data``, at most ``room`` bytes of output (None: no limit)."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._new_decompressor()
        error = self._zlib.error
        out: list[bytes] = []
        while True:
            try:
                if room is None:
                    chunk = decompressor.decompress(data)
                else:
                    # room + 1, never 0 (0 means no limit); output beyond room is refused. Some
                    # backends (isal) stop at max_length without an unconsumed_tail.
                    chunk = decompressor.decompress(data, room + 1)
            except error as exc:
                raise ProtocolError(f"compressed data does not inflate: {exc}", 1007) from None
            if chunk:
                if room is not None:
                    if len(chunk) > room:
                        raise ProtocolError("message larger than max_message_size", 1009)
                    room -= len(chunk)
                self._remember(chunk)
                out.append(chunk)
            if decompressor.eof:
                # A block with BFINAL set ended the stream (§7.2.3.4). What follows is a new
                # stream, whose window is the output so far: an inflater primed with it. The
                # empty stored block that ends a message (§7.2.1) needs none.
                self._streams += 1
                if self._streams > MAX_STREAMS:
                    raise ProtocolError(
                        f"more than {MAX_STREAMS} deflate streams in one message", 1009
                    )
                data = decompressor.unused_data
                self._decompressor = None
                if data == _EMPTY_BLOCK or data == _TAIL or not data:
                    break
                decompressor = self._new_decompressor()
                continue
            data = decompressor.unconsumed_tail
            if not data:
                break
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _new_decompressor(self) -> Any:
        zlib = self._zlib
        bits = max(self.recv_bits, 9)
        if self._window:
            window = b"".join(self._window)[-(1 << bits) :]
            decompressor = zlib.decompressobj(-bits, zdict=window)
        else:
            decompressor = zlib.decompressobj(-bits)
        self._decompressor = decompressor
        return decompressor

    def _remember(self, chunk: bytes) -> None:
        """Keep the last window of output: references, compacted when they pile up."""
        size = 1 << max(self.recv_bits, 9)
        n = len(chunk)
        if n >= size:
            self._window = [chunk[-size:] if n > size else chunk]
            self._window_size = size
            return
        window = self._window
        window.append(chunk)
        total = self._window_size + n
        while total - len(window[0]) >= size:
            total -= len(window.pop(0))
        if len(window) > 32:
            joined = b"".join(window)[-size:]
            window[:] = [joined]
            total = len(joined)
        self._window_size = total


def server_extensions(compression: str | ServerDeflateFactory | None) -> list[ServerDeflateFactory]:
    """The server's extension factories for a ``compression`` option: ``"deflate"`` (the
    defaults), a :class:`ServerDeflateFactory`, or None (no compression). ValueError for
    another string, TypeError for another type."""
    return _factories(compression, ServerDeflateFactory)


def client_extensions(compression: str | ClientDeflateFactory | None) -> list[ClientDeflateFactory]:
    """The client's extension factories for a ``compression`` option: ``"deflate"`` (the
    defaults), a :class:`ClientDeflateFactory`, or None (no compression). ValueError for
    another string, TypeError for another type."""
    return _factories(compression, ClientDeflateFactory)


def _factories(compression: object, kind: type[_F]) -> list[_F]:
    if compression is None:
        return []
    if isinstance(compression, kind):
        return [compression]
    expected = f"'deflate', a {kind.__name__} or None"
    if isinstance(compression, str):
        if compression == "deflate":
            return [kind()]
        raise ValueError(f"compression must be {expected}, not {compression!r}")
    raise TypeError(f"compression must be {expected}, not {compression!r}")
