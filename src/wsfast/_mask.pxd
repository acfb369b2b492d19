# C-level entry points of the masking kernel, for other compiled modules (cimport them).

cdef int kernel_isa() noexcept nogil
cdef void mask_into(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                    const unsigned char *key, Py_ssize_t offset) noexcept nogil
cdef Py_ssize_t MASK_NOGIL_MIN
