"""A waiting recv() resumes at the end of the read that delivered its message, not one pass
of the loop later; and what it awaits behaves as an asyncio future does."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import pytest
from asyncio_helpers import HOST, echo, run, uri

from wsfast.asyncio import WebSocket, connect, serve

Wait: Any = sys.modules[WebSocket.__module__]._Wait

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def server_frame(payload: bytes) -> bytes:
    """A whole unmasked binary frame, as a server sends it (payload < 126 bytes)."""
    return bytes([0x82, len(payload)]) + payload


def feed(ws: Any, data: bytes) -> None:
    """Hand ``data`` to the WebSocket as one read of its transport would."""
    ws.get_buffer(len(data))[: len(data)] = data
    ws.buffer_updated(len(data))


async def read_from_the_loop(
    client: Any, data: bytes, waiting: asyncio.Future[Any], *after: Callable[[], object]
) -> bool:
    """Hand ``data`` to ``client`` from a loop callback (no task running), with the
    callbacks ``after`` queued behind it; whether ``waiting`` was done when the read
    returned."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def from_the_loop() -> None:
        feed(client, data)
        done.set_result(waiting.done())

    loop.call_soon(from_the_loop)
    for callback in after:
        loop.call_soon(callback)
    return await asyncio.wait_for(done, 5)


def test_a_read_resumes_the_waiting_recv_before_returning() -> None:
    """A read from the loop (no task running) completes the waiting recv() and runs its
    task at once, in the task's own context; the callback's context is left alone."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                seen: list[Any] = []

                async def receiver() -> bytes:
                    request_id.set("receiver")
                    message = await client.recv()
                    seen.append(request_id.get())
                    return message

                waiting = asyncio.ensure_future(receiver())
                await asyncio.sleep(0)
                assert client._waiter is not None
                done = asyncio.get_running_loop().create_future()

                def from_the_loop() -> None:
                    feed(client, server_frame(b"now"))
                    done.set_result((waiting.done(), request_id.get()))

                asyncio.get_running_loop().call_soon(from_the_loop)
                resumed, callback_context = await done
                assert resumed  # without the direct wake-up, the task had not run yet
                assert callback_context == "none"
                assert waiting.result() == b"now"
                assert seen == ["receiver"]
                assert client._waiter is None and client._woken is None

    run(main())


def test_with_other_callbacks_ready_recv_resumes_through_the_loop() -> None:
    """When other callbacks wait in this pass of the loop (reads of other connections, say),
    the waiting task resumes after them, as it would with a plain future: the replies of
    many connections then go out together, one poll for all of them."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                order: list[str] = []

                def other() -> None:
                    order.append(f"other, recv done: {waiting.done()}")

                frame = server_frame(b"batched")
                assert await read_from_the_loop(client, frame, waiting, other) is False
                assert await asyncio.wait_for(waiting, 5) == b"batched"
                assert order == ["other, recv done: False"]

    run(main())


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="needs uvloop")
def test_on_a_loop_whose_ready_queue_is_unknown_recv_resumes_through_the_loop() -> None:
    """uvloop does not show its queue of ready callbacks: recv() resumes the usual way."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                assert await read_from_the_loop(client, server_frame(b"uv"), waiting) is False
                assert await asyncio.wait_for(waiting, 5) == b"uv"

    run(main(), loop="uvloop")


def test_a_read_inside_a_task_resumes_recv_through_the_loop() -> None:
    """A task cannot start inside another: a read handed over from inside a task completes
    the waiter, and the waiting task resumes in a later pass of the loop, as before."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                feed(client, server_frame(b"later"))
                assert not waiting.done()
                assert await asyncio.wait_for(waiting, 5) == b"later"

    run(main())


def test_a_task_that_fails_after_a_direct_wake_up_keeps_its_exception() -> None:
    """The resumed task's exception is the task's: it does not reach the transport (which
    would drop the connection), and the connection goes on."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:

                async def receiver() -> None:
                    await client.recv()
                    raise ValueError("from the application")

                failing = asyncio.ensure_future(receiver())
                await asyncio.sleep(0)
                loop = asyncio.get_running_loop()
                loop.call_soon(feed, client, server_frame(b"x"))
                with pytest.raises(ValueError, match="from the application"):
                    await asyncio.wait_for(failing, 5)
                await client.send(b"still open")
                assert await client.recv() == b"still open"

    run(main())


def test_a_cancelled_wait_and_a_timeout() -> None:
    """Cancelling the task of a waiting recv() cancels its waiter (with the message);
    wait_for's timeout ends a recv() and the next recv() works."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                waiter = client._waiter
                waiting.cancel("stop")
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert waiter.cancelled() and waiter.done()
                with pytest.raises(asyncio.CancelledError, match="stop"):
                    waiter.result()
                with pytest.raises(asyncio.TimeoutError):  # TimeoutError from Python 3.11 on
                    await asyncio.wait_for(client.recv(), 0.05)
                await client.send(b"next")
                assert await client.recv() == b"next"

    run(main())


