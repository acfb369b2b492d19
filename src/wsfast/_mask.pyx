"""RFC 6455 §5.3 masking (compiled). Technique: see _c/wsf_mask.h (AVX-512, AVX2 or SSE2 with
aligned stores, or NEON; then 8 bytes at a time through memcpy'd words, then bytes);
the GIL is released for large buffers."""

import os
import warnings
from operator import index as _index

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport (PyByteArray_AS_STRING, PyByteArray_CheckExact,
                                PyByteArray_GET_SIZE)
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from libc.string cimport memcpy

cdef extern from "wsf_mask.h" nogil:
    int wsf_cpu_best_isa()
    int wsf_cpu_default_isa()
    const char *wsf_isa_name(int isa)
    void wsf_mask(int isa, unsigned char *dst, const unsigned char *src, size_t n,
                  const unsigned char *key, size_t offset)
    enum:
        WSF_ISA_SCALAR
        WSF_ISA_SSE2
        WSF_ISA_NEON
        WSF_ISA_AVX2
        WSF_ISA_AVX512

# Below this many bytes the GIL is kept: releasing and re-taking it costs more than the work
# (measured in bench/gil_threshold.py).
cdef Py_ssize_t MASK_NOGIL_MIN = 256 * 1024

_ISA_LEVELS = {"scalar": WSF_ISA_SCALAR, "sse2": WSF_ISA_SSE2, "neon": WSF_ISA_NEON,
               "avx2": WSF_ISA_AVX2, "avx512": WSF_ISA_AVX512}


cdef int _select_isa() except -1:
    # Unset: the widest path, but AVX-512 only where it does not lower the clock (_c/wsf_cpu.h).
    default = wsf_cpu_default_isa()
    forced = os.environ.get("WSFAST_ISA", "").strip().lower()
    if not forced:
        return default
    if forced not in _ISA_LEVELS:
        warnings.warn(f"WSFAST_ISA={forced!r} is not one of {sorted(_ISA_LEVELS)}; ignored",
                      RuntimeWarning, stacklevel=2)
        return default
    return min(wsf_cpu_best_isa(), _ISA_LEVELS[forced])


cdef int _isa = _select_isa()


def simd_path():
    """The instruction set the kernels use: "avx512", "avx2", "sse2", "neon" or "scalar"."""
    return wsf_isa_name(_isa).decode("ascii")


cdef int kernel_isa() noexcept nogil:
    return _isa


cdef void mask_into(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                    const unsigned char *key, Py_ssize_t offset) noexcept nogil:
    wsf_mask(_isa, dst, src, <size_t>n, key, <size_t>offset)


cdef inline int _read_key(object mask, unsigned char *key) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(mask) and PyBytes_GET_SIZE(mask) == 4:
        memcpy(key, PyBytes_AS_STRING(mask), 4)
        return 0
    PyObject_GetBuffer(mask, &view, PyBUF_SIMPLE)
    try:
        if view.len != 4:
            raise ValueError(f"mask must be exactly 4 bytes, not {view.len}")
        memcpy(key, view.buf, 4)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef inline Py_ssize_t _phase(object offset) except -1:
    """``offset % 4``; a negative offset is a ValueError, a non-integer a TypeError."""
    if offset is 0:  # the default, skip the general path
        return 0
    value = _index(offset)
    if value < 0:
        raise ValueError(f"offset must be >= 0, not {value}")
    return value & 3


def apply_mask(data, mask, offset=0):
    """Return ``data`` XORed with the 4-byte ``mask``, as if ``offset`` bytes were masked before."""
    cdef Py_buffer view
    cdef unsigned char key[4]
    cdef const unsigned char *src
    cdef unsigned char *dst
    cdef Py_ssize_t n
    cdef bytes out
    cdef Py_ssize_t phase = _phase(offset)
    if PyBytes_CheckExact(data):
        _read_key(mask, key)
        n = PyBytes_GET_SIZE(data)
        out = PyBytes_FromStringAndSize(NULL, n)
        dst = <unsigned char *>PyBytes_AS_STRING(out)
        src = <const unsigned char *>PyBytes_AS_STRING(data)
        if n >= MASK_NOGIL_MIN:
            with nogil:
                wsf_mask(_isa, dst, src, n, key, phase)
        else:
            wsf_mask(_isa, dst, src, n, key, phase)
        return out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        _read_key(mask, key)
        n = view.len
        out = PyBytes_FromStringAndSize(NULL, n)
        dst = <unsigned char *>PyBytes_AS_STRING(out)
        src = <const unsigned char *>view.buf
        if n >= MASK_NOGIL_MIN:
            with nogil:
                wsf_mask(_isa, dst, src, n, key, phase)
        else:
            wsf_mask(_isa, dst, src, n, key, phase)
    finally:
        PyBuffer_Release(&view)
    return out


def apply_mask_inplace(buffer, mask, offset=0):
    """XOR the writable ``buffer`` with ``mask`` in place (see :func:`apply_mask`)."""
    cdef Py_buffer view
    cdef unsigned char key[4]
    cdef unsigned char *p
    cdef Py_ssize_t n
    cdef Py_ssize_t phase = _phase(offset)
    if not WSF_FREE_THREADED and PyByteArray_CheckExact(buffer):
        # The common case, without the buffer protocol's bookkeeping (only where the GIL
        # stops other threads from resizing the bytearray between here and the write).
        _read_key(mask, key)
        p = <unsigned char *>PyByteArray_AS_STRING(buffer)
        n = PyByteArray_GET_SIZE(buffer)
        if n >= MASK_NOGIL_MIN:
            # Keep an export open so that no other thread can resize the bytearray meanwhile.
            PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
            with nogil:
                wsf_mask(_isa, p, p, n, key, phase)
            PyBuffer_Release(&view)
        else:
            wsf_mask(_isa, p, p, n, key, phase)
        return
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
    try:
        if view.readonly:
            raise TypeError(
                f"a writable buffer is required, not read-only {type(buffer).__name__!r}")
        _read_key(mask, key)
        p = <unsigned char *>view.buf
        if view.len >= MASK_NOGIL_MIN:
            with nogil:
                wsf_mask(_isa, p, p, view.len, key, phase)
        else:
            wsf_mask(_isa, p, p, view.len, key, phase)
    finally:
        PyBuffer_Release(&view)
