"""The fuzz harnesses of ``fuzz/`` as tests: every checked-in seed passes every harness's
checks (the compiled build against its twin), and the seed corpora are what ``fuzz/seeds.py``
writes. Fuzzing itself is ``python fuzz/run.py`` (atheris); nothing here needs atheris.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

import wsfast

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = ("frames", "utf8", "mask", "handshake", "connection")

os.environ["WSFAST_FUZZ_REPLAY"] = "1"  # the harnesses must not start atheris in here
if str(FUZZ) not in sys.path:
    sys.path.append(str(FUZZ))


def harness(name: str, request: pytest.FixtureRequest) -> ModuleType:
    if wsfast.implementation != "cython":
        pytest.skip("the harnesses check the compiled build against its twin")
    request.getfixturevalue("compiled")  # skips, or fails, as the rest of the suite does
    module = importlib.import_module(name)
    module.load()
    return module


def seeds(name: str) -> list[Path]:
    return sorted((FUZZ / "corpus" / name).iterdir())


@pytest.mark.parametrize("name", HARNESSES)
def test_every_seed_passes(name: str, request: pytest.FixtureRequest) -> None:
    module = harness(name, request)
    files = seeds(name)
    assert len(files) >= 20
    for path in files:
        module.check(path.read_bytes())


@pytest.mark.parametrize("name", HARNESSES)
def test_seeds_are_what_seeds_py_writes(name: str) -> None:
    seeds_module = importlib.import_module("seeds")
    written = {path.name: path.read_bytes() for path in seeds(name)}
    assert dict(seeds_module.CORPORA[name]()) == written


def test_harness_inputs_decode_any_bytes(request: pytest.FixtureRequest) -> None:
    """Any byte string is a valid input: short, empty and odd ones are checked, not refused."""
    for name in HARNESSES:
        module = harness(name, request)
        for data in (b"", b"\x00", b"\xff" * 3, bytes(range(256)), b"\x01\x00\x00\x0f" * 9):
            module.check(data)
