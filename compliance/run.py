"""Run the Autobahn testsuite (groups 1-10) against a WebSocket server and/or client.

    python compliance/run.py --role server|client|both
        [--server-cmd CMD] [--client-cmd CMD] [--cases '1.*,2.*,...'] [--agent NAME]

* ``--role server``: start the server under test on 127.0.0.1 and a free
  port, then run ``wstest -m fuzzingclient`` against it.  Reports go to
  compliance/reports/servers/.
* ``--role client``: start ``wstest -m fuzzingserver`` on 127.0.0.1 and a
  free port, then run the client under test against it.  Reports go to
  compliance/reports/clients/.
* ``--role both``: the two, one after the other.

Commands are shell-like strings, split with shlex, with these placeholders:
``{python}`` (this interpreter), ``{host}`` (127.0.0.1), ``{port}``,
``{url}`` (ws://127.0.0.1:PORT: the server under test, or the fuzzing
server), ``{agent}`` and ``{here}`` (this directory).

The wstest environment (Python 2.7) is built on first use in
``$WSFAST_AUTOBAHN_HOME`` (default ~/.cache/wsfast-autobahn): see
autobahn_env.py.  Exit status: 0 only if every case of every role ended OK or
INFORMATIONAL; 1 if some case did not; 2 if the harness could not complete a
run (setup failure, a process that did not start, a time-out, no report).

Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import autobahn_env  # noqa: E402
import report  # noqa: E402

HOST = "127.0.0.1"
DEFAULT_CASES = ",".join(f"{i}.*" for i in range(1, 11))
DEFAULT_EXCLUDE = "12.*,13.*"  # permessage-deflate groups: slow, see run_deflate.sh
DEFAULT_SERVER_CMD = "{python} -m wsfast serve --host {host} --port {port}"
DEFAULT_CLIENT_CMD = "{python} {here}/client_wsfast.py {url} --agent {agent}"
# wstest's own limit on an opening handshake (autobahn's default: none), so
# that a server under test that accepts TCP and then hangs costs seconds per
# case rather than the whole --timeout.
OPEN_HANDSHAKE_TIMEOUT = 10

EXIT_OK, EXIT_CASES_FAILED, EXIT_HARNESS_ERROR = 0, 1, 2


class HarnessError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[compliance] {msg}", flush=True)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def expand(template: str, **values: str) -> list[str]:
    try:
        return [token.format(**values) for token in shlex.split(template)]
    except (KeyError, IndexError, ValueError) as exc:
        raise HarnessError(f"bad command template {template!r}: {exc!r}") from exc


class Proc:
    """A child process in its own session, its output copied to a log file.

    Lines matching ``echo`` (a predicate) are also printed with a prefix.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        echo: Any = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = open(log_path, "w", encoding="utf-8", errors="replace")
        self._log.write("$ " + shlex.join(argv) + "\n")
        self._log.flush()
        try:
            self.p = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own process group: stopped as a whole
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            self._log.close()
            raise HarnessError(f"cannot start {name} ({shlex.join(argv)}): {exc}") from exc
        self.lines = 0
        self._echo = echo
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines += 1
            self._log.write(line)
            self._log.flush()
            if self._echo is not None and self._echo(line):
                print(f"  [{self.name}] {line.rstrip()}", flush=True)

    def poll(self) -> int | None:
        return self.p.poll()

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout`` seconds."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> int:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=grace)
        else:
            # leftovers of an exited leader (e.g. a shell's children)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.p.pid, signal.SIGKILL)
        self._reader.join(timeout=grace)
        self._log.close()
        return self.p.returncode

    def tail(self, n: int = 25) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
            return "\n".join("    | " + ln for ln in lines)
        return ""


