# C-level entry points of the masking kernel, for other compiled modules (cimport them).

cdef int kernel_isa() noexcept nogil
cdef void mask_into(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                    const unsigned char *key, Py_ssize_t offset) noexcept nogil
cdef Py_ssize_t MASK_NOGIL_MIN

cdef extern from "wsf_build.h":
    const bint WSF_FREE_THREADED   # 1 on a free-threaded CPython (compile-time constant)
