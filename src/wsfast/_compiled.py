"""The compiled kernels gathered under the same names as :mod:`wsfast.pure`."""

from ._frames import Frame, FrameHeader, FrameParser, build_frame, build_header, parse_header
from ._mask import apply_mask, apply_mask_inplace
from ._utf8 import Utf8Validator, validate_utf8

implementation = "cython"

__all__ = [
    "Frame",
    "FrameHeader",
    "FrameParser",
    "Utf8Validator",
    "apply_mask",
    "apply_mask_inplace",
    "build_frame",
    "build_header",
    "implementation",
    "parse_header",
    "validate_utf8",
]