def test_wait_behaves_as_an_asyncio_future() -> None:
    """What recv() awaits keeps asyncio.Future's contract where the shell does not use it
    for the direct wake-up."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        wait = Wait(loop)
        assert asyncio.isfuture(wait) and wait.get_loop() is loop
        assert not wait.done() and not wait.cancelled()
        with pytest.raises(asyncio.InvalidStateError):
            wait.result()
        calls: list[Any] = []

        def removed(fut: Any) -> None:
            calls.append("removed")

        wait.add_done_callback(removed)
        assert wait.remove_done_callback(lambda fut: None) == 0
        assert wait.remove_done_callback(removed) == 1
        wait.add_done_callback(calls.append)
        wait.set_result(None)
        assert calls == []  # through call_soon, as asyncio.Future does
        await asyncio.sleep(0)
        assert calls == [wait]
        assert wait.done() and wait.result() is None and wait.exception() is None
        with pytest.raises(asyncio.InvalidStateError):
            wait.set_result(None)
        assert not wait.cancel()
        wait.add_done_callback(calls.append)  # when done: soon
        await asyncio.sleep(0)
        assert calls == [wait, wait]

        cancelled = Wait(loop)
        assert cancelled.remove_done_callback(calls.append) == 0
        cancelled.add_done_callback(calls.append)
        assert cancelled.remove_done_callback(calls.append) == 1
        assert cancelled.cancel() and cancelled.cancelled()
        with pytest.raises(asyncio.CancelledError):
            cancelled.exception()
        assert not cancelled.cancel()

        # A task awaits it as it would a future, in both directions.
        pending = Wait(loop)

        async def awaiting() -> Any:
            return await pending

        task = asyncio.ensure_future(awaiting())
        await asyncio.sleep(0)
        pending.set_result(None)
        assert await task is None
        pending = Wait(loop)
        task = asyncio.ensure_future(awaiting())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pending.cancelled()

    run(main())


def test_a_read_that_raises_does_not_resume_recv_while_the_exception_leaves() -> None:
    """An exception leaving the read (here a KeyboardInterrupt, as a signal raises it, while
    the pong goes out) is not held up by the waiting task, which would also see it as the
    exception it handles: the task resumes in a later pass of the loop, with the message."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                handling: list[Any] = []

                async def receiver() -> bytes:
                    message = await client.recv()
                    handling.append(sys.exc_info()[1])
                    return message

                waiting = asyncio.ensure_future(receiver())
                await asyncio.sleep(0)
                loop = asyncio.get_running_loop()
                done = loop.create_future()
                transport = client._transport

                def interrupted(data: Any) -> None:
                    raise KeyboardInterrupt

                def from_the_loop() -> None:
                    transport.write = interrupted
                    try:
                        feed(client, server_frame(b"now") + bytes([0x89, 0]))  # and a ping
                    except KeyboardInterrupt:
                        done.set_result(waiting.done())
                    finally:
                        del transport.write

                loop.call_soon(from_the_loop)
                assert await done is False
                assert await asyncio.wait_for(waiting, 5) == b"now"
                assert handling == [None]
                assert client._woken is None

    run(main())


def test_a_callback_that_raises_in_a_direct_wake_up_is_reported_to_the_loop() -> None:
    """Run inside the read, a waiter's done-callback that raises is reported to the loop's
    exception handler, as the loop reports its own callbacks; the read, the callbacks after
    it and the connection go on."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server:
            async with connect(uri(server)) as client:
                loop = asyncio.get_running_loop()
                reported: list[dict[str, Any]] = []
                loop.set_exception_handler(lambda loop, context: reported.append(context))
                waiting = asyncio.ensure_future(client.recv())
                await asyncio.sleep(0)
                ran: list[str] = []

                def bad(fut: Any) -> None:
                    raise ValueError("bad callback")

                client._waiter.add_done_callback(bad, context=contextvars.copy_context())
                client._waiter.add_done_callback(
                    lambda fut: ran.append("after"), context=contextvars.copy_context()
                )
                frame = server_frame(b"reported")
                assert await read_from_the_loop(client, frame, waiting) is True
                assert waiting.result() == b"reported"
                assert ran == ["after"]
                assert [type(context.get("exception")) for context in reported] == [ValueError]
                await client.send(b"on")
                assert await client.recv() == b"on"
                loop.set_exception_handler(None)

    run(main())


shell: Any = sys.modules[WebSocket.__module__]


def batches(loop: asyncio.AbstractEventLoop) -> list[list[Any]]:
    """The waiters of each batch of wake-ups in the loop's ready queue, in queue order."""
    ready: Any = loop._ready  # type: ignore[attr-defined]
    return [
        list(handle._args[0])
        for handle in ready
        if getattr(handle, "_callback", None) is shell._resume_batch
    ]


