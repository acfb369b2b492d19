"""Each patched library's OWN test suite, run unpatched and then patched, outcomes compared.

For every suite below: a venv of its own under the work directory, the library at its pinned
version plus its test dependencies plus the ONE wsfast wheel (built once per run), the tests
from the library's released sdist (or its wheel, where the tests ship in it). The suite runs
twice: as is, then with ``WSFAST_PATCH`` set for the whole session (the patches apply at
interpreter start-up through ``wsfast_patch.pth``, before any test module is imported; the
import hook re-patches modules that tests reload or re-import). The patched run must keep
every test that passed unpatched passing, must end with ``wsfast.dropin.verify()`` clean in
every process that loaded the library, and must show calls that reached the adapters.

Usage: ``python integrations/run.py [--work DIR] [--wheel WHEEL] [--jobs N] [SUITE...]``.
Exit status 1 when any suite fails those checks. Nothing is cached outside ``--work``
(default: ``$CI_WORK`` or a temporary directory).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Suite:
    name: str
    library: str  # "wsproto==1.3.2": what provides the tests
    deps: list[str]  # installed with the library and the wsfast wheel
    command: list[str]  # run in the tests' directory with the venv's python first
    patch: str  # WSFAST_PATCH value
    runner: str = "pytest"  # how outcomes are read: pytest (junit xml), unittest, trial
    source: str = "sdist"  # sdist or wheel (where the tests come from)
    keep: list[str] = field(default_factory=list)  # paths of the unpacked source to keep
    env: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # adapter counters that must be > 0
    rerun: list[str] = field(default_factory=list)  # command to rerun single tests (by id)
    variants: dict[str, dict[str, str]] = field(default_factory=dict)  # more runs, more env


PYTEST = ["python", "-bb", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"]

SUITES = [
    Suite(
        "wsproto",
        "wsproto==1.3.2",
        ["pytest", "hypothesis"],
        [*PYTEST, "tests"],
        "wsproto",
        keep=["tests"],
        calls=["wsproto.frame_protocol.FrameDecoder._wsfast_fast_path",
               "wsproto.frame_protocol.XorMaskerSimple.process"],
    ),
    Suite(
        "websocket-client",
        "websocket-client==1.9.2",
        ["pytest", "websockets"],
        [*PYTEST, "websocket/tests"],
        "websocket-client",
        keep=["websocket/tests"],
        calls=["websocket._abnf._mask", "websocket._utils._validate_utf8"],
    ),
    Suite(
        "ws4py",
        "ws4py==0.6.0",
        ["pytest", "mock"],
        [*PYTEST, "test", "--ignore=test/test_cherrypy.py"],  # (CherryPy not installed)
        "ws4py",
        keep=["test"],
        calls=["ws4py.framing.Frame.mask", "ws4py.streaming.Utf8Validator.validate"],
    ),
    Suite(
        "tornado",
        "tornado==6.6.1",
        [],
        # The modules that reach the mask (the whole suite takes minutes more, mostly idle
        # timeouts, and touches no other patched name).
        ["python", "-bb", "-m", "tornado.test.runtests", "--verbose", "tornado.test.websocket_test",
         "tornado.test.util_test"],
        "tornado",
        runner="unittest",
        source="installed",
        rerun=["python", "-bb", "-m", "tornado.test.runtests", "--verbose"],
        env={"PYTHONWARNINGS": "error:::tornado"},
        calls=["tornado.websocket._websocket_mask"],
    ),
    Suite(
        "autobahn",
        "autobahn==26.11.1",
        ["twisted", "pytest"],
        ["python", "-m", "twisted.trial", "--reporter=verbose",
         "autobahn.websocket.test", "autobahn.nvx.test"],
        "autobahn",
        runner="trial",
        source="installed",
        rerun=["python", "-m", "twisted.trial", "--reporter=verbose"],
        env={"USE_TWISTED": "1"},
        variants={"without NVX": {"AUTOBAHN_USE_NVX": "0"}},
        calls=["autobahn.websocket.protocol.create_xor_masker",
               "autobahn.websocket.protocol.Utf8Validator.validate"],
    ),
    Suite(
        "aiohttp",
        "aiohttp==3.14.5",
        ["pytest", "pytest-mock", "trustme", "re-assert", "freezegun", "blockbuster",
         "pytest-codspeed", "isal", "zlib_ng", "brotli", "coverage", "pytest-timeout"],
        # Its own default selection; addopts (xdist, coverage) left out.
        [*PYTEST, "-o", "addopts=", "-m", "not dev_mode and not autobahn and not internal",
         "tests/test_websocket_parser.py",
         "tests/test_websocket_writer.py", "tests/test_websocket_handshake.py",
         "tests/test_client_ws.py", "tests/test_client_ws_functional.py",
         "tests/test_web_websocket.py", "tests/test_web_websocket_functional.py"],
        "aiohttp",
        keep=["tests", "setup.cfg", "pytest.ini", "pyproject.toml"],
        env={"AIOHTTP_NO_EXTENSIONS": "1"},
        calls=["aiohttp._websocket.reader_py.websocket_mask"],
    ),
    Suite(
        "uvicorn",
        "uvicorn==0.54.0",
        ["pytest", "pytest-mock", "httpx2", "trustme", "websockets==17.4", "wsproto==1.3.2",
         "a2wsgi", "pyyaml", "python-dotenv", "watchfiles", "httptools", "uvloop", "zttp"],
        [*PYTEST, "-o", "addopts=-rxXs", "tests/protocols/test_websocket.py"],
        "wsproto,websockets",
        keep=["tests", "pyproject.toml"],
        calls=["wsproto.frame_protocol.FrameDecoder._wsfast_fast_path",
               "websockets.frames.apply_mask"],
    ),
]


def log(suite: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {suite}: {message}", flush=True)


SH_TIMEOUT = 900  # seconds for an install, a download or a build: a stalled network fails


def sh(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", SH_TIMEOUT)
    return subprocess.run(cmd, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def build_wheel(work: Path) -> Path:
    out = work / "wheel"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WSFAST_BUILD_EXTENSIONS": "1"}
    res = sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
             env=env)
    if res.returncode:
        raise SystemExit(f"building the wsfast wheel failed:\n{res.stdout}\n{res.stderr}")
    [wheel] = glob.glob(str(out / "wsfast-*.whl"))
    return Path(wheel)


def prepare(suite: Suite, work: Path, wheel: Path) -> tuple[Path, Path]:
    """(venv python, directory to run the tests in)."""
    home = work / suite.name
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    python = home / "venv" / "bin" / "python"
    uv = _uv()
    if uv:  # much faster than pip; its cache stays inside the work directory
        env = {**os.environ, "UV_CACHE_DIR": str(work / "uv-cache")}
        steps = [[*uv, "venv", "-q", "--python", sys.executable, str(home / "venv")],
                 [*uv, "pip", "install", "-q", "--python", str(python), suite.library,
                  *suite.deps, str(wheel)]]
    else:
        env = dict(os.environ)
        steps = [[sys.executable, "-m", "venv", str(home / "venv")],
                 [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  suite.library, *suite.deps, str(wheel)]]
    for step in steps:
        res = sh(step, env=env)
        if res.returncode:
            raise RuntimeError(f"{' '.join(step[:3])} failed:\n{res.stdout}\n{res.stderr}")
    tests = home / "tests"
    tests.mkdir()
    if suite.source == "sdist":
        dl = home / "sdist"
        res = sh([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                  ":all:", "-d", str(dl), suite.library])
        if res.returncode:
            raise RuntimeError(f"pip download failed:\n{res.stdout}\n{res.stderr}")
        [archive] = glob.glob(str(dl / "*"))
        _unpack(Path(archive), home / "src")
        [top] = [p for p in (home / "src").iterdir() if p.is_dir()]
        for keep in suite.keep:  # the tests only: the library itself is the installed one
            src = top / keep
            if src.is_dir():
                shutil.copytree(src, tests / keep)
            elif src.exists():
                shutil.copy2(src, tests / keep)
    return python, tests


def _uv() -> list[str]:
    """How to run uv, when it is installed (``pip install uv``), else []."""
    found = shutil.which("uv")
    if found:
        return [found]
    try:
        import uv  # type: ignore[import-not-found]

        return [uv.find_uv_bin()]
    except (ImportError, FileNotFoundError):
        return []


def _unpack(archive: Path, into: Path) -> None:
    into.mkdir()
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")


def run_once(
    suite: Suite, python: Path, tests: Path, patched: bool, only: list[str] | None = None,
    tag: str | None = None, variant: str = "",
) -> tuple[dict[str, str], str]:
    tag = (tag or ("patched" if patched else "unpatched")) + _slug(variant)
    out_dir = tests.parent / tag
    out_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSFAST_", "PYTHON"))}
    env.update(suite.env)
    env.update(suite.variants.get(variant, {}))
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    if patched:
        env.update(WSFAST_PATCH=suite.patch, WSFAST_PATCH_STATS="1",
                   WSFAST_PATCH_REPORT=str(out_dir / "report"))
    cmd = [str(python) if c == "python" else c for c in suite.command]
    if only is not None:
        if suite.runner == "pytest":
            cmd = [c for c in cmd if not c.startswith(("tests", "test/", "test", "websocket/"))]
            cmd = [*cmd, *only]
        else:
            cmd = [str(python) if c == "python" else c for c in suite.rerun] + only
    res = subprocess.run(cmd, cwd=tests, env=env, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=1500)
    (out_dir / "output.txt").write_text(res.stdout)
    if suite.runner == "pytest":
        outcomes = parse_pytest(res.stdout)
    elif suite.runner == "unittest":
        outcomes = parse_unittest(res.stdout)
    else:
        outcomes = parse_trial(res.stdout)
    ran = re.search(r"^Ran (\d+) tests?", res.stdout, re.M)
    if ran and only is None and int(ran.group(1)) != len(outcomes):
        raise RuntimeError(f"{tag}: read {len(outcomes)} outcomes, the runner ran {ran.group(1)}")
    return outcomes, res.stdout


_PYTEST = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (\S+::.+?)(?: - .*)?$", re.M)


def _slug(variant: str) -> str:
    return "-" + re.sub(r"\W+", "-", variant).strip("-") if variant else ""


def parse_pytest(text: str) -> dict[str, str]:
    """Outcomes from pytest's ``-rA`` summary (one line per test id)."""
    status = {"PASSED": "passed", "FAILED": "failed", "ERROR": "failed", "XFAIL": "passed",
              "XPASS": "failed", "SKIPPED": "skipped"}
    out: dict[str, str] = {}
    for m in _PYTEST.finditer(text):
        key = m.group(2)
        if out.get(key) != "failed":  # a test that passed but errored in teardown failed
            out[key] = status[m.group(1)]
    for number in re.findall(r"^SKIPPED \[(\d+)\]", text, re.M):
        for _ in range(int(number)):  # pytest groups skips by reason, without test ids
            out[f"(skipped #{len(out)})"] = "skipped"
    return out


