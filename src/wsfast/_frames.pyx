"""RFC 6455 §5.2 frame headers and a streaming frame parser (compiled).

Technique: headers are decoded straight from the caller's buffer (a header cut by the end of
a chunk waits in a 14-byte array); each payload is allocated once, at its final size, and
filled by the masking kernel straight from the input, so the bytes are copied and unmasked
in a single pass however many chunks they arrive in.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from wsfast._mask cimport MASK_NOGIL_MIN, WSF_FREE_THREADED, mask_into


cdef extern from "wsf_frame.h":
    uint64_t WSF_MAX_BUFFERED  # what a Py_ssize_t indexes: 2**31 - 1 on 32-bit builds
    bint WSF_PAYLOAD_FITS(uint64_t length)  # the guard tests/c/length_guard.c checks

from operator import index as _index

from wsfast.codes import Opcode
from wsfast.exceptions import ProtocolError

cdef object _ProtocolError = ProtocolError
cdef list _OPCODES = [None] * 16
for _op in Opcode:
    _OPCODES[int(_op)] = _op
cdef uint64_t _MAX_LENGTH = (<uint64_t>1 << 63) - 1
cdef bytes _EMPTY = b""
_MAX_BUFFERED = WSF_MAX_BUFFERED  # for the tests: sys.maxsize


cdef object _opcode(object value, object error):
    cdef object op = None
    v = _index(value)
    if 0 <= v < 16:
        op = _OPCODES[v]
    if op is None:
        message = f"reserved opcode {value:#x}"
        if error is _ProtocolError:
            raise _ProtocolError(message, 1002)
        raise error(message)
    return op


cdef int parse_into(const unsigned char *p, Py_ssize_t avail, header_t *h) except -1:
    """1 with ``h`` filled when p[0:avail] holds a whole header, 0 when it needs more bytes.
    Raises ProtocolError as early as the bytes allow."""
    cdef unsigned char b0, b1
    cdef int op
    cdef uint64_t length
    cdef Py_ssize_t size = 2
    if avail < 1:
        return 0
    b0 = p[0]
    op = b0 & 0x0F
    if _OPCODES[op] is None:
        raise _ProtocolError(f"reserved opcode {op:#x}", 1002)
    if op >= 8 and not (b0 & 0x80):
        raise _ProtocolError("fragmented control frame", 1002)
    if avail < 2:
        return 0
    b1 = p[1]
    length = b1 & 0x7F
    if op >= 8 and length > 125:
        raise _ProtocolError("control frame payload longer than 125 bytes", 1002)
    if length == 126:
        size = 4
        if avail < size:
            return 0
        length = (<uint64_t>p[2] << 8) | p[3]
    elif length == 127:
        size = 10
        if avail < size:
            return 0
        length = ((<uint64_t>p[2] << 56) | (<uint64_t>p[3] << 48) | (<uint64_t>p[4] << 40)
                  | (<uint64_t>p[5] << 32) | (<uint64_t>p[6] << 24) | (<uint64_t>p[7] << 16)
                  | (<uint64_t>p[8] << 8) | <uint64_t>p[9])
        if length > _MAX_LENGTH:
            raise _ProtocolError("64-bit payload length with the most significant bit set", 1002)
    h.masked = (b1 & 0x80) != 0
    if h.masked:
        if avail < size + 4:
            return 0
        memcpy(h.key, p + size, 4)
        size += 4
    h.b0 = b0
    h.length = length
    h.size = size
    return 1


@cython.final
cdef class FrameHeader:
    """One parsed frame header; ``size`` is its length in bytes, ``length`` the payload's."""

    def __init__(self, fin, rsv1, rsv2, rsv3, opcode, masked, mask, length, size):
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.masked = masked
        self.mask = mask
        self.length = length
        self.size = size

    def _fields(self):
        return (self.fin, self.rsv1, self.rsv2, self.rsv3, self.opcode, self.masked, self.mask,
                self.length, self.size)

    def __eq__(self, other):
        if not isinstance(other, FrameHeader):
            return NotImplemented
        return self._fields() == (<FrameHeader>other)._fields()

    def __hash__(self):
        return hash(self._fields())

    def __repr__(self):
        names = ("fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "mask", "length", "size")
        # A list, not a generator: Cython 3.1-3.3 keep a reference to their generator type
        # per generator run.
        args = ", ".join([f"{name}={value!r}" for name, value in zip(names, self._fields())])
        return f"FrameHeader({args})"


cdef FrameHeader _make_header(header_t *h):
    cdef FrameHeader fh = FrameHeader.__new__(FrameHeader)
    fh.fin = (h.b0 & 0x80) != 0
    fh.rsv1 = (h.b0 & 0x40) != 0
    fh.rsv2 = (h.b0 & 0x20) != 0
    fh.rsv3 = (h.b0 & 0x10) != 0
    fh.opcode = _OPCODES[h.b0 & 0x0F]
    fh.masked = h.masked
    fh.mask = PyBytes_FromStringAndSize(<char *>h.key, 4) if h.masked else None
    fh.length = h.length
    fh.size = h.size
    return fh


@cython.final
@cython.freelist(64)
cdef class Frame:
    """One complete frame, payload unmasked."""

    def __init__(self, opcode, payload, fin=True, rsv1=False, rsv2=False, rsv3=False):
        self.opcode = _opcode(opcode, ValueError)
        self.payload = payload if PyBytes_CheckExact(payload) else bytes(memoryview(payload))
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3

    def _fields(self):
        return (self.opcode, self.fin, self.rsv1, self.rsv2, self.rsv3, self.payload)

    def __eq__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return self._fields() == (<Frame>other)._fields()

    def __hash__(self):
        return hash(self._fields())

    def __repr__(self):
        payload = self.payload if len(self.payload) <= 32 else self.payload[:32] + b"..."
        return (f"Frame({self.opcode!r}, {payload!r}, fin={self.fin}, "
                f"rsv1={self.rsv1}, rsv2={self.rsv2}, rsv3={self.rsv3})")


cdef inline Frame _make_frame(unsigned char b0, bytes payload):
    cdef Frame f = Frame.__new__(Frame)
    f.opcode = _OPCODES[b0 & 0x0F]
    f.fin = (b0 & 0x80) != 0
    f.rsv1 = (b0 & 0x40) != 0
    f.rsv2 = (b0 & 0x20) != 0
    f.rsv3 = (b0 & 0x10) != 0
    f.payload = payload
    return f


def parse_header(data, offset=0):
    """Parse the frame header at ``data[offset:]``; None when more bytes are needed."""
    cdef Py_buffer view
    cdef header_t h
    cdef int done
    offset = _index(offset)
    if offset < 0:
        raise ValueError(f"offset must be >= 0, not {offset}")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if offset > view.len:
            raise ValueError(
                f"offset {offset} is beyond the end of the data ({view.len} bytes)")
        done = parse_into(<const unsigned char *>view.buf + <Py_ssize_t>offset,
                          view.len - <Py_ssize_t>offset, &h)
    finally:
        PyBuffer_Release(&view)
    return _make_header(&h) if done else None


cdef Py_ssize_t _encode_header(unsigned char *out, opcode, length, fin, rsv1, rsv2, rsv3,
                               mask) except -1:
    """Write the header build_header returns into ``out`` (14 bytes); return its size."""
    cdef int i
    cdef Py_ssize_t size = 2
    cdef uint64_t n
    cdef Py_buffer view
    op = _opcode(opcode, ValueError)
    length = _index(length)
    if length < 0 or length > _MAX_LENGTH:
        raise ValueError(f"payload length must be in 0..2**63-1, not {length}")
    n = length
    if op >= 8:
        if not fin:
            raise ValueError("control frames cannot be fragmented")
        if n > 125:
            raise ValueError("control frame payloads are at most 125 bytes")
    out[0] = ((0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
              | (0x10 if rsv3 else 0) | <int>op)
    if n < 126:
        out[1] = <unsigned char>n
    elif n < 0x10000:
        out[1] = 126
        out[2] = <unsigned char>(n >> 8)
        out[3] = <unsigned char>n
        size = 4
    else:
        out[1] = 127
        for i in range(8):
            out[2 + i] = <unsigned char>(n >> (56 - 8 * i))
        size = 10
    if mask is not None:
        PyObject_GetBuffer(mask, &view, PyBUF_SIMPLE)
        try:
            if view.len != 4:
                raise ValueError(f"mask must be exactly 4 bytes, not {view.len}")
            memcpy(out + size, view.buf, 4)
        finally:
            PyBuffer_Release(&view)
        out[1] |= 0x80
        size += 4
    return size


def build_header(opcode, length, *, fin=True, rsv1=False, rsv2=False, rsv3=False, mask=None):
    """Encode a frame header with the shortest length encoding (and ``mask`` appended)."""
    cdef unsigned char out[14]
    cdef Py_ssize_t size = _encode_header(out, opcode, length, fin, rsv1, rsv2, rsv3, mask)
    return PyBytes_FromStringAndSize(<char *>out, size)


def build_frame(opcode, payload, fin=True, rsv1=False, rsv2=False, rsv3=False, mask=None):
    """A whole frame: the header :func:`build_header` makes, then ``payload``, masked with
    ``mask`` when given. One allocation; the payload is copied once, masked on the way."""
    cdef unsigned char head[14]
    cdef Py_ssize_t size
    cdef Py_buffer view
    cdef bytes frame
    cdef unsigned char *dst
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        size = _encode_header(head, opcode, view.len, fin, rsv1, rsv2, rsv3, mask)
        frame = PyBytes_FromStringAndSize(NULL, size + view.len)
        dst = <unsigned char *>PyBytes_AS_STRING(frame)
        memcpy(dst, head, size)
        if mask is None:
            memcpy(dst + size, view.buf, view.len)
        elif view.len >= MASK_NOGIL_MIN and not WSF_FREE_THREADED:
            with nogil:
                mask_into(dst + size, <const unsigned char *>view.buf, view.len,
                          head + size - 4, 0)
        else:
            mask_into(dst + size, <const unsigned char *>view.buf, view.len, head + size - 4, 0)
    finally:
        PyBuffer_Release(&view)
    return frame


cdef inline void _unmask(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                         header_t *h, Py_ssize_t offset) noexcept:
    if not h.masked:
        memcpy(dst, src, n)
    elif n >= MASK_NOGIL_MIN and not WSF_FREE_THREADED:
        # (Without a GIL there is nothing to release, and detaching would suspend the
        # parser's critical section in the middle of a payload.)
        with nogil:
            mask_into(dst, src, n, h.key, offset)
    else:
        mask_into(dst, src, n, h.key, offset)


@cython.final
cdef class FrameParser:
    """Streaming frame reader: ``feed(bytes)`` returns the frames those bytes completed.

    Raises :class:`ProtocolError` (1002) for a header RFC 6455 forbids or a mask bit that
    differs from ``require_mask``, and (1009) as soon as a header declares more than
    ``max_frame_size`` bytes. Frames completed earlier in the same call travel on the
    exception's ``frames``. After an error the parser refuses further input.

    One stream, one thread at a time: a ``feed()`` that meets another one still running
    (from another thread) waits for it on a free-threaded build, or raises RuntimeError
    where it cannot wait; the parser's memory is never shared unguarded.
    """

    def __init__(self, *, require_mask, max_frame_size=None):
        with cython.critical_section(self):
            self._init(require_mask, max_frame_size)

    cdef _init(self, require_mask, max_frame_size):
        if self._busy:
            raise RuntimeError("FrameParser.__init__() called during a feed()")
        if max_frame_size is not None:
            max_frame_size = _index(max_frame_size)
            if max_frame_size < 0:
                raise ValueError("max_frame_size must be >= 0 or None")
            self._limit = min(max_frame_size, _MAX_LENGTH)
        else:
            self._limit = _MAX_LENGTH
        self._require_mask = require_mask
        self._max_frame_size = max_frame_size
        self._hlen = 0
        self._payload = None
        self._pending = None
        self._error = None

    # Every public member holds the critical section: __init__ may run again and replace
    # _max_frame_size, and reading an object attribute while another thread drops its last
    # reference would be a use after free on a free-threaded build.
    @property
    def require_mask(self):
        with cython.critical_section(self):
            return self._require_mask

    @property
    def max_frame_size(self):
        with cython.critical_section(self):
            return self._max_frame_size

    @property
    def pending(self):
        """The header of the frame whose payload is still arriving, else None.

        Lets a connection act on a frame before it completes (e.g. fail fast on invalid
        UTF-8, RFC 6455 §8.1); the same object is returned until that frame completes.
        """
        with cython.critical_section(self):
            if self._payload is None:
                return None
            if self._pending is None:
                self._pending = _make_header(&self._h)
            return self._pending

    def pending_payload(self, start=0):
        """The unmasked payload bytes of the :attr:`pending` frame received so far, from
        ``start`` on (only the new ones, if ``start`` is what an earlier call returned up to);
        ``b""`` when no frame is pending."""
        start = _index(start)
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        with cython.critical_section(self):
            if self._payload is None or start >= self._filled:
                return _EMPTY
            return PyBytes_FromStringAndSize(
                PyBytes_AS_STRING(self._payload) + <Py_ssize_t>start,
                self._filled - <Py_ssize_t>start)

    cdef int _check(self, header_t *h) except -1:
        if h.masked != self._require_mask:
            raise _ProtocolError(
                "frames from a client must be masked" if self._require_mask
                else "frames from a server must not be masked", 1002)
        if h.length > self._limit:
            raise _ProtocolError(
                f"frame payload of {h.length} bytes exceeds "
                f"max_frame_size={self._max_frame_size}", 1009)
        if not WSF_PAYLOAD_FITS(h.length):
            # Before any <Py_ssize_t> cast of the length, which would truncate it (32-bit).
            raise _ProtocolError(f"cannot buffer a frame payload of {h.length} bytes", 1009)
        return 0

    cdef bytes _allocate(self, header_t *h):
        try:
            return PyBytes_FromStringAndSize(NULL, <Py_ssize_t>h.length)
        except (MemoryError, OverflowError):
            raise _ProtocolError(f"cannot buffer a frame payload of {h.length} bytes", 1009)

    def feed(self, data):
        """Append ``data``; return the frames it completed, in order."""
        cdef Py_buffer view
        cdef list frames = []
        with cython.critical_section(self):
            # The flag catches what the critical section cannot: a feed() that released
            # the GIL (or had its critical section suspended) and is still writing.
            if self._busy:
                raise RuntimeError("FrameParser.feed() called while another feed() is running")
            self._busy = True
            try:
                if PyBytes_CheckExact(data):
                    return self._feed(<const unsigned char *>PyBytes_AS_STRING(data),
                                      PyBytes_GET_SIZE(data), frames)
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                try:
                    return self._feed(<const unsigned char *>view.buf, view.len, frames)
                finally:
                    PyBuffer_Release(&view)
            finally:
                self._busy = False

    cdef list _feed(self, const unsigned char *p, Py_ssize_t n, list frames):
        cdef Py_ssize_t pos = 0, take, need
        cdef header_t h
        cdef bytes payload
        if self._error is not None:
            raise _ProtocolError(str(self._error), self._error.code)
        try:
            while True:
                if self._payload is not None:
                    # Continue the payload in progress.
                    need = <Py_ssize_t>self._h.length - self._filled
                    take = need if need <= n - pos else n - pos
                    _unmask(<unsigned char *>PyBytes_AS_STRING(self._payload) + self._filled,
                            p + pos, take, &self._h, self._filled)
                    self._filled += take
                    pos += take
                    if take < need:
                        break
                    frames.append(_make_frame(self._h.b0, self._payload))
                    self._payload = None
                    self._pending = None
                    continue
                if self._hlen:
                    # Complete the header cut by the previous chunk.
                    take = 14 - self._hlen
                    if take > n - pos:
                        take = n - pos
                    memcpy(self._hbuf + self._hlen, p + pos, take)
                    if not parse_into(self._hbuf, self._hlen + take, &h):
                        self._hlen += take
                        break
                    pos += h.size - self._hlen
                    self._hlen = 0
                else:
                    if pos == n:
                        break
                    if not parse_into(p + pos, n - pos, &h):
                        memcpy(self._hbuf, p + pos, n - pos)
                        self._hlen = n - pos
                        break
                    pos += h.size
                self._check(&h)
                if h.length == 0:
                    frames.append(_make_frame(h.b0, _EMPTY))
                elif h.length <= <uint64_t>(n - pos):
                    # The whole payload is here: one copy, unmasked on the way.
                    if h.masked:
                        payload = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>h.length)
                        _unmask(<unsigned char *>PyBytes_AS_STRING(payload), p + pos,
                                <Py_ssize_t>h.length, &h, 0)
                    else:
                        payload = PyBytes_FromStringAndSize(<const char *>p + pos,
                                                            <Py_ssize_t>h.length)
                    pos += <Py_ssize_t>h.length
                    frames.append(_make_frame(h.b0, payload))
                else:
                    self._payload = self._allocate(&h)
                    self._h = h
                    self._filled = 0
        except _ProtocolError as exc:
            self._error = exc
            self._payload = None
            self._pending = None
            self._hlen = 0
            exc.frames = frames
            raise
        return frames
