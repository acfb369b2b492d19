"""Exceptions shared by the kernels (compiled and pure) and the protocol layer."""

from __future__ import annotations

from typing import Any

__all__ = ["ProtocolError"]


class ProtocolError(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to fail the connection with.

    ``frames`` holds the frames a :class:`FrameParser` completed in the same ``feed()`` call
    before it met the error, so that nothing received before the bad frame is lost.
    """

    code: int
    frames: list[Any]

    def __init__(self, message: str, code: int = 1002, frames: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.frames = [] if frames is None else frames

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code, self.frames))
