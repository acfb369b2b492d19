"""bench/profile_roundtrip.py's bookkeeping: which category a perf sample lands in, and the
parsing of ``perf stat`` and ``perf script`` output (no perf needed). (Skipped where the
repository's bench/ is not beside tests/, e.g. a wheel's test run.)"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
from bench_helpers import load_script

WSFAST_SO = "/x/src/wsfast/_connection_c.cpython-311-x86_64-linux-gnu.so"


@pytest.fixture(scope="module")
def prof() -> ModuleType:
    return load_script("profile_roundtrip")


K = "[kernel.kallsyms]"
LIBPYTHON = "/usr/lib/libpython3.11.so.1.0"
SELECT = "/lib/python3.11/lib-dynload/select.cpython-311-x86_64-linux-gnu.so"
PICOWS = "/venv/picows/picows.cpython-311-x86_64-linux-gnu.so"


@pytest.mark.parametrize(
    ("chain", "expected"),  # expected: how the category's name starts
    [
        ([("tcp_sendmsg", K), ("__x64_sys_sendto", K)], "kernel: send"),
        ([("copy_to_user", K), ("__x64_sys_recvfrom", K)], "kernel: receive"),
        ([("ep_poll", K), ("__x64_sys_epoll_wait", K)], "kernel: epoll"),
        ([("do_sys_openat2", K), ("__x64_sys_openat", K)], "kernel: other syscalls"),
        ([("mas_walk", K), ("asm_exc_page_fault", K)], "kernel: no syscall"),
        ([("_PyEval_EvalFrameDefault", LIBPYTHON)], "libpython"),
        ([("_PyEval_EvalFrameDefault", "/usr/bin/python3.11")], "libpython"),
        ([("select_epoll_poll", SELECT)], "CPython C modules"),
        ([("malloc", "/lib/x86_64-linux-gnu/libc.so.6")], "libc"),
        ([("receive_data", WSFAST_SO)], "wsfast compiled: _connection_c"),
        ([("on_ws_frame", PICOWS)], "picows compiled: picows"),
        ([("[unknown]", "[unknown]")], "unknown"),
        ([("inflate", "/lib/libz.so.1")], "other: libz"),
    ],
)
def test_category(prof: ModuleType, chain: list[tuple[str, str]], expected: str) -> None:
    assert prof.category(chain).startswith(expected)


def test_user_frames_below_a_syscall_do_not_count_as_kernel(prof: ModuleType) -> None:
    # The leaf decides: kernel frames further down a (mis-unwound) chain do not count.
    chain = [("_PyEval_EvalFrameDefault", LIBPYTHON), ("__x64_sys_sendto", K)]
    assert prof.category(chain).startswith("libpython")


def test_read_stat(prof: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "stat"
    path.write_text(
        "# started on Tue Dec  1 23:01:42 2026\n\n"
        "144.07,msec,task-clock,144074681,100.00,0.415,CPUs utilized\n"
        "89,,syscalls:sys_enter_getpid,144074681,100.00,617.735,/sec\n"
        "0,,syscalls:sys_enter_read,144074681,100.00,0,/sec\n"
        "<not counted>,,syscalls:sys_enter_write,0,0.00,,\n"
    )
    proc = prof.Process("server", 1)
    prof.read_stat(str(path), proc)
    assert proc.cpu_ms == pytest.approx(144.07)
    assert dict(proc.syscalls) == {"getpid": 89}


def test_count_samples(prof: ModuleType) -> None:
    script = (
        "101 \n"
        "\tffffffff82233b62 tcp_sendmsg+0x12 ([kernel.kallsyms])\n"
        "\tffffffff815f7861 __x64_sys_sendto ([kernel.kallsyms])\n"
        "\t           fd7e3 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
        "\n"
        f"101 \n\t          1a34f receive_data ({WSFAST_SO})\n"
        "\n"
        "202 \n\t          155948 __strcmp_avx2 (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
        "\n"
        "303 \n\t          155948 elsewhere (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
    )
    server, client = prof.Process("server", 101), prof.Process("client", 202)
    prof.count_samples(script, [server, client])
    assert dict(server.samples) == {
        "kernel: send (with loopback delivery)": 1,
        "wsfast compiled: _connection_c": 1,
    }
    assert server.symbols[("tcp_sendmsg", "[kernel.kallsyms]")] == 1  # offset stripped
    assert dict(client.samples) == {"libc (malloc, memcpy, ...)": 1}  # pid 303 is neither


def test_perf_that_cannot_attach_is_reported(prof: ModuleType) -> None:
    # perf without the rights to watch another process exits at once, saying why: that is
    # the error, not a missing output file later. (No client is needed to get that far.)
    says = "No permission to enable task-clock event."
    command = [sys.executable, "-c", f"import sys; sys.exit({says!r})"]
    with pytest.raises(RuntimeError, match="No permission to enable.*perf_event_paranoid"):
        prof.timed_window(None, [command], settle=1.5)
