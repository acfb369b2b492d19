"""Which build of the asyncio shell is in use, and that the compiled one keeps the Python
one's shape: ``wsfast.asyncio.connection`` exports ``wsfast.asyncio._websocket_c``'s
WebSocket when the compiled kernels are in use (the asyncio tests then exercise it), and
``wsfast.asyncio._websocket_py``'s under ``WSFAST_NO_EXTENSIONS=1``."""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asyncio_helpers import HOST, echo, only_connection, run, uri

import wsfast
import wsfast.asyncio.connection as shell
from wsfast.asyncio import ClientWebSocket, ServerWebSocket, WebSocket, connect, serve
from wsfast.asyncio.exceptions import ConcurrencyError, ConnectionClosedOK


def _compiled() -> tuple[Any, BaseException | None]:
    try:
        return importlib.import_module("wsfast.asyncio._websocket_c"), None
    except ImportError as exc:
        return None, exc


COMPILED, COMPILED_ERROR = _compiled()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "yes", "true", "on"}


def test_exported_shell_follows_the_environment(require_extensions: bool) -> None:
    """The compiled shell is exported whenever the compiled kernels are (CI, wheels); the
    Python one under WSFAST_NO_EXTENSIONS=1."""
    if env_flag("WSFAST_NO_EXTENSIONS") or wsfast.implementation != "cython":
        assert shell.implementation == "python"
        assert WebSocket.__module__ == "wsfast.asyncio._websocket_py"
        return
    if not require_extensions and COMPILED is None:
        assert shell.implementation == "python"
        pytest.skip(f"the compiled shell is not built ({COMPILED_ERROR})")
    assert shell.implementation == "cython"
    assert WebSocket.__module__ == "wsfast.asyncio._websocket_c"
    module = sys.modules[WebSocket.__module__]
    assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
    assert not Path(module.__file__).with_name("_websocket_c.py").exists()


def test_no_extensions_exports_the_python_shell() -> None:
    code = (
        "import wsfast.asyncio as a, wsfast.asyncio.connection as c; "
        "print(c.implementation, c.WebSocket.__module__, "
        "a.ServerWebSocket.__mro__[1] is c.WebSocket)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "WSFAST_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "wsfast.asyncio._websocket_py", "True"]


def test_pxd_declares_exactly_the_slots() -> None:
    """_websocket_c.pxd (the compiled shell's C attributes) matches the __slots__ of each
    class of _websocket_py.py it types."""
    source = importlib.import_module("wsfast.asyncio._websocket_py")
    pxd = Path(source.__file__).with_name("_websocket_c.pxd")
    if not pxd.exists():
        pytest.skip("_websocket_c.pxd is not installed next to the module")
    blocks = re.split(r"^cdef class (\w+):$", pxd.read_text(), flags=re.M)
    classes = dict(zip(blocks[1::2], blocks[2::2], strict=True))
    assert sorted(classes) == ["_Wait", "_WebSocketCore"]
    for name, body in classes.items():
        declared = re.findall(r"^    cdef (?:readonly |public )?[\w]+ (\w+)$", body, re.M)
        assert sorted(declared) == sorted(getattr(source, name).__slots__), name


def test_websockets_are_buffered_protocols_without_a_dict() -> None:
    """Loops check isinstance(protocol, asyncio.BufferedProtocol) to call get_buffer();
    the subclasses add their own slots, and no instance grows a __dict__."""

    async def main() -> None:
        seen: dict[str, Any] = {}

        async def handler(ws: Any) -> None:
            seen["server"] = ws
            await echo(ws)

        async with serve(handler, HOST, 0) as server:
            async with connect(uri(server)) as client:
                await client.send("x")
                assert await client.recv() == "x"
                for ws, cls in ((client, ClientWebSocket), (seen["server"], ServerWebSocket)):
                    assert type(ws) is cls and isinstance(ws, WebSocket)
                    assert isinstance(ws, asyncio.BufferedProtocol)
                    assert not hasattr(ws, "__dict__")
                    with pytest.raises(AttributeError):
                        ws.anything = 1
                    # What broadcast() and the tests read from outside stays readable.
                    assert ws._transport is not None and ws._conn is not None
                    assert ws._loop is asyncio.get_running_loop()
                    assert len(ws._messages) == 0 and ws._reading_paused is False
                    assert ws._dispatching is False and not ws._closed.done()
                    assert isinstance(ws.id, int)

    run(main())


