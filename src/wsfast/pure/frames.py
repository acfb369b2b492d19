"""RFC 6455 §5.2 frame headers and a streaming frame parser in pure Python.

The reference for ``wsfast._frames``: same classes, results and errors.
"""

from __future__ import annotations

import operator
import sys
import threading
from typing import Any

from ..codes import Opcode
from ..exceptions import ProtocolError
from ._buffers import byte_view, check_offset
from .mask import apply_mask, apply_mask_inplace

__all__ = ["FrameHeader", "Frame", "parse_header", "build_header", "build_frame", "FrameParser"]

_OPCODES: dict[int, Opcode] = {int(op): op for op in Opcode}
_MAX_LENGTH = (1 << 63) - 1
_MAX_BUFFERED = sys.maxsize
"""The longest payload a parser buffers: what a Py_ssize_t indexes (2**31 - 1 on 32-bit)."""


class FrameHeader:
    """One parsed frame header; ``size`` is its length in bytes, ``length`` the payload's."""

    __slots__ = ("fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "mask", "length", "size")

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: Opcode
    masked: bool
    mask: bytes | None
    length: int
    size: int

    def __init__(
        self,
        fin: bool,
        rsv1: bool,
        rsv2: bool,
        rsv3: bool,
        opcode: Opcode,
        masked: bool,
        mask: bytes | None,
        length: int,
        size: int,
    ) -> None:
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.masked = masked
        self.mask = mask
        self.length = length
        self.size = size

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameHeader):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"FrameHeader({args})"


class Frame:
    """One complete frame, payload unmasked."""

    __slots__ = ("opcode", "fin", "rsv1", "rsv2", "rsv3", "payload")

    opcode: Opcode
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    payload: bytes

    def __init__(
        self,
        opcode: int,
        payload: bytes,
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        rsv3: bool = False,
    ) -> None:
        self.opcode = _opcode(opcode, ValueError)
        self.payload = payload
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        payload = self.payload if len(self.payload) <= 32 else self.payload[:32] + b"..."
        return (
            f"Frame({self.opcode!r}, {payload!r}, fin={self.fin}, "
            f"rsv1={self.rsv1}, rsv2={self.rsv2}, rsv3={self.rsv3})"
        )


def _opcode(value: Any, error: type[Exception]) -> Opcode:
    op = _OPCODES.get(operator.index(value))
    if op is None:
        message = f"reserved opcode {value:#x}"
        raise ProtocolError(message, 1002) if error is ProtocolError else error(message)
    return op


def _parse(view: memoryview, pos: int) -> FrameHeader | None:
    """The header at ``view[pos:]``, or None if incomplete. Fails as early as the bytes allow."""
    avail = len(view) - pos
    if avail < 1:
        return None
    b0 = view[pos]
    opcode = _opcode(b0 & 0x0F, ProtocolError)
    fin = bool(b0 & 0x80)
    if opcode >= 8 and not fin:
        raise ProtocolError("fragmented control frame", 1002)
    if avail < 2:
        return None
    b1 = view[pos + 1]
    masked = bool(b1 & 0x80)
    length = b1 & 0x7F
    if opcode >= 8 and length > 125:
        raise ProtocolError("control frame payload longer than 125 bytes", 1002)
    size = 2
    if length == 126:
        size = 4
        if avail < size:
            return None
        length = int.from_bytes(view[pos + 2 : pos + 4], "big")
    elif length == 127:
        size = 10
        if avail < size:
            return None
        length = int.from_bytes(view[pos + 2 : pos + 10], "big")
        if length > _MAX_LENGTH:
            raise ProtocolError("64-bit payload length with the most significant bit set", 1002)
    mask = None
    if masked:
        if avail < size + 4:
            return None
        mask = view[pos + size : pos + size + 4].tobytes()
        size += 4
    return FrameHeader(
        fin, bool(b0 & 0x40), bool(b0 & 0x20), bool(b0 & 0x10), opcode, masked, mask, length, size
    )


