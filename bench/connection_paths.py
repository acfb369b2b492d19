"""The connection's hot paths one by one, and the same paths in another source tree.

Receiving: a server's ``receive_data`` on masked client frames (64 B and 64 KiB, text and
binary), one frame per call and 100 per call, events read each time. Sending: ``send_text``
/ ``send_binary`` then ``data_to_send``, on a client (masked) and on a server. Each figure is
the best of ``--repeat`` runs, in ns per message (CPU time).

``--against DIR``: a source tree (e.g. ``git archive main | tar -x -C DIR`` built with
``WSFAST_BUILD_EXTENSIONS=1 python setup.py build_ext --inplace``) run the same way in a
child process, the two taking turns on every repeat; prints this tree's speed relative to it.

    python bench/connection_paths.py [--count 20000] [--repeat 7] [--against /tmp/base] [--python]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLOCK = time.process_time
MASK = b"\x37\xfa\x21\x3d"


def _masked(op: int, payload: bytes) -> bytes:
    from wsfast import apply_mask, build_header

    return build_header(op, len(payload), mask=MASK) + apply_mask(payload, MASK)


def workloads(module: Any, count: int) -> dict[str, tuple[Callable[[], None], int]]:
    """name -> (one run, messages per run)."""
    small_text, small_bin = "x" * 64, os.urandom(64)
    big_text, big_bin = "é" * (32 * 1024), os.urandom(64 * 1024)
    out: dict[str, tuple[Callable[[], None], int]] = {}

    def receive(wire: bytes, per_call: int, n: int) -> Callable[[], None]:
        data = wire * per_call

        def run() -> None:
            server = _pair(module)[1]
            feed, events = server.receive_data, server.events
            for _ in range(n // per_call):
                feed(data)
                events()

        return run

    for label, op, payload, n in (
        ("64 B text", 1, small_text.encode(), count),
        ("64 B binary", 2, small_bin, count),
        ("64 KiB text", 1, big_text.encode(), max(count // 100, 10)),
        ("64 KiB binary", 2, big_bin, max(count // 100, 10)),
    ):
        wire = _masked(op, payload)
        out[f"receive {label}, 1 per call"] = (receive(wire, 1, n), n)
        if n >= 1000:
            out[f"receive {label}, 100 per call"] = (receive(wire, 100, n), n)

    def send(side: int, text: bool, message: Any, n: int) -> Callable[[], None]:
        def run() -> None:
            conn = _pair(module)[side]
            send = conn.send_text if text else conn.send_binary
            drain = conn.data_to_send
            for _ in range(n):
                send(message)
                drain()

        return run

    for side, who in ((0, "client"), (1, "server")):
        out[f"{who} send 64 B text"] = (send(side, True, small_text, count), count)
        out[f"{who} send 64 B binary"] = (send(side, False, small_bin, count), count)
        n = max(count // 100, 10)
        out[f"{who} send 64 KiB binary"] = (send(side, False, big_bin, n), n)
    return out


sys.path.insert(0, str(Path(__file__).resolve().parent))


def _pair(module: Any) -> tuple[Any, Any]:
    from connection_race import wsfast_pair

    return wsfast_pair(module)


def measure(count: int, python: bool) -> dict[str, float]:
    """One pass over every workload: ns per message."""
    from connection_race import pin_malloc

    import wsfast._connection_py
    import wsfast.connection

    pin_malloc()  # as connection_race does: 64 KiB figures otherwise depend on run order
    module = wsfast._connection_py if python else wsfast.connection
    results = {}
    for name, (run, n) in workloads(module, count).items():
        gc.collect()
        start = CLOCK()
        run()
        results[name] = (CLOCK() - start) / n * 1e9
    return results


def _child(tree: str, count: int, python: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree) / "src"))
    script = Path(__file__).resolve()
    out = subprocess.run(
        [sys.executable, str(script), "--json", "--count", str(count)]
        + (["--python"] if python else []),
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    ).stdout
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="64 B messages per run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--against", help="another source tree, built in place")
    parser.add_argument(
        "--python", action="store_true", help="the connection's Python source (same kernels)"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.count, args.python)))
        return
    here = str(Path(__file__).resolve().parents[1])
    trees = {"this": here, **({"other": args.against} if args.against else {})}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            for key, ns in _child(tree, args.count, args.python).items():
                mine = best.setdefault(name, {})
                mine[key] = min(mine.get(key, float("inf")), ns)
    import wsfast
    import wsfast.connection

    connection = "python" if args.python else wsfast.connection.implementation
    print(
        f"wsfast kernels: {wsfast.implementation}, connection: "
        f"{connection}; best of {args.repeat}, ns per message (CPU)"
    )
    header = f"{'path':<36}{'this':>10}"
    if args.against:
        header += f"{'other':>10}{'other/this':>12}"
    print(header)
    for key, ns in best["this"].items():
        line = f"{key:<36}{ns:>10.0f}"
        if args.against:
            other = best["other"][key]
            line += f"{other:>10.0f}{other / ns:>11.2f}x"
        print(line)


if __name__ == "__main__":
    main()
