"""Kernel throughput against size (64 B .. 1 MiB), wsfast and its peers, as a PNG.

    python bench/plot_throughput.py [--out bench/plots/kernels.png] [--rounds 15] [--quick]

Three panels, each contender's output checked before it is timed:

- masking: wsfast ``apply_mask_inplace`` and ``apply_mask`` (new bytes); aiohttp's compiled
  mask (in place); picows' C mask (in place, reached through ctypes: it has no Python entry
  point, so its points include ctypes' call cost of ~0.1-0.3 us, and only the bulk it masks
  with its SIMD loop on a 64-byte aligned buffer, leaving the last < 64 bytes, is counted);
  websockets' C ``apply_mask`` and wsaccel's ``XorMaskerSimple`` (new bytes);
- UTF-8 validation of mixed Greek/CJK/ASCII text: wsfast ``validate_utf8``, ``bytes.decode``
  (what websockets, aiohttp and picows do) and wsaccel's ``Utf8Validator``;
- frame parsing, masked binary frames of that size (about 1 MiB of frames per run): wsfast
  ``FrameParser`` and aiohttp's compiled reader.

Each point is the best of ``--rounds`` interleaved rounds of ~5 ms samples (the contenders
of one size take turns), so the curves of one run compare fairly on a noisy machine;
absolute GB/s vary between runs and machines. Needs the ``bench`` extra (matplotlib and the
peers); a peer that is not installed is left out of the plot and named on stdout.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wsfast
from wsfast.cli import bench as wb

SIZES = [64 << (2 * i) for i in range(8)]  # 64 B, 256 B, ..., 1 MiB
OUT = Path(__file__).resolve().parent / "plots" / "kernels.png"
FRAME_BYTES = 1 << 20  # bytes of frames per frame-parser run
SAMPLE = 0.005  # seconds per timed sample

Timed = Callable[[], Any]


def _masked(data: bytes) -> bytes:
    return bytes(b ^ wb.MASK[i & 3] for i, b in enumerate(data))


def _picows_mask() -> Callable[[int], tuple[Timed, Callable[[], None]]]:
    """picows' run-time-selected SIMD mask (``get_apply_mask_fast_fn``), through ctypes."""
    import picows

    found = glob.glob(os.path.join(os.path.dirname(picows.__file__), "picows*.so"))
    if not found:
        raise wb.PeerUnavailable("picows' compiled module not found")
    lib = ctypes.CDLL(found[0])
    proto = ctypes.CFUNCTYPE(
        ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint32,
        ctypes.c_void_p,
    )  # fmt: skip
    lib.get_apply_mask_fast_fn.restype = proto
    lib.get_apply_mask_fast_alignment.restype = ctypes.c_size_t
    fast, align = lib.get_apply_mask_fast_fn(), lib.get_apply_mask_fast_alignment()
    key = int.from_bytes(wb.MASK, "little")

    def make(n: int) -> tuple[Timed, Callable[[], None]]:
        data = wb.random_bytes(n)
        store = bytearray(n + align)
        start = -ctypes.addressof(ctypes.c_char.from_buffer(store)) % align
        buf = memoryview(store)[start : start + n]
        buf[:] = data
        addr = ctypes.addressof(ctypes.c_char.from_buffer(store, start))

        def check() -> None:
            done = fast(addr, n, 0, key, addr)
            if bytes(buf[:done]) != _masked(data[:done]) or n - done >= 2 * align:
                raise AssertionError("picows gives a wrong result")
            buf[:done] = data[:done]

        return (lambda: fast(addr, n, 0, key, addr)), check

    return make


def mask_contenders(n: int) -> dict[str, tuple[Timed, Callable[[], None]]]:
    data = wb.random_bytes(n)
    want = _masked(data)
    out: dict[str, tuple[Timed, Callable[[], None]]] = {}

    def inplace(fn: Callable[[bytearray], object]) -> tuple[Timed, Callable[[], None]]:
        buf = bytearray(data)

        def check() -> None:
            trial = bytearray(data)
            fn(trial)
            if trial != want:
                raise AssertionError("wrong result")

        return (lambda: fn(buf)), check

    def new(fn: Callable[[bytes], bytes]) -> tuple[Timed, Callable[[], None]]:
        def check() -> None:
            if fn(data) != want:
                raise AssertionError("wrong result")

        return (lambda: fn(data)), check

    # Every contender is a closure over local names: no module attribute lookups timed.
    inplace_fn, apply_fn, key = wsfast.apply_mask_inplace, wsfast.apply_mask, wb.MASK
    out["wsfast apply_mask_inplace"] = inplace(lambda b: inplace_fn(b, key))
    out["wsfast apply_mask (new bytes)"] = new(lambda d: apply_fn(d, key))
    _try(out, "aiohttp (in place)", lambda: inplace(_bind_aiohttp()))
    _try(out, "picows C via ctypes (in place)", lambda: _picows_mask()(n))
    _try(out, "websockets (new bytes)", lambda: new(_bind_websockets()))
    _try(out, "wsaccel (new bytes)", lambda: new(_bind_wsaccel()))
    return out


def _bind_aiohttp() -> Callable[[bytearray], object]:
    fn = wb.aiohttp_mask_inplace()
    key = wb.MASK
    return lambda b: fn(key, b)


