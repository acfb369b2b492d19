"""Extension glue only; the metadata lives in pyproject.toml.

Environment switches (read at build time):
- ``WSFAST_NO_EXTENSIONS=1``: build a pure-Python install.
- ``WSFAST_BUILD_EXTENSIONS=1``: a failed compile is an error (wheel builds), not a fallback.
- ``WSFAST_CYTHON_TRACE=1``: compile with line tracing (coverage builds).
"""

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_mask", "_utf8", "_frames"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "yes", "true", "on"}


NO_EXTENSIONS = _flag("WSFAST_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
REQUIRE_EXTENSIONS = _flag("WSFAST_BUILD_EXTENSIONS")


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


def extensions() -> list[Extension]:
    from Cython.Build import cythonize

    if sys.platform == "win32":
        compile_args = ["/O2"]
    else:
        compile_args = ["-O3", "-fno-strict-aliasing"]
    trace = _flag("WSFAST_CYTHON_TRACE")
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    exts = [
        Extension(
            f"wsfast.{name}",
            [f"src/wsfast/{name}.pyx"],
            include_dirs=["src/wsfast/_c"],
            extra_compile_args=compile_args,
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
        },
    )


if NO_EXTENSIONS:
    setup()
else:
    try:
        ext_modules = extensions()
    except Exception as exc:  # Cython missing or failing at cythonize time
        if REQUIRE_EXTENSIONS:
            raise
        print(f"WARNING: cannot cythonize wsfast's kernels ({exc!r}).", file=sys.stderr)
        setup()
    else:
        setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
