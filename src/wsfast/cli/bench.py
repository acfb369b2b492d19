"""``python -m wsfast bench``: wsfast's kernels against their pure-Python twins and peers.

Every comparison is measured within one run. The contenders of a scenario (wsfast, its
pure-Python twin, a peer library, a baseline such as a plain copy) are timed in interleaved
rounds of timeit-style loops with the garbage collector off, and each keeps its best round,
so the printed ratios are same-run ratios that survive a noisy machine reasonably well.

The scenarios are one table, :data:`SCENARIOS`: a kernel, a size, how to build its
contenders, and the rows to print with their targets. Peers (websockets, aiohttp, wsaccel,
wsproto) are imported lazily and skipped when they are not installed. Each contender's
output is checked against the pure-Python kernels before it is timed, so that a wrongly
driven peer cannot pass off a no-op as a fast result.

The workload builders and peer drivers are also used by the pytest-benchmark suite in the
repository's ``bench/`` directory.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import random
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import wsfast
import wsfast.pure

__all__ = [
    "CHUNK",
    "KiB",
    "MASK",
    "MiB",
    "SCENARIOS",
    "PeerUnavailable",
    "Reader",
    "Scenario",
    "aiohttp_mask_inplace",
    "aiohttp_reader",
    "ascii_text",
    "corrupt_tail",
    "main",
    "masked_stream",
    "mixed_text",
    "random_bytes",
    "split",
    "websockets_apply_mask",
    "wsaccel_utf8_validator",
    "wsfast_reader",
    "wsproto_reader",
]

KiB = 1024
MiB = 1024 * KiB
MASK = b"\x37\xfa\x21\x3d"
CHUNK = 256 * KiB  # read size used to feed the frame parsers
FRAME_LIMIT = 64 * MiB  # max frame/message size given to every frame parser
FRAMES = 10_000  # frames per FrameParser scenario


class PeerUnavailable(Exception):
    """A peer library (or the piece of it we time) is not installed."""


# --------------------------------------------------------------------------- workloads


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


_ASCII = b'The quick brown fox jumps over the lazy dog; 0123456789 {"k": [1, 2.5]}\n'
_MIXED = (
    "Καλημέρα κόσμε, ξεσκεπάζω την ψυχοφθόρα βδελυγμία. "
    "你好，世界！我能吞下玻璃而不伤身体。"
    "日本語のテキストと한국어 문장. "
)


def ascii_text(n: int) -> bytes:
    """``n`` bytes of printable ASCII."""
    return (_ASCII * (n // len(_ASCII) + 1))[:n]


def mixed_text(n: int) -> bytes:
    """``n`` bytes of valid UTF-8, mostly Greek (2-byte) and CJK (3-byte) characters."""
    unit = _MIXED.encode("utf-8")
    raw = (unit * (n // len(unit) + 1))[:n]
    # Back off to a character boundary and pad with ASCII to exactly n bytes.
    end = len(raw)
    while end and raw[end - 1] & 0xC0 == 0x80:
        end -= 1
    if end and raw[end - 1] >= 0xC0:
        end -= 1
    text = raw[:end] + b" " * (n - end)
    text.decode("utf-8")  # sanity
    return text


def corrupt_tail(text: bytes) -> bytes:
    """``text`` (same length) with its last character replaced by an encoded surrogate,
    which is invalid UTF-8: a validator has to read to the end to notice."""
    cut = len(text) - 3
    while cut > 0 and text[cut] & 0xC0 == 0x80:  # stay on a character boundary
        cut -= 1
    return text[:cut] + b"\xed\xa0\x80" + b" " * (len(text) - cut - 3)


def masked_stream(count: int, size: int, seed: int = 0) -> tuple[bytes, list[bytes]]:
    """``count`` masked binary frames of ``size``-byte random payloads, each with its own key.

    Returns the wire bytes and the unmasked payloads.
    """
    rng = random.Random(seed)
    parts = []
    payloads = []
    for _ in range(count):
        payload = rng.randbytes(size)
        key = rng.randbytes(4)
        parts.append(wsfast.pure.build_header(2, size, mask=key))
        parts.append(wsfast.pure.apply_mask(payload, key))
        payloads.append(payload)
    return b"".join(parts), payloads


def split(stream: bytes, chunk: int = CHUNK) -> list[bytes]:
    """The stream cut into reads of ``chunk`` bytes (frames straddle the cuts)."""
    return [stream[i : i + chunk] for i in range(0, len(stream), chunk)]


# --------------------------------------------------------------------------- peers


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.partition(".")[0]
        try:
            importlib.import_module(top)
        except ImportError:
            raise PeerUnavailable(f"{top} is not installed") from None
        raise PeerUnavailable(f"{name} is not available ({exc})") from None


def websockets_apply_mask() -> Callable[[Any, bytes], bytes]:
    """``websockets.speedups.apply_mask(data, mask) -> bytes`` (C extension)."""
    fn: Callable[[Any, bytes], bytes] = _import("websockets.speedups").apply_mask
    return fn


def aiohttp_mask_inplace() -> Callable[[bytes, bytearray], None]:
    """aiohttp's compiled ``_websocket_mask_cython(mask: bytes, data: bytearray)``, in place."""
    try:
        mod = _import("aiohttp._websocket.mask")  # aiohttp >= 3.11
    except PeerUnavailable:
        mod = _import("aiohttp._websocket")  # older aiohttp: a compiled module
    fn: Callable[[bytes, bytearray], None] | None = getattr(mod, "_websocket_mask_cython", None)
    if fn is None:
        raise PeerUnavailable("aiohttp's compiled _websocket_mask_cython not found")
    return fn


