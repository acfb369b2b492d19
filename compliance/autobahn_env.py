"""Build (once) and locate the Python 2.7 environment that runs Autobahn's ``wstest``.

autobahntestsuite 25.10.1 is Python-2-only code.  This module makes a
Python 2.7 virtual environment with pinned packages in a cache directory
outside the repository and patches wstest's fuzzing server to listen on
127.0.0.1 only.  Standard library only: it runs from the project's test venv.

Layout of the cache directory (``$WSFAST_AUTOBAHN_HOME``, default
``~/.cache/wsfast-autobahn``)::

    boot/          Python 3 venv holding virtualenv 20.21.1 (the last release
                   able to create Python 2.7 environments)
    debian/        only for the Debian fallback: private apt state, the .debs
                   and their unpacked tree (root/usr/bin/python2.7)
    venv27/        the Python 2.7 environment with wstest
    pip-cache/     pip's cache (rebuilds are fast and mostly offline)
    bin/wstest     wrapper for use by hand (sets LD_LIBRARY_PATH if needed)
    stamp.json     written last; the environment counts as ready only when
                   it matches the current pins and patch

Where Python 2.7 comes from, in order (``$WSFAST_AUTOBAHN_PYTHON2`` picks):

* ``auto`` (default): pyenv's 2.7 (``$PYENV_ROOT/versions/2.7*``), else the
  Debian fallback;
* ``debian``: always the Debian fallback: python2.7 packages of Debian 11
  "bullseye" fetched with ``apt-get download`` from the system's own Debian
  mirror (read from /etc/apt/sources.list*; ``$WSFAST_AUTOBAHN_DEBIAN_MIRROR``
  overrides it) under a private apt configuration, unpacked with ``dpkg -x``
  and run with LD_LIBRARY_PATH pointing at the unpacked libraries (libssl1.1,
  libffi7 are not in newer Debian releases);
* a path: that Python 2.7 interpreter.

Run ``python compliance/autobahn_env.py [--force]`` to build it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-autobahn.txt"
ACCEL_REQUIREMENTS = HERE / "requirements-autobahn-accel.txt"

VIRTUALENV_VERSION = "20.21.1"  # last virtualenv that creates 2.7 environments
# virtualenv 20.21.1 embeds pip 20.3.4 / setuptools 44.1.1 / wheel 0.37.1 for
# 2.7 (pip must stay < 21 there); --no-download makes it use exactly those.
DEBIAN_SUITE = "bullseye"  # Debian 11: the last release with python2.7
DEBIAN_PACKAGES = [
    "python2.7-minimal",
    "libpython2.7-minimal",
    "libpython2.7-stdlib",
    "libssl1.1",
    "libffi7",
    # headers, only needed to build the optional wsaccel
    "libpython2.7-dev",
    "libpython2.7",
]
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Bumped whenever the patch below or the layout changes: forces a rebuild.
PATCH_VERSION = 1
PATCH_MARKER = "# wsfast compliance: listen on loopback only"

SETUP_STEP_TIMEOUT = 900  # seconds, for any one command of the setup


def cache_root() -> Path:
    explicit = os.environ.get("WSFAST_AUTOBAHN_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).resolve() / "wsfast-autobahn"


class SetupError(RuntimeError):
    pass


class Env:
    """A ready wstest environment."""

    def __init__(self, root: Path, stamp: dict[str, Any]) -> None:
        self.root = root
        self.stamp = stamp
        self.venv = root / "venv27"
        self.python = self.venv / "bin" / "python"
        self.ld_library_path: list[str] = stamp.get("ld_library_path", [])

    def wstest_argv(self, *args: str) -> list[str]:
        return [str(self.python), str(self.venv / "bin" / "wstest"), *args]

    def environ(self) -> dict[str, str]:
        """Environment for running wstest: no Python 3 leftovers, libs for the fallback."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if self.ld_library_path:
            old = env.get("LD_LIBRARY_PATH")
            env["LD_LIBRARY_PATH"] = os.pathsep.join(self.ld_library_path + ([old] if old else []))
        return env

    def describe(self) -> str:
        accel = "wsaccel" if self.stamp.get("accelerated") else "pure-Python masking/UTF-8"
        return (
            f"wstest {self.stamp.get('autobahntestsuite', '?')} on Python 2.7 "
            f"({self.stamp.get('python2_source')}: {self.stamp.get('python2')}; {accel}) "
            f"in {self.venv}"
        )


