"""Which kernels are exported, and proof that the compiled ones are the ones under test.

- ``WSFAST_NO_EXTENSIONS=1``: the top level must be the pure kernels.
- ``WSFAST_REQUIRE_EXTENSIONS=1`` (and extensions not disabled): the top level must be the
  compiled kernels, straight from the extension modules.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import wsfast
import wsfast.pure

KERNEL_NAMES = {
    "apply_mask": "_mask",
    "apply_mask_inplace": "_mask",
    "validate_utf8": "_utf8",
    "Utf8Validator": "_utf8",
    "parse_header": "_frames",
    "build_header": "_frames",
    "FrameHeader": "_frames",
    "Frame": "_frames",
    "FrameParser": "_frames",
}
SHARED_NAMES = {"Opcode", "CloseCode", "ProtocolError"}
TESTS = Path(__file__).resolve().parent


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "yes", "true", "on"}


def try_compiled() -> ModuleType | None:
    try:
        return importlib.import_module("wsfast._compiled")
    except ImportError:
        return None


def is_extension(module: ModuleType) -> bool:
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS,
    )


# --- this process --------------------------------------------------------------------------


def test_pure_twins() -> None:
    assert wsfast.pure.implementation == "python"
    for name in KERNEL_NAMES:
        obj = getattr(wsfast.pure, name)
        assert obj.__module__.startswith("wsfast.pure."), name
    for name in SHARED_NAMES:
        assert getattr(wsfast.pure, name) is getattr(wsfast, name)
    assert set(KERNEL_NAMES) | SHARED_NAMES | {"implementation"} <= set(wsfast.pure.__all__)


def test_top_level_exports_one_consistent_set() -> None:
    assert wsfast.implementation in ("cython", "python")
    assert set(KERNEL_NAMES) | SHARED_NAMES | {"implementation"} <= set(wsfast.__all__)
    if wsfast.implementation == "python":
        source: ModuleType = wsfast.pure
    else:
        source = importlib.import_module("wsfast._compiled")
    for name in KERNEL_NAMES:
        assert getattr(wsfast, name) is getattr(source, name), name


def test_selected_implementation(require_extensions) -> None:
    compiled = try_compiled()
    if env_flag("WSFAST_NO_EXTENSIONS"):
        assert wsfast.implementation == "python"
        for name in KERNEL_NAMES:
            assert getattr(wsfast, name) is getattr(wsfast.pure, name), name
    elif require_extensions:
        assert compiled is not None, "WSFAST_REQUIRE_EXTENSIONS=1 but wsfast._compiled fails"
        assert wsfast.implementation == "cython"
        assert wsfast.apply_mask is importlib.import_module("wsfast._mask").apply_mask
        for name, module in KERNEL_NAMES.items():
            ext = importlib.import_module(f"wsfast.{module}")
            assert getattr(wsfast, name) is getattr(ext, name), name
    else:
        assert wsfast.implementation == ("cython" if compiled is not None else "python")


def test_compiled_kernels_are_extension_modules(require_extensions) -> None:
    compiled = try_compiled()
    if compiled is None:
        assert not require_extensions, "WSFAST_REQUIRE_EXTENSIONS=1 but wsfast._compiled fails"
        pytest.skip("compiled kernels not built")
    assert compiled.implementation == "cython"
    for name, module in KERNEL_NAMES.items():
        ext = importlib.import_module(f"wsfast.{module}")
        assert is_extension(ext), ext
        assert Path(ext.__file__).name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        assert getattr(compiled, name) is getattr(ext, name), name
        assert getattr(compiled, name) is not getattr(wsfast.pure, name), name


def test_impl_fixture_is_what_it_says(impl, request) -> None:
    """The ``cython`` half of every kernel test really gets the extension modules."""
    if request.node.callspec.id == "python":
        assert impl is wsfast.pure
        return
    assert impl.implementation == "cython"
    for name, module in KERNEL_NAMES.items():
        ext = importlib.import_module(f"wsfast.{module}")
        assert is_extension(ext)
        assert getattr(impl, name) is getattr(ext, name), name


# --- fresh interpreters --------------------------------------------------------------------

REPORT = """
    import wsfast, wsfast.pure
    same = all(getattr(wsfast, n) is getattr(wsfast.pure, n) for n in {names!r})
    print(wsfast.implementation, same)
"""


@pytest.mark.parametrize("value", ["1", "true"])
def test_no_extensions_at_run_time(value) -> None:
    done = run_python(REPORT.format(names=sorted(KERNEL_NAMES)), WSFAST_NO_EXTENSIONS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python", "True"]


@pytest.mark.parametrize("value", [None, "0", ""])
def test_extensions_not_disabled(value) -> None:
    expected = "cython" if try_compiled() is not None else "python"
    done = run_python(REPORT.format(names=sorted(KERNEL_NAMES)), WSFAST_NO_EXTENSIONS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, str(expected == "python")]


BLOCKED_RUN = """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("wsfast._mask", "wsfast._utf8", "wsfast._frames"):
                raise ImportError(f"{name} blocked for this test")
            return None

    sys.meta_path.insert(0, Block())
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=-rs",
                          "test_mask.py::test_rfc6455_example"]))
