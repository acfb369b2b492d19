/* Facts about the interpreter the kernels are compiled for (included after Python.h). */
#ifndef WSF_BUILD_H
#define WSF_BUILD_H

/* 1 on a free-threaded CPython (no GIL): another thread may resize a bytearray or enter an
 * object's methods at any moment, so code that relied on the GIL takes a buffer export or a
 * critical section there. A compile-time constant: GIL builds pay nothing for the checks. */
#ifdef Py_GIL_DISABLED
#define WSF_FREE_THREADED 1
#else
#define WSF_FREE_THREADED 0
#endif

#endif
