"""UTF-8 validation in pure Python: the reference for ``wsfast._utf8``.

Whole buffers go through CPython's strict decoder. The incremental validator runs a small
DFA of Unicode Table 3-7 over the bytes of a character split across fragments, so that it
fails as soon as a prefix cannot start any valid character (CPython's incremental decoder
waits on, e.g., ``b"\\xed\\xa0"``).
"""

from __future__ import annotations

from typing import Any

from ._buffers import byte_view

__all__ = ["validate_utf8", "Utf8Validator", "ACCEPT", "REJECT", "BYTE_CLASS", "TRANSITIONS"]

# DFA states: 0 accept (at a character boundary), 1 reject (absorbing), then "inside a character":
# 2/3/4 need 1/2/3 more continuation bytes 80..BF; 5 after E0 (next A0..BF); 6 after ED (next
# 80..9F); 7 after F0 (next 90..BF); 8 after F4 (next 80..8F).
ACCEPT = 0
REJECT = 1


def _byte_class(b: int) -> int:
    """0 ASCII; 1 80..8F; 2 90..9F; 3 A0..BF; 4 never valid; 5 C2..DF; 6 E0; 7 E1..EC, EE..EF;
    8 ED; 9 F0; 10 F1..F3; 11 F4."""
    if b < 0x80:
        return 0
    if b < 0x90:
        return 1
    if b < 0xA0:
        return 2
    if b < 0xC0:
        return 3
    if b < 0xC2 or b > 0xF4:
        return 4
    if b < 0xE0:
        return 5
    if b == 0xE0:
        return 6
    if b == 0xED:
        return 8
    if b < 0xF0:
        return 7
    if b == 0xF0:
        return 9
    if b < 0xF4:
        return 10
    return 11


BYTE_CLASS = bytes(_byte_class(b) for b in range(256))

_R = REJECT
# TRANSITIONS[state * 12 + byte class] -> next state
TRANSITIONS = bytes(
    [
        0, _R, _R, _R, _R, 2, 5, 3, 6, 7, 4, 8,  # 0 accept
        _R, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R,  # 1 reject
        _R, 0, 0, 0, _R, _R, _R, _R, _R, _R, _R, _R,  # 2 one more
        _R, 2, 2, 2, _R, _R, _R, _R, _R, _R, _R, _R,  # 3 two more
        _R, 3, 3, 3, _R, _R, _R, _R, _R, _R, _R, _R,  # 4 three more
        _R, _R, _R, 2, _R, _R, _R, _R, _R, _R, _R, _R,  # 5 after E0
        _R, 2, 2, _R, _R, _R, _R, _R, _R, _R, _R, _R,  # 6 after ED
        _R, _R, 3, 3, _R, _R, _R, _R, _R, _R, _R, _R,  # 7 after F0
        _R, 3, _R, _R, _R, _R, _R, _R, _R, _R, _R, _R,  # 8 after F4
    ]
)  # fmt: skip


def _run_dfa(state: int, view: memoryview) -> int:
    for b in view:
        state = TRANSITIONS[state * 12 + BYTE_CLASS[b]]
        if state == REJECT:
            break
    return state


def _decodes(view: memoryview) -> bool:
    try:
        str(view, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def validate_utf8(data: Any) -> bool:
    """True iff ``data`` is well-formed UTF-8 (agrees with ``bytes.decode("utf-8")``)."""
    return _decodes(byte_view(data))


def _incomplete_tail(view: memoryview) -> int:
    """Where a character that ``view`` cuts short starts (``len(view)`` if none is cut)."""
    n = len(view)
    t = n - 1
    while t > 0 and t > n - 4 and view[t] & 0xC0 == 0x80:
        t -= 1
    if t < 0:
        return n
    lead = view[t]
    if 0xC0 <= lead < 0xE0:
        need = 2
    elif 0xE0 <= lead < 0xF0:
        need = 3
    elif 0xF0 <= lead < 0xF8:
        need = 4
    else:
        need = 1
    return t if t + need > n else n


class Utf8Validator:
    """Validates a message arriving in fragments; fails at the first impossible byte."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = ACCEPT

    def feed(self, data: Any) -> bool:
        """Add ``data``; False once the bytes so far cannot begin any valid UTF-8 string."""
        view = byte_view(data)
        state = self._state
        if state == REJECT:
            return False
        i = 0
        n = len(view)
        # Finish a character left open by the previous fragment.
        while state != ACCEPT and i < n:
            state = TRANSITIONS[state * 12 + BYTE_CLASS[view[i]]]
            i += 1
            if state == REJECT:
                self._state = REJECT
                return False
        if i < n:
            rest = view[i:]
            cut = _incomplete_tail(rest)
            if not _decodes(rest[:cut]):
                state = REJECT
            else:
                state = _run_dfa(ACCEPT, rest[cut:])
        self._state = state
        return state != REJECT

    def feed_count(self, data: Any) -> int:
        """Like :meth:`feed`, but return how many bytes of ``data`` were accepted: all of
        them while the bytes so far can begin valid UTF-8, else the index of the first byte
        that cannot (0 once the validator has rejected)."""
        view = byte_view(data)
        before = self._state
        if self.feed(view):
            return len(view)
        if before == REJECT:
            return 0
        state = before
        for i, b in enumerate(view):  # only after an error: find where it is
            state = TRANSITIONS[state * 12 + BYTE_CLASS[b]]
            if state == REJECT:
                return i
        raise AssertionError("unreachable: feed() rejected but the DFA does not")

    def finish(self) -> bool:
        """True iff everything fed is valid UTF-8 ending on a character boundary."""
        return self._state == ACCEPT

    def reset(self) -> None:
        """Forget everything fed so far."""
        self._state = ACCEPT
