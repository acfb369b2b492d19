"""uvicorn + a Starlette echo endpoint, unpatched vs patched by ``python -m wsfast run``.

For each WebSocket backend (``wsproto``, ``websockets-sansio``) and message size (64 B, 64 KiB):
a uvicorn server in its own process, started alternately as ``python -m uvicorn ...`` and
``python -m wsfast run -m uvicorn ...``, and one client (websockets' sync client, in this
process, never patched) sending a message and waiting for its echo, as many times as it can
in ``--seconds``. Best of ``--repeat`` runs per configuration; compression off on both sides.
``--profile`` runs the patched server once more under cProfile and sums its time by library,
to say where the remaining time goes.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
BACKENDS = ["wsproto", "websockets-sansio"]
SIZES = [64, 65536]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    backend: str, patched: bool, profile: str | None = None, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen, int]:
    """uvicorn with ``--ws backend`` (a name or an import string) and ``extra`` options."""
    port = free_port()
    cmd = [sys.executable]
    if patched:
        cmd += ["-m", "wsfast", "run", "--patch", "wsproto,websockets"]
    cmd += ["-m", "uvicorn", "_uvicorn_echo:app", "--host", "127.0.0.1", "--port", str(port),
            "--ws", backend, "--log-level", "warning", "--no-access-log", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSFAST_PATCH")}
    env["PYTHONPATH"] = str(HERE)
    if profile:
        env["WSFAST_BENCH_PROFILE"] = profile
    proc = subprocess.Popen(cmd, cwd=HERE, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"uvicorn did not start: {cmd}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), else 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, size: int, seconds: float) -> float:
    from websockets.sync.client import connect

    message: str | bytes = "x" * size if size <= 64 else os.urandom(size)
    with connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=None) as ws:
        for _ in range(50):  # warm up
            ws.send(message)
            ws.recv()
        n = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(20):
                ws.send(message)
                ws.recv()
            n += 20
    return n / elapsed


def profile_summary(path: str) -> list[tuple[str, float]]:
    """Share of the server's steady-state time by where it is spent."""
    stats = pstats.Stats(path)
    groups: dict[str, float] = {}
    total = 0.0
    for (filename, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        if filename == "~":
            name = ("event loop and socket I/O (C)" if "run" in func or "poll" in func
                    or "send" in func or "recv" in func or "write" in func else "other C calls")
        else:
            name = "other Python"
            # uvicorn first: its protocols live under uvicorn/protocols/websockets/.
            for key in ("wsfast", "uvicorn", "starlette", "wsproto", "websockets", "h11",
                        "asyncio"):
                if f"/{key}/" in filename:
                    name = key
                    break
        groups[name] = groups.get(name, 0.0) + tottime
    return [(k, v / total) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    if ns.quick:
        ns.seconds, ns.repeat = 0.5, 1
    import uvicorn
    import websockets
    import wsproto

    print(f"uvicorn {uvicorn.__version__}, wsproto {wsproto.__version__}, websockets "
          f"{websockets.__version__}; one client, echo round trips per second (best of "
          f"{ns.repeat} x {ns.seconds} s), compression off")
    print(f"{'backend':<18} {'size':>6} {'unpatched':>12} {'patched':>12} {'ratio':>7}")
    for backend in BACKENDS:
        for size in SIZES:
            best = {False: 0.0, True: 0.0}
            cpu = {False: float("inf"), True: float("inf")}
            for _ in range(ns.repeat):
                for patched in (False, True):
                    proc, port = start(backend, patched)
                    try:
                        c0 = cpu_seconds(proc.pid)
                        t0 = time.perf_counter()
                        rate = measure(port, size, ns.seconds)
                        trips = rate * (time.perf_counter() - t0)
                        best[patched] = max(best[patched], rate)
                        cpu[patched] = min(cpu[patched], (cpu_seconds(proc.pid) - c0) / trips)
                    finally:
                        stop(proc)
            print(f"{backend:<18} {size:>6} {best[False]:>12,.0f} {best[True]:>12,.0f} "
                  f"{best[True] / best[False]:>6.2f}x   server CPU per round trip "
                  f"{cpu[False] * 1e6:.0f} -> {cpu[True] * 1e6:.0f} us", flush=True)
    if ns.profile:
        for backend in BACKENDS:
            for size in SIZES:
                with tempfile.TemporaryDirectory() as tmp:
                    out = os.path.join(tmp, "server.prof")
                    proc, port = start(backend, True, profile=out)
                    try:
                        measure(port, size, ns.seconds)
                    finally:
                        stop(proc)
                    parts = ", ".join(f"{k} {v:.0%}" for k, v in profile_summary(out)[:7])
                    print(f"patched server time, {backend}, {size} B: {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
