"""Where the microseconds of one small echo round trip go, per process, with Linux ``perf``.

    python bench/profile_roundtrip.py [--libraries wsfast,wsfast-cb,picows] [--seconds 2]
                                      [--repeat 2] [--size 64] [--top 12] [--cprofile]
                                      [--clients 1] [--epoll] [--json FILE]

For each library, its echo server (``bench/_e2e_peers.py``, on CPU 1) and its client (a
child process of this script, on CPU 0) do three runs of sequential round trips of
``--size`` bytes (binary), about ``--seconds`` each, each watched by ``perf`` (attached
just before the first round trip, stopped just after the last):

- ``perf stat`` counts each process's CPU time (task-clock);
- ``perf record`` samples both processes (cpu-clock, with kernel call chains), and each
  sample is put in a category by the code it landed in: the kernel, split by the system
  call it ran under (send, receive, epoll, other) or none (interrupts, page faults,
  scheduling); the interpreter (libpython: bytecode, and asyncio's Python code); CPython's
  C modules (``_asyncio``, ``_socket``, ``select``); wsfast's compiled modules, one each
  (``_connection_c``, ``_frames``, ``_mask``, ``_utf8``, and any other ``wsfast`` .so);
  picows' (and aiofastnet's) compiled modules; libc (malloc, memcpy); anything else;
- ``perf stat`` counts each process's system calls, one tracepoint per call
  (``syscalls:sys_enter_*``; it slows them down, hence a run of its own).

The table gives each category's share of the second run's samples times the process's CPU
time per round trip in the first run, in microseconds, then each process's hottest
symbols. Python 3.11 has no perf trampolines, so the interpreter's time is one lump:
``--cprofile`` runs each pair once more under cProfile (much slower, so only its call counts
and relative times mean something) and prints the Python functions (and C functions called
from Python) with their calls per round trip and their share of the profiled CPU time (self
time, the profiler's own cost included). By default every library in ``_e2e_peers`` whose
name starts with ``wsfast`` is profiled, and picows in its three styles for comparison
("picows", callbacks; "picows-coro", a handler coroutine; "picows-ws", its websockets API).
Needs ``perf`` (linux-perf) and root, or ``kernel.perf_event_paranoid`` <= 1. About 15 s per
library and repeat (the libraries take turns; the run of least CPU per round trip is
shown), and 10 s more each with ``--cprofile``.

``--clients N`` runs N connections in the client process, each doing sequential round
trips at the same time (``asyncio.gather``, as the ``64 B x 100`` workload of
``e2e_race.py``); every figure stays per round trip, of all connections together. With N > 1
both processes first settle malloc as ``e2e_race.py`` does (``settle_malloc`` in
``_e2e_peers.py``). ``--epoll`` also records, during the system-call run, each
``epoll_wait``'s result: the events it returned, on average, per process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers

HERE = os.path.abspath(__file__)
FREQ = 4000  # perf samples per second of CPU time

# A kernel sample is put under the system call in its call chain, grouped like this.
SYSCALL_GROUPS = {
    "send": ("sendto", "sendmsg", "write", "writev"),
    "receive": ("recvfrom", "recvmsg", "read", "readv"),
    "epoll": ("epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"),
}
CATEGORY_ORDER = [
    "kernel: send (with loopback delivery)",
    "kernel: receive",
    "kernel: epoll",
    "kernel: other syscalls",
    "kernel: no syscall (irq, fault, scheduler)",
    "libpython (interpreter, asyncio in Python)",
    "CPython C modules (_asyncio, _socket, select)",
    "libc (malloc, memcpy, ...)",
]


# --- the client, in its own process ---------------------------------------------------------


def client_main(
    library: str, url: str, size: int, seconds: float, profile: str | None, clients: int = 1
) -> None:
    """Connect ``clients`` connections, warm up, print ``READY count``; on each ``go`` do
    ``count`` round trips (``count / clients`` on each connection at once) and print
    ``DONE elapsed``; on ``close`` (or end of input) close and exit."""
    os.sched_setaffinity(0, {0})
    import random

    if clients > 1:
        peers.raise_nofile_limit()
        peers.settle_malloc()
    payloads = [random.Random(i).randbytes(size) for i in range(16)]

    async def main() -> None:
        conns = [peers.CLIENTS[library]() for _ in range(clients)]
        for conn in conns:
            await conn.connect(url)

        async def run(total: int) -> None:  # total round trips, spread over the connections
            each = max(1, total // clients)
            await asyncio.gather(*(conn.run(payloads, each) for conn in conns))

        first = 500 if clients == 1 else 50 * clients
        start = time.perf_counter()
        await run(first)
        rate = first / (time.perf_counter() - start)
        await run(int(rate * 0.3))  # warm, as long as a short run
        count = max(100 * clients, int(seconds * rate)) // clients * clients
        print(f"READY {count}", flush=True)
        # The loop blocks in readline: nothing else is pending between runs.
        while sys.stdin.readline().strip() == "go":
            profiler = None
            if profile:
                import cProfile

                profiler = cProfile.Profile(time.process_time)  # CPU: not the blocked poll
                profiler.enable()
            start = time.perf_counter()
            await run(count)
            elapsed = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            print(f"DONE {elapsed}", flush=True)
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)

    asyncio.run(main())


# --- a server under cProfile (--cprofile) -----------------------------------------------------


def server_main(library: str, profile: str, settle: bool = False) -> None:
    """_e2e_peers' server of ``library``, with ``pstart``/``pstop`` commands that start and
    stop cProfile (the stats go to ``profile``)."""
    import cProfile

    if settle:
        peers.raise_nofile_limit()
        peers.settle_malloc()
    os.sched_setaffinity(0, {1})
    profiler = cProfile.Profile(time.process_time)

    def start() -> str:
        profiler.enable()
        return "ok"

    def stop() -> str:
        profiler.disable()
        profiler.dump_stats(profile)
        return "ok"

    async def main() -> None:
        server = await peers.SERVERS[library](0, None)
        await peers.run_commands(peers._bound_port(server), {"pstart": start, "pstop": stop})

    asyncio.run(main())


# --- one measured pair --------------------------------------------------------------------------


@dataclass
class Process:
    role: str  # "server" or "client"
    pid: int
    cpu_ms: float = 0.0  # task-clock during the measured window
    syscalls: Counter[str] = field(default_factory=Counter)
    samples: Counter[str] = field(default_factory=Counter)  # category -> samples
    symbols: Counter[tuple[str, str]] = field(default_factory=Counter)  # (symbol, dso)
    epoll_waits: int = 0  # --epoll: epoll_wait calls recorded, and the events they returned
    epoll_events: int = 0


@dataclass
class Pair:
    library: str
    count: int = 0
    elapsed: float = 0.0  # the perf stat run
    sampled_elapsed: float = 0.0  # the perf record run
    other_cpus: float = 0.0  # CPUs used by other programs during the measured run
    processes: list[Process] = field(default_factory=list)

    def cpu_us(self) -> float:
        """CPU microseconds per round trip, both processes."""
        return sum(p.cpu_ms for p in self.processes) * 1e3 / max(self.count, 1)


@contextlib.contextmanager
def client_process(
    library: str, url: str, args: argparse.Namespace, profile: str | None
) -> Iterator[subprocess.Popen[str]]:
    """The client (client_main) in a child process; killed on the way out if still running."""
    cmd = [sys.executable, HERE, "--client", library, url, "--size", str(args.size)]
    cmd += ["--seconds", str(args.seconds)] + (["--profile-out", profile] if profile else [])
    cmd += ["--clients", str(args.clients)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(prefix):
        raise RuntimeError(f"client: expected {prefix!r}, got {line!r}")
    return line[len(prefix) :].strip()


def _send(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()


def timed_window(
    client: subprocess.Popen[str], commands: list[list[str]], settle: float = 0.5
) -> tuple[float, float]:
    """One run of the client's round trips while the ``commands`` (perf) run; returns the
    run's seconds and how many CPUs other programs used meanwhile."""
    errors = [tempfile.TemporaryFile("w+") for _ in commands]
    perf = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=e)
        for c, e in zip(commands, errors, strict=True)
    ]
    try:
        time.sleep(settle)  # until perf is attached
        for p, e in zip(perf, errors, strict=True):
            if p.poll() is not None:  # it could not attach (permissions, unknown event)
                e.seek(0)
                raise RuntimeError(
                    f"{' '.join(p.args)} exited with status {p.returncode}: "
                    f"{e.read().strip() or 'no message'} (perf needs root or "
                    "kernel.perf_event_paranoid <= 1)"
                )
        load = peers.MachineLoad()
        load.pids.update([client.pid, *(p.pid for p in perf)])
        load.start()
        _send(client, "go")
        elapsed = float(_line(client, "DONE"))
        load.stop()
    finally:
        for p in perf:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in perf:
            p.wait(60)
        for e in errors:
            e.close()
    return elapsed, load.other_cpus


