"""UTF-8 validation (compiled). Technique: see _c/wsf_utf8.h (AVX2 or NEON nibble lookups, else a
DFA that skips ASCII 16/8 bytes at a time); the GIL is released for large buffers."""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t

from wsfast._mask cimport kernel_isa

cdef extern from "wsf_utf8.h" nogil:
    uint32_t wsf_utf8_validate(int isa, uint32_t state, const unsigned char *p, size_t n)
    size_t wsf_utf8_reject_index(uint32_t state, const unsigned char *p, size_t n)
    enum:
        WSF_UTF8_ACCEPT
        WSF_UTF8_REJECT

# Below this many bytes the GIL is kept (see bench/gil_threshold.py).
cdef Py_ssize_t UTF8_NOGIL_MIN = 256 * 1024
cdef int _isa = kernel_isa()


cdef uint32_t utf8_continue(uint32_t state, const unsigned char *p, Py_ssize_t n) noexcept nogil:
    return wsf_utf8_validate(_isa, state, p, <size_t>n)


cdef inline uint32_t _validate(uint32_t state, const unsigned char *p, Py_ssize_t n) noexcept:
    """The kernel over ``n`` bytes at ``p``, without the GIL from UTF8_NOGIL_MIN bytes."""
    if n >= UTF8_NOGIL_MIN:
        with nogil:
            state = wsf_utf8_validate(_isa, state, p, <size_t>n)
        return state
    return wsf_utf8_validate(_isa, state, p, <size_t>n)


cdef uint32_t _run(uint32_t state, object data) except? 0xFFFFFFFF:
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        return _validate(state, <const unsigned char *>PyBytes_AS_STRING(data),
                         PyBytes_GET_SIZE(data))
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    state = _validate(state, <const unsigned char *>view.buf, view.len)
    PyBuffer_Release(&view)
    return state


def validate_utf8(data):
    """True iff ``data`` is well-formed UTF-8 (agrees with ``bytes.decode("utf-8")``)."""
    return _run(WSF_UTF8_ACCEPT, data) == WSF_UTF8_ACCEPT


cdef class Utf8Validator:
    """Validates a message arriving in fragments; fails at the first impossible byte."""

    def __init__(self):
        with cython.critical_section(self):
            self._state = WSF_UTF8_ACCEPT

    cpdef bint feed(self, data) except -1:
        """Add ``data``; False once the bytes so far cannot begin any valid UTF-8 string."""
        # Once rejected, the kernel returns at once (but still refuses a non-buffer). The
        # state is one 32-bit word: feeds racing from two threads give an unspecified
        # verdict, never a memory error; the critical section orders them where it can.
        with cython.critical_section(self):
            self._state = _run(self._state, data)
            return self._state != WSF_UTF8_REJECT

    cpdef Py_ssize_t feed_count(self, data) except -1:
        """Like :meth:`feed`, but return how many bytes of ``data`` were accepted: all of
        them while the bytes so far can begin valid UTF-8, else the index of the first byte
        that cannot (0 once the validator has rejected)."""
        cdef Py_buffer view
        cdef uint32_t before
        cdef Py_ssize_t n
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            with cython.critical_section(self):
                before = self._state
                n = view.len
                self._state = _validate(before, <const unsigned char *>view.buf, n)
                if self._state == WSF_UTF8_REJECT:
                    n = <Py_ssize_t>wsf_utf8_reject_index(before,
                                                          <const unsigned char *>view.buf,
                                                          <size_t>n)
        finally:
            PyBuffer_Release(&view)
        return n

    cpdef bint finish(self) noexcept:
        """True iff everything fed is valid UTF-8 ending on a character boundary."""
        with cython.critical_section(self):
            return self._state == WSF_UTF8_ACCEPT

    cpdef void reset(self) noexcept:
        """Forget everything fed so far."""
        with cython.critical_section(self):
            self._state = WSF_UTF8_ACCEPT
