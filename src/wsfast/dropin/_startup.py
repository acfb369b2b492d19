"""Applies ``WSFAST_PATCH`` at interpreter start-up.

Imported by the one line of ``wsfast_patch.pth`` (installed into site-packages with wsfast)
only when ``WSFAST_PATCH`` is set and not empty, so an interpreter without it pays one
environment lookup. ``WSFAST_PATCH=all`` patches every known library, ``WSFAST_PATCH=wsproto,
tornado`` the named ones; ``0``, ``none`` or ``off`` nothing. Child processes inherit the
variable, and so the patches. ``WSFAST_PATCH_REPORT=PATH`` writes, at exit, what was patched,
what :func:`wsfast.dropin.verify` found and the adapter call counts (with
``WSFAST_PATCH_STATS=1``) to ``PATH.<pid>.json``, for test harnesses.
"""

from __future__ import annotations

import os
import sys

__all__ = ["apply", "names_from_env"]


def names_from_env(value: str | None) -> list[str]:
    """The library names that a ``WSFAST_PATCH`` value asks for (empty: none)."""
    value = (value or "").strip()
    if value.lower() in ("", "0", "none", "off", "no", "false"):
        return []
    if value.lower() in ("1", "yes", "true", "on"):
        return ["all"]
    return [name.strip() for name in value.split(",") if name.strip()]


def apply() -> list[str]:
    """Patch what ``WSFAST_PATCH`` names; a bad value is reported on stderr, never raised."""
    names = names_from_env(os.environ.get("WSFAST_PATCH"))
    if not names:
        return []
    report = os.environ.get("WSFAST_PATCH_REPORT")
    if report:
        import atexit

        atexit.register(_write_report, report)
    try:
        from ._core import patch

        return patch(*names)
    except Exception as exc:  # never stop the interpreter from starting
        print(f"wsfast: WSFAST_PATCH={os.environ['WSFAST_PATCH']!r} not applied: {exc}",
              file=sys.stderr)
        return []


def _write_report(path: str) -> None:
    import json

    from ._core import calls, patched, status, verify

    data = {
        "pid": os.getpid(),
        "argv": sys.argv,
        "patched": patched(),
        "problems": verify(),
        "calls": calls(),
        "status": status(),
    }
    with open(f"{path}.{os.getpid()}.json", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str)


apply()
