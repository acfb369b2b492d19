"""The fuzz harnesses of ``fuzz/`` as tests: every checked-in seed passes every harness's
checks (the compiled build against its twin), and the seed corpora are what ``fuzz/seeds.py``
writes. Fuzzing itself is ``python fuzz/run.py`` (atheris); nothing here needs atheris.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

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
    """The same seeds, byte for byte; compressed sessions only by name, since another zlib
    may compress the same messages into other bytes."""
    seeds_module = importlib.import_module("seeds")
    written = {path.name: path.read_bytes() for path in seeds(name)}
    fresh = dict(seeds_module.CORPORA[name]())
    assert fresh.keys() == written.keys()
    for seed, data in fresh.items():
        assert "deflate" in seed or data == written[seed], seed


def test_harness_inputs_decode_any_bytes(request: pytest.FixtureRequest) -> None:
    """Any byte string is a valid input: short, empty and odd ones are checked, not refused."""
    for name in HARNESSES:
        module = harness(name, request)
        for data in (b"", b"\x00", b"\xff" * 3, bytes(range(256)), b"\x01\x00\x00\x0f" * 9):
            module.check(data)


def _broken(module: ModuleType, name: str, replacement: object) -> SimpleNamespace:
    """``module``'s names, with ``name`` replaced: a compiled build with a planted bug."""
    names = {key: getattr(module, key) for key in dir(module) if not key.startswith("__")}
    return SimpleNamespace(**{**names, name: replacement})


def _off_by_one_mask(data: object, mask: object, offset: int = 0) -> bytes:
    out = bytearray(wsfast.pure.apply_mask(data, mask, offset))
    if len(out) > 64:
        out[64] ^= 1
    return bytes(out)


def _writes_past_the_end(data: object, mask: object, offset: int = 0) -> bytes:
    """apply_mask writing one byte past its result: over the NUL CPython keeps there."""
    out = bytes(wsfast.pure.apply_mask(data, mask, offset))  # a fresh object of our own
    ctypes.memmove(id(out) + sys.getsizeof(b"") - 1 + len(out), b"x", 1)
    return out


def _no_surrogate_check(data: bytes) -> bool:
    return wsfast.pure.validate_utf8(bytes(data).replace(b"\xed\xa0\x80", b"abc"))


class _LastFrameLost:
    """A parser that loses the last frame of every feed."""

    def __init__(self, **kwargs: object) -> None:
        self._parser = wsfast.pure.FrameParser(**kwargs)

    def feed(self, data: object) -> list[object]:
        return self._parser.feed(data)[:-1]

    def __getattr__(self, name: str) -> object:
        return getattr(self._parser, name)


class _PingsLost:
    """A server connection whose ``events()`` loses every Ping."""

    def __init__(self, **kwargs: object) -> None:
        from wsfast import _connection_py

        self._conn = _connection_py.ServerConnection(**kwargs)

    def events(self) -> list[object]:
        return [e for e in self._conn.events() if type(e).__name__ != "Ping"]

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


class _FramesUnshared:
    """A server connection whose ``frame_message`` masks its frames as a client's would."""

    def __init__(self, **kwargs: object) -> None:
        from wsfast import _connection_py

        self._conn = _connection_py.ServerConnection(**kwargs)

    def frame_message(self, data: object) -> bytes:
        frame = bytearray(self._conn.frame_message(data))
        frame[1] |= 0x80
        return bytes(frame)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


@pytest.mark.parametrize(
    ("name", "function", "replacement", "seed"),
    [
        ("mask", "apply_mask", _off_by_one_mask, "len-127"),
        ("mask", "apply_mask", _writes_past_the_end, "len-127"),
        ("utf8", "validate_utf8", _no_surrogate_check, "surrogate"),
        ("frames", "FrameParser", _LastFrameLost, "masked-fragments-ping"),
        ("connection", "ServerConnection", _PingsLost, "plain-server-chat"),
        ("connection", "ServerConnection", _FramesUnshared, "plain-server-chat-echo-chunks"),
    ],
)
def test_harnesses_catch_a_planted_bug(
    name: str, function: str, replacement: object, seed: str, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = harness(name, request)
    data = (FUZZ / "corpus" / name / seed).read_bytes()
    module.check(data)
    monkeypatch.setattr(module, "compiled", _broken(module.compiled, function, replacement))
    with pytest.raises(AssertionError):
        module.check(data)


def test_fuzzing_takes_every_simd_path(request: pytest.FixtureRequest) -> None:
    """fuzz/run.py fuzzes masking on every path the kernels take here (the default one and
    each one WSFAST_ISA can ask for), and fuzz/sanitize.sh and fuzz/coverage.sh replay the
    corpora on the paths its --isas prints."""
    if wsfast.implementation != "cython":
        pytest.skip("the SIMD paths are the compiled build's")
    request.getfixturevalue("compiled")
    run = importlib.import_module("run")
    isas = run.available_isas()
    assert run.simd_path("") in isas
    for level in ("scalar", "sse2", "neon", "avx2", "avx512"):
        assert (level in isas) == (run.simd_path(level) == level), (level, isas)
    assert set(isas) <= {isa for name, isa, _ in run.DEFAULT_RUNS if name == "mask"}
    printed = subprocess.run(
        [sys.executable, str(FUZZ / "run.py"), "--isas"], capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    assert printed == isas[::-1]
    for script in ("sanitize.sh", "coverage.sh"):
        assert 'isas=$("$python" "$root/fuzz/run.py" --isas)' in (FUZZ / script).read_text()
