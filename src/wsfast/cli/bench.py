"""``python -m wsfast bench``: wsfast's kernels against their pure-Python twins and peers.

Every comparison is measured within one run. The contenders of a scenario (wsfast, its
pure-Python twin, a peer library, a baseline such as a plain copy) are timed in interleaved
rounds of timeit-style loops with the garbage collector off, and each keeps its best round,
so the printed ratios are same-run ratios that survive a noisy machine reasonably well.

Peers (websockets, aiohttp, wsaccel, wsproto) are imported lazily and skipped when they are
not installed. Each contender's output is checked against the pure-Python kernels before
it is timed, so that a wrongly driven peer cannot pass off a no-op as a fast result.

The workload builders and peer drivers below are also used by the pytest-benchmark suite
in the repository's ``bench/`` directory.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = [
    "KiB",
    "MiB",
    "MASK",
    "CHUNK",
    "PeerUnavailable",
    "random_bytes",
    "ascii_text",
    "mixed_text",
    "corrupt_tail",
    "masked_stream",
    "split",
    "websockets_apply_mask",
    "aiohttp_mask_inplace",
    "wsaccel_utf8_validator",
    "wsfast_reader",
    "aiohttp_reader",
    "wsproto_reader",
    "main",
]

KiB = 1024
MiB = 1024 * KiB
MASK = b"\x37\xfa\x21\x3d"
CHUNK = 256 * KiB  # read size used to feed the frame parsers
FRAME_LIMIT = 64 * MiB  # max frame/message size given to every frame parser


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
    from .. import pure

    rng = random.Random(seed)
    parts = []
    payloads = []
    for _ in range(count):
        payload = rng.randbytes(size)
        key = rng.randbytes(4)
        parts.append(pure.build_header(2, size, mask=key))
        parts.append(pure.apply_mask(payload, key))
        payloads.append(payload)
    return b"".join(parts), payloads


def split(stream: bytes, chunk: int = CHUNK) -> list[bytes]:
    """The stream cut into reads of ``chunk`` bytes (frames straddle the cuts)."""
    return [stream[i : i + chunk] for i in range(0, len(stream), chunk)]


# --------------------------------------------------------------------------- peers


def _import(name: str) -> ModuleType:
    import importlib

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
    return _import("websockets.speedups").apply_mask


def aiohttp_mask_inplace() -> Callable[[bytes, bytearray], None]:
    """aiohttp's compiled ``_websocket_mask_cython(mask: bytes, data: bytearray)``, in place."""
    try:
        mod = _import("aiohttp._websocket.mask")  # aiohttp >= 3.11
    except PeerUnavailable:
        mod = _import("aiohttp._websocket")  # older aiohttp: a compiled module
    fn = getattr(mod, "_websocket_mask_cython", None)
    if fn is None:
        raise PeerUnavailable("aiohttp's compiled _websocket_mask_cython not found")
    return fn


def wsaccel_utf8_validator() -> type:
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
    binary = 2

    def run() -> list[Any]:
        parser = parser_cls(require_mask=True, max_frame_size=FRAME_LIMIT)
        frames: list[Any] = []
        for chunk in chunks:
            frames += parser.feed(chunk)
        return frames

    def payloads(frames: list[Any]) -> list[bytes]:
        if not all(f.opcode == binary and f.fin for f in frames):
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
    models = _import("aiohttp._websocket.models")
    queue_cls = mod.WebSocketDataQueue
    reader_cls = mod.WebSocketReader
    binary = models.WSMsgType.BINARY

    def run() -> Any:
        queue = queue_cls(_Transport(), 1 << 30, loop=None)
        reader = reader_cls(queue, FRAME_LIMIT, False, True)
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
    proto_cls = mod.FrameProtocol
    binary = mod.Opcode.BINARY

    def run() -> list[Any]:
        proto = proto_cls(client=False, extensions=[])
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


# --------------------------------------------------------------------------- timing


@dataclass
class Contender:
    """One thing to time: ``stmt`` evaluated in ``namespace``."""

    key: str
    label: str
    stmt: str
    namespace: dict[str, Any]
    check: Callable[[], None] | None = None
    skip: str | None = None  # why it is not timed
    loops: int = 0
    best: float = float("inf")  # seconds per call

    @property
    def ok(self) -> bool:
        return self.skip is None and self.best != float("inf")


@dataclass
class Row:
    vs: str  # contender key
    target: float | None  # minimum wsfast speed / other speed; None: for information
    note: str = ""


