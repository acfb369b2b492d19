"""Extension glue only; the metadata lives in pyproject.toml.

Builds the kernels (``_mask``, ``_utf8``, ``_frames`` from their ``.pyx``) and
``wsfast._connection_c``, the sans-I/O connection compiled from ``_connection_py.py`` (the one
source; ``wsfast.connection`` picks the compiled or the Python classes at import). Cython names
a module after its file, so the source is copied to ``build/cython-src/wsfast/_connection_c.py``
with ``_connection_c.pxd`` (its C types) and an empty ``__init__.py``; the copy exists only to
be compiled and is never installed. The asyncio shell is built the same way:
``asyncio/_websocket_py.py`` is compiled as ``wsfast.asyncio._websocket_c`` with
``asyncio/_websocket_c.pxd`` (``wsfast.asyncio.connection`` picks the build).

Environment switches (read at build time):
- ``WSFAST_NO_EXTENSIONS=1``: build a pure-Python install.
- ``WSFAST_BUILD_EXTENSIONS=1``: a failed compile is an error (wheel builds), not a fallback.
- ``WSFAST_CYTHON_TRACE=1``: compile with line tracing (coverage builds).
- ``WSFAST_SANITIZE=address,undefined``: compile and link with those ``-fsanitize=`` checks,
  frame pointers, ``-O1 -g`` (``fuzz/sanitize.sh``); ``fuzzer-no-link`` (clang) instruments
  the kernels for coverage-guided fuzzing (``fuzz/run.py --native``).
"""

import os
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

KERNELS = ["_mask", "_utf8", "_frames"]
CONNECTION = "_connection_c"
CONNECTION_SOURCE = Path("src/wsfast/_connection_py.py")
CONNECTION_PXD = Path("src/wsfast/_connection_c.pxd")
SHELL = "asyncio._websocket_c"
SHELL_SOURCE = Path("src/wsfast/asyncio/_websocket_py.py")
SHELL_PXD = Path("src/wsfast/asyncio/_websocket_c.pxd")
CYTHON_SRC = Path("build/cython-src")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "yes", "true", "on"}


