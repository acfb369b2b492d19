"""The pure-Python kernels: the reference, the fallback and the test oracle.

Same names, signatures, results and exceptions as the compiled kernels that ``wsfast``
exports when they are available.
"""

from ..codes import CloseCode, Opcode
from ..exceptions import ProtocolError
from .frames import Frame, FrameHeader, FrameParser, build_frame, build_header, parse_header
from .mask import apply_mask, apply_mask_inplace
from .utf8 import Utf8Validator, validate_utf8

implementation = "python"

__all__ = [
    "CloseCode",
    "Frame",
    "FrameHeader",
    "FrameParser",
    "Opcode",
    "ProtocolError",
    "Utf8Validator",
    "apply_mask",
    "apply_mask_inplace",
    "build_frame",
    "build_header",
    "implementation",
    "parse_header",
    "validate_utf8",
]