# --------------------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"[autobahn-env] {msg}", flush=True)


def _run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = SETUP_STEP_TIMEOUT,
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    _log("$ " + " ".join(argv))
    try:
        proc = subprocess.run(
            argv,
            env=env,
            cwd=cwd,
            timeout=timeout,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    except OSError as exc:
        raise SetupError(f"cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise SetupError(f"failed (exit {proc.returncode}): {' '.join(argv)}\n{tail}")
    if not capture and proc.stdout.strip():
        # keep the setup log short: last lines only
        for line in proc.stdout.strip().splitlines()[-3:]:
            _log("  " + line)
    return proc


def _sha256(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _requested_python2() -> str:
    return os.environ.get("WSFAST_AUTOBAHN_PYTHON2", "auto").strip() or "auto"


def _expected_stamp_fields() -> dict[str, Any]:
    return {
        "requirements_sha256": _sha256(REQUIREMENTS, ACCEL_REQUIREMENTS),
        "patch_version": PATCH_VERSION,
        "virtualenv": VIRTUALENV_VERSION,
        "requested_python2": _requested_python2(),
    }


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """Serialize concurrent setups of the same cache directory."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / ".lock", "w") as fh:
        deadline = time.monotonic() + SETUP_STEP_TIMEOUT * 2
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SetupError(f"another setup holds {root / '.lock'} for too long") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip_common(root: Path) -> list[str]:
    # --isolated: ignore the machine's pip config and PIP_* variables (extra
    # indexes, find-links, constraints), so that every machine resolves the
    # same pins from PyPI.  The system CA bundle is passed explicitly since
    # pip 20.3.4's bundled certifi is from 2020.
    args = ["--isolated", "--disable-pip-version-check", "--timeout", "60", "--retries", "3"]
    args += ["--cache-dir", str(root / "pip-cache")]
    for bundle in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if os.path.exists(bundle):
            args += ["--cert", bundle]
            break
    index = os.environ.get("WSFAST_AUTOBAHN_INDEX_URL")
    if index:
        args += ["--index-url", index]
    return args


# --------------------------------------------------------------------------- Python 2.7


def _python2_env(ld_library_path: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if ld_library_path:
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(ld_library_path + ([old] if old else []))
    return env


def _check_python2(exe: str, ld_library_path: list[str]) -> str:
    """Return the interpreter's version if it is a usable CPython 2.7, else raise."""
    probe = (
        "import sys, ssl, hashlib, ctypes, zlib, json, select; "
        "assert sys.version_info[:2] == (2, 7); "
        "print('%d.%d.%d' % sys.version_info[:3])"
    )
    try:
        proc = subprocess.run(
            [exe, "-c", probe],
            env=_python2_env(ld_library_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{exe}: {exc}") from exc
    if proc.returncode != 0:
        raise SetupError(f"{exe} is not a usable Python 2.7:\n{proc.stderr.strip()}")
    return proc.stdout.strip()


def _find_pyenv_python2() -> str | None:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    roots.append(os.path.join(os.path.expanduser("~"), ".pyenv"))
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())

    def key(path: str) -> tuple[int, ...]:
        m = re.search(r"2\.7\.(\d+)", path)
        return (int(m.group(1)) if m else -1,)

    for root in roots:
        candidates = sorted(
            glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python2.7")),
            key=key,
            reverse=True,
        )
        for exe in candidates:
            try:
                _check_python2(exe, [])
            except SetupError as exc:
                _log(f"skipping {exe}: {exc}")
                continue
            return exe
    return None


def _debian_mirror() -> str:
    explicit = os.environ.get("WSFAST_AUTOBAHN_DEBIAN_MIRROR")
    if explicit:
        return explicit.rstrip("/")
    uris: list[str] = []
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in files:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and "security" not in m.group(2):
                    uris.append(m.group(1))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with contextlib.suppress(OSError):
            text = Path(path).read_text()
            for para in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in para.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("types", "").split():
                    continue
                suites = fields.get("suites", "").split()
                if suites and all("security" in s for s in suites):
                    continue
                uris.extend(fields.get("uris", "").split())
    # Prefer a Debian archive (path ending in /debian) over third-party repos.
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _debian_python2(root: Path) -> tuple[str, list[str]]:
    """Fetch and unpack Debian bullseye's python2.7; return (interpreter, LD_LIBRARY_PATH)."""
    for tool in ("apt-get", "dpkg"):
        if not shutil.which(tool):
            raise SetupError(
                f"no Python 2.7 found (pyenv) and no {tool} for the Debian fallback; "
                "set WSFAST_AUTOBAHN_PYTHON2=/path/to/python2.7"
            )
    base = root / "debian"
    unpacked = base / "root"
    exe = unpacked / "usr" / "bin" / "python2.7"
    mirror = _debian_mirror()
    if base.exists():
        shutil.rmtree(base)
    for d in (
        "etc/sources.list.d",
        "etc/preferences.d",
        "lists/partial",
        "cache/archives/partial",
        "debs",
    ):
        (base / d).mkdir(parents=True, exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    opts = f"[signed-by={keyring}] " if os.path.exists(keyring) else ""
    (base / "etc" / "sources.list").write_text(f"deb {opts}{mirror} {DEBIAN_SUITE} main\n")
    apt = [
        "apt-get",
        "-q",
        "-o", f"Dir::Etc::SourceList={base / 'etc' / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={base / 'etc' / 'sources.list.d'}",
        "-o", f"Dir::Etc::PreferencesParts={base / 'etc' / 'preferences.d'}",
        "-o", f"Dir::State::Lists={base / 'lists'}",
        "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "Acquire::Retries=3",
        "-o", "Acquire::http::Timeout=60",
        "-o", "APT::Get::List-Cleanup=false",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # apt would otherwise drop to the _apt user, who cannot write here
        apt += ["-o", "APT::Sandbox::User=root"]
    _log(f"Debian fallback: python2.7 from {mirror} {DEBIAN_SUITE}")
    _run(apt + ["update"])
    _run(apt + ["download", *DEBIAN_PACKAGES], cwd=base / "debs")
    for deb in sorted((base / "debs").glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(unpacked)], capture=True)
    ld_path = sorted(
        {
            str(Path(p).parent)
            for pattern in ("usr/lib/*/lib*.so*", "lib/*/lib*.so*", "usr/lib/lib*.so*")
            for p in glob.glob(str(unpacked / pattern))
        }
    )
    if not exe.exists():
        raise SetupError(f"{exe} missing after unpacking the Debian packages")
    return str(exe), ld_path


def _pick_python2(root: Path) -> tuple[str, str, list[str]]:
    """Return (interpreter, source, LD_LIBRARY_PATH)."""
    requested = _requested_python2()
    if requested not in ("auto", "debian", "pyenv"):
        _check_python2(requested, [])
        return requested, "explicit", []
    if requested in ("auto", "pyenv"):
        exe = _find_pyenv_python2()
        if exe:
            return exe, "pyenv", []
        if requested == "pyenv":
            raise SetupError("WSFAST_AUTOBAHN_PYTHON2=pyenv but pyenv has no working 2.7")
        _log("no pyenv Python 2.7 found: using the Debian fallback")
    exe, ld_path = _debian_python2(root)
    return exe, "debian", ld_path


# --------------------------------------------------------------------------- wstest patch


_PATCHES = [
    # (original, replacement): each original must occur exactly once.
    (
        "   listenWS(factory, sslContext)\n",
        f"   listenWS(factory, sslContext, interface = LISTEN_INTERFACE)  {PATCH_MARKER}\n",
    ),
    (
        "reactor.listenSSL(webport, web, sslContext)\n",
        "reactor.listenSSL(webport, web, sslContext, interface = LISTEN_INTERFACE)"
        f"  {PATCH_MARKER}\n",
    ),
    (
        "reactor.listenTCP(webport, web)\n",
        f"reactor.listenTCP(webport, web, interface = LISTEN_INTERFACE)  {PATCH_MARKER}\n",
    ),
    (
        "from autobahn.twisted.websocket import connectWS, listenWS\n",
        "from autobahn.twisted.websocket import connectWS, listenWS\n"
        f"{PATCH_MARKER}; WSTEST_LISTEN_INTERFACE overrides it.\n"
        "import os as _os\n"
        "LISTEN_INTERFACE = _os.environ.get('WSTEST_LISTEN_INTERFACE', '127.0.0.1')\n",
    ),
]


def _patch_fuzzing(venv: Path) -> None:
    """Make ``wstest -m fuzzingserver`` bind 127.0.0.1 instead of all interfaces.

    autobahntestsuite's fuzzing.startServer calls ``listenWS(factory, ctx)``
    without an interface, and autobahn 0.10.9's listenWS defaults to
    ``interface=''`` (0.0.0.0); the spec's "url" only sets the port.  The
    embedded web server (``--webport``, disabled by the harness) likewise
    uses ``reactor.listenTCP(webport, web)``.  fuzzingclient mode listens on
    nothing.
    """
    (path,) = glob.glob(
        str(venv / "lib" / "python2.7" / "site-packages" / "autobahntestsuite" / "fuzzing.py")
    )
    src = Path(path).read_text()
    if PATCH_MARKER in src:
        return
    for old, new in _PATCHES:
        count = src.count(old)
        if count != 1:
            raise SetupError(
                f"cannot patch {path}: {old.strip()!r} found {count} times (expected once)"
            )
        src = src.replace(old, new)
    Path(path).write_text(src)
    for compiled in glob.glob(path[:-3] + ".py[co]"):
        os.unlink(compiled)
    _log(f"patched {path}: fuzzing server listens on 127.0.0.1")


# --------------------------------------------------------------------------- build


def _build(root: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    py2, source, ld_path = _pick_python2(root)
    version = _check_python2(py2, ld_path)
    _log(f"Python {version} ({source}): {py2}")

    # 1. a small Python 3 venv with virtualenv 20.21.1
    boot = root / "boot"
    boot_py = boot / "bin" / "python"
    if not boot_py.exists() or not (boot / f"virtualenv-{VIRTUALENV_VERSION}.ok").exists():
        if boot.exists():
            shutil.rmtree(boot)
        _run([sys.executable, "-m", "venv", str(boot)])
        _run(
            [
                str(boot_py),
                "-m",
                "pip",
                "install",
                "-q",
                *_pip_common(root),
                f"virtualenv=={VIRTUALENV_VERSION}",
            ]
        )
        (boot / f"virtualenv-{VIRTUALENV_VERSION}.ok").write_text("")

    # 2. the Python 2.7 venv (pip 20.3.4, setuptools 44.1.1, wheel 0.37.1 from
    #    virtualenv's embedded wheels: no download, same on every machine)
    venv = root / "venv27"
    if venv.exists():
        shutil.rmtree(venv)
    env = _python2_env(ld_path)
    env["VIRTUALENV_OVERRIDE_APP_DATA"] = str(root / "virtualenv-app-data")
    _run(
        [
            str(boot_py), "-m", "virtualenv", "--no-download", "--no-periodic-update",
            "--app-data", str(root / "virtualenv-app-data"), "-p", py2, str(venv),
        ],
        env=env,
    )  # fmt: skip
    vpy = str(venv / "bin" / "python")
    pip = [vpy, "-m", "pip", "install", "--no-warn-script-location", *_pip_common(root)]
    pip_env = dict(env, PYTHONWARNINGS="ignore")  # silence the Python 2 deprecation notices

    # 3. the pinned requirements, exactly (no resolver surprises)
    _run(pip + ["--no-deps", "--no-build-isolation", "-r", str(REQUIREMENTS)], env=pip_env)

    # 4. optional C accelerators
    accel_env = dict(pip_env)
    if source == "debian":
        # Debian's distutils points at /usr/include/python2.7; use the unpacked headers.
        # Its Python.h includes <TRIPLET/python2.7/pyconfig.h>, hence usr/include too.
        inc_root = root / "debian" / "root" / "usr" / "include"
        accel_env["CFLAGS"] = f"-I{inc_root} -I{inc_root / 'python2.7'}"
    try:
        _run(pip + ["--no-deps", "-r", str(ACCEL_REQUIREMENTS)], env=accel_env)
        accelerated = True
    except SetupError as exc:
        _log(
            "optional wsaccel/ujson not installed (wstest will be slower): "
            + str(exc).splitlines()[0]
        )
        accelerated = False
    _run([vpy, "-m", "pip", "check", "--isolated"], env=pip_env)

    # 5. loopback-only listeners
    _patch_fuzzing(venv)

    # 6. smoke test
    out = _run(
        [vpy, str(venv / "bin" / "wstest"), "--autobahnversion"], env=env, capture=True
    ).stdout
    m = re.search(r"AutobahnTestSuite\s+([\w.]+)", out)
    suite_version = m.group(1) if m else out.strip().splitlines()[-1] if out.strip() else "?"

    # 7. wrapper for use by hand
    (root / "bin").mkdir(exist_ok=True)
    wrapper = root / "bin" / "wstest"
    lines = [
        "#!/bin/sh",
        "# generated by wsfast compliance/autobahn_env.py",
        "unset PYTHONPATH PYTHONHOME",
    ]
    if ld_path:
        lines.append(f"LD_LIBRARY_PATH={':'.join(ld_path)}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}")
        lines.append("export LD_LIBRARY_PATH")
    lines.append(f'exec "{vpy}" "{venv / "bin" / "wstest"}" "$@"')
    wrapper.write_text("\n".join(lines) + "\n")
    wrapper.chmod(0o755)

    stamp = dict(
        _expected_stamp_fields(),
        python2=py2,
        python2_version=version,
        python2_source=source,
        ld_library_path=ld_path,
        accelerated=accelerated,
        autobahntestsuite=suite_version,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.monotonic() - t0, 1),
    )
    (root / "stamp.json").write_text(json.dumps(stamp, indent=2) + "\n")
    _log(f"ready in {stamp['build_seconds']}s")
    return stamp


def load(root: Path | None = None) -> Env | None:
    """The environment if it is built and matches the current pins, else None."""
    root = root or cache_root()
    try:
        stamp = json.loads((root / "stamp.json").read_text())
    except (OSError, ValueError):
        return None
    for key, value in _expected_stamp_fields().items():
        if stamp.get(key) != value:
            return None
    env = Env(root, stamp)
    if not env.python.exists() or not (env.venv / "bin" / "wstest").exists():
        return None
    return env


def ensure(force: bool = False, root: Path | None = None) -> Env:
    root = root or cache_root()
    if not force:
        env = load(root)
        if env:
            return env
    with _lock(root):
        if not force:
            env = load(root)  # built by a concurrent run meanwhile
            if env:
                return env
        _log(f"building the wstest environment in {root}")
        with contextlib.suppress(FileNotFoundError):
            (root / "stamp.json").unlink()
        stamp = _build(root)
    return Env(root, stamp)


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the Python 2.7 wstest environment.")
    parser.add_argument("--force", action="store_true", help="rebuild even if it is up to date")
    args = parser.parse_args()
    try:
        env = ensure(force=args.force)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(env.describe())
    print(f"wstest wrapper: {env.root / 'bin' / 'wstest'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
