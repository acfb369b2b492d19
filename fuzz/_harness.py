"""What every harness in ``fuzz/`` shares: reading decisions off a fuzz input, the engine, and
a replay mode that needs no atheris (for sanitizer builds and the test suite).

A harness is a module with ``load()`` (imports the code under test), ``check(data: bytes)``
(raises on a finding) and ``main()``, which calls :func:`run` here.
``python fuzz/NAME.py [libFuzzer flags] [corpus...]`` fuzzes with atheris;
``WSFAST_FUZZ_REPLAY=1`` (or no atheris installed) runs every file of the given corpus
directories once instead and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"



def env_flag(name: str) -> bool:
    """The same reading of boolean switches as setup.py and the tests."""
    return os.environ.get(name, "").strip().lower() in {"1", "yes", "true", "on"}


try:
    if env_flag("WSFAST_FUZZ_REPLAY"):
        raise ImportError("replay mode asked for")
    import atheris
except ImportError:
    atheris = None


def instrumented() -> contextlib.AbstractContextManager[Any]:
    """Wrap the imports of the code under test: atheris then traces its Python lines (the
    pure twins, the handshake, the Python connection); compiled modules are not traced."""
    if atheris is None:
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["wsfast"])


class Input:
    """Decisions read off the front of a fuzz input. Past the end every read gives zeros,
    so any byte string is a valid input (libFuzzer mutates freely)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        pos = self.pos
        self.pos = pos + 1
        return self.data[pos] if pos < len(self.data) else 0

    def uint(self, nbytes: int) -> int:
        return int.from_bytes(self.take(nbytes).ljust(nbytes, b"\0"), "big")

    def take(self, n: int) -> bytes:
        pos = self.pos
        self.pos = pos + n
        return self.data[pos : pos + n]

    def choice(self, options: tuple[Any, ...]) -> Any:
        return options[self.byte() % len(options)]

    def plan(self) -> bytes:
        """A chunking plan: a length byte (mod 16) and that many plan bytes (see :func:`cut`)."""
        return self.take(self.byte() % 16)

    def rest(self) -> bytes:
        pos = self.pos
        self.pos = len(self.data)
        return self.data[pos:]


def encode_plan(plan: bytes) -> bytes:
    """The bytes :meth:`Input.plan` reads back as ``plan``."""
    if len(plan) > 15:
        raise ValueError("a plan has at most 15 bytes")
    return bytes([len(plan)]) + plan


def chunk_size(b: int) -> int:
    """One plan byte as a chunk length: mostly small (1-160), else up to ~16 KiB."""
    if b < 160:
        return b + 1
    return (b - 159) * 170


def cut(data: bytes, plan: bytes, max_chunks: int = 48) -> list[bytes]:
    """``data`` in the chunks ``plan`` describes (cycling through it); one chunk if empty.
    The last of ``max_chunks`` chunks takes what is left (a bound on the work per input)."""
    if not plan:
        return [data]
    chunks = []
    pos = 0
    i = 0
    while pos < len(data):
        n = chunk_size(plan[i % len(plan)]) if i < max_chunks - 1 else len(data) - pos
        chunks.append(data[pos : pos + n])
        pos += n
        i += 1
    return chunks or [b""]


def as_buffer(chunk: bytes, kind: int) -> Any:
    """The same bytes as another buffer type (writable but for bytes): 0 bytes, 1 bytearray,
    2 a memoryview that starts at an odd offset of a larger buffer (unaligned, not at the
    start of its object), 3 a memoryview of a heap block of exactly these bytes.

    Bytes and bytearrays keep a NUL after their last byte, inside their allocation: reading
    or writing one byte past their end is invisible to AddressSanitizer. The last kind ends
    where its allocation ends (a ctypes array; with ``PYTHONMALLOC=malloc`` one malloc block
    of the exact size when longer than 16 bytes), so that a sanitizer build sees it."""
    kind %= 4
    if kind == 0:
        return chunk
    if kind == 1:
        return bytearray(chunk)
    if kind == 3:
        return memoryview((ctypes.c_ubyte * len(chunk)).from_buffer_copy(chunk)).cast("B")
    pad = 1 + len(chunk) % 31
    return memoryview(bytearray(pad) + chunk + b"\xaa")[pad : pad + len(chunk)]


_BYTES_HEADER = sys.getsizeof(b"") - 1  # offset of a bytes object's data (CPython)


def terminated(data: bytes) -> bool:
    """Is the NUL that CPython keeps after a bytes object's last byte still there? A compiled
    function that writes one byte past the end of the bytes it returns overwrites it, inside
    the allocation, where AddressSanitizer does not look."""
    return ctypes.string_at(id(data) + _BYTES_HEADER + len(data), 1) == b"\0"


def check_isa() -> None:
    """Refuse to run when ``WSFAST_ISA`` asks for a path the kernels do not use (a CPU
    without it, or a typo), so that a run never tests another path than it says."""
    from wsfast import _mask

    forced = os.environ.get("WSFAST_ISA", "").strip().lower()
    if forced and forced != _mask.simd_path():
        raise SystemExit(f"WSFAST_ISA={forced} asked, but the kernels use {_mask.simd_path()}")


class Finding(AssertionError):
    """A harness check failed: the compiled build and its twin disagree, or a rule broke."""


def expect(condition: object, message: str, *details: object) -> None:
    if not condition:
        raise Finding(" | ".join([message, *map(repr, details)]))


def corpus_files(paths: list[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path


def replay(check: Callable[[bytes], None], paths: list[str]) -> int:
    """Run ``check`` once on every file under ``paths``; the number of inputs run."""
    count = 0
    for path in corpus_files(paths):
        try:
            check(path.read_bytes())
        except BaseException:
            print(f"FAILED on {path}", file=sys.stderr)
            raise
        count += 1
    return count


def run(check: Callable[[bytes], None], load: Callable[[], None], name: str,
        argv: list[str] | None = None) -> None:
    """The harness's command line: atheris with libFuzzer's flags, or a replay.

    ``load`` imports the code under test on the first input, once the engine has started:
    atheris then sees all the Python code it instruments (imported before, some of it is
    lost), and extensions built for native coverage (``-fsanitize=fuzzer-no-link``, see
    ``fuzz/run.py --native``) find atheris' libFuzzer loaded, globally with
    ``WSFAST_FUZZ_NATIVE=1``. That first input takes the import time too: give libFuzzer a
    ``-timeout`` of a minute on a slow machine.
    """
    argv = list(sys.argv if argv is None else argv)
    loaded = False

    def target(data: bytes) -> None:
        nonlocal loaded
        if not loaded:
            load()
            loaded = True
        check(data)

    if atheris is not None:
        if env_flag("WSFAST_FUZZ_NATIVE"):
            sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)
        atheris.Setup(argv, target)
        atheris.Fuzz()
        return
    paths = [arg for arg in argv[1:] if not arg.startswith("-")]
    if not paths:
        paths = [str(CORPUS_DIR / name)]
    load()
    count = replay(check, paths)
    print(f"{name}: replayed {count} inputs, no finding")