def wait_listening(proc: Proc, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc = proc.poll()
        if rc is not None:
            raise HarnessError(f"{proc.name} exited (status {rc}) before listening:\n{proc.tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    raise HarnessError(
        f"{proc.name} did not listen on {HOST}:{port} within {timeout:g}s:\n{proc.tail()}"
    )


def listening_addresses(port: int) -> list[str] | None:
    """Local addresses of LISTEN sockets on ``port`` (Linux /proc), None if unknown."""
    found: list[str] = []
    seen_any_table = False
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        seen_any_table = True
        for row in rows:
            fields = row.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A = LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            if width == 8:
                found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found if seen_any_table else None


def is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr in ("::1", "::ffff:127.0.0.1")


# --------------------------------------------------------------------------- roles


def progress_filter(verbose: bool, every: int = 50) -> Any:
    """Echo every line if verbose, else every ``every``-th wstest case line and errors."""
    count = [0]

    def echo(line: str) -> bool:
        if verbose:
            return True
        if line.startswith("Running test case ID"):
            count[0] += 1
            return count[0] % every == 1
        low = line.lower()
        return "traceback" in low or "error" in low or line.startswith("Ok, will run")

    return echo


def write_spec(path: Path, spec: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")


def collect(index: Path, agent: str, title: str) -> tuple[int, dict[str, Any]]:
    if not index.exists():
        raise HarnessError(f"no report: {index} was not written")
    try:
        found_agent, results = report.load_index(index, agent)
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    s = report.summarize(results)
    print(report.format_summary(title, found_agent, s), flush=True)
    return (EXIT_OK if s["passed"] else EXIT_CASES_FAILED), dict(s, agent=found_agent)


def run_server_role(
    args: argparse.Namespace, env: autobahn_env.Env, reports: Path
) -> tuple[int, dict[str, Any]]:
    outdir = reports / "servers"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    port = free_port()
    url = f"ws://{HOST}:{port}"
    values = dict(
        python=sys.executable, host=HOST, port=str(port), url=url, agent=args.agent, here=str(HERE)
    )
    argv = expand(args.server_cmd, **values)
    log(f"server under test: {shlex.join(argv)}")
    sut = Proc(
        "server under test",
        argv,
        reports / "logs" / "server-under-test.log",
        echo=(lambda _l: args.verbose),
    )
    wstest = None
    try:
        wait_listening(sut, port, args.start_timeout)
        addrs = listening_addresses(port)
        if addrs is not None and not all(is_loopback(a) for a in addrs):
            log(f"warning: the server under test listens on {addrs}, not only on loopback")
        spec = {
            "outdir": str(outdir),
            "servers": [{"agent": args.agent, "url": url}],
            "cases": args.cases,
            "exclude-cases": args.exclude_cases,
            "exclude-agent-cases": {},
            "options": {"openHandshakeTimeout": OPEN_HANDSHAKE_TIMEOUT},
        }
        spec_path = reports / "fuzzingclient.json"
        write_spec(spec_path, spec)
        log(
            f"wstest -m fuzzingclient -> {url} "
            f"(cases {','.join(args.cases)}; time limit {args.timeout:g}s)"
        )
        t0 = time.monotonic()
        wstest = Proc(
            "wstest",
            env.wstest_argv("-m", "fuzzingclient", "-s", str(spec_path)),
            reports / "logs" / "wstest-fuzzingclient.log",
            env=env.environ(),
            cwd=reports,
            echo=progress_filter(args.verbose),
        )
        deadline = t0 + args.timeout
        rc = None
        while rc is None and time.monotonic() < deadline:
            rc = wstest.wait(timeout=1.0)
            if rc is None and sut.poll() is not None:
                raise HarnessError(
                    f"the server under test exited (status {sut.poll()}) during the run:\n"
                    + sut.tail()
                )
        elapsed = time.monotonic() - t0
        if rc is None:
            raise HarnessError(
                f"wstest fuzzingclient still running after {args.timeout:g}s: stopped\n"
                + wstest.tail()
            )
        if rc != 0:
            raise HarnessError(f"wstest fuzzingclient exited with status {rc}:\n{wstest.tail()}")
        log(f"fuzzingclient finished in {elapsed:.1f}s")
    finally:
        if wstest is not None:
            wstest.stop()
        sut_rc = sut.stop()
        if sut_rc not in (0, -signal.SIGTERM, None):
            log(f"note: server under test ended with status {sut_rc} (log: {sut.log_path})")
    title = f"fuzzingclient vs server under test [{shlex.join(argv)}]"
    code, s = collect(outdir / "index.json", args.agent, title)
    return code, dict(s, wall_seconds=round(elapsed, 1), command=argv)


def run_client_role(
    args: argparse.Namespace, env: autobahn_env.Env, reports: Path
) -> tuple[int, dict[str, Any]]:
    outdir = reports / "clients"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    port = free_port()
    url = f"ws://{HOST}:{port}"
    spec = {
        "url": url,
        "outdir": str(outdir),
        "cases": args.cases,
        "exclude-cases": args.exclude_cases,
        "exclude-agent-cases": {},
        "options": {"openHandshakeTimeout": OPEN_HANDSHAKE_TIMEOUT},
    }
    spec_path = reports / "fuzzingserver.json"
    write_spec(spec_path, spec)
    server = Proc(
        "wstest",
        env.wstest_argv("-m", "fuzzingserver", "-s", str(spec_path), "--webport", "0"),
        reports / "logs" / "wstest-fuzzingserver.log",
        env=env.environ(),
        cwd=reports,
        echo=progress_filter(args.verbose),
    )
    client = None
    try:
        wait_listening(server, port, args.start_timeout)
        addrs = listening_addresses(port)
        if addrs is not None:
            if not addrs or not all(is_loopback(a) for a in addrs):
                raise HarnessError(
                    f"the fuzzing server listens on {addrs}, not only on 127.0.0.1 (patch lost?)"
                )
            log(f"fuzzing server listening on {', '.join(a + ':' + str(port) for a in addrs)}")
        values = dict(
            python=sys.executable,
            host=HOST,
            port=str(port),
            url=url,
            agent=args.agent,
            here=str(HERE),
        )
        argv = expand(args.client_cmd, **values)
        log(f"client under test: {shlex.join(argv)} (time limit {args.timeout:g}s)")
        t0 = time.monotonic()
        client = Proc(
            "client under test",
            argv,
            reports / "logs" / "client-under-test.log",
            echo=(
                lambda line: (
                    args.verbose
                    or line.startswith("[driver")
                    or "Traceback" in line
                    or "Error" in line
                )
            ),
        )
        rc = None
        while rc is None and time.monotonic() < t0 + args.timeout:
            rc = client.wait(timeout=1.0)
            if rc is None and server.poll() is not None:
                raise HarnessError(
                    f"the fuzzing server exited (status {server.poll()}) during the run:\n"
                    + server.tail()
                )
        elapsed = time.monotonic() - t0
        if rc is None:
            raise HarnessError(
                f"client under test still running after {args.timeout:g}s: stopped\n{client.tail()}"
            )
        if rc != 0:
            # Its cases may all have run: show what the reports say, then fail.
            problem = f"client under test exited with status {rc}:\n{client.tail()}"
        else:
            problem = None
            log(f"client finished in {elapsed:.1f}s")
        # updateReports writes index.json before closing the connection;
        # give the fuzzing server a moment in case the client hurried off.
        index = outdir / "index.json"
        deadline = time.monotonic() + (3 if problem else 30)
        while not index.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if client is not None:
            client.stop()
        server.stop()
    title = f"fuzzingserver vs client under test [{shlex.join(argv)}]"
    if problem:
        if index.exists():
            with contextlib.suppress(HarnessError):
                collect(index, args.agent, title)
        raise HarnessError(problem)
    code, s = collect(index, args.agent, title)
    return code, dict(s, wall_seconds=round(elapsed, 1), command=argv)


# --------------------------------------------------------------------------- main


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the Autobahn testsuite (wstest) against a server and/or client.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Placeholders in commands: {python} {host} {port} {url} {agent} {here}.",
    )
    parser.add_argument("--role", choices=["server", "client", "both"], default="both")
    parser.add_argument(
        "--server-cmd", default=DEFAULT_SERVER_CMD, help=f"default: {DEFAULT_SERVER_CMD!r}"
    )
    parser.add_argument(
        "--client-cmd", default=DEFAULT_CLIENT_CMD, help=f"default: {DEFAULT_CLIENT_CMD!r}"
    )
    parser.add_argument(
        "--cases",
        default=DEFAULT_CASES,
        help=f"comma-separated case patterns (default {DEFAULT_CASES})",
    )
    parser.add_argument(
        "--exclude-cases",
        default=DEFAULT_EXCLUDE,
        help=f"comma-separated (default {DEFAULT_EXCLUDE})",
    )
    parser.add_argument(
        "--agent", default="wsfast", help="agent name in the reports (default wsfast)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=480,
        help="seconds allowed for each role's run (default 480)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=30,
        help="seconds for a server to start listening (default 30)",
    )
    parser.add_argument(
        "--reports-dir", type=Path, default=HERE / "reports", help="default compliance/reports"
    )
    parser.add_argument(
        "--rebuild-env", action="store_true", help="rebuild the wstest environment first"
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="build the wstest environment and exit"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="echo every line of every process"
    )
    args = parser.parse_args(argv)
    args.cases = split_list(args.cases)
    args.exclude_cases = split_list(args.exclude_cases)
    reports: Path = args.reports_dir.resolve()

    started = time.monotonic()
    try:
        env = autobahn_env.ensure(force=args.rebuild_env)
    except autobahn_env.SetupError as exc:
        log(f"error: cannot set up wstest: {exc}")
        return EXIT_HARNESS_ERROR
    log(env.describe())
    if args.setup_only:
        return EXIT_OK
    reports.mkdir(parents=True, exist_ok=True)

    roles = ["server", "client"] if args.role == "both" else [args.role]
    codes: dict[str, int] = {}
    summaries: dict[str, Any] = {}
    for role in roles:
        log(f"--- role: {role} ---")
        try:
            runner = run_server_role if role == "server" else run_client_role
            codes[role], summaries[role] = runner(args, env, reports)
        except HarnessError as exc:
            log(f"error ({role} role): {exc}")
            codes[role] = EXIT_HARNESS_ERROR
            summaries[role] = {"error": str(exc)}
    total = time.monotonic() - started
    (reports / "summary.json").write_text(json.dumps(summaries, indent=2, default=str) + "\n")
    log("=== result ===")
    for role in roles:
        s = summaries[role]
        what = {
            EXIT_OK: "PASS",
            EXIT_CASES_FAILED: "FAIL (cases)",
            EXIT_HARNESS_ERROR: "ERROR (harness)",
        }[codes[role]]
        detail = (
            f"{s['cases']} cases, {len(s['failing'])} not OK/INFORMATIONAL, "
            f"run {s['wall_seconds']}s"
            if "cases" in s
            else s["error"].splitlines()[0]
        )
        log(f"{role:<6} {what}: {detail}")
    log(f"total {total:.1f}s; reports in {reports}")
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main())
