"""Helpers shared by the tests of the scripts in bench/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_script(name: str) -> ModuleType:
    """``bench/<name>.py`` as module ``bench_<name>``; the test is skipped where the
    repository's bench/ is not beside tests/ (e.g. a wheel's test run)."""
    script = BENCH / f"{name}.py"
    if not script.exists():
        pytest.skip(f"bench/{name}.py is not beside tests/")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