def _bind_websockets() -> Callable[[bytes], bytes]:
    fn = wb.websockets_apply_mask()
    key = wb.MASK
    return lambda d: fn(d, key)


def _bind_wsaccel() -> Callable[[bytes], bytes]:
    from wsaccel.xormask import XorMaskerSimple

    key = wb.MASK
    return lambda d: XorMaskerSimple(key).process(d)  # type: ignore[no-any-return]


def utf8_contenders(n: int) -> dict[str, tuple[Timed, Callable[[], None]]]:
    text = wb.mixed_text(n)
    out: dict[str, tuple[Timed, Callable[[], None]]] = {}

    def ok(got: object) -> None:
        if not got:
            raise AssertionError("valid text refused")

    validate = wsfast.validate_utf8
    out["wsfast validate_utf8"] = (lambda: validate(text)), (lambda: ok(validate(text)))
    out["bytes.decode (websockets, aiohttp, picows)"] = (lambda: text.decode("utf-8")), (
        lambda: ok(text.decode("utf-8") is not None)
    )

    def wsaccel() -> tuple[Timed, Callable[[], None]]:
        cls = wb.wsaccel_utf8_validator()
        return (lambda: cls().validate(text)), (lambda: ok(cls().validate(text)[0]))

    _try(out, "wsaccel Utf8Validator", wsaccel)
    return out


def frame_contenders(n: int) -> dict[str, tuple[Timed, Callable[[], None]]]:
    count = max(4, min(10_000, FRAME_BYTES // n))
    stream, expected = wb.masked_stream(count, n)
    chunks = wb.split(stream)
    out: dict[str, tuple[Timed, Callable[[], None]]] = {}

    def reader(make: Callable[[], wb.Reader]) -> tuple[Timed, Callable[[], None]]:
        run, payloads = make()

        def check() -> None:
            if payloads(run()) != expected:
                raise AssertionError("wrong payloads")

        return run, check

    out["wsfast FrameParser"] = reader(lambda: wb.wsfast_reader(wsfast, chunks))
    _try(out, "aiohttp reader_c", lambda: reader(lambda: wb.aiohttp_reader(chunks)))
    return out


def _try(out: dict[str, Any], name: str, build: Callable[[], Any]) -> None:
    try:
        out[name] = build()
    except (wb.PeerUnavailable, ImportError) as exc:
        print(f"  {name}: left out ({exc})")


def measure(
    make: Callable[[int], dict[str, tuple[Timed, Callable[[], None]]]],
    rounds: int,
    per_call_bytes: Callable[[int], int],
) -> dict[str, list[float]]:
    """name -> GB/s at each size (best of ``rounds`` interleaved rounds)."""
    series: dict[str, list[float]] = {}
    for n in SIZES:
        contenders = make(n)
        for _, check in contenders.values():
            check()
        best = dict.fromkeys(contenders, float("inf"))
        loops = {}
        for name, (fn, _) in contenders.items():
            number, took = timeit.Timer(fn).autorange()
            loops[name] = max(1, int(number * SAMPLE / took))  # short samples: fewer preemptions
        for _ in range(rounds):
            for name, (fn, _) in contenders.items():
                t = timeit.timeit(fn, number=loops[name]) / loops[name]
                best[name] = min(best[name], t)
        for name, t in best.items():
            series.setdefault(name, []).append(per_call_bytes(n) / t / 1e9)
        cells = ", ".join(f"{k} {v[-1]:.2f}" for k, v in series.items())
        print(f"  {wb.size_label(n):>8}: {cells}")
    return series


def plot(panels: list[tuple[str, dict[str, list[float]]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=90)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for name, values in series.items():
            style = "-o" if name.startswith("wsfast") else "--."
            ax.plot(SIZES[: len(values)], values, style, label=name, markersize=4)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("GB/s (best of rounds)", fontsize=8)
        size_axis(ax)
    title = f"wsfast {wsfast.__version__} kernels ({simd()}), one run, same machine"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


def size_axis(ax: Any) -> None:
    """The x axis of a plot against SIZES (log 2, one labelled tick per size), a grid and
    the legend: the same on every plot in bench/plots."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(SIZES)
    ax.set_xticklabels([wb.size_label(n).replace(" ", "") for n in SIZES], fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)


def simd() -> str:
    """The SIMD path of the compiled masking kernel, or "pure Python"."""
    try:
        from wsfast import _mask

        return str(_mask.simd_path())
    except ImportError:
        return "pure Python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 rounds, sizes up to 64 KiB")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    if args.quick:
        del SIZES[6:]
    print("masking (GB/s):")
    masks = measure(mask_contenders, rounds, lambda n: n)
    print("UTF-8 validation, mixed text (GB/s):")
    utf8 = measure(utf8_contenders, rounds, lambda n: len(wb.mixed_text(n)))
    print("frame parsing, masked binary frames (GB/s of payload):")
    frames = measure(
        frame_contenders, rounds, lambda n: n * max(4, min(10_000, FRAME_BYTES // n))
    )
    plot([("masking", masks), ("UTF-8 validation", utf8), ("frame parsing", frames)], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