async def waiting_clients(server: Any, count: int, stack: contextlib.AsyncExitStack) -> list[Any]:
    return [await stack.enter_async_context(connect(uri(server))) for _ in range(count)]


def test_the_recvs_that_one_pass_of_reads_completes_resume_in_one_callback() -> None:
    """Reads of several connections in one pass of the loop (here three loop callbacks in a
    row) complete their waiting recv()s: the tasks resume in the next pass, in the order of
    the reads, through one callback for all of them rather than one each."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients = await waiting_clients(server, 3, stack)
            loop = asyncio.get_running_loop()
            order: list[int] = []

            async def receiver(i: int) -> bytes:
                message = await clients[i].recv()
                order.append(i)
                return message

            tasks = [asyncio.ensure_future(receiver(i)) for i in range(3)]
            await asyncio.sleep(0)
            seen: asyncio.Future[tuple[list[list[Any]], list[bool]]] = loop.create_future()
            for i, client in enumerate(clients):
                loop.call_soon(feed, client, server_frame(b"m%d" % i))
            loop.call_soon(
                lambda: seen.set_result((batches(loop), [task.done() for task in tasks]))
            )
            queued, done = await seen
            assert done == [False, False, False]
            assert len(queued) == 1 and len(queued[0]) == 3
            assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [b"m0", b"m1", b"m2"]
            assert order == [0, 1, 2]
            assert batches(loop) == []

    run(main())


def test_a_callback_scheduled_between_two_wake_ups_runs_between_them() -> None:
    """A batch grows only while it is the last callback in the loop's queue: what was
    scheduled after it keeps its place, so callbacks still run in the order they were
    scheduled (as with one call_soon per wake-up)."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients = await waiting_clients(server, 2, stack)
            loop = asyncio.get_running_loop()
            order: list[str] = []

            async def receiver(i: int) -> None:
                order.append((await clients[i].recv()).decode())

            tasks = [asyncio.ensure_future(receiver(i)) for i in range(2)]
            await asyncio.sleep(0)
            loop.call_soon(feed, clients[0], server_frame(b"first"))
            loop.call_soon(loop.call_soon, order.append, "between")
            loop.call_soon(feed, clients[1], server_frame(b"second"))
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
            assert order == ["first", "between", "second"]

    run(main())


def test_a_keyboard_interrupt_from_a_batch_leaves_the_other_recvs_for_later() -> None:
    """A task resumed by a batch that raises KeyboardInterrupt stops the loop, as from its
    own callback; the recv()s after it in the batch resume when the loop runs again, each
    with its message, and so do the other done-callbacks of its own waiter (as those of an
    asyncio.Future would: each goes through call_soon)."""
    loop = asyncio.new_event_loop()
    try:

        async def setup() -> tuple[Any, contextlib.AsyncExitStack, list[Any]]:
            stack = contextlib.AsyncExitStack()
            server = await stack.enter_async_context(serve(echo, HOST, 0))
            return server, stack, await waiting_clients(server, 3, stack)

        server, stack, clients = loop.run_until_complete(setup())

        async def receiver(i: int) -> bytes:
            message = await clients[i].recv()
            if i == 0:
                raise KeyboardInterrupt
            return message

        tasks = [loop.create_task(receiver(i)) for i in range(3)]
        loop.run_until_complete(asyncio.sleep(0))
        waiter = clients[0]._waiter
        calls: list[Any] = []
        waiter.add_done_callback(calls.append)
        for i, client in enumerate(clients):
            loop.call_soon(feed, client, server_frame(b"k%d" % i))
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(5))
        assert [task.done() for task in tasks] == [True, False, False]
        assert isinstance(tasks[0].exception(), KeyboardInterrupt)
        rest = asyncio.wait_for(asyncio.gather(tasks[1], tasks[2]), 5)
        assert loop.run_until_complete(rest) == [b"k1", b"k2"]
        assert calls == [waiter]
        loop.run_until_complete(stack.aclose())
    finally:
        loop.close()


def test_a_callback_that_raises_in_a_batch_is_reported_and_the_batch_goes_on() -> None:
    """A waiter's done-callback that raises in a batch is reported to the loop's exception
    handler; the recv()s after it in the batch still resume."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients = await waiting_clients(server, 2, stack)
            loop = asyncio.get_running_loop()
            reported: list[dict[str, Any]] = []
            loop.set_exception_handler(lambda loop, context: reported.append(context))
            tasks = [asyncio.ensure_future(client.recv()) for client in clients]
            await asyncio.sleep(0)

            def bad(fut: Any) -> None:
                raise ValueError("bad callback")

            clients[0]._waiter.add_done_callback(bad, context=contextvars.copy_context())
            for i, client in enumerate(clients):
                loop.call_soon(feed, client, server_frame(b"r%d" % i))
            assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [b"r0", b"r1"]
            assert [type(context.get("exception")) for context in reported] == [ValueError]
            loop.set_exception_handler(None)

    run(main())
