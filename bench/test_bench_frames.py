"""Frame parsing: ``FrameParser`` against aiohttp's compiled reader and wsproto, plus the
header codec.

Group ``FrameParser <count> x <size>``: a stream of ``count`` masked binary frames with
``size``-byte payloads, each frame with its own key, fed in 256 KiB reads to a fresh parser
per round (so frames straddle reads); the parser must unmask every payload. The headline
case is 10,000 frames of 32 bytes. How each peer is driven is documented in
:mod:`wsfast.cli.bench` (``aiohttp_reader``, ``wsproto_reader``). Every contender's payloads
are compared with the originals before and after timing.
"""

from __future__ import annotations

import functools

import pytest
from _benchutil import KERNELS, MASK, KiB, MiB, frame_workload, peer, run, size_label

from wsfast.cli import bench as wb

# (frames, payload size): about 0.3-16 MiB of stream each
WORKLOADS = [
    (10_000, 6),
    (10_000, 32),
    (10_000, 125),
    (4096, KiB),
    (64, 64 * KiB),
    (4, MiB),
    (1, 16 * MiB),
]


def _reader(who, chunks):
    if who in KERNELS:
        return wb.wsfast_reader(KERNELS[who], chunks)
    if who == "aiohttp":
        return peer(wb.aiohttp_reader, chunks)
    return peer(wb.wsproto_reader, chunks)


@pytest.mark.parametrize("who", ["wsfast", "pure", "aiohttp", "wsproto"])
@pytest.mark.parametrize(
    ("count", "size"),
    WORKLOADS,
    ids=[f"{c}x{size_label(s).replace(' ', '')}" for c, s in WORKLOADS],
)
def test_frame_parser(benchmark, count, size, who):
    chunks, payloads = frame_workload(count, size)
    parse, payloads_of = _reader(who, chunks)
    got = payloads_of(parse())
    assert len(got) == count and got == payloads, f"{who} gives wrong payloads"
    result = run(benchmark, f"FrameParser {count} x {size_label(size)}", who, parse)
    assert payloads_of(result) == payloads


HEADER_LENGTHS = [125, 64 * KiB, 16 * MiB]  # the 7-, 16- and 64-bit length encodings


@pytest.mark.parametrize("who", ["wsfast", "pure"])
@pytest.mark.parametrize("length", HEADER_LENGTHS, ids=lambda n: size_label(n).replace(" ", ""))
def test_parse_header(benchmark, length, who):
    kernels = KERNELS[who]
    data = kernels.build_header(2, length, mask=MASK) + b"\0" * 16
    header = kernels.parse_header(data)
    assert (header.opcode, header.length, header.mask, header.fin) == (2, length, MASK, True)
    run(benchmark, f"parse_header (masked, {size_label(length)})", who, kernels.parse_header, data)


@pytest.mark.parametrize("who", ["wsfast", "pure"])
@pytest.mark.parametrize("length", HEADER_LENGTHS, ids=lambda n: size_label(n).replace(" ", ""))
def test_build_header(benchmark, length, who):
    kernels = KERNELS[who]
    build = kernels.build_header
    expected = KERNELS["pure"].build_header(2, length, mask=MASK)
    assert build(2, length, mask=MASK) == expected

    call = functools.partial(build, 2, length, mask=MASK)
    assert run(benchmark, f"build_header (masked, {size_label(length)})", who, call) == expected
