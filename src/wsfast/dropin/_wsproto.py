"""wsproto adapters: the masker and a frame decoder with a compiled fast path.

``XorMaskerSimple`` keeps wsproto's contract: ``process(data)`` returns a new ``bytearray``
and the key offset carries across calls (data-frame payloads are unmasked piece by piece, as
they arrive).

``FrameDecoder`` is wsproto's own class with a fast path in front of it, taken when wsproto
would accept the header (known opcode, control frames unfragmented and at most 125 bytes,
minimal length encoding, mask bit as the role expects, RSV bits only as the extensions
allow): a whole frame waiting at the start of the buffer is cut out and unmasked by the
kernels in one step; without extensions, a data frame still arriving is delivered piece by
piece as wsproto delivers it (same pieces, same decoder state), each piece copied and
unmasked once. Everything else (a header wsproto refuses, one cut short) runs through
wsproto's own ``process_buffer``, so frames, events and ``ParseFailed`` codes come out at the
same points. Extension hooks are called in wsproto's
order with the decoder in the state wsproto would have. Text decoding stays wsproto's own
(``MessageDecoder`` is untouched).

Why not :class:`wsfast.FrameParser`: it buffers a frame until it is complete and checks the
header in another order, whereas wsproto delivers data-frame payloads as they arrive and
raises its errors at points its tests pin down; the stateless kernels plus wsproto's own code
for every other case give the same behaviour by construction.
"""

from __future__ import annotations

import sys
import types
from codecs import utf_8_decode
from typing import Any

from .. import apply_mask, apply_mask_inplace

_CPYTHON = sys.implementation.name == "cpython"

__all__ = ["make_frame_decoder", "make_frame_protocol", "make_masker"]


class _Masker:
    """Masks with the 4-byte key, continuing where the previous call stopped."""

    __slots__ = ("_masking_key", "_phase")

    def __init__(self, masking_key: bytearray | bytes) -> None:
        self._masking_key = masking_key
        self._phase = 0

    def process(self, data: Any) -> bytearray:
        out = bytearray(data)
        if out:
            apply_mask_inplace(out, self._masking_key, self._phase)
            self._phase = (self._phase + len(out)) & 3
        return out


def make_masker(module: types.ModuleType, original: Any) -> type:
    masker = type("XorMaskerSimple", (_Masker,), {"__slots__": (), "__doc__": _Masker.__doc__})
    masker.__module__ = module.__name__
    masker.__qualname__ = original.__qualname__
    return masker


def _piece(data: bytearray, start: int, end: int, masker: Any) -> bytes:
    """``data[start:end]`` unmasked by ``masker`` (one of ours, or None for no mask), as bytes."""
    if masker is None:
        return bytes(data[start:end])
    key = masker._masking_key
    phase = masker._phase
    masker._phase = (phase + end - start) & 3
    if _CPYTHON:  # one copy: the view is released as soon as the call returns
        with memoryview(data) as view:
            return apply_mask(view[start:end], key, phase)
    return apply_mask(bytes(data[start:end]), key, phase)