_UNITTEST_ID = re.compile(r"^\s*(\w+) \(([\w.]+)\)")
_UNITTEST_STATUS = re.compile(
    r"\.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b"
)


def parse_unittest(text: str) -> dict[str, str]:
    """Outcomes from unittest's verbose output: "name (module.Class.name) ... ok", the status
    possibly a few lines down (after a docstring line or log output)."""
    status = {"ok": "passed", "FAIL": "failed", "ERROR": "failed", "skipped": "skipped",
              "expected failure": "passed", "unexpected success": "failed"}
    out: dict[str, str] = {}
    pending: str | None = None
    for line in text.splitlines():
        m = _UNITTEST_ID.match(line)
        if m:
            test_id = m.group(2)
            pending = test_id if test_id.endswith("." + m.group(1)) else f"{test_id}.{m.group(1)}"
            extra = line[m.end():].split(" ... ")[0].strip()  # subTest parameters
            if extra:
                pending += " " + extra
        found = _UNITTEST_STATUS.search(line)
        if found and pending is not None:
            if out.get(pending) != "failed":
                out[pending] = status[found.group(1)]
            pending = None
    return out


_TRIAL = re.compile(r"^(\s*)(\S+) \.\.\.(?:.*?)\[(OK|FAIL|ERROR|SKIPPED|TODO|SUCCESS)\]", re.M)