def test_a_subclass_overrides_hooks_and_the_class_attribute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hooks the shell calls (_connection_ended) and the class attribute
    _pause_reading_with_writing are looked up on the instance's class, compiled or not."""
    import wsfast.asyncio.server as server_module

    events: list[str] = []

    class Traced(ServerWebSocket):
        __slots__ = ()
        _pause_reading_with_writing = False

        def _connection_ended(self, exc: Exception | None) -> None:
            events.append("ended")
            super()._connection_ended(exc)

    monkeypatch.setattr(server_module, "ServerWebSocket", Traced)

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                await client.send(b"y")
                assert await client.recv() == b"y"
                (ws,) = server.connections
                assert type(ws) is Traced
                ws.pause_writing()
                assert ws._reading_paused is False  # the override: reading goes on
                ws.resume_writing()
                await client.send(b"z")
                assert await client.recv() == b"z"
        assert events == ["ended"]

    run(main())


def test_recv_twice_cancel_and_send_after_close() -> None:
    """Two recv() at once: the second raises ConcurrencyError; a cancelled recv() leaves the
    message for the next one; send() after close raises ConnectionClosedOK."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                first = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                with pytest.raises(ConcurrencyError):
                    await client.recv()
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                await client.send("again")
                assert await client.recv() == "again"
                # A message that completes a waiting recv() whose task is cancelled before
                # it runs stays queued for the next recv(), and the next one does not wait.
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                frame = bytes([0x81, 4]) + b"kept"  # from the server: unmasked text
                client.get_buffer(len(frame))[: len(frame)] = frame
                client.buffer_updated(len(frame))
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert len(client._messages) == 1
                assert await client.recv() == "kept"
                await client.send("again")
                while not client._messages:
                    await asyncio.sleep(0.001)
                async for message in client:  # async for takes what is queued at once
                    assert message == "again"
                    break
                await client.close()
                with pytest.raises(ConnectionClosedOK):
                    await client.send("late")
                with pytest.raises(ConnectionClosedOK):
                    client.send_nowait("late")

    run(main())


COROUTINE_METHODS = ("recv", "send", "drain", "ping", "close", "wait_closed")


def test_coroutine_methods_look_like_the_python_ones() -> None:
    """Code that decides whether to await a callable (``asyncio.iscoroutinefunction``,
    ``inspect``) sees the compiled shell's coroutine methods as it sees the Python ones:
    ``ws.send`` handed over as a callback is awaited, not called and its coroutine dropped
    (the message never sent); and their signatures can be read."""
    python_shell = importlib.import_module("wsfast.asyncio._websocket_py")

    async def main() -> None:
        from wsfast.connection import ServerConnection

        ws = WebSocket(ServerConnection())
        for name in COROUTINE_METHODS:
            for method in (getattr(WebSocket, name), getattr(ws, name)):
                assert inspect.iscoroutinefunction(method), name
                assert asyncio.iscoroutinefunction(method), name
            expected = inspect.signature(getattr(python_shell.WebSocket, name))
            assert list(inspect.signature(getattr(WebSocket, name)).parameters) == list(
                expected.parameters
            ), name

    run(main())


def test_no_subclass_overrides_a_c_method() -> None:
    """The compiled shell calls the methods _websocket_c.pxd declares ``cdef`` directly: an
    override in a subclass would run in the Python build and be skipped in the compiled one.
    The package's subclasses override only what stays ``def`` (hooks such as
    _connection_ended and _on_request)."""
    source = importlib.import_module("wsfast.asyncio._websocket_py")
    pxd = Path(source.__file__).with_name("_websocket_c.pxd")
    if not pxd.exists():
        pytest.skip("_websocket_c.pxd is not installed next to the module")
    shell = pxd.read_text().split("cdef class _WebSocketCore:")[1]
    c_methods = set(re.findall(r"^    cdef (?:[\w ]+ )?(\w+)\(self\b", shell, re.M))
    assert {"_pump", "_on_closed", "_flush"} <= c_methods  # the pattern reads the file
    assert c_methods <= set(vars(source._WebSocketCore))
    for cls in (source.WebSocket, ServerWebSocket, ClientWebSocket):
        assert not c_methods & set(vars(cls)), cls


@pytest.mark.parametrize("max_queue", [1e3, 16.0, "16"])
def test_max_queue_is_an_int_in_both_builds(max_queue: Any) -> None:
    """The compiled shell keeps max_queue in a C integer: a float is refused there, so the
    Python build refuses it too (rather than one build serving and the other dropping every
    connection)."""

    async def main() -> None:
        from wsfast.connection import ServerConnection

        with pytest.raises(TypeError):
            WebSocket(ServerConnection(), max_queue=max_queue)
        assert WebSocket(ServerConnection(), max_queue=True)._conn is not None  # bool is an int

    run(main())


def test_the_connection_must_be_the_one_wsfast_connection_exports() -> None:
    """Both builds refuse what is not a wsfast.connection.Connection with the same
    TypeError; the compiled shell, whose read path makes C calls on it, also the pure-Python
    connection (wsfast.connection exports the compiled one whenever that shell is in use)."""
    import wsfast._connection_py as pure
    from wsfast.connection import ServerConnection

    async def main() -> None:
        with pytest.raises(TypeError, match=r"Connection, not builtins\.object$"):
            WebSocket(object())  # type: ignore[arg-type]
        if ServerConnection is not pure.ServerConnection:
            # Named with its module: the other build's class has the same name.
            with pytest.raises(TypeError, match=r"not wsfast\._connection_py\.ServerConnection$"):
                WebSocket(pure.ServerConnection())  # type: ignore[arg-type]
        elif COMPILED is not None:  # the Python shell and the compiled connection
            from wsfast._connection_c import ServerConnection as Compiled

            with pytest.raises(TypeError, match=r"not wsfast\._connection_c\.ServerConnection$"):
                WebSocket(Compiled())
        assert WebSocket(ServerConnection())._conn is not None

    run(main())


def test_a_python_subclass_of_the_connection_has_its_overrides_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """receive_data, events, chunks_to_send, the questions of every read and send
    (_is_open, _is_failing, _is_backlogged, _closes_transport) and the sends of a whole
    message (_send_text, _send_binary) are C calls of the compiled shell (cpdef): the
    overrides of a Python subclass of the connection still run, as in the Python build."""
    import wsfast.asyncio.server as server_module

    names = ("receive_data", "events", "chunks_to_send", "_is_open", "_is_failing")
    names += ("_is_backlogged", "_closes_transport", "_send_text", "_send_binary")
    calls = dict.fromkeys(names, 0)
    base: Any = server_module.ServerConnection

    def counted(name: str) -> Any:
        """An override of ``name`` that counts its calls and calls the connection's own."""

        def method(self: Any, *args: Any) -> Any:
            calls[name] += 1
            return getattr(super(Counted, self), name)(*args)

        return method

    # A Python subclass (no __dict__, as the connection's), overriding each of them.
    Counted = type("Counted", (base,), {"__slots__": (), **{n: counted(n) for n in names}})

    monkeypatch.setattr(server_module, "ServerConnection", Counted)

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                await client.send("z")
                assert await client.recv() == "z"
                await client.send(b"z")
                assert await client.recv() == b"z"
                assert type(only_connection(server)._conn) is Counted
        assert all(calls.values()), calls

    run(main())