def make_frame_decoder(module: types.ModuleType, original: Any) -> type:
    frame_type = module.Frame
    header_type = module.Header
    rsv_type = module.RsvBits
    no_rsv = rsv_type(False, False, False)
    continuation = module.Opcode.CONTINUATION
    null_masker = module.XorMaskerNull
    opcodes: list[Any] = [None] * 16
    for op in module.Opcode:
        opcodes[int(op)] = op
    parse_buffer = original.process_buffer

    class FrameDecoder(original):  # type: ignore[misc]
        header: Any
        extensions: list[Any]
        def process_buffer(self) -> Any:
            frame = self._wsfast_fast_path()
            if frame is not None:
                return frame
            return parse_buffer(self)

        def _wsfast_fast_path(self) -> Any:
            """The next frame (or piece of a data frame) when wsproto would deliver it and no
            extension is involved, else when a whole frame waits; None (nothing consumed)
            in every other case, for wsproto's own code to handle."""
            if self.header is not None:
                return self._wsfast_continue()
            buf = self.buffer
            data = buf.buffer
            n = len(data)
            if n < 2 or buf.bytes_used:
                return None
            b0 = data[0]
            b1 = data[1]
            opcode = opcodes[b0 & 0x0F]
            if opcode is None or (b0 & 0x08 and not b0 & 0x80):
                return None
            if bool(b1 & 0x80) == bool(self.client):
                return None
            length = b1 & 0x7F
            pos = 2
            if length >= 126:
                if b0 & 0x08:
                    return None
                if length == 126:
                    if n < 4:
                        return None
                    length = (data[2] << 8) | data[3]
                    if length <= 125:
                        return None
                    pos = 4
                else:
                    if n < 10:
                        return None
                    length = int.from_bytes(data[2:10], "big")
                    if length <= 0xFFFF or length >> 63:
                        return None
                    pos = 10
            masked = b1 & 0x80
            start = pos + 4 if masked else pos
            end = start + length
            fin = bool(b0 & 0x80)
            extensions = self.extensions
            if n < end:
                # A data frame still arriving: wsproto delivers what is here already.
                if extensions or b0 & 0x78 or n <= start:
                    return None
                self.header = header_type(fin, no_rsv, opcode, length, None)
                self.effective_opcode = opcode
                self.masker = module.XorMaskerSimple(data[pos:start]) if masked else null_masker()
                self.payload_required = 0
                self.payload_consumed = 0
                del data[:start]
                return self._wsfast_continue()
            if extensions:
                rsv = rsv_type(bool(b0 & 0x40), bool(b0 & 0x20), bool(b0 & 0x10))
                buf.bytes_used = pos  # where wsproto stands when it asks the extensions
                self.extension_processing(opcode, rsv, length)
                buf.bytes_used = 0
            elif b0 & 0x70:
                return None
            payload: Any = (
                apply_mask(data[start:end], data[pos:start]) if masked else bytes(data[start:end])
            )
            del data[:end]
            self.payload_required = length if b0 & 0x08 else 0
            self.payload_consumed = length
            if not extensions:
                return frame_type(opcode, payload, True, fin)
            # The state wsproto is in while it runs the hooks (and keeps if one fails).
            self.header = header_type(fin, rsv, opcode, length, None)
            self.effective_opcode = opcode
            for extension in extensions:
                result = extension.frame_inbound_payload_data(self, bytes(payload))
                if isinstance(result, module.CloseReason):
                    raise module.ParseFailed("error in extension", result)
                payload = bytearray(result)
            final = bytearray()
            for extension in extensions:
                result = extension.frame_inbound_complete(self, fin)
                if isinstance(result, module.CloseReason):
                    raise module.ParseFailed("error in extension", result)
                if result is not None:
                    final += result
            payload += final
            self.header = None
            self.effective_opcode = None
            self.masker = None
            return frame_type(opcode, bytes(payload), True, fin)

        def _wsfast_continue(self) -> Any:
            """The next piece of the data frame in progress, as wsproto delivers it."""
            header = self.header
            masker = self.masker
            buf = self.buffer
            data = buf.buffer
            if self.extensions or self.payload_required or buf.bytes_used:
                return None
            if isinstance(masker, null_masker):
                masker = None
            elif not isinstance(masker, _Masker):
                return None
            take = min(header.payload_len - self.payload_consumed, len(data))
            if take <= 0:
                return None
            payload = _piece(data, 0, take, masker)
            del data[:take]
            self.payload_consumed += take
            finished = self.payload_consumed == header.payload_len
            frame = frame_type(self.effective_opcode, payload, finished, header.fin)
            if finished:
                self.header = None
                self.effective_opcode = None
                self.masker = None
            else:
                self.effective_opcode = continuation
            return frame

    FrameDecoder.__module__ = module.__name__
    FrameDecoder.__qualname__ = original.__qualname__
    return FrameDecoder


def make_frame_protocol(module: types.ModuleType, original: Any) -> type:
    frame_type = module.Frame
    text = module.Opcode.TEXT
    close = module.Opcode.CLOSE

    class FrameProtocol(original):  # type: ignore[misc]
        extensions: list[Any]
        _wsfast_state = 0  # 0 not started, 1 running, 2 finished (a close frame or a failure)

        def _parse_more_gen(self) -> Any:
            # wsproto's loop (kept for callers of _parse_more), with the shortcut below.
            self.extensions = [ext for ext in self.extensions if ext.enabled()]
            closed = False
            while not closed:
                frame = self._frame_decoder.process_buffer()
                if frame is not None:
                    frame, closed = self._wsfast_process(frame)
                yield frame

        def received_frames(self) -> Any:
            # What wsproto's received_frames() yields by running _parse_more_gen, in one
            # generator instead of two: the frames, until a close frame (included) or a
            # failure, after which nothing more.
            if self._wsfast_state == 2:
                return
            if self._wsfast_state == 0:
                self.extensions = [ext for ext in self.extensions if ext.enabled()]
                self._wsfast_state = 1
            frames = self._frame_decoder
            while True:
                try:
                    frame = frames.process_buffer()
                    if frame is None:
                        return
                    frame, closed = self._wsfast_process(frame)
                except BaseException:
                    self._wsfast_state = 2
                    raise
                if closed:
                    self._wsfast_state = 2
                    yield frame
                    return
                yield frame

        def _wsfast_process(self, frame: Any) -> tuple[Any, bool]:
            # A whole text message in one frame, while no other message is open, is decoded
            # as MessageDecoder.process_frame would do it: a fresh incremental UTF-8 decoder
            # given the payload with final=True is one call of codecs.utf_8_decode (same str).
            # Invalid text, and everything else, goes through wsproto's own code (the same
            # ParseFailed, raised with the message decoder in wsproto's state).
            opcode = frame.opcode
            if opcode < 8:
                messages = self._message_decoder
                if (
                    opcode is text
                    and frame.message_finished
                    and frame.frame_finished
                    and messages.opcode is None
                ):
                    try:
                        data = utf_8_decode(frame.payload, "strict", True)[0]
                    except UnicodeDecodeError:
                        pass
                    else:
                        return frame_type(text, data, True, True), False
                return messages.process_frame(frame), False
            if opcode == close:
                return self._process_close(frame), True
            return frame, False

    FrameProtocol.__module__ = module.__name__
    FrameProtocol.__qualname__ = original.__qualname__
    return FrameProtocol
