"""wsproto adapters: the masker and a frame decoder with a compiled fast path.

``XorMaskerSimple`` keeps wsproto's contract: ``process(data)`` returns a new ``bytearray``
and the key offset carries across calls (data-frame payloads are unmasked piece by piece, as
they arrive).

``FrameDecoder`` is wsproto's own class with one fast path in front of it: when a whole frame
(header and payload) waits at the start of the buffer and wsproto would accept its header
(known opcode, control frames unfragmented and at most 125 bytes, minimal length encoding,
mask bit as the role expects, RSV bits only as the extensions allow), the frame is cut out
and unmasked by the kernels in one step. Everything else (a frame still arriving, any header
wsproto refuses) runs through wsproto's own ``process_buffer``, so frames, events and
``ParseFailed`` codes come out at the same points. Extension hooks are called in wsproto's
order with the decoder in the state wsproto would have. Text decoding stays wsproto's own
(``MessageDecoder`` is untouched).

Why not :class:`wsfast.FrameParser`: it buffers a frame until it is complete and checks the
header in another order, whereas wsproto delivers data-frame payloads as they arrive and
raises its errors at points its tests pin down; the stateless kernels plus wsproto's own code
for every other case give the same behaviour by construction.
"""

from __future__ import annotations

import types
from codecs import utf_8_decode
from typing import Any

from .. import apply_mask_inplace

__all__ = ["make_frame_decoder", "make_frame_protocol", "make_masker"]


def make_masker(module: types.ModuleType, original: Any) -> type:
    class XorMaskerSimple:
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

    XorMaskerSimple.__module__ = module.__name__
    XorMaskerSimple.__qualname__ = original.__qualname__
    return XorMaskerSimple


def make_frame_decoder(module: types.ModuleType, original: Any) -> type:
    frame_type = module.Frame
    header_type = module.Header
    rsv_type = module.RsvBits
    opcodes: list[Any] = [None] * 16
    for op in module.Opcode:
        opcodes[int(op)] = op
    parse_buffer = original.process_buffer

    class FrameDecoder(original):  # type: ignore[misc, valid-type]
        def process_buffer(self) -> Any:
            if self.header is None:
                frame = self._wsfast_whole_frame()
                if frame is not None:
                    return frame
            return parse_buffer(self)

        def _wsfast_whole_frame(self) -> Any:
            """The frame waiting whole at the start of the buffer, when wsproto would accept
            its header; None (nothing consumed) in every other case."""
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
            end = pos + length + (4 if b1 & 0x80 else 0)
            if n < end:
                return None
            fin = bool(b0 & 0x80)
            extensions = self.extensions
            if extensions:
                rsv = rsv_type(bool(b0 & 0x40), bool(b0 & 0x20), bool(b0 & 0x10))
                buf.bytes_used = pos  # where wsproto stands when it asks the extensions
                self.extension_processing(opcode, rsv, length)
                buf.bytes_used = 0
            elif b0 & 0x70:
                return None
            if b1 & 0x80:
                payload = data[pos + 4 : end]
                apply_mask_inplace(payload, data[pos : pos + 4])
            else:
                payload = data[pos:end]
            del data[:end]
            self.payload_required = length if b0 & 0x08 else 0
            self.payload_consumed = length
            if extensions:
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

    FrameDecoder.__module__ = module.__name__
    FrameDecoder.__qualname__ = original.__qualname__
    return FrameDecoder


def make_frame_protocol(module: types.ModuleType, original: Any) -> type:
    frame_type = module.Frame
    parse_failed = module.ParseFailed
    text = module.Opcode.TEXT
    close = module.Opcode.CLOSE
    invalid_payload = module.CloseReason.INVALID_FRAME_PAYLOAD_DATA

    class FrameProtocol(original):  # type: ignore[misc, valid-type]
        def _parse_more_gen(self) -> Any:
            # wsproto's loop, with one shortcut: a whole text message in one frame, while no
            # other message is open, is decoded as MessageDecoder.process_frame would do it
            # (a fresh incremental UTF-8 decoder given the payload with final=True is one
            # call of codecs.utf_8_decode; same str, same error).
            self.extensions = [ext for ext in self.extensions if ext.enabled()]
            frames = self._frame_decoder
            messages = self._message_decoder
            closed = False
            while not closed:
                frame = frames.process_buffer()
                if frame is not None:
                    opcode = frame.opcode
                    if opcode < 8:
                        if (
                            opcode is text
                            and frame.message_finished
                            and frame.frame_finished
                            and messages.opcode is None
                        ):
                            try:
                                data = utf_8_decode(frame.payload, "strict", True)[0]
                            except UnicodeDecodeError as exc:
                                raise parse_failed(str(exc), invalid_payload)  # noqa: B904
                            frame = frame_type(text, data, True, True)
                        else:
                            frame = messages.process_frame(frame)
                    elif opcode == close:
                        frame = self._process_close(frame)
                        closed = True
                yield frame

    FrameProtocol.__module__ = module.__name__
    FrameProtocol.__qualname__ = original.__qualname__
    return FrameProtocol
