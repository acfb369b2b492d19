"""The in-place mask at each SIMD level this CPU has, and aiohttp's compiled mask, by size.

The kernels pick their SIMD level once, at import (``WSFAST_ISA`` caps it), so each level
runs in a child process of its own; the children take turns, round after round, and each
size keeps its best time over the rounds. Each child times ``apply_mask_inplace`` on one
bytearray per size, in place, its bytes starting 16 bytes past a cache line (where heap
buffers often start). aiohttp's ``_websocket_mask_cython`` (when installed) runs in one child
per round, a different one each round, on the same buffers.

    python bench/mask_isa.py              # every level, 64 B to 1 MiB
    python bench/mask_isa.py --rounds 9   # more rounds on a noisy machine
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

SIZES = [64, 256, 1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]
LEVELS = ["sse2", "neon", "avx2", "avx512"]  # a level this CPU lacks reports another name


def _buffer(n: int) -> bytearray:
    """n bytes in a bytearray whose first byte is 16 bytes past a cache line."""
    buf = bytearray(n + 63)
    skip = (16 - ctypes.addressof(ctypes.c_char.from_buffer(buf))) % 64
    del buf[:skip]  # moves the bytearray's start, no copy
    del buf[n:]  # a small shrink: kept in place
    assert len(buf) == n and ctypes.addressof(ctypes.c_char.from_buffer(buf)) % 64 == 16
    return buf


def child(sizes: list[int], with_aiohttp: bool) -> None:
    """Time each mask once per size (best of 3 batches); print a JSON dict of ns per call."""
    import wsfast._mask as wm
    from wsfast import apply_mask_inplace

    peers = {f"wsfast {wm.simd_path()}": apply_mask_inplace}
    if with_aiohttp:
        try:
            from aiohttp._websocket.mask import _websocket_mask_cython  # type: ignore
        except ImportError:
            pass
        else:
            peers["aiohttp"] = _websocket_mask_cython
    key = b"\x37\xfa\x21\x3d"
    out: dict[str, dict[str, float]] = {}
    for name, fn in peers.items():
        out[name] = {}
        for n in sizes:
            view = _buffer(n)  # aiohttp's mask takes only a bytearray
            reps = max(20, 20_000_000 // (n + 500))
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter_ns()
                if name == "aiohttp":
                    for _ in range(reps):
                        fn(key, view)
                else:
                    for _ in range(reps):
                        fn(view, key)
                best = min(best, (time.perf_counter_ns() - t0) / reps)
            out[name][str(n)] = best
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--aiohttp", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(SIZES, ns.aiohttp)
        return
    # The levels this CPU runs (a capped level reports the level it got).
    levels: list[str] = []
    for level in LEVELS:
        env = dict(os.environ, WSFAST_ISA=level)
        got = subprocess.run(
            [sys.executable, "-c", "import wsfast._mask as m; print(m.simd_path())"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        if got == level:
            levels.append(level)
    if not levels:
        sys.exit(f"no SIMD level of {LEVELS} on this CPU")
    best: dict[str, dict[str, float]] = {}
    for r in range(ns.rounds):
        for i, level in enumerate(levels):
            env = dict(os.environ, WSFAST_ISA=level)
            aiohttp = ["--aiohttp"] if i == r % len(levels) else []
            cmd = [sys.executable, __file__, "--child", *aiohttp]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            for name, times in json.loads(done.stdout).items():
                kept = best.setdefault(name, {})
                for size, t in times.items():
                    kept[size] = min(kept.get(size, float("inf")), t)
    order = {f"wsfast {level}": i for i, level in enumerate(LEVELS)}
    names = sorted(best, key=lambda name: order.get(name, len(order)))  # levels, then aiohttp
    head = ["size"] + [f"{n} ns" for n in names]
    widest = names[0] if len(levels) == 1 else f"wsfast {levels[-1]}"
    ratios = [n for n in names if n != widest]
    head += [f"{n} / {widest}" for n in ratios] + [f"{widest} GB/s"]
    print(" | ".join(head))
    for n in SIZES:
        s = str(n)
        row = [_size(n)] + [f"{best[name][s]:,.0f}" for name in names]
        row += [f"{best[name][s] / best[widest][s]:.2f}x" for name in ratios]
        row.append(f"{n / best[widest][s]:.1f}")
        print(" | ".join(row))


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


if __name__ == "__main__":
    main()
