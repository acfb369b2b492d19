"""wsfast: fast WebSocket (RFC 6455) framing kernels with pure-Python twins.

The top level exports the fastest available kernels; :mod:`wsfast.pure` the same names in
pure Python. ``implementation`` says which ones you got: ``"cython"`` or ``"python"``.
"""

from ._speedups import implementation, kernels
from ._version import __version__
from .codes import CloseCode, Opcode
from .exceptions import ProtocolError

apply_mask = kernels.apply_mask
apply_mask_inplace = kernels.apply_mask_inplace
validate_utf8 = kernels.validate_utf8
Utf8Validator = kernels.Utf8Validator
parse_header = kernels.parse_header
build_header = kernels.build_header
FrameHeader = kernels.FrameHeader
Frame = kernels.Frame
FrameParser = kernels.FrameParser

__all__ = [
    "CloseCode",
    "Frame",
    "FrameHeader",
    "FrameParser",
    "Opcode",
    "ProtocolError",
    "Utf8Validator",
    "__version__",
    "apply_mask",
    "apply_mask_inplace",
    "build_header",
    "implementation",
    "parse_header",
    "validate_utf8",
]