def parse_trial(text: str) -> dict[str, str]:
    status = {"OK": "passed", "SUCCESS": "passed", "FAIL": "failed", "ERROR": "failed",
              "SKIPPED": "skipped", "TODO": "skipped"}
    out = {}
    context: list[str] = []
    for line in text.splitlines():
        m = _TRIAL.match(line)
        if m:
            depth = len(m.group(1)) // 2
            out[".".join([*context[:depth], m.group(2)])] = status[m.group(3)]
        elif line.strip() and "..." not in line and not line.startswith(("=", "-")):
            depth = (len(line) - len(line.lstrip())) // 2
            context = [*context[:depth], line.strip()]
    return out


def check(
    suite: Suite, tests: Path, before: dict[str, str], after: dict[str, str], flaky: list[str],
    variant: str = "",
) -> list[str]:
    problems = []
    if not before:
        problems.append("no test outcomes were read from the unpatched run")
    broken = sorted(k for k, v in before.items() if v == "passed" and after.get(k) != "passed")
    problems += [f"passed unpatched, {after.get(k, 'missing')} patched: {k}" for k in broken
                 if k not in flaky]
    reports = [json.loads(Path(p).read_text())
               for p in glob.glob(str(tests.parent / f"patched{_slug(variant)}" / "report.*.json"))]
    loaded = [r for r in reports if any(r["calls"].values()) or r["problems"]]
    if not loaded:
        problems.append("no process reported calls into the wsfast adapters")
    for r in reports:
        problems += [f"pid {r['pid']}: {p}" for p in r["problems"]]
        missing = [n for n in suite.patch.split(",") if n not in r["patched"]]
        if missing:
            problems.append(f"pid {r['pid']}: not patched: {missing}")
    totals: dict[str, int] = {}
    for r in reports:
        for k, v in r["calls"].items():
            totals[k] = totals.get(k, 0) + v
    problems += [f"no calls reached {k}" for k in suite.calls if not totals.get(k)]
    (tests.parent / f"calls{_slug(variant)}.json").write_text(json.dumps(totals, indent=1))
    return problems