@dataclass
class Scenario:
    kernel: str
    size: str
    nbytes: int  # bytes processed per call (for MB/s), 0 to show time per call
    per: int  # divide the call time by this for display (frames per call)
    unit: str  # "call", "MB/s" or "frame"
    contenders: list[Contender]
    rows: list[Row]
    results: dict[str, Contender] = field(default_factory=dict)


def _timer(c: Contender) -> timeit.Timer:
    return timeit.Timer(c.stmt, globals=c.namespace)


def _calibrate(timer: timeit.Timer, target: float) -> int:
    n = 1
    while True:
        t = timer.timeit(n)
        if t >= target * 0.2:
            return max(1, round(n * target / t))
        n *= 10 if t < target * 0.02 else 2


def _measure(scenario: Scenario, repeats: int, target: float) -> None:
    live = []
    for c in scenario.contenders:
        scenario.results[c.key] = c
        if c.skip is not None:
            continue
        if c.check is not None:
            try:
                c.check()
            except PeerUnavailable as exc:
                c.skip = str(exc)
                continue
            except Exception as exc:  # a wrong result: never time it
                c.skip = f"WRONG RESULT: {exc}"
                continue
        live.append((c, _timer(c)))
    for c, timer in live:
        c.loops = _calibrate(timer, target)
    gc.collect()
    for r in range(repeats):
        k = r % len(live) if live else 0
        for c, timer in live[k:] + live[:k]:  # rotate the order every round
            c.best = min(c.best, timer.timeit(c.loops) / c.loops)


# --------------------------------------------------------------------------- scenarios


