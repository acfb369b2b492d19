# C-level entry points of the UTF-8 kernel, for other compiled modules (cimport them).
from libc.stdint cimport uint32_t

cdef uint32_t utf8_continue(uint32_t state, const unsigned char *p, Py_ssize_t n) noexcept nogil


cdef class Utf8Validator:
    cdef uint32_t _state
    cpdef bint feed(self, data) except -1
    cpdef Py_ssize_t feed_count(self, data) except -1
    cpdef bint finish(self) noexcept
    cpdef void reset(self) noexcept
