"""End-to-end echo race over loopback: wsfast against websockets, aiohttp and picows.

wsfast runs in four variants: "wsfast" (a handler coroutine on the server) and "wsfast-cb"
(an ``on_message`` callback), each on the loop's own transports and, as "wsfast-afn" and
"wsfast-afn-cb", on aiofastnet's compiled transports (``transport="aiofastnet"``), which
picows uses: a last table compares every variant with picows and websockets. picows runs in
three: "picows" (its listener's callback answers), "picows-coro" (a handler coroutine per
connection, fed by the listener) and "picows-ws" (picows' websockets-compatible API,
``picows.websockets``, in server and client). Every client awaits each reply (a future per
reply for "picows" and "picows-coro", ``await recv()`` or aiohttp's ``await receive()`` for
the others). The goals against picows pair like styles: "wsfast" with "picows-coro" and
"picows-ws", "wsfast-cb" with "picows".

For each library, an echo server of that library runs in its own process, and clients of
the same library (in this process) time round trips to it: a client sends a message, waits
for the echo, checks it is byte-identical, and sends the next. Workloads:

- ``64 B x 1``: one client, 64-byte binary messages, sequential round trips;
- ``64 KiB x 1``: one client, 64 KiB binary messages;
- ``64 B x 100``: 100 concurrent clients, each doing sequential 64-byte round trips.

With ``--compression``, permessage-deflate is negotiated (each library's own defaults, in
servers and clients; picows' core API has none) and the workloads are one client echoing
compressible JSON text of 1 KiB and of 64 KiB, and 64 KiB of random (incompressible) bytes.

Libraries are interleaved: every repeat runs each workload for every library (in a rotating
order) before the next repeat, and the best repeat counts. Keepalive pings and compression
are off everywhere; each library's own asyncio API is used (see ``_e2e_peers.py``). By
default the client process is pinned to CPU 0 and the servers to CPU 1 (on a machine with at
least 2 CPUs), so client and server never compete for one core; a single client's round
trip then includes two cross-CPU wake-ups. Every process first frees a 1 MiB block so that
glibc serves asyncio's 256 KiB read buffers from the heap in all of them alike (see
``settle_malloc`` in ``_e2e_peers.py``; ``--fresh-malloc`` skips it).

Besides round trips per second it prints the CPU time per round trip of the client process
and of the server process (from /proc, 10 ms resolution), which does not depend on how the
two processes happen to be scheduled. On a shared machine, a timed run during which other
programs used more than a quarter of a CPU is redone once, and the run ends with how busy
the machine was besides the benchmark (the goals are marked unreliable if it still was).

    python bench/e2e_race.py            # about 2 minutes
    python bench/e2e_race.py --quick    # about 20 s
    python bench/e2e_race.py --uvloop   # the same race with uvloop in every process
    python bench/e2e_race.py --text     # 64-byte messages as text (str) instead
    python bench/e2e_race.py --check    # exit 1 if a stated goal is missed
    python bench/e2e_race.py --compression  # permessage-deflate on, JSON and random data
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers

KiB = 1024


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    clients: int
    count: int  # round trips per client in one timed run
    quick_count: int
    kind: str = "random"  # "random" bytes, or "json" text


WORKLOADS = (
    Workload("64 B x 1", 64, 1, 20_000, 5_000),
    Workload("64 KiB x 1", 64 * KiB, 1, 6_000, 1_500),
    Workload("64 B x 100", 64, 100, 1_000, 250),
)

COMPRESSED_WORKLOADS = (
    Workload("JSON 1 KiB x 1", KiB, 1, 10_000, 2_000, "json"),
    Workload("JSON 64 KiB x 1", 64 * KiB, 1, 1_500, 300, "json"),
    Workload("random 64 KiB x 1", 64 * KiB, 1, 1_500, 300, "random"),
)

# With compression: ahead of every peer that compresses, on every workload.
COMPRESSED_GOALS = {
    (w.name, "wsfast", lib): 1.0
    for w in COMPRESSED_WORKLOADS
    for lib in ("websockets", "aiohttp", "picows-ws")
}

# The project's stated goals: (workload, wsfast variant, other library) -> minimum ratio of
# their round trips per second. Against picows each style meets its own: wsfast's handler
# coroutines ("wsfast") picows with one, hand-made ("picows-coro") or its websockets API
# ("picows-ws"); wsfast's callbacks ("wsfast-cb") picows' listener ("picows"). The stricter
# pairing, wsfast's coroutines against picows' callbacks, is shown after the goals.
GOALS = {
    ("64 B x 1", "wsfast", "picows-coro"): 1.0,
    ("64 B x 100", "wsfast", "picows-coro"): 1.0,
    ("64 B x 1", "wsfast", "picows-ws"): 1.0,
    ("64 B x 100", "wsfast", "picows-ws"): 1.0,
    ("64 B x 1", "wsfast-cb", "picows"): 1.0,
    ("64 B x 100", "wsfast-cb", "picows"): 1.0,
    ("64 B x 1", "wsfast", "websockets"): 2.0,
    ("64 B x 100", "wsfast", "websockets"): 2.0,
}
# Shown with the goals, not counted: (workload, wsfast variant, other library).
ALSO_SHOWN = (
    ("64 B x 1", "wsfast", "picows"),
    ("64 B x 100", "wsfast", "picows"),
)

TIMEOUT = 60.0  # seconds for one timed run (connect, warm up, run, close)


def json_document(size: int, seed: int) -> str:
    """A JSON array of records (an API response, say) of about ``size`` bytes."""
    rnd = random.Random(seed)
    records: list[str] = []
    total = 2
    while total < size:
        record = json.dumps(
            {
                "id": seed * 1_000_000 + len(records),
                "name": f"user-{rnd.randrange(10**6)}",
                "email": f"u{rnd.randrange(10**6)}@example.com",
                "active": rnd.random() < 0.5,
                "score": round(rnd.random() * 100, 2),
                "tags": rnd.sample(["red", "green", "blue", "admin", "beta", "new"], 2),
            }
        )
        records.append(record)
        total += len(record) + 2
    return "[" + ", ".join(records) + "]"


JSON_CYCLE = 64 * KiB  # bytes of JSON messages before the first repeats (see payloads)


def payloads(size: int, text: bool, kind: str = "random") -> list[bytes | str]:
    """Distinct messages of ``size`` bytes, so a stale or misrouted echo is caught: 16, and
    for JSON enough that they repeat no sooner than every 64 KiB, twice deflate's largest
    window (32 KiB), so that a compressor never meets a message it sent before (with 16
    messages of 1 KiB, one with a 32 KiB window would, and it would measure exact repeats)."""
    if kind == "json":
        return [json_document(size, i) for i in range(max(16, JSON_CYCLE // size))]
    if text:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return [
            "".join(alphabet[(i * 7 + j) % len(alphabet)] for j in range(size)) for i in range(16)
        ]
    rnd = random.Random(size)
    return [rnd.randbytes(size) for _ in range(16)]


@dataclass
class Sample:
    rate: float  # round trips per second
    client_us: float  # client process CPU per round trip, microseconds
    server_us: float  # server process CPU per round trip, microseconds


async def timed_run(
    library: str, server: peers.ServerProcess, work: Workload, count: int, text: bool
) -> Sample:
    """``work.clients`` clients doing ``count`` round trips each."""
    msgs = payloads(work.size, text and work.size <= 64, work.kind)
    clients = [peers.CLIENTS[library]() for _ in range(work.clients)]
    for client in clients:
        await client.connect(server.url)
    try:
        warm = max(10, count // 20)
        await asyncio.gather(*(c.run(msgs, warm) for c in clients))
        gc.collect()
        server_cpu = server.cpu_time()
        client_cpu = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(c.run(msgs, count) for c in clients))
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu
        server_cpu = server.cpu_time() - server_cpu
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    total = work.clients * count
    return Sample(total / elapsed, client_cpu / total * 1e6, server_cpu / total * 1e6)


def run_one(
    library: str, server: peers.ServerProcess, work: Workload, count: int, text: bool
) -> Sample:
    async def bounded() -> Sample:
        return await asyncio.wait_for(timed_run(library, server, work, count, text), TIMEOUT)

    return asyncio.run(bounded())


QUIET = 0.25  # CPUs used by other programs during one timed run, above which it is redone
ATTEMPTS = 2
DISTURBED: list[str] = []  # runs still disturbed after their last attempt


def quiet_run(
    library: str,
    server: peers.ServerProcess,
    work: Workload,
    count: int,
    text: bool,
    load: peers.MachineLoad,
    attempts: int = ATTEMPTS,
) -> Sample:
    """run_one, redone (up to ``attempts`` runs in all) while other programs used the CPUs
    during it."""
    for _ in range(attempts):
        probe = peers.MachineLoad()
        probe.pids = load.pids
        probe.start()
        sample = run_one(library, server, work, count, text)
        probe.stop()
        if probe.other_cpus <= QUIET and probe.steal_cpus <= QUIET:
            return sample
        RETRIED.append(f"{library} {work.name}")
    DISTURBED.append(f"{library} {work.name} ({probe.other_cpus:.2f} CPUs busy elsewhere)")
    return sample


RETRIED: list[str] = []


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def print_table(
    title: str,
    results: dict[str, dict[str, float]],  # a missing entry shows as cells[...] or "-"
    libraries: list[str],
    unit: str = "rt/s",
    higher_is_better: bool = True,
    cells: dict[str, dict[str, str]] | None = None,
) -> None:
    others = [lib for lib in libraries if not lib.startswith("wsfast")]  # variants: below
    head = ["workload"] + [f"{lib} {unit}" for lib in libraries]
    if "wsfast" in libraries:
        head += [f"wsfast/{lib}" for lib in others]
    rows = []
    for work, per_lib in results.items():
        shown = (cells or {}).get(work, {})
        row = [work] + [shown.get(lib) or fmt_rate(per_lib.get(lib)) for lib in libraries]
        if "wsfast" in libraries:
            ours = per_lib.get("wsfast")
            for lib in others:
                theirs = per_lib.get(lib)
                if not ours or not theirs:
                    row.append("-")
                else:
                    ratio = ours / theirs if higher_is_better else theirs / ours
                    row.append(f"{ratio:.2f}x")
        rows.append(row)
    print(f"\n{title}")
    peers.print_columns(head, rows)


def print_variants(
    best: dict[str, dict[str, float]],
    cpu: dict[str, dict[str, float]],
    cpu_cells: dict[str, dict[str, str]],
    libraries: list[str],
) -> None:
    """Each wsfast variant against picows and websockets: round trips per second (best
    repeat) and CPU per round trip (client+server, median repeat), as ratios (higher is
    better for wsfast in both)."""
    variants = [lib for lib in libraries if lib.startswith("wsfast")]
    others = [
        lib for lib in ("picows", "picows-coro", "picows-ws", "websockets") if lib in libraries
    ]
    if not variants or not others:
        return
    head = ["workload", "variant", "rt/s", "CPU us"]
    head += [f"rt/s vs {lib}" for lib in others] + [f"CPU vs {lib}" for lib in others]
    rows = []
    for work, per_lib in best.items():
        for lib in variants:
            ours = per_lib.get(lib)
            our_cpu = cpu.get(work, {}).get(lib)
            row = [work, lib, fmt_rate(ours), cpu_cells.get(work, {}).get(lib, "-")]
            for other in others:
                theirs = per_lib.get(other)
                row.append(f"{ours / theirs:.2f}x" if ours and theirs else "-")
            for other in others:
                theirs = cpu.get(work, {}).get(other)
                row.append(f"{theirs / our_cpu:.2f}x" if our_cpu and theirs else "-")
            rows.append(row)
    print(
        "\nEach wsfast variant against picows and websockets (rt/s: best repeat; CPU:"
        " client+server per round trip, median repeat, ratio other's / ours)"
    )
    peers.print_columns(head, rows)


def check_goals(
    goals: dict[tuple[str, str, str], float],
    best: dict[str, dict[str, float]],
    failures: dict[str, str],
) -> tuple[list[str], bool]:
    """One line per goal whose two libraries both have a figure, and whether a goal was
    missed: below its ratio, or its wsfast variant (or "wsfast" itself) failed during the
    run (its figure, if any, is then from the repeats before the failure)."""
    ours_all = {ours for _, ours, _ in goals} | {"wsfast"}
    failed = any(lib in failures for lib in ours_all)
    width = max((len(work) for work, _, _ in goals), default=0)
    lines = []
    for (work, ours, lib), goal in goals.items():
        per = best.get(work, {})
        if ours not in per or lib not in per:
            continue
        ratio = per[ours] / per[lib]
        failed |= ratio < goal  # (a failed variant has set it above)
        verdict = "met" if ratio >= goal else f"MISSED (by {(goal - ratio) / goal:.0%})"
        if ours in failures:
            verdict += f"; {ours} FAILED, see above"
        lines.append(
            f"  {work:<{width}} {ours + '/' + lib:<24} {ratio:5.2f}x  goal >= {goal:g}x: {verdict}"
        )
    return lines, failed


def shown_also(best: dict[str, dict[str, float]]) -> list[str]:
    """The ALSO_SHOWN ratios that have both figures, one line each."""
    width = max(len(work) for work, _, _ in ALSO_SHOWN)
    return [
        f"  {work:<{width}} {ours + '/' + lib:<24} {best[work][ours] / best[work][lib]:5.2f}x"
        for work, ours, lib in ALSO_SHOWN
        if ours in best.get(work, {}) and lib in best.get(work, {})
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, 2 repeats")
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 5; 2 quick)")
    parser.add_argument("--uvloop", action="store_true", help="uvloop in every process")
    parser.add_argument("--text", action="store_true", help="64 B messages as text")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--fresh-malloc",
        action="store_true",
        help="skip settle_malloc() (see _e2e_peers.py); diagnostic: the client process's"
        " malloc state is then shared by the libraries in the order they run",
    )
    parser.add_argument(
        "--libraries", default=",".join(peers.LIBRARIES), help="comma-separated subset"
    )
    parser.add_argument("--workloads", default=None, help="comma-separated subset, e.g. '64 B x 1'")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the counts")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument(
        "--compression", action="store_true", help="permessage-deflate on; JSON and random data"
    )
    args = parser.parse_args(argv)
    peers.set_compression(args.compression)
    goals = COMPRESSED_GOALS if args.compression else GOALS

    repeat = args.repeat or (2 if args.quick else 5)
    wanted = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    libraries, chosen = peers.choose(wanted)
    workloads = [
        w
        for w in (COMPRESSED_WORKLOADS if args.compression else WORKLOADS)
        if args.workloads is None or w.name in [s.strip() for s in args.workloads.split(",")]
    ]
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    peers.raise_nofile_limit()
    if not args.fresh_malloc:
        peers.settle_malloc()
    if args.uvloop:
        peers.install_uvloop()
    if pin:
        os.sched_setaffinity(0, {0})

    print(peers.machine())
    if "wsfast" in libraries:
        import wsfast
        import wsfast.connection

        connection = getattr(wsfast.connection, "implementation", "?")
        print(f"wsfast kernels: {wsfast.implementation}; connection: {connection}")
    print(chosen)
    print(
        f"loop: {'uvloop ' + peers.version('uvloop') if args.uvloop else 'asyncio (default)'}; "
        + (
            "permessage-deflate on (each library's defaults); "
            if args.compression
            else f"64 B messages: {'text' if args.text else 'binary'}; 64 KiB: binary; "
        )
        + f"{'client on CPU 0, servers on CPU 1' if pin else 'not pinned'}; "
        f"best of {repeat}, libraries interleaved; "
        f"malloc: {'fresh' if args.fresh_malloc else 'settled (see settle_malloc)'}",
        flush=True,
    )

    servers: dict[str, peers.ServerProcess] = {}
    results: dict[str, dict[str, list[Sample]]] = {w.name: {} for w in workloads}
    failures: dict[str, str] = {}  # library -> error (it is dropped from the rest of the run)
    load = peers.MachineLoad()
    try:
        for lib in libraries:
            servers[lib] = peers.ServerProcess(
                lib,
                uvloop=args.uvloop,
                cpu=1 if pin else None,
                settle_malloc=not args.fresh_malloc,
                compression=args.compression,
            )
            load.pids.add(servers[lib].pid)
        load.start()
        for r in range(repeat):
            for work in workloads:
                count = max(1, int((work.quick_count if args.quick else work.count) * args.scale))
                shift = r % len(libraries)
                for lib in libraries[shift:] + libraries[:shift]:
                    if lib in failures:
                        continue
                    try:
                        sample = quiet_run(lib, servers[lib], work, count, args.text, load)
                    except Exception as exc:  # reported in the table, the race goes on
                        error = f"{type(exc).__name__}: {exc}".strip(": ")
                        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
                            error += " (see the server's traceback above, if any)"
                        failures[lib] = f"in {work.name!r}: {error}"
                        continue
                    results[work.name].setdefault(lib, []).append(sample)
            print(f"  repeat {r + 1}/{repeat} done", file=sys.stderr, flush=True)
        load.stop()
    finally:
        for server in servers.values():
            server.stop()

    best = {
        w: {lib: max(s.rate for s in v) for lib, v in per.items()} for w, per in results.items()
    }
    median = {
        w: {lib: statistics.median(s.rate for s in v) for lib, v in per.items()}
        for w, per in results.items()
    }
    # CPU per round trip: the median repeat's client + server CPU (10 ms tick resolution).
    cpu: dict[str, dict[str, float]] = {}
    cpu_cells: dict[str, dict[str, str]] = {}
    for w, per in results.items():
        for lib, v in per.items():
            c = statistics.median(s.client_us for s in v)
            sv = statistics.median(s.server_us for s in v)
            cpu.setdefault(w, {})[lib] = c + sv
            cpu_cells.setdefault(w, {})[lib] = f"{c:.0f}+{sv:.0f}"
    failed_cells = {w.name: {lib: "FAILED" for lib in failures} for w in workloads}
    for w, per in failed_cells.items():
        cpu_cells.setdefault(w, {}).update(per)
    print_table(
        "Round trips per second, best repeat (higher is better)",
        best,
        libraries,
        cells=failed_cells,
    )
    print_table("Round trips per second, median repeat", median, libraries, cells=failed_cells)
    print_table(
        "CPU microseconds per round trip, client+server, median repeat (lower is better;"
        " ratios: other's total / wsfast's)",
        cpu,
        libraries,
        unit="us",
        higher_is_better=False,
        cells=cpu_cells,
    )

    print_variants(best, cpu, cpu_cells, libraries)

    print(f"\n{load.report()}")
    if RETRIED:
        print(f"{len(RETRIED)} timed run(s) redone because other programs used the CPUs")
    if DISTURBED:
        print(
            f"{len(DISTURBED)} timed run(s) still disturbed after {ATTEMPTS} tries, e.g. "
            + "; ".join(DISTURBED[:3])
        )
    if failures:
        print("\nFailures (each library that failed was dropped from the rest of the run)")
        for lib, error in failures.items():
            print(f"  {lib}: {error}")
    lines, failed = check_goals(goals, best, failures)
    also = [] if args.compression else shown_also(best)
    if lines:
        runs = sum(len(v) for per in results.values() for v in per.values())
        busy = len(DISTURBED) > 0.2 * max(runs, 1)  # best-of-N absorbs a few
        print("\nGoals" + (" (unreliable: the machine was busy, see above)" if busy else ""))
        print("\n".join(lines))
    if also:
        print("Coroutines against picows' callbacks (not a goal: different styles)")
        print("\n".join(also))
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