def test_messages_as_events_or_as_data_of_another_type_are_delivered_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shell asks the connection for bare messages (str or bytes, no event each); a
    message that comes as an event all the same (a subclass's events(), say) or as data of
    another type (an extension's bytearray) is delivered as well, in both builds."""
    import wsfast.asyncio.server as server_module
    from wsfast.events import BinaryMessage

    seen: list[type] = []
    base: Any = server_module.ServerConnection

    class Mixed(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def events(self) -> list[Any]:
            out: list[Any] = []
            for event in super().events():
                if event == b"as an event":
                    event = BinaryMessage(event)
                elif event == b"as a bytearray":
                    event = bytearray(event)
                seen.append(type(event))
                out.append(event)
            return out

    monkeypatch.setattr(server_module, "ServerConnection", Mixed)

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                for message in (b"as an event", b"as a bytearray", b"bare", "text"):
                    await client.send(message)
                    assert await client.recv() == message
                assert type(only_connection(server)._conn) is Mixed
        assert {BinaryMessage, bytearray, bytes, str} <= set(seen), seen

    run(main())


def test_a_subclass_that_skips_init_gets_an_exception_not_a_crash() -> None:
    """A subclass whose __init__ never calls WebSocket.__init__ leaves _conn unset (None,
    compiled): given a transport, it raises AttributeError in both builds. In a child
    process, so that a crash fails this test rather than the run."""
    code = """if True:
        import asyncio
        from wsfast.asyncio import WebSocket

        class Careless(WebSocket):
            __slots__ = ()

            def __init__(self) -> None:
                pass

        async def main() -> None:
            server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            ws = Careless()
            transport.set_protocol(ws)
            try:
                ws.connection_made(transport)
            except AttributeError:
                print("AttributeError")
            transport.abort()
            server.close()

        asyncio.run(asyncio.wait_for(main(), 10))
    """
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["AttributeError"]


def test_recv_right_after_cancelling_a_waiting_recv() -> None:
    """A recv() whose task was cancelled but has not run yet waits no more: a recv() at
    once (here, before that task's cleanup runs) is no ConcurrencyError and gets the next
    message; the cancelled one's cleanup leaves the new wait alone."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                for word in ("next", "again"):
                    waiting = asyncio.ensure_future(client.recv())
                    await asyncio.sleep(0)
                    waiting.cancel()
                    await client.send(word)  # writing is not paused: this does not yield
                    assert not waiting.done()
                    assert await client.recv() == word
                    assert waiting.cancelled()
                second = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                with pytest.raises(ConcurrencyError):  # a real second recv() still is one
                    await client.recv()
                await client.send("last")
                assert await second == "last"

    run(main())


SHELLS = [importlib.import_module("wsfast.asyncio._websocket_py")]
SHELLS += [COMPILED] if COMPILED is not None else []


@pytest.mark.parametrize("python_task", [False, True], ids=["c-task", "python-task"])
@pytest.mark.parametrize("module", SHELLS, ids=lambda module: module.__name__.rsplit(".")[-1])
def test_the_current_task_of_a_loop_is_asyncio_current_task(module: Any, python_task: bool) -> None:
    """The shell's stand-in for asyncio.current_task(loop) (on Python 3.10 and 3.11, the
    dict the C Task writes to as it enters and leaves a step) answers as it does: before
    the loop runs, inside tasks (of the C Task or the Python one), in a callback between
    them, for another loop, and after they end."""
    current = module._current_task
    if sys.version_info < (3, 12) and sys.implementation.name == "cpython":
        assert current is not asyncio.current_task  # the stand-in is what is tested
    loop = asyncio.new_event_loop()
    other = asyncio.new_event_loop()
    seen: dict[str, Any] = {}

    def check(where: str) -> None:
        for each in (loop, other):
            assert current(each) is asyncio.current_task(each), (where, each is loop)
        seen[where] = current(loop)

    async def child() -> Any:
        check("child")
        await asyncio.sleep(0)
        check("child, next step")
        return asyncio.current_task()

    async def main() -> Any:
        check("main")
        loop.call_soon(check, "callback")
        inner = loop.create_task(child())
        await asyncio.sleep(0)
        check("main, next step")
        assert await inner is inner
        check("main, after the child")
        return asyncio.current_task(), inner

    if python_task:
        py_task = asyncio.tasks._PyTask  # type: ignore[attr-defined]
        loop.set_task_factory(lambda loop, coro, **kw: py_task(coro, loop=loop, **kw))
    try:
        check("before")
        outer, inner = loop.run_until_complete(main())
        check("after")
    finally:
        loop.close()
        other.close()
    assert python_task is (type(outer) is asyncio.tasks._PyTask)  # type: ignore[attr-defined]
    assert seen == {
        "before": None,
        "main": outer,
        "callback": None,
        "child": inner,
        "child, next step": inner,
        "main, next step": outer,
        "main, after the child": outer,
        "after": None,
    }
