"""End-to-end echo throughput against message size (64 B .. 1 MiB), wsfast and its peers, as a PNG.

    python bench/plot_e2e.py [--out bench/plots/e2e.png] [--repeat 5] [--quick]

One client doing sequential echo round trips (send, wait for the reply, compare) against a
server of the same library, each server in its own process (``bench/_e2e_peers.py``: the
servers, clients and measurement of ``bench/e2e_race.py``, client on CPU 0 and servers on
CPU 1). Every library in ``_e2e_peers``' ``SERVERS`` and ``CLIENTS`` that imports is run,
so a library added there shows up here; ``wsfast-cb`` is wsfast's server with an
``on_message`` callback (against wsfast's client).

Each point is the best of ``--repeat`` repeats; in each repeat every size runs every library
once, in a rotating order, so the curves of one run compare fairly on a noisy machine. A
timed run that other programs disturbed is redone once (as in the race). Writes the PNG
(round trips/s, payload MB/s one way, and each library's ratio to picows), a JSON of the
figures beside it (``e2e.json``), and prints the tables. ``--quick`` (2 repeats, shorter
runs, nothing redone) takes under a minute; the default about 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _e2e_peers as peers
import e2e_race as race
from plot_throughput import SIZES, simd, size_axis

import wsfast
import wsfast.connection
from wsfast.cli import bench as wb

OUT = Path(__file__).resolve().parent / "plots" / "e2e.png"
MAX_SIZE = 2 << 20  # message size limit of servers and clients (defaults stop at 1 MiB)
REFERENCE = "picows"  # the second panel's ratios are to this library


def count_for(lib: str, server: peers.ServerProcess, size: int, seconds: float) -> int:
    """Round trips for a run of about ``seconds``, from a short untimed probe run."""
    probe = race.Workload("probe", size, 1, 20, 20)
    rate = race.run_one(lib, server, probe, max(20, int(0.01 / (50e-6 + size / 1e9))), False).rate
    return max(20, int(seconds * rate))


def libraries() -> list[str]:
    """Every library with a server and a client in _e2e_peers, in its order."""
    names = [lib for lib in peers.LIBRARIES if lib in peers.SERVERS and lib in peers.CLIENTS]
    names += [lib for lib in peers.SERVERS if lib in peers.CLIENTS and lib not in names]
    return names


class _Client:
    """A CLIENTS entry whose ``connect`` always passes the raised message size limit."""

    def __init__(self, cls: type) -> None:
        self._inner = cls()

    async def connect(self, url: str, max_size: int | None = None) -> None:
        await self._inner.connect(url, MAX_SIZE if max_size is None else max_size)

    async def run(self, payloads: list[bytes | str], count: int) -> None:
        await self._inner.run(payloads, count)

    async def close(self) -> None:
        await self._inner.close()


def measure(
    libs: list[str], repeat: int, seconds: float, pin: bool, attempts: int = race.ATTEMPTS
) -> tuple[dict[str, dict[int, list[race.Sample]]], dict[str, str], peers.MachineLoad]:
    """library -> size -> samples (one per repeat); failures: library -> error."""
    # Same calls as the race, with raised size limits (1 MiB is the default limit).
    for lib in libs:
        peers.CLIENTS[lib] = (lambda cls: lambda: _Client(cls))(peers.CLIENTS[lib])
    servers: dict[str, peers.ServerProcess] = {}
    samples: dict[str, dict[int, list[race.Sample]]] = {lib: {} for lib in libs}
    failures: dict[str, str] = {}
    load = peers.MachineLoad()
    counts: dict[int, int] = {}
    try:
        for lib in libs:
            servers[lib] = peers.ServerProcess(
                lib, max_size=MAX_SIZE, cpu=1 if pin else None, settle_malloc=True
            )
            load.pids.add(servers[lib].pid)
        load.start()
        for r in range(repeat):
            for size in SIZES:
                if size not in counts:  # the same count for every library and repeat
                    counts[size] = count_for(libs[0], servers[libs[0]], size, seconds)
                count = counts[size]
                work = race.Workload(wb.size_label(size), size, 1, count, count)
                shift = (r + SIZES.index(size)) % len(libs)
                for lib in libs[shift:] + libs[:shift]:
                    if lib in failures:
                        continue
                    try:
                        sample = race.quiet_run(
                            lib, servers[lib], work, count, False, load, attempts
                        )
                    except Exception as exc:  # shown in the table; the others go on
                        failures[lib] = f"at {work.name}: {type(exc).__name__}: {exc}"
                        continue
                    samples[lib].setdefault(size, []).append(sample)
            print(f"  repeat {r + 1}/{repeat} done", file=sys.stderr, flush=True)
        load.stop()
    finally:
        for server in servers.values():
            server.stop()
    return samples, failures, load


def best_rates(samples: dict[str, dict[int, list[race.Sample]]]) -> dict[str, list[float | None]]:
    """library -> best round trips per second at each size (None where it failed)."""
    return {
        lib: [max((s.rate for s in per.get(n, [])), default=None) for n in SIZES]
        for lib, per in samples.items()
    }


def print_tables(rates: dict[str, list[float | None]], libs: list[str]) -> None:
    def cell(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    head = ["size"] + [f"{lib} rt/s" for lib in libs]
    rows = [[wb.size_label(n)] + [cell(rates[lib][i], ",.0f") for lib in libs] for i, n in
            enumerate(SIZES)]  # fmt: skip
    print("\nRound trips per second, one client, best repeat (higher is better)")
    peers.print_columns(head, rows)
    head = ["size"] + [f"{lib} MB/s" for lib in libs]
    rows = [
        [wb.size_label(n)] + [cell(None if r is None else r * n / 1e6, ",.1f")
                               for r in (rates[lib][i] for lib in libs)]
        for i, n in enumerate(SIZES)
    ]  # fmt: skip
    print("\nPayload MB/s, one way (size x round trips per second)")
    peers.print_columns(head, rows)
    ours = [lib for lib in libs if lib.startswith("wsfast")]
    others = [lib for lib in libs if not lib.startswith("wsfast")]
    pairs = [(a, b) for a in ours for b in others]
    if not pairs:
        return
    head = ["size"] + [f"{a}/{b}" for a, b in pairs]
    rows = []
    for i, n in enumerate(SIZES):
        row = [wb.size_label(n)]
        for a, b in pairs:
            x, y = rates[a][i], rates[b][i]
            row.append("-" if not x or not y else f"{x / y:.2f}x")
        rows.append(row)
    print("\nSame-run ratios, best repeat")
    peers.print_columns(head, rows)


def plot(rates: dict[str, list[float | None]], out: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if REFERENCE in rates else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), dpi=90)
    rts, mbs, ratio = axes[0], axes[1], axes[-1]
    ref = rates.get(REFERENCE)
    for i, (lib, values) in enumerate(rates.items()):
        kw = {"label": lib, "markersize": 4, "color": f"C{i}"}  # one colour per library
        style = "-o" if lib.startswith("wsfast") else "--."
        pts = [(n, r) for n, r in zip(SIZES, values, strict=True) if r is not None]
        rts.plot([n for n, _ in pts], [r for _, r in pts], style, **kw)
        mbs.plot([n for n, _ in pts], [r * n / 1e6 for n, r in pts], style, **kw)
        if panels == 3 and ref is not None and lib != REFERENCE:
            pts = [(n, r / q) for n, r, q in zip(SIZES, values, ref, strict=True) if r and q]
            ratio.plot([n for n, _ in pts], [x for _, x in pts], style, **kw)
    rts.set_yscale("log")
    rts.set_title("round trips per second", fontsize=9)
    rts.set_ylabel("round trips/s (best of repeats)", fontsize=8)
    mbs.set_yscale("log")
    mbs.set_title("payload throughput", fontsize=9)
    mbs.set_ylabel("MB/s, one way (size x round trips/s)", fontsize=8)
    if panels == 3:
        ratio.axhline(1.0, color="grey", linewidth=0.8)
        ratio.set_title(f"ratio to {REFERENCE} (higher is better)", fontsize=9)
        ratio.set_ylabel(f"round trips/s over {REFERENCE}'s", fontsize=8)
    for ax in axes:
        size_axis(ax)
    title = f"wsfast {wsfast.__version__} end to end, one client echoing ({subtitle}), one run"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 5; 2 quick)")
    parser.add_argument("--quick", action="store_true", help="2 repeats of ~0.07 s runs")
    parser.add_argument("--seconds", type=float, default=None, help="length of one timed run")
    parser.add_argument("--libraries", default=None, help="comma-separated subset")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    seconds = args.seconds or (0.07 if args.quick else 0.25)
    attempts = 1 if args.quick else race.ATTEMPTS  # quick: a look, not figures to quote
    wanted = libraries()
    if args.libraries:
        wanted = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    libs, chosen = peers.choose(wanted)
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    peers.raise_nofile_limit()
    peers.settle_malloc()
    if pin:
        os.sched_setaffinity(0, {0})

    machine = peers.machine()
    kernels = f"{wsfast.implementation} kernels, {simd()}"
    print(machine)
    print(f"wsfast: {kernels}; connection: {getattr(wsfast.connection, 'implementation', '?')}")
    print(chosen)
    print(
        f"binary messages, one client; best of {repeat}, libraries interleaved; "
        f"~{seconds:g} s per timed run; "
        f"{'client on CPU 0, servers on CPU 1' if pin else 'not pinned'}",
        flush=True,
    )
    samples, failures, load = measure(libs, repeat, seconds, pin, attempts)
    rates = best_rates(samples)
    print_tables(rates, libs)
    print(f"\n{load.report()}")
    if race.RETRIED and attempts > 1:
        print(f"{len(race.RETRIED)} timed run(s) redone because other programs used the CPUs")
    if race.DISTURBED:
        print(f"{len(race.DISTURBED)} still disturbed, e.g. " + "; ".join(race.DISTURBED[:3]))
    for lib, error in failures.items():
        print(f"FAILED {lib} {error}")

    figures = {
        "machine": machine,
        "wsfast": kernels,
        "versions": {lib: peers.version(lib.split("-")[0]) for lib in libs},
        "repeat": repeat,
        "sizes": SIZES,
        "round_trips_per_s": {
            lib: [None if r is None else round(r, 1) for r in v] for lib, v in rates.items()
        },
        "mb_per_s": {
            lib: [
                None if r is None else round(r * n / 1e6, 2) for n, r in zip(SIZES, v, strict=True)
            ]
            for lib, v in rates.items()
        },
        "cpu_us_per_round_trip": {  # client, server; median repeat
            lib: [_cpu(per.get(n, [])) for n in SIZES] for lib, per in samples.items()
        },
        "other_cpus": round(load.other_cpus, 3),
        "failures": failures,
    }
    data = args.out.with_suffix(".json")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {data}")
    plot(rates, args.out, kernels)
    return 1 if failures else 0


def _cpu(samples: list[race.Sample]) -> list[float] | None:
    if not samples:
        return None
    mid = sorted(samples, key=lambda s: s.client_us + s.server_us)[len(samples) // 2]
    return [round(mid.client_us, 1), round(mid.server_us, 1)]


if __name__ == "__main__":
    raise SystemExit(main())