def measure(library: str, args: argparse.Namespace, tmp: str) -> Pair:
    """Three runs: CPU time (perf stat task-clock), where it goes (perf record), system calls
    (perf stat on every syscall tracepoint: it slows the processes down about 3x here, so
    the CPU time comes from the first run)."""
    pair = Pair(library)
    with peers.ServerProcess(library, cpu=1, settle_malloc=args.clients > 1) as server:
        with client_process(library, server.url, args, None) as client:
            pair.count = int(_line(client, "READY"))
            pids = {"server": server.pid, "client": client.pid}

            def stat(
                what: str, event: str, settle: float, more: list[list[str]] | None = None
            ) -> tuple[dict[str, str], float, float]:
                paths = {role: os.path.join(tmp, f"{library}-{role}.{what}") for role in pids}
                commands = [
                    ["perf", "stat", "-x", ",", "-o", paths[role], "-p", str(pid), "-e", event]
                    for role, pid in pids.items()
                ]
                return (paths, *timed_window(client, commands + (more or []), settle))

            cpu, pair.elapsed, pair.other_cpus = stat("cpu", "task-clock", 0.5)
            data = os.path.join(tmp, f"{library}.data")
            pair.sampled_elapsed, _ = timed_window(
                client,
                [["perf", "record", "-q", "-e", "cpu-clock", "-F", str(FREQ), "-g",
                  "-o", data, "-p", f"{server.pid},{client.pid}"]],
            )  # fmt: skip
            # perf attaches several hundred tracepoints: give it time.
            epoll = os.path.join(tmp, f"{library}.epoll")
            more = [
                ["perf", "record", "-q", "-c", "1", "-e", "syscalls:sys_exit_epoll_wait",
                 "-e", "syscalls:sys_exit_epoll_pwait", "-o", epoll,
                 "-p", f"{server.pid},{client.pid}"]
            ] if args.epoll else None  # fmt: skip
            calls, _, _ = stat("calls", "syscalls:sys_enter_*", 1.5, more)
            _send(client, "close")
            client.wait(10)
    for role, pid in pids.items():
        proc = Process(role, pid)
        read_stat(cpu[role], proc)
        read_stat(calls[role], proc)
        pair.processes.append(proc)
    read_samples(data, pair.processes)
    if args.epoll:
        read_epoll(epoll, pair.processes)
    return pair


