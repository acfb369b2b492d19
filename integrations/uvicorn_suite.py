"""uvicorn's own WebSocket tests, run against wsfast.uvicorn.WSFastProtocol next to its backends.

Downloads the uvicorn sdist at the version installed (the ``uvicorn`` extra pins it) with
``pip download --no-binary :all: --no-deps``, unpacks its ``tests/`` and ``pyproject.toml``
(its pytest settings: warnings are errors) into the work directory, and runs
``tests/protocols/test_websocket.py`` with ``integrations/uvicorn_plugin.py`` loaded, which
adds ``wsfast`` to the ``ws_protocol_cls`` parametrization (the copy is not edited). The
installed uvicorn is the one tested, never the sdist's copy.

Then compares outcomes per backend: every test that passes on websockets-sansio must pass on
wsfast, except those in :data:`NOT_APPLICABLE` (named with the reason). Prints the counts per
backend. Exit status 1 on any other difference.

Needs uvicorn's test dependencies installed (see ``.ci/steps/45-uvicorn.sh``).
Usage: ``python integrations/uvicorn_suite.py [--work DIR] [--pure] [PYTEST ARGS...]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = "tests/protocols/test_websocket.py"
BACKENDS = ("websockets-sansio", "wsproto", "wsfast")
REFERENCE = "websockets-sansio"

NOT_APPLICABLE = {
    "test_server_keepalive_ping_pong": (
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)), the class of "
        "uvicorn's own backends; the keepalive it checks (ping_sent_at moves, the connection "
        "stays open) is tested on WSFastProtocol in tests/test_uvicorn.py"
    ),
    "test_server_keepalive_disabled": (
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)); what it checks "
        "(no ping_timer with ws_ping_interval=None) is tested in tests/test_uvicorn.py"
    ),
}

_BACKEND = re.compile(r"(?<=[\[-])(websockets-sansio|wsproto|wsfast)(?=[-\]])")


def fetch(work: Path, pin: str) -> Path:
    """The sdist's tests and pytest settings, unpacked under ``work``; returns their root."""
    dl = work / "sdist"
    dl.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--no-deps", "--no-binary", ":all:", "-d", str(dl), f"uvicorn=={pin}"],
        check=True,
    )
    [archive] = dl.glob(f"uvicorn-{pin}.tar.gz")
    unpacked = work / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    top = unpacked / f"uvicorn-{pin}"
    root = work / "suite"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    # Only the tests and their settings: the uvicorn imported is the installed one.
    shutil.copytree(top / "tests", root / "tests")
    shutil.copy2(top / "pyproject.toml", root / "pyproject.toml")
    return root


def run(root: Path, pure: bool, extra: list[str]) -> Path:
    report = root / "junit.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if pure:
        env["WSFAST_NO_EXTENSIONS"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-p", "uvicorn_plugin", "-p", "no:cacheprovider",
           "-q", "-o", "addopts=-rxXs", f"--junitxml={report}", SUITE, *extra]
    if importlib.util.find_spec("xdist") is not None and "-n" not in extra:
        # The tests mostly wait (servers starting, timeouts): four at a time, each on its port.
        cmd += ["-n", "4"]
    probe = "import wsfast.connection as c; print(c.implementation)"
    build = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    print(f"wsfast connection: {build.stdout.strip() or build.stderr}", flush=True)
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=root, env=env)  # failures are judged from the report below
    return report


def outcomes(report: Path) -> dict[str, dict[str, str]]:
    """{test id with the backend replaced by "*": {backend: outcome}}."""
    table: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        match = _BACKEND.search(name)
        if match is None:
            continue  # not parametrized over the WebSocket backend
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        key = name[: match.start()] + "*" + name[match.end() :]
        table.setdefault(key, {})[match.group(1)] = outcome
    return table


def compare(table: dict[str, dict[str, str]]) -> int:
    if not table:
        print("FAILED: no test parametrized over the WebSocket backends ran")
        return 1
    counts = {backend: Counter[str]() for backend in BACKENDS}
    for results in table.values():
        for backend, outcome in results.items():
            counts[backend][outcome] += 1
    print(f"\n{'backend':<20}{'passed':>8}{'failed':>8}{'skipped':>9}")
    for backend in BACKENDS:
        c = counts[backend]
        print(f"{backend:<20}{c['passed']:>8}{c['failed']:>8}{c['skipped']:>9}")
    problems = []
    not_applicable = []
    extra = []
    for key, results in sorted(table.items()):
        ours = results.get("wsfast")
        reference = results.get(REFERENCE)
        base = key.partition("[")[0]
        if reference == "passed" and ours != "passed":
            if base in NOT_APPLICABLE:
                not_applicable.append(key)
            else:
                problems.append(f"{key}: {REFERENCE} passed, wsfast {ours}")
        elif ours == "failed" and base not in NOT_APPLICABLE:
            problems.append(f"{key}: wsfast failed ({REFERENCE} {reference})")
        elif ours == "passed" and reference != "passed":
            extra.append(f"{key} ({REFERENCE} {reference})")
    if not_applicable:
        print("\nNot applicable to a third backend (not counted as failures):")
        for base, reason in NOT_APPLICABLE.items():
            ids = [k for k in not_applicable if k.startswith(base + "[")]
            print(f"  {base} x{len(ids)}: {reason}")
    if extra:
        print(f"\nPassing on wsfast, not on {REFERENCE} ({len(extra)}):")
        for line in extra:
            print("  " + line)
    if problems:
        print(f"\nFAILED: {len(problems)} test(s) pass on {REFERENCE} but not on wsfast:")
        for line in problems:
            print("  " + line)
        return 1
    print(f"\nOK: every test that passes on {REFERENCE} passes on wsfast.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    parser.add_argument("--pure", action="store_true", help="wsfast's pure-Python build")
    args, extra = parser.parse_known_args(argv)
    pin = version("uvicorn")
    base = args.work or Path(os.environ.get("CI_WORK") or tempfile.mkdtemp())
    work = base / "uvicorn-suite"
    root = fetch(work, pin)
    print(f"uvicorn {pin}, wsfast {'pure' if args.pure else 'as installed'}", flush=True)
    return compare(outcomes(run(root, args.pure, extra)))


if __name__ == "__main__":
    sys.exit(main())
