"""``python -m wsfast run [--patch NAMES] COMMAND ARGS...``: run a program with the patches.

``COMMAND`` is a script (``app.py``), ``-m module``, or a console script found on ``PATH``
(``uvicorn app:app``). It runs in this interpreter, as ``python script`` / ``python -m`` would
run it, after ``wsfast.patch()``. ``WSFAST_PATCH`` is set in the environment too, so child
processes (uvicorn ``--workers`` and ``--reload``, multiprocessing) are patched at their
start-up by the ``wsfast_patch.pth`` that wsfast installs into site-packages.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import shutil
import sys
from typing import NoReturn

__all__ = ["main", "parse"]


USAGE = """usage: python -m wsfast run [--patch NAMES] (SCRIPT | -m MODULE | PROGRAM) [ARGS...]

Runs SCRIPT, -m MODULE or a console script PROGRAM found on PATH (e.g. uvicorn) in this
interpreter with wsfast's drop-in patches applied; child processes are patched too.

  --patch NAMES  libraries to patch: all (default, or $WSFAST_PATCH) or a comma list,
                 e.g. wsproto,tornado; 'python -m wsfast info' lists them
"""


def parse(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(names, command)`` from the arguments after ``run``; None when they ask for help.
    Raises SystemExit (status 2, with the usage) for an unknown option or a missing value."""
    names = os.environ.get("WSFAST_PATCH") or "all"
    args = list(argv)
    while args and args[0].startswith("--") and args[0] != "--":
        option = args.pop(0)
        if option == "--help":
            return None
        if option.startswith("--patch="):
            names = option.split("=", 1)[1]
        elif option == "--patch":
            if not args:
                _usage_error("--patch needs a value (all, or a comma list of libraries)")
            names = args.pop(0)
        else:
            _usage_error(f"unknown option {option!r}")
    if args[:1] in (["--"],):
        args = args[1:]
    if args[:1] == ["-h"]:
        return None
    return names, args


def _usage_error(message: str) -> NoReturn:
    print(f"wsfast run: {message}\n\n{USAGE}", file=sys.stderr)
    raise SystemExit(2)


def _console_script(name: str) -> str | None:
    """The Python file behind a console script on PATH (None if it is not a Python script)."""
    path = shutil.which(name)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return None
    return path if first.startswith(b"#!") and b"python" in first else None


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print(USAGE)
        return 0
    spec, command = parsed
    if not command:
        _usage_error("nothing to run")
    from wsfast.dropin import _core, _startup, patch

    names = _startup.names_from_env(spec)
    try:
        _core.check_names(names)
    except ValueError as exc:
        _usage_error(f"cannot patch {spec!r}: {exc}")
    os.environ["WSFAST_PATCH"] = ",".join(names) if names else "0"
    if names:
        patch(*names)
    # sys.path[0] as `python SCRIPT` / `python -m MODULE` would set it: the script's directory
    # or the working directory, not the directory this command was started from (or found in).
    safe_path = getattr(sys.flags, "safe_path", False)
    if command[0] == "-m":
        if len(command) < 2:
            _usage_error("-m needs a module name")
        if not safe_path:
            sys.path[0] = os.getcwd()
        try:
            found = importlib.util.find_spec(command[1]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            print(f"wsfast run: No module named {command[1]!r}", file=sys.stderr)
            return 1
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        return 0
    target = command[0]
    if not os.path.exists(target):
        script = _console_script(target)
        if script is None:
            print(f"wsfast run: {target!r} is not a file, nor a Python program on PATH",
                  file=sys.stderr)
            return 2
        target = script
    sys.argv = [target, *command[1:]]
    if not safe_path:
        where = os.path.abspath(target)
        sys.path[0] = where if os.path.isdir(where) else os.path.dirname(where)
    runpy.run_path(target, run_name="__main__")
    return 0
