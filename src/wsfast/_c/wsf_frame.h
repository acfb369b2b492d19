/* The largest frame payload a parser may buffer: what a Py_ssize_t can index.
 *
 * RFC 6455 §5.2 lengths go up to 2^63 - 1, but a payload lives in one bytes object, indexed
 * by Py_ssize_t, which is as wide as size_t: 2^31 - 1 on a 32-bit build. A length above
 * WSF_MAX_BUFFERED must be refused before it is cast to Py_ssize_t (the cast would truncate
 * it). The value equals CPython's PY_SSIZE_T_MAX, computed without Python.h so that
 * tests/c/length_guard.c can check it for a 32-bit target at compile time.
 */
#ifndef WSF_FRAME_H
#define WSF_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WSF_MAX_BUFFERED ((uint64_t)(SIZE_MAX >> 1))
#define WSF_PAYLOAD_FITS(length) ((uint64_t)(length) <= WSF_MAX_BUFFERED)

#endif
