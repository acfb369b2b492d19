# C-level view of the frame kernel, for other compiled modules (cimport them).
cimport cython
from libc.stdint cimport uint64_t


cdef struct header_t:
    unsigned char b0           # FIN, RSV1-3 and the opcode
    bint masked
    unsigned char key[4]
    uint64_t length
    Py_ssize_t size            # header bytes


@cython.final
cdef class FrameHeader:
    cdef readonly bint fin, rsv1, rsv2, rsv3
    cdef readonly object opcode
    cdef readonly bint masked
    cdef readonly object mask
    cdef readonly object length
    cdef readonly Py_ssize_t size


@cython.final
cdef class Frame:
    cdef readonly object opcode
    cdef readonly bint fin, rsv1, rsv2, rsv3
    cdef readonly bytes payload


@cython.final
cdef class FrameParser:
    cdef bint _require_mask
    cdef object _max_frame_size
    cdef uint64_t _limit
    cdef unsigned char _hbuf[14]   # a header cut by the end of the previous chunk
    cdef Py_ssize_t _hlen
    cdef header_t _h               # the header of the payload being filled
    cdef bytes _payload            # allocated at full size, filled chunk by chunk
    cdef Py_ssize_t _filled
    cdef FrameHeader _pending      # its header as a Python object, made on demand
    cdef object _error
    cdef bint _busy                # a feed() is running (see feed)

    cdef _init(self, require_mask, max_frame_size)
    cdef int _check(self, header_t *h) except -1
    cdef bytes _allocate(self, header_t *h)
    cdef list _feed(self, const unsigned char *p, Py_ssize_t n, list frames)


cdef int parse_into(const unsigned char *p, Py_ssize_t avail, header_t *h) except -1