EPOLL_EXIT = re.compile(r"^\s*(\d+)\s+syscalls:sys_exit_epoll_p?wait:\s+(0x[0-9a-f]+|-?\d+)")


def read_epoll(data: str, processes: list[Process]) -> None:
    """Add the recorded epoll_wait exits (``--epoll``) to their processes."""
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "pid,event,trace"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_pid = {p.pid: p for p in processes}
    for line in out.splitlines():
        m = EPOLL_EXIT.match(line)
        proc = by_pid.get(int(m.group(1))) if m else None
        if m is None or proc is None:
            continue
        ret = int(m.group(2), 0)
        proc.epoll_waits += 1
        proc.epoll_events += max(ret, 0)


def read_stat(path: str, proc: Process) -> None:
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or not parts[0] or parts[0].startswith("<"):
                continue
            try:
                value = float(parts[0])
            except ValueError:
                continue
            event = parts[2]
            if event == "task-clock":
                proc.cpu_ms = value
            elif event.startswith("syscalls:sys_enter_") and value:
                proc.syscalls[event.removeprefix("syscalls:sys_enter_")] += int(value)


SYSCALL_FRAME = re.compile(r"^(?:__x64_sys|__ia32_sys|__se_sys|__do_sys|ksys)_(\w+)$")


def category(chain: list[tuple[str, str]]) -> str:
    """The category of one sample from its call chain, leaf first: (symbol, dso)."""
    sym, dso = chain[0]
    base = os.path.basename(dso)
    if dso.startswith("[kernel"):
        for s, d in chain:
            m = SYSCALL_FRAME.match(s)
            if m and d.startswith("[kernel"):
                name = m.group(1)
                for group, names in SYSCALL_GROUPS.items():
                    if name in names:
                        return next(c for c in CATEGORY_ORDER if c.startswith(f"kernel: {group}"))
                return "kernel: other syscalls"
        return "kernel: no syscall (irq, fault, scheduler)"
    if base.startswith("libpython") or re.fullmatch(r"python3(\.\d+)?", base):
        return CATEGORY_ORDER[5]
    if base.split(".")[0] in ("_asyncio", "_socket", "select", "_selectors"):
        return CATEGORY_ORDER[6]
    if base.startswith("libc.") or base.startswith("libc-"):
        return CATEGORY_ORDER[7]
    if "/wsfast/" in dso or base.startswith("_connection_c"):
        return f"wsfast compiled: {base.split('.')[0]}"
    if "picows" in dso or "aiofastnet" in dso:
        return f"picows compiled: {base.split('.')[0]}"
    if base in ("[unknown]", ""):
        return "unknown"
    return f"other: {base.split('.')[0]}"


FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def read_samples(data: str, processes: list[Process]) -> None:
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "pid,ip,sym,dso", "--no-demangle"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    count_samples(out, processes)


def count_samples(script: str, processes: list[Process]) -> None:
    """Add ``perf script -F pid,ip,sym,dso`` samples (with call chains) to their processes."""
    by_pid = {p.pid: p for p in processes}
    for block in script.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if not lines:
            continue
        try:
            pid = int(lines[0].split()[0])
        except (ValueError, IndexError):
            continue
        proc = by_pid.get(pid)
        chain = []
        for line in lines[1:] if len(lines) > 1 else lines[:1]:
            m = FRAME.match(line)
            if m:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
                chain.append((sym, m.group(2)))
        if proc is None or not chain:
            continue
        proc.samples[category(chain)] += 1
        proc.symbols[chain[0]] += 1


# --- cProfile pass -----------------------------------------------------------------------------


def cprofile_pair(library: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """Both processes under cProfile: role -> (round trips, pstats.Stats)."""
    import pstats

    server_out = os.path.join(tmp, f"{library}-server.prof")
    client_out = os.path.join(tmp, f"{library}-client.prof")
    command = [HERE, "--serve", library, "--profile-out", server_out]
    with peers.ServerProcess(library, command=command, settle_malloc=args.clients > 1) as server:
        with client_process(library, server.url, args, client_out) as client:
            count = int(_line(client, "READY"))
            server.command("pstart")
            _send(client, "go")
            _line(client, "DONE")
            server.command("pstop")
            _send(client, "close")
            client.wait(10)
    return {
        "server": (count, pstats.Stats(server_out)),
        "client": (count, pstats.Stats(client_out)),
    }


def print_cprofile(library: str, role: str, count: int, stats: Any, top: int) -> None:
    rows = []
    total = stats.total_tt or 1e-9
    for (path, line, name), (_, ncalls, tottime, _, _) in stats.stats.items():
        where = "" if path == "~" else f"{os.path.basename(path)}:{line} "
        rows.append((tottime, ncalls, f"{where}{name}"))
    rows = [r for r in rows if r[1] >= count / 100]  # not the commands' own calls
    rows.sort(reverse=True)
    calls = sum(n for _, n, _ in rows) / count
    print(
        f"\n{library} {role}, cProfile: {calls:.1f} calls per round trip in all; the top ones,"
        " with their share of the process's profiled CPU time (self)"
    )
    peers.print_columns(
        ["function", "calls/rt", "share"],
        [[f[:90], f"{n / count:.2f}", f"{t / total:.1%}"] for t, n, f in rows[:top]],
    )


# --- report ---------------------------------------------------------------------------------


def print_pair(pair: Pair, top: int) -> dict[str, Any]:
    rt_us = pair.elapsed / pair.count * 1e6
    print(
        f"\n== {pair.library}: {pair.count:,} round trips of the same size, "
        f"{pair.count / pair.elapsed:,.0f} rt/s ({rt_us:.1f} us each, wall clock; "
        f"{pair.count / pair.sampled_elapsed:,.0f} rt/s in the sampled run); "
        f"other programs used {pair.other_cpus:.2f} CPUs meanwhile"
    )
    cats = list(CATEGORY_ORDER)
    extra = sorted({c for p in pair.processes for c in p.samples if c not in CATEGORY_ORDER})
    cats += extra
    head = ["us per round trip"] + [f"{p.role} (pid {p.pid})" for p in pair.processes]
    rows = []
    figures: dict[str, Any] = {"rt_per_s": pair.count / pair.elapsed, "processes": {}}
    for p in pair.processes:
        figures["processes"][p.role] = {
            "cpu_us_per_rt": p.cpu_ms * 1e3 / pair.count,
            "samples": sum(p.samples.values()),
            "us_per_rt": {},
            "syscalls_per_rt": {k: v / pair.count for k, v in p.syscalls.most_common()},
        }

    def us(p: Process, c: str) -> float:
        n = sum(p.samples.values()) or 1
        return p.samples.get(c, 0) / n * p.cpu_ms * 1e3 / pair.count

    for c in cats:
        if not any(p.samples.get(c) for p in pair.processes):
            continue
        rows.append([c] + [f"{us(p, c):.2f}" for p in pair.processes])
        for p in pair.processes:
            figures["processes"][p.role]["us_per_rt"][c] = round(us(p, c), 3)
    rows.append(["total CPU (task-clock)"] + [f"{p.cpu_ms * 1e3 / pair.count:.2f}" for p in
                                               pair.processes])  # fmt: skip
    rows.append(["perf samples"] + [f"{sum(p.samples.values()):,}" for p in pair.processes])
    peers.print_columns(head, rows)

    print("\nsystem calls per round trip")
    names = sorted(  # the calls made at least once per 100 round trips
        {k for p in pair.processes for k, v in p.syscalls.items() if v >= pair.count / 100},
        key=lambda k: -sum(p.syscalls[k] for p in pair.processes),
    )
    rows = [[k] + [f"{p.syscalls[k] / pair.count:.2f}" for p in pair.processes] for k in names]
    rows.append(["all"] + [f"{sum(p.syscalls.values()) / pair.count:.2f}" for p in
                           pair.processes])  # fmt: skip
    peers.print_columns(["syscall"] + [p.role for p in pair.processes], rows)
    for p in pair.processes:
        if p.epoll_waits:
            print(
                f"{p.role}: {p.epoll_waits:,} epoll_wait calls recorded (syscall run), "
                f"{p.epoll_events / p.epoll_waits:.2f} events per call"
            )
            figures["processes"][p.role]["events_per_epoll_wait"] = p.epoll_events / p.epoll_waits

    for p in pair.processes:
        n = sum(p.samples.values()) or 1
        print(f"\n{pair.library} {p.role}: hottest symbols (self time)")
        peers.print_columns(
            ["symbol", "where", "us/rt", "share"],
            [
                [sym[:70], os.path.basename(dso)[:40], f"{c / n * p.cpu_ms * 1e3 / pair.count:.2f}",
                 f"{c / n:.1%}"]
                for (sym, dso), c in p.symbols.most_common(top)
            ],
        )  # fmt: skip
    return figures


SUMMARY = {  # summary column -> categories (by prefix)
    "kernel": ("kernel:",),
    "interpreter": ("libpython",),
    "C modules+libc": ("CPython C modules", "libc"),
    "compiled": ("wsfast compiled", "picows compiled"),
    "other": ("other:", "unknown"),
}


def print_summary(figures: dict[str, Any]) -> None:
    """One line per process of every library: us per round trip by kind, system calls."""
    head = ["process", "rt/s", *SUMMARY, "CPU us/rt", "syscalls/rt"]
    rows = []
    for lib, fig in figures.items():
        for role, proc in fig["processes"].items():
            us = proc["us_per_rt"]
            row = [f"{lib} {role}", f"{fig['rt_per_s']:,.0f}"]
            for prefixes in SUMMARY.values():
                row.append(f"{sum(v for c, v in us.items() if c.startswith(prefixes)):.2f}")
            row.append(f"{proc['cpu_us_per_rt']:.2f}")
            row.append(f"{sum(proc['syscalls_per_rt'].values()):.2f}")
            rows.append(row)
    print("\nSummary: CPU microseconds per round trip by kind (perf samples x task-clock)")
    peers.print_columns(head, rows)


def default_libraries() -> list[str]:
    names = [lib for lib in peers.SERVERS if lib in peers.CLIENTS]
    picows = ["picows", "picows-coro", "picows-ws"]
    return [lib for lib in names if lib.startswith("wsfast")] + picows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--libraries", default=None, help="comma-separated (default: see above)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a measured run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="measure each library this many times, libraries"
        " interleaved, and keep its run of least CPU per round trip",
    )
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--top", type=int, default=12, help="symbols shown per process")
    parser.add_argument("--cprofile", action="store_true", help="also a cProfile pass")
    parser.add_argument(
        "--clients", type=int, default=1, help="connections in the client process, all at once"
    )
    parser.add_argument(
        "--epoll", action="store_true", help="also the events each epoll_wait returns"
    )
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--client", nargs=2, metavar=("LIBRARY", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="LIBRARY", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settle-malloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    if args.client:
        client_main(
            args.client[0], args.client[1], args.size, args.seconds, args.profile_out,
            args.clients,
        )  # fmt: skip
        return 0
    if args.serve:
        server_main(args.serve, args.profile_out, args.settle_malloc)
        return 0

    if shutil.which("perf") is None:
        print("perf not found (apt-get install linux-perf)", file=sys.stderr)
        return 2
    wanted = args.libraries.split(",") if args.libraries else default_libraries()
    libs = [lib.strip() for lib in wanted if lib.strip() and peers.available(lib.strip())]
    print(peers.machine())
    import wsfast
    import wsfast.connection

    print(
        f"wsfast {wsfast.__version__}: {wsfast.implementation} kernels; connection: "
        f"{getattr(wsfast.connection, 'implementation', '?')}; libraries: {', '.join(libs)}"
    )
    clients = "one client" if args.clients == 1 else f"{args.clients} clients in one process"
    print(
        f"{args.size} B binary echo, {clients} (CPU 0) and its library's server (CPU 1); "
        f"perf cpu-clock at {FREQ} Hz; us = share of samples x task-clock / round trips"
    )
    figures: dict[str, Any] = {"size": args.size, "clients": args.clients, "libraries": {}}
    with tempfile.TemporaryDirectory(prefix="wsfast-profile-") as tmp:
        best: dict[str, Pair] = {}
        for r in range(args.repeat):
            for lib in libs:
                pair = measure(lib, args, tmp)
                if lib not in best or pair.cpu_us() < best[lib].cpu_us():
                    best[lib] = pair
            print(f"  repeat {r + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        for lib in libs:
            figures["libraries"][lib] = print_pair(best[lib], args.top)
        print_summary(figures["libraries"])
        if args.cprofile:
            for lib in libs:
                for role, (count, stats) in cprofile_pair(lib, args, tmp).items():
                    print_cprofile(lib, role, count, stats, args.top + 8)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