def parse_header(data: Any, offset: int = 0) -> FrameHeader | None:
    """Parse the frame header at ``data[offset:]``; None when more bytes are needed."""
    offset = check_offset(offset)
    view = byte_view(data)
    if offset > len(view):
        raise ValueError(f"offset {offset} is beyond the end of the data ({len(view)} bytes)")
    return _parse(view, offset)


def build_header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: Any = None,
) -> bytes:
    """Encode a frame header with the shortest length encoding (and ``mask`` appended)."""
    op = _opcode(opcode, ValueError)
    length = operator.index(length)
    if length < 0 or length > _MAX_LENGTH:
        raise ValueError(f"payload length must be in 0..2**63-1, not {length}")
    if op >= 8:
        if not fin:
            raise ValueError("control frames cannot be fragmented")
        if length > 125:
            raise ValueError("control frame payloads are at most 125 bytes")
    key = b""
    if mask is not None:
        key = byte_view(mask).tobytes()
        if len(key) != 4:
            raise ValueError(f"mask must be exactly 4 bytes, not {len(key)}")
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    b0 |= (0x10 if rsv3 else 0) | op
    mbit = 0x80 if key else 0
    if length < 126:
        head = bytes((b0, mbit | length))
    elif length < 0x10000:
        head = bytes((b0, mbit | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + length.to_bytes(8, "big")
    return head + key


def build_frame(
    opcode: int,
    payload: Any,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: Any = None,
) -> bytes:
    """A whole frame: the header :func:`build_header` makes, then ``payload``, masked with
    ``mask`` when given."""
    view = byte_view(payload)
    head = build_header(opcode, len(view), fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask)
    return head + (view.tobytes() if mask is None else apply_mask(view, mask))


class FrameParser:
    """Streaming frame reader: ``feed(bytes)`` returns the frames those bytes completed.

    Raises :class:`ProtocolError` (1002) for a header RFC 6455 forbids or a mask bit that
    differs from ``require_mask``, and (1009) as soon as a header declares more than
    ``max_frame_size`` bytes (or more than memory can hold). Frames completed earlier in the
    same call travel on the exception's ``frames``. After an error the parser refuses
    further input.

    One stream, one thread at a time: ``feed()``, ``pending_payload()`` and ``__init__()``
    from another thread wait for a ``feed()`` running (a lock), so the payload buffer is never
    resized while another thread uses it (on a free-threaded build that could corrupt memory;
    the compiled parser's critical section does the same).
    """

    __slots__ = (
        "_lock",
        "_require_mask",
        "_max_frame_size",
        "_hbuf",
        "_header",
        "_buf",
        "_error",
    )

    def __init__(self, *, require_mask: bool, max_frame_size: int | None = None) -> None:
        if max_frame_size is not None:
            max_frame_size = operator.index(max_frame_size)
            if max_frame_size < 0:
                raise ValueError("max_frame_size must be >= 0 or None")
        lock = getattr(self, "_lock", None)  # run again: wait for a feed() in progress
        if lock is None:
            lock = self._lock = threading.Lock()
        with lock:
            self._require_mask = bool(require_mask)
            self._max_frame_size = max_frame_size
            self._hbuf = b""  # a header cut by the end of the previous chunk
            self._header: FrameHeader | None = None  # the header whose payload is arriving
            self._buf = bytearray()  # its payload so far, still masked (appending: amortised O(1))
            self._error: ProtocolError | None = None

    @property
    def require_mask(self) -> bool:
        return self._require_mask

    @property
    def max_frame_size(self) -> int | None:
        return self._max_frame_size

    def _check(self, header: FrameHeader) -> None:
        if header.masked != self._require_mask:
            raise ProtocolError(
                "frames from a client must be masked"
                if self._require_mask
                else "frames from a server must not be masked",
                1002,
            )
        limit = self._max_frame_size
        if limit is not None and header.length > limit:
            raise ProtocolError(
                f"frame payload of {header.length} bytes exceeds max_frame_size={limit}", 1009
            )

    @property
    def pending(self) -> FrameHeader | None:
        """The header of the frame whose payload is still arriving, else None.

        Lets a connection act on a frame before it completes (e.g. fail fast on invalid
        UTF-8, RFC 6455 §8.1); the same object is returned until that frame completes.
        """
        return self._header

    def pending_payload(self, start: int = 0) -> bytes:
        """The unmasked payload bytes of the :attr:`pending` frame received so far, from
        ``start`` on (only the new ones, if ``start`` is what an earlier call returned up to);
        ``b""`` when no frame is pending."""
        start = operator.index(start)
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        with self._lock:  # a feed() may be appending to the buffer, or unmasking it in place
            header = self._header
            if header is None or start >= len(self._buf):
                return b""
            raw = bytes(self._buf[start:])  # the new bytes only: linear over a frame's reads
        return raw if header.mask is None else apply_mask(raw, header.mask, start)

    @staticmethod
    def _reserve(length: int) -> None:
        # The compiled parser allocates a payload at its final size when its header arrives;
        # make the same decisions: nothing longer than a Py_ssize_t indexes (checked before
        # any cast there), nor what memory cannot hold (bytes(n) is lazy).
        error = ProtocolError(f"cannot buffer a frame payload of {length} bytes", 1009)
        if length > _MAX_BUFFERED:
            raise error
        try:
            bytes(length)
        except (MemoryError, OverflowError):
            raise error from None

    @staticmethod
    def _frame(header: FrameHeader, payload: bytes) -> Frame:
        if header.mask is not None:
            payload = apply_mask(payload, header.mask)
        return Frame(header.opcode, payload, header.fin, header.rsv1, header.rsv2, header.rsv3)

    def feed(self, data: Any) -> list[Frame]:
        """Append ``data``; return the frames it completed, in order."""
        view = byte_view(data)  # before the lock: a buffer's own code may call feed()
        with self._lock:
            return self._feed(view)

    def _feed(self, view: memoryview) -> list[Frame]:
        if self._error is not None:
            raise ProtocolError(str(self._error), self._error.code)
        frames: list[Frame] = []
        n = len(view)
        pos = 0
        try:
            while True:
                header = self._header
                if header is not None:
                    # Continue the payload in progress.
                    buf = self._buf
                    take = min(header.length - len(buf), n - pos)
                    buf += view[pos : pos + take]
                    pos += take
                    if len(buf) < header.length:
                        break
                    if header.mask is not None:
                        apply_mask_inplace(buf, header.mask)
                    frames.append(
                        Frame(header.opcode, bytes(buf), header.fin, header.rsv1, header.rsv2,
                              header.rsv3)
                    )  # fmt: skip
                    self._header = None
                    self._buf = bytearray()
                    continue
                if self._hbuf:
                    # Complete the header cut by the previous chunk.
                    held = len(self._hbuf)
                    candidate = self._hbuf + view[pos : pos + 14 - held].tobytes()
                    header = _parse(memoryview(candidate), 0)
                    if header is None:
                        self._hbuf = candidate
                        break
                    pos += header.size - held
                    self._hbuf = b""
                else:
                    if pos == n:
                        break
                    header = _parse(view, pos)
                    if header is None:
                        self._hbuf = view[pos:].tobytes()
                        break
                    pos += header.size
                self._check(header)
                if n - pos >= header.length:
                    end = pos + header.length
                    frames.append(self._frame(header, view[pos:end].tobytes()))
                    pos = end
                else:
                    self._reserve(header.length)
                    self._header = header
        except ProtocolError as exc:
            self._error = exc
            self._header = None
            self._buf = bytearray()
            self._hbuf = b""
            exc.frames = frames
            raise
        return frames
