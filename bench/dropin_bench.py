"""Drop-in speedups, measured: each library unpatched vs patched by ``wsfast.patch()``.

Every figure is a same-run ratio: the library's own code and the patched code alternate in one
process (``patch()`` / ``unpatch()`` between repeats), best of ``--repeat``. Cases:

- ``wsproto``: a server ``WSConnection`` receiving 10,000 masked 32-byte text frames and
  100 masked 64 KiB binary frames (fed 64 KiB at a time), events drained. Goal >= 3x each.
- ``websocket-client``: receiving a 1 MiB text message from a local server (a thread), without
  wsaccel (goal >= 10x) and, in a second process, with wsaccel (goal: faster than wsaccel).
- ``ws4py`` / ``autobahn``: 1 MiB text: unmask, then validate the UTF-8 (autobahn without NVX,
  goal >= 20x; with NVX in a second process, to decide whether to leave NVX alone).
- ``c-paths``: the hosts' own compiled code against the adapter that would replace it
  (tornado.speedups, websockets' C apply_mask, aiohttp's Cython mask), 32 B to 1 MiB.

``bench/dropin_uvicorn.py`` measures uvicorn + Starlette. Run with ``flock /work/.bench.lock``
for figures you report; ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import wsfast
from wsfast.cli.info import describe

MIB = 1 << 20
TEXT_1MIB = ("wsfast κόσμε 漢字 😀 " * 40000).encode()[:MIB]
TEXT_1MIB = TEXT_1MIB[: len(TEXT_1MIB.decode("utf-8", "ignore").encode())]
KEY = b"\x37\xfa\x21\x3d"


def best(func: Callable[[], Any], repeat: int, number: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def compare(name: str, library: str, func: Callable[[], Any], repeat: int, number: int = 1,
            goal: float | None = None, unit: str = "") -> dict[str, Any]:
    """Alternate unpatched and patched runs of ``func``; best of each."""
    un, pa = [], []
    for _ in range(repeat):
        wsfast.unpatch(library)
        un.append(best(func, 1, number))
        if wsfast.patch(library) != [library]:
            raise SystemExit(f"{library} could not be patched")
        pa.append(best(func, 1, number))
    wsfast.unpatch(library)
    u, p = min(un), min(pa)
    row = {"case": name, "unpatched_s": u, "patched_s": p, "ratio": u / p, "goal": goal,
           "unit": unit}
    met = "" if goal is None else ("  goal met" if u / p >= goal else f"  GOAL MISSED (>= {goal}x)")
    print(f"{name:<58} {u * 1e3:10.3f} ms {p * 1e3:10.3f} ms {u / p:8.2f}x{met}", flush=True)
    return row


# --- wsproto --------------------------------------------------------------------------------


def _wsproto_server() -> Any:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection

    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    list(ws.events())
    ws.send(AcceptConnection())
    return ws


def _masked_frames(count: int, size: int, opcode: int) -> bytes:
    payload = (b"x" * size) if opcode == 1 else os.urandom(size)
    out = bytearray()
    for _i in range(count):
        key = os.urandom(4)
        out += wsfast.build_header(opcode, size, mask=key) + wsfast.apply_mask(payload, key)
    return bytes(out)


def bench_wsproto(repeat: int, quick: bool) -> list[dict[str, Any]]:
    rows = []
    for count, size, opcode, label in ((10_000, 32, 1, "10,000 x 32 B text"),
                                       (100, 65536, 2, "100 x 64 KiB binary")):
        if quick:
            count = max(count // 20, 5)
        data = _masked_frames(count, size, opcode)

        def receive(data: bytes = data, count: int = count) -> None:
            ws = _wsproto_server()
            n = 0
            for i in range(0, len(data), 65536):
                ws.receive_data(data[i : i + 65536])
                for _ in ws.events():
                    n += 1
            if n < count:
                raise AssertionError(f"{n} events for {count} frames")

        rows.append(compare(f"wsproto server WSConnection, {label}", "wsproto", receive,
                            repeat, goal=3.0))
    return rows


# --- websocket-client -----------------------------------------------------------------------


def _ws_server(payload: bytes) -> tuple[int, threading.Event]:
    """A local server: after the handshake, answers each message with one text frame."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()
    frame = wsfast.build_header(1, len(payload)) + payload

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0]
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + wsfast.accept_key(key.decode()).encode() + b"\r\n\r\n")
        parser = wsfast.FrameParser(require_mask=True)
        while not stop.is_set():
            chunk = conn.recv(65536)
            if not chunk:
                break
            for f in parser.feed(chunk):
                if f.opcode == wsfast.Opcode.CLOSE:
                    stop.set()
                    break
                conn.sendall(frame)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def bench_websocket_client(repeat: int, quick: bool) -> list[dict[str, Any]]:
    import websocket

    accel = sys.modules.get("wsaccel.utf8validator") is not None  # None: blocked
    port, _ = _ws_server(TEXT_1MIB)
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/")

    def roundtrip() -> None:
        ws.send("go")
        if len(ws.recv()) < 100_000:
            raise AssertionError("short message")

    label = "with wsaccel" if accel else "no wsaccel"
    row = compare(f"websocket-client, 1 MiB text from a local server, {label}",
                  "websocket-client", roundtrip, repeat, number=1 if accel or not quick else 1,
                  goal=None if accel else 10.0)
    ws.close()
    return [row]