"""


def test_required_extensions_fail_instead_of_skipping() -> None:
    """With the compiled kernels unimportable, the ``cython`` tests skip by default, and fail
    when WSFAST_REQUIRE_EXTENSIONS=1."""
    skipped = run_python(BLOCKED_RUN, WSFAST_REQUIRE_EXTENSIONS=None, WSFAST_NO_EXTENSIONS=None)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 passed, 1 skipped" in skipped.stdout
    assert "compiled kernels not built" in skipped.stdout

    failed = run_python(BLOCKED_RUN, WSFAST_REQUIRE_EXTENSIONS="1", WSFAST_NO_EXTENSIONS=None)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed, 1 passed" in failed.stdout or "1 passed, 1 error" in failed.stdout
    assert "do not import" in failed.stdout


def _cpu_flags() -> set[str] | None:
    """This CPU's feature flags, as Linux names them (None where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return set(f.read().split())
    except OSError:
        return None


def _avx512_paths() -> tuple[str, ...]:
    """What WSFAST_ISA=avx512 may give on this x86-64 CPU with AVX2 (both, where unknown)."""
    flags = _cpu_flags()
    if flags is None:
        return ("avx512", "avx2")
    return ("avx512",) if "avx512f" in flags else ("avx2",)


def _default_paths() -> tuple[str, ...]:
    """What the kernels may pick by themselves on this CPU: AVX-512 only with AVX-512 VBMI
    (the CPUs whose clock 512-bit instructions do not lower) and AVX2, never on the first
    generation."""
    flags = _cpu_flags()
    if flags is None:
        return ("avx512", "avx2", "sse2", "neon", "scalar")
    if {"avx2", "avx512f", "avx512vbmi"} <= flags:
        return ("avx512",)
    return ("avx2", "sse2", "neon", "scalar")


def test_forced_isa_levels() -> None:
    """WSFAST_ISA narrows the SIMD path; every level computes the same results."""
    if try_compiled() is None:
        pytest.skip("compiled kernels not built")
    mask_module = importlib.import_module("wsfast._mask")
    if not hasattr(mask_module, "simd_path"):
        pytest.skip("wsfast._mask has no simd_path()")
    done = run_python("import wsfast._mask as m; print(m.simd_path())", WSFAST_ISA=None)
    assert done.returncode == 0, done.stderr
    best = done.stdout.strip()  # this process may run with WSFAST_ISA set
    assert best in _default_paths()
    code = """
        import random, wsfast._compiled as k, wsfast._mask as m
        rng = random.Random(1)
        key = b"\\x01\\x80\\x7f\\xfe"
        ok = True
        for n in list(range(300)) + [4096 + 7, 300_000 + 5]:
            data = rng.randbytes(n + 9)
            for start in (0, 1, 5):
                for offset in (0, 3):
                    part = data[start:start + n]
                    want = bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(part))
                    ok &= k.apply_mask(memoryview(data)[start:start + n], key, offset) == want
        text = ("".join(map(chr, [0x61, 0x20, 0x3BA, 0x1F79, 0x6F22, 0x1F600])) * 80).encode()
        for pos in range(0, 300):
            for bad in (b"\\x80", b"\\xed\\xa0\\x80", b"\\xf4\\x90\\x80\\x80", b"\\xc0\\xaf"):
                s = text[:pos] + bad + text[pos:]
                try:
                    s.decode()
                    want = True
                except UnicodeDecodeError:
                    want = False
                ok &= k.validate_utf8(s) is want
        ok &= k.validate_utf8(text * 100) is True
        print(m.simd_path(), ok)
    """
    levels = {"scalar": "scalar", best: best}
    if best == "avx512":
        levels["avx2"] = "avx2"
        levels["sse2"] = "sse2"
    if best == "avx2":
        levels["sse2"] = "sse2"
        # Not the default here: on request, taken where the CPU has AVX-512 Foundation (its
        # first generation, without VBMI), else capped at AVX2.
        done = run_python("import wsfast._mask as m; print(m.simd_path())", WSFAST_ISA="avx512")
        assert done.returncode == 0, done.stderr
        levels["avx512"] = done.stdout.strip()
        assert levels["avx512"] in _avx512_paths()
    for forced, expected in levels.items():
        done = run_python(code, WSFAST_ISA=forced)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [expected, "True"], forced
    done = run_python(code, WSFAST_ISA="no-such-isa")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [best, "True"]
    assert "WSFAST_ISA" in done.stderr  # a warning says the value was ignored