def wsaccel_utf8_validator() -> Any:
    """``wsaccel.utf8validator.Utf8Validator``: ``validate(data)`` returns
    ``(valid, ends_on_codepoint, index, total)`` and keeps state across calls."""
    return _import("wsaccel.utf8validator").Utf8Validator


# A frame reader is (run, payloads): ``run()`` parses all chunks with a fresh parser and
# returns its native output; ``payloads(output)`` turns that into the list of unmasked
# message payloads, for checking.
Reader = tuple[Callable[[], Any], Callable[[Any], list[bytes]]]


def wsfast_reader(kernels: Any, chunks: Sequence[bytes]) -> Reader:
    """``kernels.FrameParser(require_mask=True)`` fed each chunk; returns all frames."""
    parser_cls = kernels.FrameParser

    def run() -> list[Any]:
        parser = parser_cls(require_mask=True, max_frame_size=FRAME_LIMIT)
        frames: list[Any] = []
        for chunk in chunks:
            frames += parser.feed(chunk)
        return frames

    def payloads(frames: list[Any]) -> list[bytes]:
        if not all(f.opcode == 2 and f.fin for f in frames):
            raise AssertionError("wsfast produced a frame that is not a final binary frame")
        return [f.payload for f in frames]

    return run, payloads


class _Transport:
    """What aiohttp's WebSocketDataQueue wants of its protocol: flow-control hooks."""

    _reading_paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


def aiohttp_reader(chunks: Sequence[bytes]) -> Reader:
    """aiohttp's compiled ``reader_c.WebSocketReader`` feeding a ``WebSocketDataQueue``.

    ``WebSocketDataQueue(protocol, limit, loop=...)``: the loop is only used by the async
    ``read()``, which we never call; the limit is set high (2**30, doubled inside, still
    within its C unsigned int) so the reader never stalls on back-pressure.
    ``WebSocketReader(queue, max_msg_size, compress, decode_text)``; ``feed_data(data)``
    returns ``(True, ...)`` on a protocol error and queues one ``WSMessage`` per message.
    """
    mod = _import("aiohttp._websocket.reader_c")  # the Cython build; reader_py is pure Python
    binary = _import("aiohttp._websocket.models").WSMsgType.BINARY

    def run() -> Any:
        queue = mod.WebSocketDataQueue(_Transport(), 1 << 30, loop=None)
        reader = mod.WebSocketReader(queue, FRAME_LIMIT, False, True)
        for chunk in chunks:
            if reader.feed_data(chunk)[0]:
                raise AssertionError(f"aiohttp reader failed: {queue.exception()!r}")
        return queue._buffer  # deque of (WSMessage, size)

    def payloads(buffer: Any) -> list[bytes]:
        out = []
        for message, size in buffer:
            if message.type != binary or len(message.data) != size:
                raise AssertionError(f"aiohttp produced an unexpected message {message!r:.80}")
            out.append(bytes(message.data))
        return out

    return run, payloads


