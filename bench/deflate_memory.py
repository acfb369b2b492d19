"""Memory of permessage-deflate per connection, per setting and zlib backend (tracemalloc).

For each (window bits, memLevel) a connection uses: one compressor and one inflater, both
after one 1 KiB JSON message (zlib allocates an inflater's window on first use), measured
with tracemalloc (CPython's zlib modules allocate through PyMem, which it traces). The
backends installed among zlib, zlib-ng and isal are measured.

    python bench/deflate_memory.py
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_race import json_document

from wsfast.permessage_deflate import BACKENDS, zlib_backend

SETTINGS = [(15, 8), (15, 5), (12, 5), (12, 8), (10, 4), (9, 1)]
N = 50  # objects per measurement, to average out allocator rounding


def measure(module: object, bits: int, mem_level: int, message: bytes) -> tuple[float, float]:
    """KiB per compressor and per inflater, each after one message."""
    zlib = module
    level = 1
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    compressors = []
    for _ in range(N):
        c = zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)  # type: ignore[attr-defined]
        data = c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[attr-defined]
        compressors.append(c)
    middle = tracemalloc.get_traced_memory()[0]
    inflaters = []
    for _ in range(N):
        d = zlib.decompressobj(-bits)  # type: ignore[attr-defined]
        d.decompress(data)
        inflaters.append(d)
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (middle - base) / N / 1024, (end - middle) / N / 1024


def main() -> None:
    message = json_document(1024, 0).encode()
    names = []
    for name in BACKENDS:
        try:
            zlib_backend(name)
        except ImportError:
            continue
        names.append(name)
    print("KiB per connection: compressor + inflater (after one message each)")
    print(f"{'window/memLevel':<16}" + "".join(f"{name:>26}" for name in names))
    for bits, mem_level in SETTINGS:
        cells = []
        for name in names:
            c, d = measure(zlib_backend(name), bits, mem_level, message)
            cells.append(f"{c:7.1f} + {d:5.1f} = {c + d:6.1f}")
        print(f"{bits:>2} / {mem_level:<11}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
