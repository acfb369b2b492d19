"""One large text frame arriving in TCP-sized reads: the cost must grow linearly with its size.

A server connection receives a single masked text frame of 1 MiB and of 4 MiB (or
``--sizes``) in 1,460-byte reads (one Ethernet segment's payload), validating the UTF-8 as
it arrives (RFC 6455 §8.1: it asks the parser for the new part of the pending payload after
every read). Timed for both builds, each in its own process: the compiled connection on the
compiled kernels, and the pure-Python one (``WSFAST_NO_EXTENSIONS=1``). Linear means the
4 MiB / 1 MiB ratio is near 4; a parser that re-joins the payload on every read gives ~16.

    python bench/chunked_frames.py
    PYTHONPATH=/path/to/other/src python bench/chunked_frames.py   # another tree, same way
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

MiB = 1024 * 1024
READ = 1460


def measure(size: int, repeat: int) -> float:
    """Best time in seconds to receive one ``size``-byte text frame in READ-byte reads."""
    import wsfast
    from wsfast.connection import ServerConnection
    from wsfast.events import TextMessage

    key = b"\x01\x02\x03\x04"
    payload = ("wsfast é 日本 " * (size // 16 + 1)).encode()[:size]
    payload = payload.decode("utf-8", "ignore").encode()  # whole characters only
    wire = wsfast.build_header(wsfast.Opcode.TEXT, len(payload), mask=key)
    wire += wsfast.apply_mask(payload, key)
    request = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {wsfast.generate_key()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    best = float("inf")
    for _ in range(repeat):
        conn = ServerConnection(max_message_size=None)
        conn.receive_data(request)
        conn.events()
        conn.accept()
        conn.data_to_send()
        view = memoryview(wire)
        start = time.perf_counter()
        for pos in range(0, len(wire), READ):
            conn.receive_data(view[pos : pos + READ])
        elapsed = time.perf_counter() - start
        (event,) = conn.events()
        if not isinstance(event, TextMessage) or len(event.data.encode()) != len(payload):
            raise RuntimeError("the message did not arrive whole")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4", help="frame sizes in MiB (default 1,4)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["cython", "python"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(float(s) * MiB) for s in args.sizes.split(",")]
    if args.child:
        import wsfast

        if wsfast.implementation != args.child:
            raise SystemExit(f"wanted {args.child}, got {wsfast.implementation}")
        print(" ".join(f"{measure(size, args.repeat):.6f}" for size in sizes), flush=True)
        return
    print(f"one text frame in {READ}-byte reads, best of {args.repeat}")
    print(f"{'build':<8}" + "".join(f"{s / MiB:>10g} MiB" for s in sizes) + "   ratio last/first")
    for build in ("cython", "python"):
        env = dict(os.environ)
        env.pop("WSFAST_NO_EXTENSIONS", None)
        if build == "python":
            env["WSFAST_NO_EXTENSIONS"] = "1"
        command = [sys.executable, os.path.abspath(__file__), "--child", build]
        command += ["--sizes", args.sizes, "--repeat", str(args.repeat)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            print(f"{build:<8} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        times = [float(t) for t in done.stdout.split()]
        row = "".join(f"{t:>12.4f} s" for t in times)
        print(f"{build:<8}{row}   {times[-1] / times[0]:.1f}x", flush=True)


if __name__ == "__main__":
    main()
