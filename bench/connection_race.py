"""Sans-I/O round trips: wsfast's connection against websockets' and wsproto's, in one run.

A round trip is: the client sends a message, the server receives it (as a str for text), the
server sends it back, the client receives it. No sockets: each side's output is fed straight
into the other. Prints the best of ``--repeat`` runs per library and wsfast's speed ratios.

``wsfast`` is the connection ``wsfast.connection`` exports (compiled when built);
``wsfast-py`` is its Python source, ``wsfast._connection_py``, on the same kernels (listed
only when the exported one is the compiled one).

    python bench/connection_race.py [--small 100000] [--large 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import wsfast
import wsfast._connection_py
import wsfast.connection
from wsfast.events import BinaryMessage, TextMessage

RoundTrip = Callable[[object, int], None]

LIMIT = 64 * 1024 * 1024


# --- wsfast ----------------------------------------------------------------------------


def wsfast_pair(module: Any = wsfast.connection) -> tuple[Any, Any]:
    client = module.ClientConnection("localhost", "/", max_message_size=LIMIT)
    server = module.ServerConnection(max_message_size=LIMIT)
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    return client, server


def wsfast_run(message: str | bytes, count: int, module: Any = wsfast.connection) -> None:
    client, server = wsfast_pair(module)
    text = isinstance(message, str)
    for _ in range(count):
        if text:
            client.send_text(message)  # type: ignore[arg-type]
        else:
            client.send_binary(message)  # type: ignore[arg-type]
        server.receive_data(client.data_to_send())
        for event in server.events():
            if type(event) is TextMessage:
                server.send_text(event.data)
            elif type(event) is BinaryMessage:
                server.send_binary(event.data)
        client.receive_data(server.data_to_send())
        for event in client.events():
            if type(event) is not TextMessage and type(event) is not BinaryMessage:
                raise AssertionError(event)


def wsfast_py_run(message: str | bytes, count: int) -> None:
    wsfast_run(message, count, wsfast._connection_py)


# --- websockets (sans-I/O protocol core) -------------------------------------------------


def websockets_run(message: str | bytes, count: int) -> None:
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri

    client = ClientProtocol(parse_uri("ws://localhost/"), max_size=LIMIT)
    server = ServerProtocol(max_size=LIMIT)
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    text = isinstance(message, str)
    for _ in range(count):
        # websockets' protocol core takes and gives bytes; an application gets a str for a
        # text message, so the decode (its UTF-8 check) is part of the round trip.
        if text:
            client.send_text(message.encode())  # type: ignore[union-attr]
        else:
            client.send_binary(message)  # type: ignore[arg-type]
        server.receive_data(b"".join(client.data_to_send()))
        for frame in server.events_received():
            if frame.opcode is Opcode.TEXT:
                server.send_text(frame.data.decode().encode())
            else:
                server.send_binary(frame.data)
        client.receive_data(b"".join(server.data_to_send()))
        for frame in client.events_received():
            if frame.opcode is Opcode.TEXT:
                frame.data.decode()


# --- wsproto ----------------------------------------------------------------------------


def wsproto_run(message: str | bytes, count: int) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Message, Request
    from wsproto.events import TextMessage as WTextMessage

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    text = isinstance(message, str)
    for _ in range(count):
        out = client.send(WTextMessage(data=message) if text else BytesMessage(data=message))
        server.receive_data(out)
        for event in server.events():
            if isinstance(event, Message):
                server_out = server.send(
                    WTextMessage(data=event.data) if text else BytesMessage(data=event.data)
                )
                client.receive_data(server_out)
        for event in client.events():
            if not isinstance(event, Message):
                raise AssertionError(event)


# --- driver -----------------------------------------------------------------------------


def pin_malloc() -> bool:
    """Stop glibc from returning freed megabyte buffers to the OS between messages.

    glibc adapts its mmap and trim thresholds as blocks are freed, so whether a 1 MiB
    allocation costs 256 page faults depends on what ran before: the same loop measures
    ~100 us or ~900 us per round trip depending on run order. Fixed thresholds give every
    library the same steady state. Returns False where this is not glibc.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 256 << 20))


RUNNERS: tuple[tuple[str, Callable[[str | bytes, int], None]], ...] = (
    ("wsfast", wsfast_run),
    *((("wsfast-py", wsfast_py_run),) if wsfast.connection.implementation == "cython" else ()),
    ("websockets", websockets_run),
    ("wsproto", wsproto_run),
)


# CPU time of this process: unlike wall time it does not count the time the process waits
# while other processes have the CPU, which dominates the noise on a busy machine.
CLOCK = time.process_time


def race(label: str, message: str | bytes, count: int, repeat: int) -> dict[str, float]:
    """Best time of each library; the libraries take turns on every repeat, so that a
    change in machine load affects them alike."""
    print(f"\n{label}: {count} round trips, best of {repeat} (CPU time)")
    best = {name: float("inf") for name, _ in RUNNERS}
    for _ in range(repeat):
        for name, run in RUNNERS:
            gc.collect()
            start = CLOCK()
            run(message, count)
            best[name] = min(best[name], CLOCK() - start)
    for name, _ in RUNNERS:
        seconds = best[name]
        print(f"  {name:<11} {seconds:8.3f} s  {count / seconds:12,.0f} round trips/s")
    for mine in [name for name in best if name.startswith("wsfast")]:
        for other in ("websockets", "wsproto"):
            print(f"  {mine} is {best[other] / best[mine]:.2f}x {other}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000, help="32-byte text round trips")
    parser.add_argument("--large", type=int, default=100, help="1 MiB round trips")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-pin-malloc", action="store_true", help="leave glibc's adaptive thresholds alone"
    )
    args = parser.parse_args()
    pinned = False if args.no_pin_malloc else pin_malloc()
    import websockets
    import wsproto

    print(
        f"Python {platform.python_version()} ({platform.machine()}), wsfast kernels: "
        f"{wsfast.implementation}, connection: {wsfast.connection.implementation}, "
        f"websockets {websockets.__version__}, "
        f"wsproto {getattr(wsproto, '__version__', '?')}"
        + (", WSFAST_NO_EXTENSIONS set" if os.environ.get("WSFAST_NO_EXTENSIONS") else "")
        + (", glibc malloc thresholds pinned" if pinned else "")
    )
    race("32 B text", "x" * 32, args.small, args.repeat)
    race("1 MiB binary", os.urandom(1 << 20), args.large, args.repeat)
    race("1 MiB text", "é" * (1 << 19), args.large, args.repeat)


if __name__ == "__main__":
    main()