def wsproto_reader(chunks: Sequence[bytes]) -> Reader:
    """wsproto's ``FrameProtocol(client=False, extensions=[])`` (a server: frames must be
    masked): ``receive_bytes(chunk)`` then drain the ``received_frames()`` generator.

    wsproto emits a frame's bytes as they arrive, so a frame cut by a chunk boundary comes
    out as pieces; ``message_finished`` marks the last one.
    """
    mod = _import("wsproto.frame_protocol")
    binary = mod.Opcode.BINARY

    def run() -> list[Any]:
        proto = mod.FrameProtocol(client=False, extensions=[])
        events: list[Any] = []
        for chunk in chunks:
            proto.receive_bytes(chunk)
            events += proto.received_frames()
        return events

    def payloads(events: list[Any]) -> list[bytes]:
        out = []
        parts: list[bytes] = []
        for ev in events:
            if ev.opcode != binary:
                raise AssertionError(f"wsproto produced an unexpected frame {ev!r:.80}")
            parts.append(ev.payload)
            if ev.message_finished:
                out.append(b"".join(parts))
                parts = []
        if parts:
            raise AssertionError("wsproto left a message unfinished")
        return out

    return run, payloads


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    """One thing to time: ``stmt`` evaluated in ``namespace`` (inline, so that a 20 ns
    kernel is not measured through an extra Python call), after ``check()`` passed."""

    key: str
    label: str
    stmt: str = "pass"
    namespace: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], None] | None = None
    skip: str | None = None  # why it is not timed
    loops: int = 0
    best: float = float("inf")  # seconds per call

    @property
    def ok(self) -> bool:
        return self.skip is None and self.best != float("inf")


def _equal(what: str, got: object, expected: object) -> None:
    if got != expected:
        raise AssertionError(f"{what} returned a different result")


def _peer(key: str, build: Callable[[], Contender]) -> Contender:
    try:
        return build()
    except PeerUnavailable as exc:
        return Contender(key, key, skip=str(exc))


# Each builder returns a scenario's contenders for one size; ``pure`` is the twin, and
# "wsfast" is whatever ``wsfast`` exports (the pure kernels too when nothing was compiled).


def _mask(key: str, fn: Callable[[bytes, bytes], bytes], data: bytes) -> Contender:
    expected = wsfast.pure.apply_mask(data, MASK)
    ns = {"f": fn, "d": data, "m": MASK}
    return Contender(key, key, "f(d, m)", ns, lambda: _equal(key, fn(data, MASK), expected))


def mask_small(n: int) -> list[Contender]:
    data = random_bytes(n, n)
    return [
        _mask("wsfast", wsfast.apply_mask, data),
        _peer("websockets", lambda: _mask("websockets", websockets_apply_mask(), data)),
        _mask("pure", wsfast.pure.apply_mask, data),
    ]


def mask_large(n: int) -> list[Contender]:
    data = random_bytes(n, n)
    ns = {"d": data}
    copy2 = "bytes(bytearray(d))"
    return [
        *mask_small(n),
        Contender("copy", copy2, copy2, ns, lambda: _equal("copy", bytes(bytearray(data)), data)),
        Contender("copy1", "bytearray(d)", "bytearray(d)", ns),
    ]


def _inplace(key: str, fn: Callable[..., None], data: bytes, stmt: str = "f(b, m)") -> Contender:
    """``fn`` masks a bytearray in place; ``stmt`` says in which order it takes its
    arguments (``b`` the buffer, ``m`` the mask)."""
    expected = wsfast.pure.apply_mask(data, MASK)

    def check() -> None:
        ns: dict[str, Any] = {"f": fn, "b": bytearray(data), "m": MASK}
        exec(stmt, ns)
        _equal(key, bytes(ns["b"]), expected)

    return Contender(key, key, stmt, {"f": fn, "b": bytearray(data), "m": MASK}, check)


def mask_inplace(n: int) -> list[Contender]:
    data = random_bytes(n, n + 1)

    def aiohttp() -> Contender:
        return _inplace("aiohttp", aiohttp_mask_inplace(), data, "f(m, b)")

    return [
        _inplace("wsfast", wsfast.apply_mask_inplace, data),
        _peer("aiohttp", aiohttp),
        _inplace("pure", wsfast.pure.apply_mask_inplace, data),
    ]


