"""Generic Autobahn ``fuzzingserver`` client driver.

A client under test talks to ``wstest -m fuzzingserver`` like this:

1. connect to ``{url}/getCaseCount`` and read one text message: the number N
   of cases selected by the fuzzing server's spec;
2. for case 1..N, connect to ``{url}/runCase?case=I&agent=AGENT`` and echo
   every message back (text as text, binary as binary) until the fuzzing
   server closes the connection;
3. connect to ``{url}/updateReports?agent=AGENT`` so the server writes the
   reports (reports/clients/index.json).

:func:`run` implements that loop for any asyncio library whose API looks like
``websockets.asyncio.client.connect`` (an async context manager yielding a
connection with ``recv()``, ``send()`` and async iteration).  Each
``client_*.py`` script just supplies its ``connect`` and the exception
classes that mean "the connection was closed / failed" for that library.

Only the library under test and the standard library are used here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

MAX_SIZE = 2**25  # group 9 sends messages of up to 16 MiB
SLOW_CASE = 3.0  # seconds: report cases slower than this


def parse_args(default_agent: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Autobahn fuzzingserver echo client")
    parser.add_argument("url", help="fuzzing server base URL, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default=default_agent, help="agent name in the reports")
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=60.0,
        help="seconds one case may take before the client gives up on it",
    )
    return parser.parse_args()


async def _echo_case(
    connect: Callable[..., Any], uri: str, closed: tuple[type[BaseException], ...]
) -> None:
    try:
        async with connect(uri, max_size=MAX_SIZE) as ws:
            async for message in ws:
                await ws.send(message)
    except closed:
        # The fuzzer closes (or drops) connections on purpose: that is the
        # end of the case, not an error of the driver.
        pass


async def _case_id(
    connect: Callable[..., Any], closed: tuple[type[BaseException], ...], url: str, case: int
) -> str:
    """The fuzzing server's id for case number ``case`` (e.g. "9.3.1"), for messages."""
    try:
        async with connect(f"{url}/getCaseInfo?case={case}") as ws:
            info = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        return f"{case} ({info['id']})"
    except (asyncio.TimeoutError, ValueError, KeyError, TypeError, *closed):
        return str(case)


async def _run(
    connect: Callable[..., Any],
    closed: tuple[type[BaseException], ...],
    url: str,
    agent: str,
    case_timeout: float,
) -> int:
    url = url.rstrip("/")
    async with connect(f"{url}/getCaseCount") as ws:
        count = int(await asyncio.wait_for(ws.recv(), timeout=30))
    print(f"[driver {agent}] {count} cases", flush=True)

    timed_out = []
    errors = []
    started = time.monotonic()
    for case in range(1, count + 1):
        uri = f"{url}/runCase?case={case}&agent={agent}"
        t_case = time.monotonic()
        try:
            await asyncio.wait_for(_echo_case(connect, uri, closed), timeout=case_timeout)
        except asyncio.TimeoutError:
            timed_out.append(case)
            name = await _case_id(connect, closed, url, case)
            print(f"[driver {agent}] case {name}: gave up after {case_timeout:g}s", flush=True)
        except Exception as exc:
            errors.append(case)
            name = await _case_id(connect, closed, url, case)
            print(f"[driver {agent}] case {name}: {type(exc).__name__}: {exc}", flush=True)
        slow = time.monotonic() - t_case
        if slow > SLOW_CASE:
            name = await _case_id(connect, closed, url, case)
            print(f"[driver {agent}] case {name} took {slow:.1f}s", flush=True)
        if case % 50 == 0 or case == count:
            print(
                f"[driver {agent}] {case}/{count} cases done ({time.monotonic() - started:.1f}s)",
                flush=True,
            )

    async with connect(f"{url}/updateReports?agent={agent}") as ws:
        # The server closes once the reports are written.
        try:
            await asyncio.wait_for(ws.recv(), timeout=60)
        except closed:
            pass
    if timed_out:
        print(f"[driver {agent}] cases timed out: {timed_out}", flush=True)
    if errors:
        print(f"[driver {agent}] cases with driver errors: {errors}", flush=True)
    # The verdicts come from the fuzzing server's reports, not from here.
    return 0


def run(
    connect: Callable[..., Any],
    closed: tuple[type[BaseException], ...],
    default_agent: str,
) -> None:
    args = parse_args(default_agent)
    sys.exit(asyncio.run(_run(connect, closed, args.url, args.agent, args.case_timeout)))
