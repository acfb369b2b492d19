"""A Starlette echo endpoint for bench/dropin_uvicorn.py: text stays text, bytes stay bytes.

With ``WSFAST_BENCH_PROFILE=PATH`` in the environment the server process is profiled from the
first message of a connection to its end (the steady state, without start-up; CPU time, so
waiting for the network does not count), to ``PATH``.
"""

import cProfile
import os
import time

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

PROFILE = os.environ.get("WSFAST_BENCH_PROFILE")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    # CPU time only: waits in the event loop do not count.
    profiler = cProfile.Profile(time.process_time) if PROFILE else None
    if profiler is not None:
        profiler.enable()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(PROFILE)


app = Starlette(routes=[WebSocketRoute("/", echo)])
