"""UTF-8 validation: ``validate_utf8`` against ``bytes.decode``, and the incremental
``Utf8Validator.feed`` against wsaccel's ``Utf8Validator.validate``.

Groups ``validate_utf8 <text> <size>`` and ``Utf8Validator.feed <text> <size>``, for ASCII
and for mixed Greek/CJK text. Each contender is first shown to accept the text and to
reject a copy whose last character is invalid, so that none of them can skip the work.
"""

from __future__ import annotations

import pytest
from _benchutil import KERNELS, SIZES, ascii_payload, mixed_payload, peer, run, size_id, size_label

from wsfast.cli import bench as wb

TEXTS = {"ASCII": ascii_payload, "Greek/CJK": mixed_payload}


@pytest.mark.parametrize("who", ["wsfast", "pure", "decode"])
@pytest.mark.parametrize("kind", TEXTS)
@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_validate_utf8(benchmark, size, kind, who):
    text = TEXTS[kind](size)
    bad = wb.corrupt_tail(text)
    if who in KERNELS:
        fn, args = KERNELS[who].validate_utf8, (text,)
        assert fn(text) is True and fn(bad) is False, f"{who} gives a wrong result"
        want = True
    else:
        fn, args = bytes.decode, (text, "utf-8")
        with pytest.raises(UnicodeDecodeError):
            bad.decode("utf-8")
        want = text.decode("utf-8")
    assert run(benchmark, f"validate_utf8 {kind} {size_label(size)}", who, fn, *args) == want


@pytest.mark.parametrize("who", ["wsfast", "pure", "wsaccel"])
@pytest.mark.parametrize("kind", TEXTS)
@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_utf8_validator_feed(benchmark, size, kind, who):
    text = TEXTS[kind](size)
    bad = wb.corrupt_tail(text)
    if who in KERNELS:
        cls = KERNELS[who].Utf8Validator
        v = cls()
        assert (v.feed(text), v.feed(text), v.finish()) == (True, True, True)
        assert cls().feed(bad) is False, f"{who} accepts invalid UTF-8"
        fn = cls().feed  # one validator fed the same whole-character text over and over
    else:
        cls = peer(wb.wsaccel_utf8_validator)
        v = cls()
        # validate() -> (valid, ends_on_codepoint, index, total_index)
        assert v.validate(text)[:2] == (True, True) and v.validate(text)[3] == 2 * size
        assert cls().validate(bad)[0] is False, f"{who} accepts invalid UTF-8"
        fn = cls().validate
    result = run(benchmark, f"Utf8Validator.feed {kind} {size_label(size)}", who, fn, text)
    assert (result if who in KERNELS else result[0]) is True
