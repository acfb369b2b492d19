"""``python -m wsfast info``: what this install is and what it runs on."""

from __future__ import annotations

import os
import platform
import sys

import wsfast


def describe() -> dict[str, str]:
    """The facts ``info`` prints, as a dict (also used by ``bench`` headers)."""
    if wsfast.implementation == "cython":
        from wsfast import _mask

        simd = _mask.simd_path()
    else:
        simd = "none (pure Python kernels)"
    forced = os.environ.get("WSFAST_ISA")
    from wsfast import connection

    return {
        "wsfast": wsfast.__version__,
        "implementation": wsfast.implementation,
        "connection": f"{connection.implementation} ({connection.ServerConnection.__module__})",
        "kernel instruction set": simd + (f" (WSFAST_ISA={forced})" if forced else ""),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()} ({platform.platform()})",
        "cpu": _cpu_name(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    facts = describe()
    width = max(map(len, facts))
    for key, value in facts.items():
        print(f"{key:<{width}}  {value}")
    if os.environ.get("WSFAST_NO_EXTENSIONS"):
        print(f"{'note':<{width}}  WSFAST_NO_EXTENSIONS is set: pure-Python kernels forced")
    sys.stdout.flush()
    return 0
