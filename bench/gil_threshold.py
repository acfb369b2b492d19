"""Where should the kernels release the GIL? Run: python bench/gil_threshold.py

1. The cost of releasing and re-taking the GIL, uncontended: the same call just below and at
   the threshold (equal work, one releases the GIL).
2. What releasing buys: a Python thread counting while the main thread masks/validates
   16 MiB buffers; the count shows how much the other thread ran.
"""

from __future__ import annotations

import os
import threading
import time
import timeit

import wsfast

THRESHOLD = 256 * 1024  # MASK_NOGIL_MIN / UTF8_NOGIL_MIN in the .pyx files


def best_ns(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=9)) / number * 1e9


def release_cost() -> None:
    key = os.urandom(4)
    # In place: no allocation, so the difference is the GIL alone.
    below = bytearray(os.urandom(THRESHOLD - 64))
    at = bytearray(os.urandom(THRESHOLD))
    text_below = b"a" * (THRESHOLD - 64)
    text_at = text_below + b"a" * 64
    for name, fn_below, fn_at in [
        (
            "mask_inplace",
            lambda: wsfast.apply_mask_inplace(below, key),
            lambda: wsfast.apply_mask_inplace(at, key),
        ),
        (
            "validate_utf8",
            lambda: wsfast.validate_utf8(text_below),
            lambda: wsfast.validate_utf8(text_at),
        ),
    ]:
        b = best_ns(fn_below, 2000)
        a = best_ns(fn_at, 2000)
        print(
            f"{name:14s} {THRESHOLD - 64:>7d} B (GIL kept) {b:8.0f} ns | "
            f"{THRESHOLD} B (GIL released) {a:8.0f} ns | "
            f"release+reacquire ~{a - b:6.0f} ns = {100 * (a - b) / b:4.1f}% of the work"
        )


def other_thread_progress() -> None:
    big = os.urandom(16 << 20)
    text = b"a" * (16 << 20)
    key = os.urandom(4)
    for name, fn in [
        ("apply_mask 16 MiB", lambda: wsfast.apply_mask(big, key)),
        ("validate_utf8 16 MiB", lambda: wsfast.validate_utf8(text)),
    ]:
        stop = threading.Event()
        count = 0

        def spin(stop: threading.Event = stop) -> None:
            nonlocal count
            while not stop.is_set():
                count += 1

        t = threading.Thread(target=spin)
        t.start()
        start = time.perf_counter()
        for _ in range(20):
            fn()
        elapsed = time.perf_counter() - start
        stop.set()
        t.join()
        print(f"{name:22s} 20 calls in {elapsed * 1e3:7.1f} ms; the other thread counted {count:,}")


if __name__ == "__main__":
    print(f"implementation: {wsfast.implementation}")
    release_cost()
    other_thread_progress()