def utf8_ascii(n: int) -> list[Contender]:
    text, bad = ascii_text(n), corrupt_tail(ascii_text(n))

    def validator(key: str, fn: Callable[[bytes], bool]) -> Contender:
        def check() -> None:
            _equal(key, (fn(text), fn(bad)), (True, False))

        return Contender(key, key, "f(d)", {"f": fn, "d": text}, check)

    decode = 'bytes.decode(d, "utf-8")'
    return [
        validator("wsfast", wsfast.validate_utf8),
        Contender("decode", decode, 'f(d, "utf-8")', {"f": bytes.decode, "d": text}),
        validator("pure", wsfast.pure.validate_utf8),
    ]


def utf8_mixed(n: int) -> list[Contender]:
    text, bad = mixed_text(n), corrupt_tail(mixed_text(n))

    def feeder(key: str, cls: Any) -> Contender:
        def check() -> None:
            v = cls()
            _equal(key, (v.feed(text), v.feed(text), v.finish()), (True, True, True))
            _equal(key + " (invalid input)", cls().feed(bad), False)

        return Contender(key, key, "f(d)", {"f": cls().feed, "d": text}, check)

    def wsaccel() -> Contender:
        cls = wsaccel_utf8_validator()

        def check() -> None:
            v = cls()
            r1, r2 = v.validate(text), v.validate(text)
            _equal("wsaccel", (r1[:2], r2[:2], r2[3]), ((True, True), (True, True), 2 * n))
            _equal("wsaccel (invalid input)", cls().validate(bad)[0], False)

        return Contender("wsaccel", "wsaccel", "f(d)", {"f": cls().validate, "d": text}, check)

    return [
        feeder("wsfast", wsfast.Utf8Validator),
        _peer("wsaccel", wsaccel),
        feeder("pure", wsfast.pure.Utf8Validator),
    ]


