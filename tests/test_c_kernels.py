"""Builds tests/c/selftest.c against the kernels' C headers and runs it: natively, and for
AArch64 under qemu-user when ``aarch64-linux-gnu-gcc`` and ``qemu-aarch64`` are installed, so
the NEON paths are checked on an x86-64 machine too. tests/c/length_guard.c checks the frame
length guard natively and, at compile time, for a 32-bit target; tests/c/cpu_choice.c the
SIMD level picked for other CPUs' features."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wsfast

# The headers as installed (package data): the checkout's in a development install, the
# wheel's when the suite runs against an installed wheel.
HEADERS = Path(wsfast.__file__).resolve().parent / "_c"
SOURCE = Path(__file__).resolve().parent / "c" / "selftest.c"


GUARD = Path(__file__).resolve().parent / "c" / "length_guard.c"
CPU_CHOICE = Path(__file__).resolve().parent / "c" / "cpu_choice.c"


def _build_and_run(cc: str, out: Path, runner: list[str], source: Path = SOURCE) -> str:
    subprocess.run(
        [cc, "-O2", "-Wall", "-Wextra", "-Werror", f"-I{HEADERS}", str(source), "-o", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run([*runner, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok (" in done.stdout
    return done.stdout


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("cc") is None, reason="needs a C compiler named cc"
)
def test_native(tmp_path: Path) -> None:
    _build_and_run("cc", tmp_path / "selftest", [])


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
    reason="needs aarch64-linux-gnu-gcc and qemu-aarch64",
)
def test_aarch64_neon(tmp_path: Path) -> None:
    output = _build_and_run(
        "aarch64-linux-gnu-gcc",
        tmp_path / "selftest",
        ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
    )
    assert "(neon)" in output


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("cc") is None, reason="needs a C compiler named cc"
)
def test_length_guard_native(tmp_path: Path) -> None:
    output = _build_and_run("cc", tmp_path / "length_guard", [], GUARD)
    assert f"ok (limit {sys.maxsize})" in output  # the guard is CPython's PY_SSIZE_T_MAX


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("cc") is None, reason="needs a C compiler named cc"
)
def test_simd_level_choice(tmp_path: Path) -> None:
    """The levels picked for other CPUs' features: AVX-512 by default only with VBMI, and
    never without AVX2 (whose code the AVX-512 level runs too)."""
    output = _build_and_run("cc", tmp_path / "cpu_choice", [], CPU_CHOICE)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "ok (6 cases)" in output


def _compiles_for_32_bit(cc: str) -> bool:
    probe = subprocess.run(
        [cc, "-m32", "-ffreestanding", "-fsyntax-only", "-x", "c", "-"],
        input=b"_Static_assert(sizeof(void *) == 4, \"32-bit\");\n",
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("cc") is None or not _compiles_for_32_bit("cc"),
    reason="needs a C compiler that targets 32-bit x86 (cc -m32)",
)
def test_length_guard_for_a_32_bit_target() -> None:
    """2**31 and more are refused where Py_ssize_t has 32 bits (static asserts)."""
    subprocess.run(
        ["cc", "-m32", "-ffreestanding", "-fsyntax-only", "-DWSF_SYNTAX_ONLY", "-Wall",
         "-Werror", f"-I{HEADERS}", str(GUARD)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
