"""The recv()s that the reads of one pass of the loop complete resume in one batch callback
(see test_asyncio_wake.py): what the batch must not change in how their waiter behaves as an
asyncio future, and where it must not be used."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from typing import Any

import pytest
from asyncio_helpers import HOST, TRANSPORTS, echo, run, uri
from test_asyncio_wake import Wait, batches, feed, server_frame, waiting_clients

from wsfast.asyncio import ConnectionClosed, connect, serve


async def recvs_waiting(
    server: Any, count: int, stack: contextlib.AsyncExitStack
) -> tuple[list[Any], list[asyncio.Future[Any]]]:
    """``count`` clients of ``server``, each with a task waiting in recv()."""
    clients = await waiting_clients(server, count, stack)
    tasks = [asyncio.ensure_future(client.recv()) for client in clients]
    await asyncio.sleep(0)
    return clients, tasks


def test_a_wait_done_in_a_pending_batch_has_no_callback_left_to_remove() -> None:
    """Once a read completed the waiter, its callbacks are as good as scheduled (an
    asyncio.Future's are, at set_result): remove_done_callback() removes none, and each
    still runs once, the task's from the batch."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients, tasks = await recvs_waiting(server, 2, stack)
            loop = asyncio.get_running_loop()
            waiter = clients[0]._waiter
            calls: list[Any] = []
            waiter.add_done_callback(calls.append)
            seen: list[Any] = []

            def remove() -> None:
                seen.append([len(batch) for batch in batches(loop)])
                seen.append(waiter.remove_done_callback(calls.append))
                seen.append(batches(loop)[0][0] is waiter)

            for i, client in enumerate(clients):
                loop.call_soon(feed, client, server_frame(b"r%d" % i))
            loop.call_soon(remove)
            assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [b"r0", b"r1"]
            await asyncio.sleep(0)
            assert seen == [[2], 0, True]
            assert calls == [waiter]

    run(main())


def test_a_value_sent_into_a_waiting_recv_is_ignored_as_by_a_future() -> None:
    """A coroutine driven by hand (not by a Task) may send a value in where it awaits: an
    asyncio future's iterator ignores it, and so does recv()'s waiter."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for make in (loop.create_future, lambda: Wait(loop)):
            future = make()

            async def waiting(future: Any = future) -> str:
                await future
                return "resumed"

            coro = waiting()
            assert coro.send(None) is future
            future.set_result(None)
            try:
                coro.send("ignored")
            except StopIteration as stop:
                assert stop.value == "resumed"
            else:
                raise AssertionError("the coroutine did not end")

    run(main())


def test_in_debug_mode_each_resumed_task_is_a_callback_of_its_own() -> None:
    """Debug mode reports each callback that runs longer than slow_callback_duration, naming
    the task it resumes: there, recv()s woken in one pass are not batched (a batch would
    be reported as one callback, for the time of all its tasks together)."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients = await waiting_clients(server, 3, stack)
            loop = asyncio.get_running_loop()
            tasks = [
                loop.create_task(client.recv(), name=f"receiver-{i}")
                for i, client in enumerate(clients)
            ]
            await asyncio.sleep(0)
            reports: list[str] = []
            handler = logging.Handler()
            handler.emit = lambda record: reports.append(record.getMessage())  # type: ignore[method-assign]
            logger = logging.getLogger("asyncio")
            logger.addHandler(handler)
            loop.set_debug(True)
            loop.slow_callback_duration = 0.0  # report every callback
            queued: list[list[Any]] = []
            try:
                for i, client in enumerate(clients):
                    loop.call_soon(feed, client, server_frame(b"d%d" % i))
                loop.call_soon(lambda: queued.extend(batches(loop)))
                assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [b"d0", b"d1", b"d2"]
            finally:
                loop.set_debug(False)
                logger.removeHandler(handler)
            assert queued == []
            for i in range(3):
                assert any(f"name='receiver-{i}'" in report for report in reports), reports

    run(main())


def test_a_task_cancelled_while_its_wait_is_in_a_batch_leaves_the_message_queued() -> None:
    """Cancelling a task whose recv() a read completed, before the batch resumes it: the
    task sees CancelledError and the message stays for the next recv(), once; the other
    tasks of the batch get theirs."""

    async def main() -> None:
        async with serve(echo, HOST, 0) as server, contextlib.AsyncExitStack() as stack:
            clients, tasks = await recvs_waiting(server, 3, stack)
            loop = asyncio.get_running_loop()
            queued: list[list[Any]] = []

            def cancel() -> None:
                queued.extend(batches(loop))
                tasks[1].cancel()

            for i, client in enumerate(clients):
                loop.call_soon(feed, client, server_frame(b"c%d" % i))
            loop.call_soon(cancel)
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
            assert [len(batch) for batch in queued] == [3]
            assert results[0] == b"c0" and results[2] == b"c2"
            assert isinstance(results[1], asyncio.CancelledError)
            assert await asyncio.wait_for(clients[1].recv(), 5) == b"c1"
            assert not clients[1]._messages

    run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_task_in_a_batch_aborts_and_closes_connections_waiting_in_the_same_batch(
    transport: str,
) -> None:
    """The first task a batch resumes aborts one connection and closes another whose
    recv()s wait in the same batch: each still gets the message its read delivered, then
    the end of its connection; the waiters are freed once the batch ran."""

    async def main() -> None:
        async with serve(echo, HOST, 0, transport=transport) as server:
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(connect(uri(server), transport=transport))
                    for _ in range(3)
                ]
                loop = asyncio.get_running_loop()
                ends: list[Any] = []

                async def first() -> bytes:
                    message = await clients[0].recv()
                    clients[1]._transport.abort()
                    ends.append(asyncio.ensure_future(clients[2].close()))
                    return message

                async def then_closed(client: Any) -> bytes:
                    message = await client.recv()
                    with pytest.raises(ConnectionClosed):
                        await asyncio.wait_for(client.recv(), 5)
                    return message

                tasks = [
                    asyncio.ensure_future(first()),
                    *(asyncio.ensure_future(then_closed(client)) for client in clients[1:]),
                ]
                await asyncio.sleep(0)
                waiters = [client._waiter for client in clients]
                queued: list[list[Any]] = []
                for i, client in enumerate(clients):
                    loop.call_soon(feed, client, server_frame(b"a%d" % i))
                loop.call_soon(lambda: queued.extend(batches(loop)))
                results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
                assert results == [b"a0", b"a1", b"a2"]
                assert queued == [waiters]
                await asyncio.wait_for(ends[0], 5)
                queued.clear()
                # Nothing but this list still holds a waiter (no batch, task or connection);
                # and this coroutine's frame, on Python 3.10, where the frame is a GC object
                # that refers to its local variable.
                here = sys._getframe()
                for waiter in waiters:
                    holders = gc.get_referrers(waiter)
                    assert [ref for ref in holders if ref is not waiters and ref is not here] == []

    run(main())
