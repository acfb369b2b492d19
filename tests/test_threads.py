"""Threads: what may be shared, and what happens when the rules are broken.

- The kernel functions (``apply_mask``, ``validate_utf8``, ``parse_header``, ``build_header``)
  keep no state: any number of threads may call them on shared inputs.
- A ``FrameParser``, ``Utf8Validator`` or connection belongs to one stream, used by one thread
  at a time. Breaking that rule gives unspecified results or a ``RuntimeError``, never a crash
  or corrupted memory: these tests break it on purpose and check that the process survives
  and every call ends in a result or a Python exception.
- On a free-threaded CPython, importing wsfast must leave the GIL disabled (the extension
  modules declare ``freethreading_compatible`` only because of the above).

``WSFAST_THREAD_ROUNDS`` scales the stress loops (default 1; the free-threaded CI step runs
more). Memory errors show up as a crash of the test process, so every test here is a check.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from connection_support import open_pair

import wsfast
import wsfast.pure
from wsfast.cli.bench import masked_stream

ROUNDS = max(1, int(os.environ.get("WSFAST_THREAD_ROUNDS", "1")))
THREADS = 4
MASK = b"\x37\xfa\x21\x3d"
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def run_threads(target: Callable[[int], None], count: int = THREADS) -> None:
    """Run ``target(i)`` on ``count`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def masked_frames(sizes: list[int], seed: int = 0) -> tuple[bytes, list[bytes]]:
    """Masked binary frames (as a client sends them) of the given payload sizes."""
    parts = [masked_stream(1, size, seed + i) for i, size in enumerate(sizes)]
    return b"".join(wire for wire, _ in parts), [p for _, (p,) in parts]


# --- stateless kernels, shared inputs -------------------------------------------------------


def test_kernels_shared_between_threads(impl: ModuleType) -> None:
    data = bytes(range(256)) * 1200  # 300 KiB: the compiled kernels release the GIL
    expected = wsfast.pure.apply_mask(data, MASK)
    text = ("héllo wörld ✓ " * 20000).encode()
    bad = text[:-1] + b"\xff"
    header = impl.build_header(2, 70000, mask=MASK)

    def work(i: int) -> None:
        for _ in range(20 * ROUNDS):
            assert impl.apply_mask(data, MASK) == expected
            assert impl.validate_utf8(text) and not impl.validate_utf8(bad)
            h = impl.parse_header(header)
            assert h is not None and h.length == 70000 and h.mask == MASK
            buf = bytearray(data)
            impl.apply_mask_inplace(buf, MASK)
            assert buf == expected

    run_threads(work)


def test_one_parser_per_thread(impl: ModuleType) -> None:
    wire, payloads = masked_frames([0, 5, 125, 126, 4000, 65536, 300_000] * 3)

    def work(i: int) -> None:
        for _ in range(5 * ROUNDS):
            parser = impl.FrameParser(require_mask=True)
            frames = []
            step = 1000 + 777 * i  # every thread cuts the stream differently
            for start in range(0, len(wire), step):
                frames += parser.feed(wire[start : start + step])
            assert [f.payload for f in frames] == payloads

    run_threads(work)


# --- one object, many threads: unspecified results, never a crash ---------------------------


PARSER_RACE = """
import sys, threading
sys.path.insert(0, {tests!r})
from test_threads import run_threads
from wsfast import ProtocolError
import {module} as impl
chunk = bytes(4 << 20)  # a masked payload this large is unmasked with the GIL released
outcomes = {{"frames": 0, "busy": 0, "protocol": 0}}
for _ in range({reps}):
    parser = impl.FrameParser(require_mask=True)
    parser.feed(impl.build_header(2, 4 * len(chunk) + 1, mask=b"abcd"))
    def work(i):
        for _ in range(2):
            try:
                outcomes["frames"] += len(parser.feed(chunk))
            except RuntimeError:
                outcomes["busy"] += 1
            except ProtocolError:
                outcomes["protocol"] += 1
            parser.pending_payload(len(chunk))
            parser.pending
    run_threads(work)
print(outcomes)
"""


def test_one_parser_fed_from_many_threads(impl: ModuleType) -> None:
    """Four threads feed the payload of one large frame to the same parser. Each feed()
    returns frames or raises (RuntimeError when it meets another feed() still running,
    ProtocolError once the bytes interleave into a bad frame); memory stays intact. (Before
    the parser guarded itself, two feeds unmasking into the same payload at once overran it:
    a segmentation fault within a few rounds.) Run in a child process, so that a crash is
    reported as one."""
    code = PARSER_RACE.format(
        tests=os.path.dirname(__file__),
        module=impl.__name__,
        reps=(30 if impl.__name__ == "wsfast._compiled" else 3) * ROUNDS,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stdout}{done.stderr}"


def test_feed_inside_feed_raises(compiled: ModuleType) -> None:
    """A feed() that starts while another is still running on the same parser raises
    RuntimeError (compiled parser). Deterministic version: the buffer's own ``__buffer__``
    calls feed() again while the outer call holds the parser."""
    if sys.version_info < (3, 12):
        pytest.skip("Python classes implement the buffer protocol from 3.12 on")
    parser = compiled.FrameParser(require_mask=False)

    class Reentrant:
        def __buffer__(self, flags: int) -> memoryview:
            with pytest.raises(RuntimeError, match="another feed"):
                parser.feed(b"\x82\x00")
            return memoryview(b"\x82\x01x")

    frames = parser.feed(Reentrant())
    assert [f.payload for f in frames] == [b"x"]
    assert [f.payload for f in parser.feed(b"\x82\x01y")] == [b"y"]  # usable afterwards


def test_one_validator_fed_from_many_threads(impl: ModuleType) -> None:
    text = ("αβγ δ " * 60000).encode()  # 360 KiB: the compiled validator releases the GIL
    validator = impl.Utf8Validator()

    def work(i: int) -> None:
        for _ in range(10 * ROUNDS):
            assert validator.feed(text) in (True, False)
            assert 0 <= validator.feed_count(text) <= len(text)
            validator.finish()
            if i == 0:
                validator.reset()

    run_threads(work)
    validator.reset()
    assert validator.feed(b"ok") and validator.finish()


# --- connections ----------------------------------------------------------------------------


def test_one_connection_per_thread(connection_module: ModuleType) -> None:
    def work(i: int) -> None:
        client, server = open_pair(connection_module)
        for n in range(300 * ROUNDS):
            message = f"{i}:{n}:" + "é" * (n % 50)
            client.send_text(message)
            server.receive_data(client.data_to_send())
            (event,) = server.events()
            assert event.data == message
            server.send_binary(message.encode())
            client.receive_data(server.data_to_send())
            (event,) = client.events()
            assert event.data == message.encode()
        client.close()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        assert server.state.name == client.state.name == "CLOSED"

    run_threads(work)


def test_one_connection_shared_by_threads(connection_module: ModuleType) -> None:
    """Senders, a reader and a drainer on one server connection at once: every call ends in a
    result or a Python exception, the process survives, and the connection still closes."""
    client, server = open_pair(connection_module)
    incoming = []
    for n in range(200):
        client.send_text(f"m{n}")
        incoming.append(client.data_to_send())
    sent: list[bytes] = []

    def work(i: int) -> None:
        for n in range(200 * ROUNDS):
            if i == 0:
                server.receive_data(incoming[n % len(incoming)])
                server.events()
            elif i == 1:
                sent.append(server.data_to_send())
                server.state  # noqa: B018
                server.should_close_transport  # noqa: B018
            else:
                server.send_text(f"t{i}:{n}")
                server.send_ping(b"p")

    run_threads(work)
    server.close(1000, "done")
    sent.append(server.data_to_send())
    stream = b"".join(sent)
    frames = wsfast.FrameParser(require_mask=False).feed(stream)
    assert frames[-1].opcode == wsfast.Opcode.CLOSE
    texts = [f.payload for f in frames if f.opcode == wsfast.Opcode.TEXT]
    assert all(t.startswith(b"t") for t in texts)
    if connection_module.__name__.endswith("_c"):
        # Compiled, each call is atomic (the GIL, or the critical section without one):
        # no frame is lost or torn apart by another thread's call.
        assert len(texts) == (THREADS - 2) * 200 * ROUNDS
    else:
        # As Python, a send racing with data_to_send() may land in the list being drained
        # after it was joined: lost, but whole frames only (the stream parsed above).
        assert len(texts) <= (THREADS - 2) * 200 * ROUNDS


def test_public_connection_methods_are_critical_sections() -> None:
    """Every public method and property of the classes compiled from this source (the
    ``cdef class`` declarations of ``_connection_c.pxd``) is decorated with
    ``@cython.critical_section``, so the compiled connection takes its lock on a free-threaded
    build. A method added without it would race on the C attributes."""
    module = importlib.import_module("wsfast._connection_py")
    source = inspect.getsource(module)
    # The classes compiled as cdef classes are those the .pxd declares (installed beside it).
    pxd = Path(module.__file__ or "").with_name("_connection_c.pxd")
    if pxd.exists():
        compiled = set(re.findall(r"^cdef class (\w+)", pxd.read_text(encoding="utf-8"), re.M))
    else:
        compiled = {"Connection", "ServerConnection", "ClientConnection"}
    classes = {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    assert compiled <= classes, compiled - classes
    missing = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef) or node.name not in compiled:
            continue
        for item in node.body:
            if not isinstance(item, ast.FunctionDef):
                continue
            if item.name.startswith("_") and item.name != "__init__":
                continue
            names = [ast.unparse(d) for d in item.decorator_list]
            if "classmethod" in names or "staticmethod" in names:
                continue
            if "cython.critical_section" not in names:
                missing.append(f"{node.name}.{item.name}")
    assert not missing, f"not decorated with @cython.critical_section: {missing}"


# The compiled kernels' classes: those that hold a stream's state, and the values they return
# (immutable once built; nothing to guard). A new class must be put in one of the two sets.
KERNEL_STATEFUL = {"FrameParser", "Utf8Validator"}
KERNEL_VALUES = {"Frame", "FrameHeader"}


def kernel_sources() -> list[Path]:
    """The ``.pyx`` sources of the compiled kernels: next to the imported package (a checkout
    or an editable install), else in ``src/`` beside these tests (an unpacked sdist)."""
    for where in (Path(wsfast.__file__).parent, Path(__file__).parent.parent / "src" / "wsfast"):
        found = sorted(where.glob("_*.pyx"))
        if found:
            return found
    pytest.skip("the kernels' .pyx sources are not here (an installed wheel without them)")


def unguarded_members(source: str) -> tuple[set[str], list[str]]:
    """The ``cdef class`` names in a ``.pyx`` source, and its public members (``__init__``,
    ``def``, ``cpdef`` and properties of the stateful classes) whose body does not enter
    ``cython.critical_section(self)``."""
    classes: set[str] = set()
    missing: list[str] = []
    lines = source.splitlines()
    current = None
    for i, line in enumerate(lines):
        if line and not line[0].isspace():
            match = re.match(r"cdef class (\w+)", line)
            current = match.group(1) if match else None
            if current:
                classes.add(current)
            continue
        if current not in KERNEL_STATEFUL:
            continue
        match = re.match(r"    (?:def|cpdef [\w ]*?) ?(\w+)\(", line)
        if not match or (match.group(1).startswith("_") and match.group(1) != "__init__"):
            continue
        body = []
        for later in lines[i + 1 :]:
            if later.strip() and len(later) - len(later.lstrip()) <= 4:
                break
            body.append(later)
        if not any("with cython.critical_section(self)" in b for b in body):
            missing.append(f"{current}.{match.group(1)}")
    return classes, missing


def test_public_kernel_members_are_critical_sections() -> None:
    """Every public method and property of ``FrameParser`` and ``Utf8Validator`` enters the
    object's critical section (a per-object lock on a free-threaded build, nothing on a GIL
    build): a member added without it could read an object attribute that another thread
    is replacing, a use after free once the GIL is gone."""
    classes: set[str] = set()
    missing: list[str] = []
    for path in kernel_sources():
        found, unguarded = unguarded_members(path.read_text(encoding="utf-8"))
        classes |= found
        missing += unguarded
    assert classes == KERNEL_STATEFUL | KERNEL_VALUES, (
        f"classify the new compiled classes in test_threads.py: {classes}"
    )
    assert not missing, f"public members outside cython.critical_section(self): {missing}"


def test_the_member_check_sees_a_missing_guard() -> None:
    source = textwrap.dedent(
        """
        cdef class FrameParser:
            def __init__(self):
                with cython.critical_section(self):
                    pass

            @property
            def limit(self):
                return self._limit

            cpdef bint finish(self) noexcept:
                return True

            cdef int _private(self):
                return 0
        """
    )
    assert unguarded_members(source) == (
        {"FrameParser"},
        ["FrameParser.limit", "FrameParser.finish"],
    )


# --- free-threaded CPython ------------------------------------------------------------------


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython")
def test_import_keeps_the_gil_disabled(require_extensions: bool) -> None:
    code = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("error")  # "the GIL has been enabled" is a RuntimeWarning
        import wsfast, wsfast.asyncio, wsfast.connection
        mods = ["wsfast._mask", "wsfast._utf8", "wsfast._frames", "wsfast._connection_c"]
        loaded = [m for m in mods if m in sys.modules]
        print(wsfast.implementation, wsfast.connection.implementation, len(loaded))
        sys.exit(3 if sys._is_gil_enabled() else 0)
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHON_GIL", "WSFAST_NO_EXTENSIONS"}}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if require_extensions:
        assert done.stdout.split() == ["cython", "cython", "4"], done.stdout


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython")
def test_the_python_connection_drained_while_threads_send() -> None:
    """Run as Python on a free-threaded build, each public call holds the connection's lock
    (wsfast._nocython): data_to_send() racing with senders neither crashes the interpreter
    (``b"".join`` over a list another thread appends to did, on 3.13t), nor raises, nor
    loses a frame."""
    connection_module = importlib.import_module("wsfast._connection_py")
    for _ in range(20 * ROUNDS):
        _client, server = open_pair(connection_module)
        sent: list[bytes] = []

        def work(i: int, server: object = server, sent: list[bytes] = sent) -> None:
            for n in range(500):
                if i == 0:
                    sent.append(server.data_to_send())  # type: ignore[attr-defined]
                else:
                    server.send_text(f"t{i}:{n}")  # type: ignore[attr-defined]

        run_threads(work)
        sent.append(server.data_to_send())  # type: ignore[attr-defined]
        frames = wsfast.FrameParser(require_mask=False).feed(b"".join(sent))
        assert len(frames) == (THREADS - 1) * 500