def frame_parsers(n: int) -> list[Contender]:
    stream, expected = masked_stream(FRAMES, n)
    chunks = split(stream)

    def reader(key: str, make: Callable[[], Reader]) -> Contender:
        run, payloads = make()
        return Contender(
            key, key, "r()", {"r": run}, lambda: _equal(key, payloads(run()), expected)
        )

    return [
        reader("wsfast", lambda: wsfast_reader(wsfast, chunks)),
        _peer("aiohttp", lambda: reader("aiohttp", lambda: aiohttp_reader(chunks))),
        _peer("wsproto", lambda: reader("wsproto", lambda: wsproto_reader(chunks))),
        reader("pure", lambda: wsfast_reader(wsfast.pure, chunks)),
    ]


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One printed comparison: wsfast against contender ``vs``."""

    vs: str
    target: float | None = None  # minimum wsfast speed / other speed; None: for information
    note: str = ""


PURE = Row("pure")  # against the twin: shown, and left out when wsfast is the twin itself

Unit = Literal["call", "MB/s", "frame"]


@dataclass(frozen=True)
class Scenario:
    kernel: str
    size: int  # payload bytes per call (per frame for "frame")
    unit: Unit  # time per call, throughput, or time per frame
    contenders: Callable[[int], list[Contender]]
    rows: tuple[Row, ...]

    @property
    def per(self) -> int:
        """Calls are divided by this for display (frames per call)."""
        return FRAMES if self.unit == "frame" else 1


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("apply_mask", 6, "call", mask_small, (Row("websockets", 1.0), PURE)),
    Scenario("apply_mask", 125, "call", mask_small, (Row("websockets", 1.0), PURE)),
    *(
        Scenario(
            "apply_mask",
            n,
            "MB/s",
            mask_large,
            (
                Row("copy", 0.9),
                Row("copy1", None, "one copy"),
                Row("websockets"),
                Row("pure", 50.0) if n == 64 * KiB else PURE,
            ),
        )
        for n in (KiB, 64 * KiB, MiB)
    ),
    Scenario("apply_mask_inplace", 6, "call", mask_inplace, (Row("aiohttp", 1.0), PURE)),
    Scenario("apply_mask_inplace", 64 * KiB, "MB/s", mask_inplace, (Row("aiohttp", 1.0), PURE)),
    Scenario("validate_utf8 (ASCII)", 64 * KiB, "MB/s", utf8_ascii, (Row("decode", 1.0), PURE)),
    Scenario(
        "Utf8Validator.feed (Greek/CJK)", 64 * KiB, "MB/s", utf8_mixed, (Row("wsaccel", 10.0), PURE)
    ),
    Scenario(
        f"FrameParser, {FRAMES:,} masked frames",
        32,
        "frame",
        frame_parsers,
        (Row("aiohttp", 2.0), Row("wsproto", 10.0), PURE),
    ),
)


# --------------------------------------------------------------------------- timing


def _calibrate(timer: timeit.Timer, target: float) -> int:
    n = 1
    while True:
        t = timer.timeit(n)
        if t >= target * 0.2:
            return max(1, round(n * target / t))
        n *= 10 if t < target * 0.02 else 2


def measure(contenders: list[Contender], repeats: int, target: float) -> None:
    """Check, calibrate, then time the contenders in ``repeats`` interleaved rounds."""
    live: list[tuple[Contender, timeit.Timer]] = []
    for c in contenders:
        if c.skip is not None:
            continue
        try:
            if c.check is not None:
                c.check()
        except PeerUnavailable as exc:
            c.skip = str(exc)
            continue
        except Exception as exc:  # a wrong result: never time it
            c.skip = f"WRONG RESULT: {exc}"
            continue
        live.append((c, timeit.Timer(c.stmt, globals=c.namespace)))
    for c, timer in live:
        c.loops = _calibrate(timer, target)
    gc.collect()
    for r in range(repeats):
        k = r % len(live) if live else 0
        for c, timer in live[k:] + live[:k]:  # rotate the order every round
            c.best = min(c.best, timer.timeit(c.loops) / c.loops)


# --------------------------------------------------------------------------- report


def size_label(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


def _fmt_time(seconds: float) -> str:
    ns = seconds * 1e9
    if ns < 1e4:
        return f"{ns:,.1f} ns"
    if ns < 1e7:
        return f"{ns / 1e3:,.1f} us"
    return f"{ns / 1e6:,.1f} ms"


def _fmt(s: Scenario, c: Contender) -> str:
    if s.unit == "MB/s":
        return f"{s.size / c.best / 1e6:,.0f} MB/s"
    if s.unit == "frame":
        return f"{_fmt_time(c.best / s.per)}/frame"
    return f"{_fmt_time(c.best)}/call"


def _cpu() -> str:
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not name and sys.platform == "darwin":
        import subprocess

        try:
            name = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    logical = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    cpus = f"{logical} logical CPUs" + (f", {usable} usable" if usable != logical else "")
    return f"{name} ({cpus})"


def _peer_versions() -> str:
    from importlib import metadata

    found = []
    for dist in ("websockets", "aiohttp", "wsaccel", "wsproto"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join(found)


_COLUMNS = (  # (title, width, right-aligned)
    ("kernel", 33, False),
    ("size", 6, False),
    ("wsfast", 16, True),
    ("vs", 25, False),
    ("other", 16, True),
    ("ratio", 8, True),
    ("target", 7, False),
    ("met", 3, False),
)


def _line(cells: Sequence[str]) -> str:
    out = []
    for cell, (_, width, right) in zip(cells, _COLUMNS, strict=True):
        out.append(cell.rjust(width) if right else cell.ljust(width))
    return "  ".join(out).rstrip()


@dataclass
class Tally:
    """The verdicts so far: targets measured, missed, and not measured."""

    assess: bool  # targets are set for the compiled kernels: assessed only with them
    targets: int = 0
    missed: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)


def report(s: Scenario, results: dict[str, Contender], row: Row, tally: Tally) -> str:
    """One printed line; records the row's verdict in ``tally``."""
    ours, other = results["wsfast"], results[row.vs]
    size = size_label(s.size)
    label = other.label + (f" ({row.note})" if row.note else "")
    target = "-" if row.target is None else f">={row.target:g}x"
    what = f"{s.kernel} {size} vs {label}"
    tally.targets += row.target is not None
    if not ours.ok or not other.ok:
        reason = ours.skip if not ours.ok else other.skip
        if row.target is not None and tally.assess:
            tally.unmeasured.append(f"{what}: {reason}")
        mine = _fmt(s, ours) if ours.ok else "-"
        width = sum(w + 2 for _, w, _ in _COLUMNS[:4])
        return _line([s.kernel, size, mine, label, "", "", target, "-"])[:width] + (
            f"skipped: {reason}"
        )
    ratio = other.best / ours.best
    met = "-"
    if row.target is not None and not tally.assess:
        met = "n/a"
    elif row.target is not None:
        met = "yes" if ratio >= row.target else "NO"
        if ratio < row.target:
            short = (1 - ratio / row.target) * 100
            tally.missed.append(
                f"{what}: {ratio:.2f}x, target {row.target:g}x ({short:.0f}% short)"
            )
    return _line(
        [s.kernel, size, _fmt(s, ours), label, _fmt(s, other), f"{ratio:,.2f}x", target, met]
    )


