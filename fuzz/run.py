"""Runs every harness for a bounded time and prints what each did; fails on any finding.

    python fuzz/run.py [--time SECONDS] [--work DIR] [--native] [NAME...]

Each run starts from the checked-in seeds (``fuzz/corpus/NAME``) plus what earlier runs with
the same ``--work`` directory found (``WORK/corpus/NAME``, where new inputs are written); a
crash or a failed check leaves its input in ``WORK/artifacts`` and fails the command. The
``utf8`` and ``mask`` harnesses run once per SIMD path this CPU has (``WSFAST_ISA``).
Default times add up to two minutes; ``--time S`` gives every run S seconds.

``--native`` first builds the extensions with clang and ``WSFAST_SANITIZE=fuzzer-no-link``
into ``WORK/native`` so that libFuzzer sees the branches of the compiled code too (without
it, only the Python code under test guides the search: the pure twins, the handshake, the
Python connection). Either way the harnesses check the compiled build against its twin.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
# (harness, SIMD path or None for the default, seconds): two minutes in all (8 s more where
# the CPU has AVX-512), CI's share of a 2-core machine; each run also spends a few seconds
# importing and replaying its seeds. A path this CPU lacks is left out (available_isas).
DEFAULT_RUNS = [
    ("frames", None, 25),
    ("connection", None, 25),
    ("handshake", None, 15),
    ("utf8", "avx2", 15),
    ("utf8", "sse2", 8),
    ("utf8", "scalar", 8),
    ("mask", "avx512", 8),
    ("mask", "avx2", 10),
    ("mask", "sse2", 7),
    ("mask", "scalar", 7),
]
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_DONE = re.compile(r"#\d+\s+DONE\s+cov: (\d+) ft: (\d+)")


# Every level WSFAST_ISA names, narrowest first.
_LEVELS = ["scalar", "sse2", "neon", "avx2", "avx512"]


def simd_path(isa: str) -> str:
    """The path the kernels take in a fresh process with WSFAST_ISA=isa ("": unset)."""
    return subprocess.run(
        [sys.executable, "-c", "import wsfast._mask as m; print(m.simd_path())"],
        capture_output=True, text=True, check=True, env={**os.environ, "WSFAST_ISA": isa},
    ).stdout.strip()  # fmt: skip


def available_isas() -> list[str]:
    """The SIMD paths the kernels take here when WSFAST_ISA asks for them, narrowest first:
    every level up to the default, and AVX-512 where the CPU has it without taking it by
    default (a level the CPU lacks reports another name)."""
    return [isa for isa in _LEVELS if simd_path(isa) == isa]


def find_clang() -> str | None:
    for name in ("clang", *(f"clang-{v}" for v in range(22, 13, -1))):
        if shutil.which(name):
            return name
    return None


def build_native(work: Path) -> Path:
    """The extensions built with clang and coverage instrumentation; returns the src dir."""
    clang = find_clang()
    if clang is None:
        raise SystemExit("--native needs clang (Debian: apt-get install clang)")
    target = work / "native"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    shutil.copytree(ROOT / "src", target / "src",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))  # fmt: skip
    env = {**os.environ, "CC": clang, "LDSHARED": f"{clang} -shared",
           "WSFAST_SANITIZE": "fuzzer-no-link", "WSFAST_BUILD_EXTENSIONS": "1"}  # fmt: skip
    started = time.monotonic()
    command = [sys.executable, "setup.py", "-q", "build_ext", "--inplace"]
    log = target / "build.log"
    with log.open("w") as out:
        subprocess.run(command, cwd=target, env=env, check=True, stdout=out, stderr=out)
    print(f"native build with {clang}: {time.monotonic() - started:.0f} s", flush=True)
    return target / "src"


def run_one(name: str, isa: str | None, seconds: int, work: Path, native: Path | None,
            max_len: int) -> dict[str, object]:  # fmt: skip
    corpus = work / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts = work / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WSFAST_ISA": isa or ""}
    env.pop("WSFAST_FUZZ_REPLAY", None)
    if native is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(native), env.get("PYTHONPATH", "")])
        env["WSFAST_FUZZ_NATIVE"] = "1"
    label = f"{name}[{isa}]" if isa else name
    command = [
        sys.executable, str(FUZZ / f"{name}.py"),
        f"-max_total_time={seconds}", f"-max_len={max_len}", "-print_final_stats=1",
        "-timeout=60", "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts}/{label}-", str(corpus), str(FUZZ / "corpus" / name),
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    log = done.stdout + done.stderr
    (work / f"{label}.log").write_text(log)
    stats = {key: int(value) for key, value in _STAT.findall(log)}
    cov = _DONE.findall(log)
    return {
        "label": label,
        "ok": done.returncode == 0,
        "execs": stats.get("number_of_executed_units", 0),
        "per_sec": stats.get("average_exec_per_sec", 0),
        "new": stats.get("new_units_added", 0),
        "cov": int(cov[-1][0]) if cov else 0,
        "ft": int(cov[-1][1]) if cov else 0,
        "corpus": len(list(corpus.iterdir())),
        "seconds": elapsed,
        "log": log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="harnesses to run (default: all)")
    parser.add_argument("--time", type=int, help="seconds for every run (default: per run)")
    parser.add_argument("--work", type=Path, help="corpus, artifacts and logs (default: temp)")
    parser.add_argument("--native", action="store_true", help="coverage of the compiled code")
    parser.add_argument("--max-len", type=int, default=4096, help="largest input (bytes)")
    parser.add_argument(
        "--isas", action="store_true", help="print the SIMD paths to fuzz, widest first"
    )
    args = parser.parse_args(argv)
    if args.isas:
        print(" ".join(reversed(available_isas())))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="wsfast-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    native = build_native(work) if args.native else None
    isas = available_isas()
    runs = [
        (name, isa, args.time or seconds)
        for name, isa, seconds in DEFAULT_RUNS
        if (not args.names or name in args.names) and (isa is None or isa in isas)
    ]
    results = []
    for name, isa, seconds in runs:
        result = run_one(name, isa, seconds, work, native, args.max_len)
        results.append(result)
        status = "ok" if result["ok"] else "FAILED"
        print(f"{result['label']:<18} {status:<6} {result['execs']:>9,} execs "
              f"{result['per_sec']:>6,}/s  cov {result['cov']:>5}  ft {result['ft']:>5}  "
              f"corpus {result['corpus']:>5}  {result['seconds']:.0f} s", flush=True)  # fmt: skip
        if not result["ok"]:
            print(str(result["log"])[-6000:], file=sys.stderr)
    total = sum(int(r["execs"]) for r in results)  # type: ignore[call-overload]
    print(f"{len(results)} runs, {total:,} executions; work directory {work}"
          f"{' (native coverage)' if native else ''}")  # fmt: skip
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
