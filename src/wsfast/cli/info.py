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
    from wsfast.asyncio import connection as shell

    return {
        "wsfast": wsfast.__version__,
        "implementation": wsfast.implementation,
        "connection": f"{connection.implementation} ({connection.ServerConnection.__module__})",
        "asyncio shell": f"{shell.implementation} ({shell.WebSocket.__module__})",
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
    print()
    print("drop-in patches (wsfast.patch(), python -m wsfast run, WSFAST_PATCH):")
    for line in dropin_lines():
        print("  " + line)
    sys.stdout.flush()
    return 0


def dropin_lines() -> list[str]:
    """One line per library wsfast can patch: installed version and what a patch would do.

    The library's modules are imported to see what they run (compiled or Python code), then
    the patch is applied and undone; ``websockets.legacy`` is never imported (it warns)."""
    import importlib
    import warnings

    from wsfast.dropin import _core

    pth = _pth_installed()
    lines = [f"start-up hook (wsfast_patch.pth): {'installed' if pth else 'NOT installed'}"]
    was = set(_core.patched())
    for name, host in _core.registry().items():
        version = _core.installed_version(host)
        if version is None:
            lines.append(f"{name:<17} not installed")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module in host.modules:
                if module.startswith("websockets.legacy"):
                    continue
                try:
                    importlib.import_module(module)
                except Exception as exc:  # a missing optional dependency of the host
                    lines.append(f"{name:<17} {version}: cannot import {module} ({exc})")
                    break
            else:
                _core.patch(name)
                state = _core.status()[name]
                if name not in was:
                    _core.unpatch(name)
                if state["refused"]:
                    lines.append(f"{name:<17} {version}: left unpatched: {state['refused']}")
                    continue
                replaced = ", ".join(state["replaced"]) or "nothing"
                lines.append(f"{name:<17} {version}: would patch {replaced}")
                for key, reason in state["left alone"].items():
                    lines.append(f"{'':<17} leaves {key} alone: {reason}")
    return lines


def _pth_installed() -> bool:
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return any(os.path.exists(os.path.join(d, "wsfast_patch.pth")) for d in dirs)