def _arguments(argv: list[str]) -> argparse.Namespace | int:
    parser = argparse.ArgumentParser(
        prog="python -m wsfast bench",
        description="Time wsfast's kernels against their pure-Python twins and against "
        "other WebSocket libraries (when installed), as same-run ratios.",
    )
    parser.add_argument("--quick", action="store_true", help="shorter rounds, fewer repeats")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="interleaved rounds per row (default 25, or 11 with --quick)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a measured target is missed or the compiled kernels "
        "are not available",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.repeat is not None and args.repeat < 1:
        parser.print_usage(sys.stderr)
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    return args


def _header(args: argparse.Namespace, repeats: int, sample: float, compiled: bool) -> None:
    print(f"wsfast {wsfast.__version__} bench{' --quick' if args.quick else ''}")
    print(f"implementation: {wsfast.implementation}")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) "
        f"on {platform.system()} {platform.machine()}"
    )
    print(f"CPU: {_cpu()}")
    print(f"peers: {_peer_versions()}")
    rounds = f"{repeats} interleaved round{'s' if repeats != 1 else ''}"
    print(
        f"method: each row's contenders timed in {rounds} of "
        f"~{sample * 1e3:.0f} ms timeit loops (gc off), best round kept; "
        "ratio = wsfast speed / other speed"
    )
    if not compiled:
        print(
            "note: the compiled kernels are not available, so 'wsfast' below is the "
            "pure-Python kernels; rows against the pure twins are left out, and the "
            "targets (set for the compiled kernels) are shown but not assessed."
        )
    print()
    print(_line([title for title, _, _ in _COLUMNS]))
    print(_line(["-" * width for _, width, _ in _COLUMNS]), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark table; 0 on success, 1 if a wsfast kernel misbehaved (or, with
    ``--check``, if a target was missed), 2 for bad arguments."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    repeats = args.repeat or (11 if args.quick else 25)
    sample = 0.01 if args.quick else 0.02
    compiled = wsfast.implementation != "python"
    _header(args, repeats, sample, compiled)

    started = time.perf_counter()
    tally = Tally(assess=compiled)
    broken = page_faults = False
    for s in SCENARIOS:
        contenders = [c for c in s.contenders(s.size) if compiled or c.key != "pure"]
        measure(contenders, repeats, sample)
        results = {c.key: c for c in contenders}
        broken = broken or not results["wsfast"].ok
        for row in s.rows:
            if row.vs in results:
                print(report(s, results, row, tally), flush=True)
        copy2, copy1 = results.get("copy"), results.get("copy1")
        if copy2 and copy1 and copy2.ok and copy1.ok and copy2.best > 4 * copy1.best:
            page_faults = True

    print()
    elapsed = f"({time.perf_counter() - started:.1f} s)"
    if compiled:
        measured = tally.targets - len(tally.unmeasured)
        print(f"targets met: {measured - len(tally.missed)}/{measured} {elapsed}", end="")
        print(f"; {len(tally.unmeasured)} not measured" if tally.unmeasured else "")
    else:
        print(
            f"targets: not assessed, the compiled kernels are not available {elapsed}; "
            "reinstall wsfast with Cython and a C compiler at hand to build them"
        )
    for m in tally.missed:
        print(f"  missed: {m}")
    for m in tally.unmeasured:
        print(f"  not measured: {m}")
    if page_faults:
        print(
            "note: bytes(bytearray(d)) ran over 4x slower than bytearray(d) (one copy): the "
            "allocator returns its two large blocks to the OS on every call, so that "
            "baseline pays page faults."
        )
    if broken:
        print("error: a wsfast kernel gave a wrong result (see 'skipped' above)", file=sys.stderr)
        return 1
    if args.check and (tally.missed or not compiled):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