# --- ws4py and autobahn ---------------------------------------------------------------------


def bench_ws4py(repeat: int, quick: bool) -> list[dict[str, Any]]:
    from ws4py import framing, streaming

    masked = wsfast.apply_mask(TEXT_1MIB, KEY)

    def work() -> None:
        frame = framing.Frame(opcode=1, body=b"", masking_key=KEY)
        text = frame.unmask(masked)
        ok, _, _, _ = streaming.Utf8Validator().validate(text)
        if not ok:
            raise AssertionError("invalid")

    return [compare("ws4py, 1 MiB text: Frame.unmask + Utf8Validator.validate", "ws4py", work,
                    max(2, repeat // 2), goal=20.0)]


def bench_autobahn(repeat: int, quick: bool) -> list[dict[str, Any]]:
    from autobahn.websocket import USES_NVX, protocol

    masked = wsfast.apply_mask(TEXT_1MIB, KEY)

    def work() -> None:
        text = protocol.create_xor_masker(KEY, len(masked)).process(masked)
        if not protocol.Utf8Validator().validate(text)[0]:
            raise AssertionError("invalid")

    label = "NVX" if USES_NVX else "without NVX"
    rows = [compare(f"autobahn ({label}), 1 MiB text: unmask + validate", "autobahn", work,
                    max(2, repeat // 2) if not USES_NVX else repeat,
                    goal=None if USES_NVX else 20.0)]
    for size in (32, 1024, 65536):
        small = masked[:size]
        small_text = TEXT_1MIB[:size].decode("utf-8", "ignore").encode()

        def mask(small: bytes = small) -> None:
            protocol.create_xor_masker(KEY, len(small)).process(small)

        def validate(small_text: bytes = small_text) -> None:
            protocol.Utf8Validator().validate(small_text)

        rows.append(compare(f"autobahn ({label}) create_xor_masker+process, {size} B",
                            "autobahn", mask, repeat, number=2000 if size < 65536 else 50))
        rows.append(compare(f"autobahn ({label}) Utf8Validator().validate, {size} B",
                            "autobahn", validate, repeat, number=2000 if size < 65536 else 50))
    return rows


# --- compiled paths the patches leave alone (or not) ----------------------------------------


def bench_c_paths(repeat: int, quick: bool) -> list[dict[str, Any]]:
    import importlib

    from wsfast.dropin import _core

    rows = []
    hosts = _core.registry()
    cases: list[tuple[str, Any, Any, Callable[[Any, bytes], Any]]] = []
    try:
        from tornado import speedups, websocket

        ours = hosts["tornado"].bindings[0].factory(websocket, speedups.websocket_mask)
        cases.append(("tornado.speedups.websocket_mask", speedups.websocket_mask, ours,
                      lambda f, d: f(KEY, d)))
    except ImportError:
        pass
    try:
        from websockets import frames
        from websockets.speedups import apply_mask as ws_c

        ours = hosts["websockets"].bindings[0].factory(frames, ws_c)
        cases.append(("websockets.speedups.apply_mask", ws_c, ours, lambda f, d: f(d, KEY)))
    except ImportError:
        pass
    try:
        helpers = importlib.import_module("aiohttp._websocket.helpers")
        reader_py = importlib.import_module("aiohttp._websocket.reader_py")
        ours = hosts["aiohttp"].bindings[0].factory(reader_py, helpers._websocket_mask_python)
        cython = getattr(helpers, "_websocket_mask_cython", None)
        if cython is not None:
            buf = bytearray(MIB)
            cases.append(("aiohttp _websocket_mask_cython (in place)", cython, ours,
                          lambda f, d, buf=buf: f(KEY, buf[: len(d)] if len(d) < 4096 else buf)))
    except ImportError:
        pass
    for label, theirs, ours, call in cases:
        for size in (6, 32, 125, 1024, 65536, MIB):
            data = os.urandom(size)
            number = 20000 if size <= 1024 else (300 if size <= 65536 else 20)
            if quick:
                number = max(number // 20, 1)
            t = best(lambda c=call, f=theirs, d=data: c(f, d), repeat, number)
            o = best(lambda c=call, f=ours, d=data: c(f, d), repeat, number)
            print(f"{label + f', {size} B':<58} {t * 1e9:10.0f} ns {o * 1e9:10.0f} ns "
                  f"{t / o:8.2f}x  (theirs / wsfast adapter)", flush=True)
            rows.append({"case": f"{label}, {size} B", "theirs_s": t, "wsfast_s": o,
                         "ratio": t / o})
    return rows


CASES = {
    "wsproto": bench_wsproto,
    "websocket-client": bench_websocket_client,
    "ws4py": bench_ws4py,
    "autobahn": bench_autobahn,
    "c-paths": bench_c_paths,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help=f"cases (default: all): {', '.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    repeat = 2 if ns.quick else ns.repeat
    if not ns.child:
        facts = describe()
        print(f"wsfast {facts['wsfast']} ({facts['implementation']}, "
              f"ISA {facts['kernel instruction set']}), {facts['python']}, {facts['cpu']}")
        print(f"{'case':<58} {'unpatched':>13} {'patched':>13} {'ratio':>9}")
    rows: list[dict[str, Any]] = []
    for name in ns.cases or list(CASES):
        try:
            rows += CASES[name](repeat, ns.quick)
        except ImportError as exc:
            print(f"{name}: skipped ({exc})")
    if not ns.child and not ns.cases:
        # The other configurations, each in its own process: websocket-client without
        # wsaccel, autobahn without NVX.
        extra = [
            (["websocket-client"], {"WSFAST_BENCH_BLOCK": "wsaccel"}),
            (["autobahn"], {"AUTOBAHN_USE_NVX": "0"}),
        ]
        for cases, env in extra:
            cmd = [sys.executable, __file__, "--child", "--repeat", str(repeat), *cases]
            if ns.quick:
                cmd.append("--quick")
            subprocess.run(cmd, env={**os.environ, **env}, check=False)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    if os.environ.get("WSFAST_BENCH_BLOCK") == "wsaccel":
        for _name in ("wsaccel", "wsaccel.xormask", "wsaccel.utf8validator"):
            sys.modules[_name] = None  # type: ignore[assignment]
    sys.exit(main())