NO_EXTENSIONS = _flag("WSFAST_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
REQUIRE_EXTENSIONS = _flag("WSFAST_BUILD_EXTENSIONS")


# WSFAST_PATCH: one line in site-packages that, only when the variable is set, imports the
# small _wsfast_patch module (which imports wsfast when a library it patches is first
# imported; see wsfast/dropin/_startup.py). Unset, it costs one environment lookup.
PTH_NAME = "wsfast_patch.pth"
PTH_LINE = (
    "import os; os.environ.get('WSFAST_PATCH', '').strip().lower() not in "
    "('', '0', 'no', 'none', 'off', 'false') and __import__('_wsfast_patch')\n"
)


class BuildPyWithPth(build_py):
    """build_py, plus the start-up ``.pth`` at the top of the wheel (regular and editable)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, PTH_NAME)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PTH_LINE, encoding="ascii")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, PTH_NAME))]


def _editable_wheel_with_pth() -> type | None:
    """editable_wheel, plus the start-up ``.pth`` (editable wheels skip build_lib's files)."""
    try:
        from setuptools.command.editable_wheel import editable_wheel
    except ImportError:  # an old setuptools without PEP 660 support
        return None

    class EditableWheelWithPth(editable_wheel):  # type: ignore[misc, valid-type]
        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):  # type: ignore[no-untyped-def]  # noqa: E501
            result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
            Path(unpacked_wheel, PTH_NAME).write_text(PTH_LINE, encoding="ascii")
            return result

    return EditableWheelWithPth


COMMANDS: dict[str, type] = {"build_py": BuildPyWithPth}
_EDITABLE = _editable_wheel_with_pth()
if _EDITABLE is not None:
    COMMANDS["editable_wheel"] = _EDITABLE


class OptionalBuildExt(build_ext):
    """Falls back to the pure-Python kernels when compiling fails, unless required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython error, ...
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if REQUIRE_EXTENSIONS:
            raise
        print(
            f"WARNING: wsfast's compiled kernels failed to build ({exc!r}); "
            "installing the pure-Python kernels instead.",
            file=sys.stderr,
        )


def _copy_if_changed(source: Path, target: Path) -> None:
    # An unchanged copy keeps its mtime, so cythonize does not regenerate the C file.
    data = source.read_bytes()
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)


def compiled_source(name: str, source: Path, pxd: Path) -> str:
    """Copy ``source`` and ``pxd`` where Cython compiles them as ``wsfast.<name>``."""
    *packages, module = ["wsfast", *name.split(".")]
    package = CYTHON_SRC.joinpath(*packages)
    package.mkdir(parents=True, exist_ok=True)
    for depth in range(1, len(packages) + 1):
        init = CYTHON_SRC.joinpath(*packages[:depth], "__init__.py")
        if not init.exists():
            init.write_bytes(b"")  # makes the directories packages, for Cython
    target = package / f"{module}.py"
    _copy_if_changed(source, target)
    _copy_if_changed(pxd, package / f"{module}.pxd")
    return target.as_posix()


def _sanitize_args() -> list[str]:
    """Compiler and linker flags for ``WSFAST_SANITIZE`` (none when it is unset)."""
    checks = os.environ.get("WSFAST_SANITIZE", "").strip()
    if not checks:
        return []
    return [f"-fsanitize={checks}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-O1", "-g"]  # fmt: skip


def _compile_args() -> list[str]:
    if sys.platform == "win32":
        return ["/O2"]
    return ["-O3", "-fno-strict-aliasing", *_sanitize_args()]


def extensions() -> list[Extension]:
    from Cython.Build import cythonize

    compile_args = _compile_args()
    trace = _flag("WSFAST_CYTHON_TRACE")
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    exts = [
        Extension(
            f"wsfast.{name}",
            [f"src/wsfast/{name}.pyx"],
            include_dirs=["src/wsfast/_c"],
            extra_compile_args=compile_args,
            extra_link_args=_sanitize_args(),
            define_macros=macros,
        )
        for name in KERNELS
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            # Module functions as plain builtins: a cheaper call than a cyfunction.
            "binding": False,
            "embedsignature": True,
            "embedsignature.format": "clinic",
            "linetrace": trace,
            # Checked, not assumed: see "Threads" in docs/threads.md and tests/test_threads.py.
            "freethreading_compatible": True,
        },
    )


def connection_extensions() -> list[Extension]:
    """``wsfast._connection_c`` and ``wsfast.asyncio._websocket_c``; Python semantics kept
    (negative indices, bounds checks)."""
    from Cython.Build import cythonize

    trace = _flag("WSFAST_CYTHON_TRACE")
    exts = [
        Extension(
            f"wsfast.{name}",
            [compiled_source(name, source, pxd)],
            extra_compile_args=_compile_args(),
            extra_link_args=_sanitize_args(),
            define_macros=[("CYTHON_TRACE", "1")] if trace else [],
        )
        for name, source, pxd in [
            (CONNECTION, CONNECTION_SOURCE, CONNECTION_PXD),
            (SHELL, SHELL_SOURCE, SHELL_PXD),  # a WebSocket belongs to its loop's thread
        ]
    ]
    return cythonize(
        exts,
        include_path=["src"],  # the kernels' .pxd: receive_data reads frames at C level
        compiler_directives={
            "language_level": 3,
            # Annotations are for type checkers: the C types come from the .pxd only, so the
            # compiled classes accept what the Python ones accept (str subclasses, ...).
            "annotation_typing": False,
            "binding": False,
            "embedsignature": True,
            "linetrace": trace,
            # Every public method is a critical section (@cython.critical_section).
            "freethreading_compatible": True,
        },
    )


def all_extensions() -> list[Extension]:
    """The kernels, plus the compiled connection unless cythonizing it fails (then the
    Python connection is installed, unless a compile is required)."""
    ext_modules = extensions()
    try:
        ext_modules += connection_extensions()
    except Exception as exc:
        if REQUIRE_EXTENSIONS:
            raise
        print(f"WARNING: cannot cythonize wsfast's connection ({exc!r}).", file=sys.stderr)
    return ext_modules


if NO_EXTENSIONS:
    setup(cmdclass=COMMANDS)
else:
    try:
        ext_modules = all_extensions()
    except Exception as exc:  # Cython missing or failing at cythonize time
        if REQUIRE_EXTENSIONS:
            raise
        print(f"WARNING: cannot cythonize wsfast's kernels ({exc!r}).", file=sys.stderr)
        setup(cmdclass=COMMANDS)
    else:
        setup(
            ext_modules=ext_modules,
            cmdclass={**COMMANDS, "build_ext": OptionalBuildExt},
        )