def _equal(what: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise AssertionError(f"{what} returned a different result")


def _unavailable(key: str, label: str, reason: str) -> Contender:
    return Contender(key, label, "pass", {}, skip=reason)


def _peer(key: str, label: str, build: Callable[[], Contender]) -> Contender:
    try:
        return build()
    except PeerUnavailable as exc:
        return _unavailable(key, label, str(exc))


def _size_label(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


def _mask_contender(key: str, label: str, fn: Callable[..., bytes], data: bytes) -> Contender:
    ns = {"f": fn, "d": data, "m": MASK}
    expected = _pure().apply_mask(data, MASK)
    return Contender(key, label, "f(d, m)", ns, lambda: _equal(label, fn(data, MASK), expected))


def _pure() -> Any:
    from .. import pure

    return pure


def _scenarios(compiled: bool) -> list[Scenario]:
    import wsfast

    pure = _pure()
    out: list[Scenario] = []
    twin = [Row("pure", None)] if compiled else []

    def with_pure(contenders: list[Contender], make: Callable[[], Contender]) -> None:
        if compiled:
            contenders.append(make())

    # apply_mask, small: per call against websockets' C speedup
    for n in (6, 125):
        data = random_bytes(n, n)
        cs = [
            _mask_contender("wsfast", "wsfast", wsfast.apply_mask, data),
            _peer(
                "websockets",
                "websockets",
                lambda d=data: _mask_contender(
                    "websockets", "websockets", websockets_apply_mask(), d
                ),
            ),
        ]
        with_pure(cs, lambda d=data: _mask_contender("pure", "pure", pure.apply_mask, d))
        out.append(
            Scenario(
                "apply_mask", _size_label(n), 0, 1, "call", cs, [Row("websockets", 1.0)] + twin
            )
        )

    # apply_mask, large: throughput against copying the buffer
    for n in (KiB, 64 * KiB, MiB):
        data = random_bytes(n, n)
        copy2 = Contender(
            "copy",
            "bytes(bytearray(d))",
            "bytes(bytearray(d))",
            {"d": data},
            lambda d=data: _equal("copy", bytes(bytearray(d)), d),
        )
        copy1 = Contender(
            "copy1",
            "bytearray(d)",
            "bytearray(d)",
            {"d": data},
            lambda d=data: _equal("copy", bytearray(d), d),
        )
        cs = [
            _mask_contender("wsfast", "wsfast", wsfast.apply_mask, data),
            copy2,
            copy1,
            _peer(
                "websockets",
                "websockets",
                lambda d=data: _mask_contender(
                    "websockets", "websockets", websockets_apply_mask(), d
                ),
            ),
        ]
        with_pure(cs, lambda d=data: _mask_contender("pure", "pure", pure.apply_mask, d))
        rows = [Row("copy", 0.9), Row("copy1", None, "one copy"), Row("websockets", None)]
        if compiled:
            rows.append(Row("pure", 50.0 if n == 64 * KiB else None))
        out.append(Scenario("apply_mask", _size_label(n), n, 1, "MB/s", cs, rows))

    # apply_mask_inplace against aiohttp's compiled in-place mask
    for n in (6, 64 * KiB):
        data = random_bytes(n, n + 1)
        expected = pure.apply_mask(data, MASK)

        def ours(
            fn: Callable[..., None], key: str, data: bytes = data, expected: bytes = expected
        ) -> Contender:
            buf = bytearray(data)

            def check() -> None:
                b = bytearray(data)
                fn(b, MASK)
                _equal(key, bytes(b), expected)

            return Contender(key, key, "f(b, m)", {"f": fn, "b": buf, "m": MASK}, check)

        def aiohttp(data: bytes = data, expected: bytes = expected) -> Contender:
            fn = aiohttp_mask_inplace()

            def check() -> None:
                b = bytearray(data)
                fn(MASK, b)
                _equal("aiohttp", bytes(b), expected)

            ns = {"f": fn, "b": bytearray(data), "m": MASK}
            return Contender("aiohttp", "aiohttp", "f(m, b)", ns, check)

        cs = [ours(wsfast.apply_mask_inplace, "wsfast"), _peer("aiohttp", "aiohttp", aiohttp)]
        with_pure(cs, lambda: ours(pure.apply_mask_inplace, "pure"))
        unit = "call" if n < KiB else "MB/s"
        out.append(
            Scenario(
                "apply_mask_inplace",
                _size_label(n),
                n if n >= KiB else 0,
                1,
                unit,
                cs,
                [Row("aiohttp", 1.0)] + twin,
            )
        )

    # validate_utf8 on ASCII against bytes.decode
    n = 64 * KiB
    ascii_data = ascii_text(n)
    ascii_bad = corrupt_tail(ascii_data)

    def validator_fn(fn: Callable[[Any], bool], key: str) -> Contender:
        def check() -> None:
            _equal(key, fn(ascii_data), True)
            _equal(key + " (invalid input)", fn(ascii_bad), False)

        return Contender(key, key, "f(d)", {"f": fn, "d": ascii_data}, check)

    cs = [
        validator_fn(wsfast.validate_utf8, "wsfast"),
        Contender(
            "decode",
            'bytes.decode(d, "utf-8")',
            'f(d, "utf-8")',
            {"f": bytes.decode, "d": ascii_data},
            lambda: _equal("decode", ascii_data.decode("utf-8"), ascii_data.decode("ascii")),
        ),
    ]
    with_pure(cs, lambda: validator_fn(pure.validate_utf8, "pure"))
    out.append(
        Scenario(
            "validate_utf8 (ASCII)", _size_label(n), n, 1, "MB/s", cs, [Row("decode", 1.0)] + twin
        )
    )

    # Utf8Validator.feed on Greek/CJK text against wsaccel
    mixed_data = mixed_text(n)
    mixed_bad = corrupt_tail(mixed_data)

    def feed_fn(cls: Any, key: str) -> Contender:
        def check() -> None:
            v = cls()
            _equal(key, (v.feed(mixed_data), v.feed(mixed_data), v.finish()), (True, True, True))
            _equal(key + " (invalid input)", cls().feed(mixed_bad), False)

        return Contender(key, key, "f(d)", {"f": cls().feed, "d": mixed_data}, check)

    def wsaccel() -> Contender:
        cls = wsaccel_utf8_validator()

        def check() -> None:
            v = cls()
            r1, r2 = v.validate(mixed_data), v.validate(mixed_data)
            total = 2 * len(mixed_data)
            _equal("wsaccel", (r1[:2], r2[:2], r2[3]), ((True, True), (True, True), total))
            _equal("wsaccel (invalid input)", cls().validate(mixed_bad)[0], False)

        ns = {"f": cls().validate, "d": mixed_data}
        return Contender("wsaccel", "wsaccel", "f(d)", ns, check)

    cs = [feed_fn(wsfast.Utf8Validator, "wsfast"), _peer("wsaccel", "wsaccel", wsaccel)]
    with_pure(cs, lambda: feed_fn(pure.Utf8Validator, "pure"))
    out.append(
        Scenario(
            "Utf8Validator.feed (Greek/CJK)",
            _size_label(n),
            n,
            1,
            "MB/s",
            cs,
            [Row("wsaccel", 10.0)] + twin,
        )
    )

    # FrameParser: 10,000 masked 32-byte binary frames, fed in 256 KiB reads
    count = 10_000
    stream, expected_payloads = masked_stream(count, 32)
    chunks = split(stream)

    def reader(key: str, make: Callable[[], Reader]) -> Contender:
        run, payloads = make()

        def check() -> None:
            _equal(key, payloads(run()), expected_payloads)

        return Contender(key, key, "r()", {"r": run}, check)

    cs = [
        reader("wsfast", lambda: wsfast_reader(wsfast, chunks)),
        _peer("aiohttp", "aiohttp", lambda: reader("aiohttp", lambda: aiohttp_reader(chunks))),
        _peer("wsproto", "wsproto", lambda: reader("wsproto", lambda: wsproto_reader(chunks))),
    ]
    with_pure(cs, lambda: reader("pure", lambda: wsfast_reader(pure, chunks)))
    out.append(
        Scenario(
            "FrameParser, 10,000 masked frames",
            "32 B",
            0,
            count,
            "frame",
            cs,
            [Row("aiohttp", 2.0), Row("wsproto", 10.0)] + twin,
        )
    )
    return out


# --------------------------------------------------------------------------- report


def _fmt_time(seconds: float) -> str:
    ns = seconds * 1e9
    if ns < 1e4:
        return f"{ns:,.1f} ns"
    if ns < 1e7:
        return f"{ns / 1e3:,.1f} us"
    return f"{ns / 1e6:,.1f} ms"


def _fmt(s: Scenario, c: Contender) -> str:
    if s.unit == "MB/s":
        return f"{s.nbytes / c.best / 1e6:,.0f} MB/s"
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


def _report(s: Scenario, row: Row, assess: bool, missed: list[str], unmeasured: list[str]) -> str:
    ours = s.results["wsfast"]
    other = s.results[row.vs]
    label = other.label + (f" ({row.note})" if row.note else "")
    target = "-" if row.target is None else f">={row.target:g}x"
    what = f"{s.kernel} {s.size} vs {label}"
    if not ours.ok or not other.ok:
        reason = ours.skip if not ours.ok else other.skip
        if row.target is not None and assess:
            unmeasured.append(f"{what}: {reason}")
        mine = _fmt(s, ours) if ours.ok else "-"
        return (
            _line([s.kernel, s.size, mine, label, "", "", target, "-"])[
                : sum(w + 2 for _, w, _ in _COLUMNS[:4])
            ]
            + f"skipped: {reason}"
        )
    ratio = other.best / ours.best
    met = "-"
    if row.target is not None and not assess:
        met = "n/a"
    elif row.target is not None:
        met = "yes" if ratio >= row.target else "NO"
        if ratio < row.target:
            short = (1 - ratio / row.target) * 100
            missed.append(f"{what}: {ratio:.2f}x, target {row.target:g}x ({short:.0f}% short)")
    return _line(
        [s.kernel, s.size, _fmt(s, ours), label, _fmt(s, other), f"{ratio:,.2f}x", target, met]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark table; 0 on success, 1 if a wsfast kernel misbehaved (or, with
    ``--check``, if a target was missed), 2 for bad arguments."""
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
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.repeat is not None and args.repeat < 1:
        parser.print_usage(sys.stderr)
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2

    import wsfast

    repeats = args.repeat or (11 if args.quick else 25)
    sample = 0.01 if args.quick else 0.02
    compiled = wsfast.implementation != "python"
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

    started = time.perf_counter()
    missed: list[str] = []
    unmeasured: list[str] = []
    broken = False
    targets = 0
    page_faults = False
    for s in _scenarios(compiled):
        _measure(s, repeats, sample)
        broken = broken or not s.results["wsfast"].ok
        for row in s.rows:
            targets += row.target is not None
            print(_report(s, row, compiled, missed, unmeasured), flush=True)
        copy2, copy1 = s.results.get("copy"), s.results.get("copy1")
        if copy2 and copy1 and copy2.ok and copy1.ok and copy2.best > 4 * copy1.best:
            page_faults = True

    print()
    elapsed = f"({time.perf_counter() - started:.1f} s)"
    if compiled:
        measured = targets - len(unmeasured)
        print(f"targets met: {measured - len(missed)}/{measured} {elapsed}", end="")
        print(f"; {len(unmeasured)} not measured" if unmeasured else "")
    else:
        print(
            f"targets: not assessed, the compiled kernels are not available {elapsed}; "
            "reinstall wsfast with Cython and a C compiler at hand to build them"
        )
    for m in missed:
        print(f"  missed: {m}")
    for m in unmeasured:
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
    if args.check and (missed or not compiled):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
