"""Masking: ``apply_mask`` and ``apply_mask_inplace`` against peers and plain copies.

Groups ``apply_mask <size>`` and ``apply_mask_inplace <size>``. Every contender's output is
checked against the pure-Python kernel before it is timed.
"""

from __future__ import annotations

import pytest
from _benchutil import (
    KERNELS,
    MASK,
    SIZES,
    KiB,
    masked_payload,
    peer,
    random_payload,
    run,
    size_id,
    size_label,
)

from wsfast.cli import bench as wb


def _copy(data: bytes, mask: bytes) -> bytes:
    # The copy baseline of the apply_mask targets. Unlike the kernels it pays for one
    # Python-level call (tens of ns): negligible from 64 KiB up, visible at 1 KiB.
    # ``python -m wsfast bench`` times the expression inline.
    return bytes(bytearray(data))


# The copy baselines only make sense for buffers large enough for the copy to matter.
APPLY = [
    pytest.param(n, who, id=f"{size_id(n)}-{who}")
    for n in SIZES
    for who in ("wsfast", "pure", "websockets", "copy", "bytearray")
    if n >= KiB or who not in ("copy", "bytearray")
]


@pytest.mark.parametrize(("size", "who"), APPLY)
def test_apply_mask(benchmark, size, who):
    data = random_payload(size)
    expected = masked_payload(size)
    if who in KERNELS:
        fn, args, want = KERNELS[who].apply_mask, (data, MASK), expected
    elif who == "websockets":
        fn, args, want = peer(wb.websockets_apply_mask), (data, MASK), expected
    elif who == "copy":
        fn, args, want = _copy, (data, MASK), data
    else:  # a single copy into a new buffer: close to the memcpy rate
        fn, args, want = bytearray, (data,), data
    assert fn(*args) == want, f"{who} gives a wrong result"
    assert run(benchmark, f"apply_mask {size_label(size)}", who, fn, *args) == want


@pytest.mark.parametrize("who", ["wsfast", "pure", "aiohttp"])
@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_apply_mask_inplace(benchmark, size, who):
    data = random_payload(size)
    expected = masked_payload(size)
    check = bytearray(data)
    buf = bytearray(data)  # masked back and forth while timed
    if who in KERNELS:
        fn = KERNELS[who].apply_mask_inplace
        fn(check, MASK)
        args = (buf, MASK)
    else:
        fn = peer(wb.aiohttp_mask_inplace)  # _websocket_mask_cython(mask: bytes, data: bytearray)
        fn(MASK, check)
        args = (MASK, buf)
    assert check == expected, f"{who} gives a wrong result"
    run(benchmark, f"apply_mask_inplace {size_label(size)}", who, fn, *args)
    assert buf in (data, expected)  # an even or odd number of passes, nothing else
