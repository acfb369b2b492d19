"""wsfast: fast WebSocket (RFC 6455) framing for Python.

The top level exports the fastest available kernels (:mod:`wsfast.pure` has the same names in
pure Python; ``implementation`` says which ones you got: ``"cython"`` or ``"python"``) and the
sans-I/O protocol layer built on them: :class:`ServerConnection`, :class:`ClientConnection`,
their events and the handshake helpers. The asyncio server and client are in
:mod:`wsfast.asyncio`.
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

# The protocol layer imports the kernels chosen above.
from .connection import (  # noqa: E402
    ClientConnection,
    Connection,
    InvalidState,
    ServerConnection,
    State,
)

# Drop-in speedups for other WebSocket libraries (wsfast.dropin).
from .dropin import patch, patched, unpatch  # noqa: E402
from .events import (  # noqa: E402
    Accepted,
    BinaryMessage,
    CloseReceived,
    ConnectionTerminated,
    Event,
    HandshakeFailed,
    HttpRequest,
    Ping,
    Pong,
    ProtocolViolation,
    Rejected,
    Request,
    TextBytes,
    TextMessage,
)
from .handshake import HandshakeError, Headers, accept_key, generate_key  # noqa: E402


def __getattr__(name: str) -> object:
    # Deprecated names (ConnectionClosed, the event now called ConnectionTerminated).
    from .events import deprecated_alias

    return deprecated_alias(__name__, name)


__all__ = [
    "Accepted",
    "BinaryMessage",
    "ClientConnection",
    "CloseReceived",
    "Connection",
    "ConnectionTerminated",
    "Event",
    "HandshakeError",
    "HandshakeFailed",
    "Headers",
    "HttpRequest",
    "InvalidState",
    "Ping",
    "Pong",
    "ProtocolViolation",
    "Rejected",
    "Request",
    "ServerConnection",
    "State",
    "TextBytes",
    "TextMessage",
    "accept_key",
    "generate_key",
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
    "patch",
    "patched",
    "unpatch",
    "validate_utf8",
]