def rerun_broken(
    suite: Suite, python: Path, tests: Path, before: dict[str, str], after: dict[str, str],
    variant: str = "",
) -> list[str]:
    """Tests that passed unpatched and failed patched, run again patched (twice at most): the
    ones that pass then are timing-flaky (e.g. a 0.5 s sleep checked to +-20 ms on a busy
    machine), not broken by the patch. Returns their ids."""
    broken = [k for k, v in before.items() if v == "passed" and after.get(k) == "failed"]
    if not broken or len(broken) > 20 or (suite.runner != "pytest" and not suite.rerun):
        return []
    flaky: list[str] = []
    for attempt in range(2):
        left = [k for k in broken if k not in flaky]
        if not left:
            break
        again, _ = run_once(suite, python, tests, patched=True, only=left,
                            tag=f"patched-rerun{attempt}", variant=variant)
        flaky += [k for k in left if again.get(k) == "passed"]
    if flaky:
        log(suite.name, f"passed when run again patched (timing-flaky): {flaky}")
    return flaky


def counts(outcomes: dict[str, str]) -> str:
    c = {s: list(outcomes.values()).count(s) for s in ("passed", "failed", "skipped")}
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def run_suite(suite: Suite, work: Path, wheel: Path) -> list[dict[str, object]]:
    t0 = time.monotonic()
    try:
        python, tests = prepare(suite, work, wheel)
    except Exception as exc:
        return [{"suite": suite.name, "library": suite.library, "unpatched": "", "patched": "",
                 "calls": {}, "problems": [f"harness error: {exc}"], "flaky": [],
                 "seconds": round(time.monotonic() - t0)}]
    log(suite.name, f"installed in {time.monotonic() - t0:.0f} s")
    results = []
    for variant in ["", *suite.variants]:
        t1 = time.monotonic()
        label = f"{suite.name} ({variant})" if variant else suite.name
        try:
            before, _ = run_once(suite, python, tests, patched=False, variant=variant)
            log(label, f"unpatched: {counts(before)}")
            after, _ = run_once(suite, python, tests, patched=True, variant=variant)
            log(label, f"patched:   {counts(after)}")
            flaky = rerun_broken(suite, python, tests, before, after, variant)
            problems = check(suite, tests, before, after, flaky, variant)
        except Exception as exc:
            before, after, flaky, problems = {}, {}, [], [f"harness error: {exc}"]
        calls_file = tests.parent / f"calls{_slug(variant)}.json"
        results.append({
            "suite": label,
            "library": suite.library,
            "unpatched": counts(before),
            "patched": counts(after),
            "calls": json.loads(calls_file.read_text()) if calls_file.exists() else {},
            "problems": problems,
            "flaky": flaky,
            "seconds": round(time.monotonic() - (t1 if variant else t0)),
        })
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", help="suites to run (default: all)")
    parser.add_argument("--work", default=os.environ.get("CI_WORK"))
    parser.add_argument("--wheel", help="a wsfast wheel (default: build one from this checkout)")
    parser.add_argument("--jobs", type=int, default=2)
    ns = parser.parse_args()
    names = ns.suites or [s.name for s in SUITES]
    unknown = set(names) - {s.name for s in SUITES}
    if unknown:
        parser.error(f"unknown suites: {sorted(unknown)}")
    work = Path(ns.work or tempfile.mkdtemp(prefix="wsfast-dropin-")) / "dropin"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    wheel = Path(ns.wheel) if ns.wheel else build_wheel(work)
    log("wheel", str(wheel.name))
    selected = [s for s in SUITES if s.name in names]
    with concurrent.futures.ThreadPoolExecutor(ns.jobs) as pool:
        results = [r for rs in pool.map(lambda s: run_suite(s, work, wheel), selected) for r in rs]
    print(f"\n{'suite':<24} {'unpatched':<36} {'patched':<36} time")
    for r in results:
        print(f"{r['suite']:<24} {r['unpatched']:<36} {r['patched']:<36} {r['seconds']} s")
        if r["flaky"]:
            print(f"{'':<24} timing-flaky, passed when run again patched: {r['flaky']}")
    failed = [r for r in results if r["problems"]]
    for r in failed:
        print(f"\n{r['suite']} FAILED:")
        for p in r["problems"][:30]:
            print(f"  {p}")
    (work / "summary.json").write_text(json.dumps(results, indent=1))
    print(f"\nall suites in {time.monotonic() - t0:.0f} s; summary: {work / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
