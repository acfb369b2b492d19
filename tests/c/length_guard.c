/* The frame length guard of wsf_frame.h (used by _frames.pyx before any length is cast to
 * Py_ssize_t). Compile-time checks for the target it is compiled for: tests/test_c_kernels.py
 * compiles it natively and, with `-m32 -ffreestanding -fsyntax-only`, for 32-bit x86, so the
 * 32-bit limit is checked on a 64-bit machine (no 32-bit C library needed). Built as a
 * program (natively) it also checks the same at run time. */
#include "wsf_frame.h"

#if SIZE_MAX == 0xffffffffu
_Static_assert(WSF_MAX_BUFFERED == 0x7fffffffu, "32-bit: the limit is 2^31 - 1");
_Static_assert(WSF_PAYLOAD_FITS(0x7fffffffu), "32-bit: 2^31 - 1 bytes fit");
_Static_assert(!WSF_PAYLOAD_FITS(0x80000000u), "32-bit: 2^31 bytes are refused");
_Static_assert(!WSF_PAYLOAD_FITS(0xffffffffu), "32-bit: 2^32 - 1 bytes are refused");
_Static_assert(!WSF_PAYLOAD_FITS(UINT64_C(0x100000000)), "32-bit: no wrap-around at 2^32");
#elif SIZE_MAX == UINT64_MAX
_Static_assert(WSF_MAX_BUFFERED == UINT64_C(0x7fffffffffffffff), "64-bit: 2^63 - 1");
_Static_assert(WSF_PAYLOAD_FITS(UINT64_C(0x80000000)), "64-bit: 2^31 bytes fit");
_Static_assert(!WSF_PAYLOAD_FITS(UINT64_C(0x8000000000000000)), "64-bit: 2^63 is refused");
#else
#error "an unexpected size_t width"
#endif

#ifndef WSF_SYNTAX_ONLY
#include <stdio.h>
int main(void) {
    volatile uint64_t over = (uint64_t)WSF_MAX_BUFFERED + 1, max = WSF_MAX_BUFFERED;
    if (!WSF_PAYLOAD_FITS(max) || WSF_PAYLOAD_FITS(over)) {
        printf("GUARD MISMATCH\n");
        return 1;
    }
    printf("ok (limit %llu)\n", (unsigned long long)max);
    return 0;
}
#endif
