"""Sans-I/O WebSocket connections (RFC 6455): bytes in, events out, bytes to send.

No sockets, no asyncio: the I/O layer calls :meth:`~Connection.receive_data` /
:meth:`~Connection.receive_eof` with what it reads, writes :meth:`~Connection.data_to_send`,
hands :meth:`~Connection.events` to the application, and closes the transport once
:attr:`~Connection.should_close_transport` is true (RFC 6455 §7.1.1: the server closes TCP
first; a client in state CLOSED waits for the server's EOF, with a timeout of its own).

The state machine lives in :data:`_TRANSITIONS` and :meth:`Connection._transition` only::

    CONNECTING --open-------> OPEN          server accept(); client: a valid 101
    CONNECTING --refuse-----> CLOSED        server reject() or a bad request; client: a non-101
                                            or invalid response
    CONNECTING --respond----> CLOSED        server respond(): a plain HTTP request answered
                                            (plain_http=True)
    OPEN       --send_close-> CLOSING       close(): our close frame is out, theirs awaited
    OPEN       --recv_close-> CLOSED        their close frame, answered at once (§5.5.1)
    CLOSING    --recv_close-> CLOSED        the answer to ours
    OPEN/CLOSING --fail-----> CLOSED        the peer broke the protocol (§7.1.7)
    any but CLOSED --eof----> CLOSED        the transport was closed

Hot path: :class:`~wsfast.FrameParser` parses and unmasks, whole single-frame text messages
are validated and decoded in one pass by ``bytes.decode`` (which must run anyway to build
the ``str``), fragmented ones go through :class:`~wsfast.Utf8Validator` fragment by fragment;
sending is the kernels' ``build_frame`` (header and masked payload in one pass). A frame still
arriving (``FrameParser.pending``) is checked from its header and, if text, validated as its
payload comes in, so the connection fails as soon as the bytes allow (RFC 6455 §8.1).

This file is the one source of both implementations: imported as it is, and compiled by
Cython (setup.py copies it to ``wsfast/_connection_c.py`` at build time), where
``_connection_c.pxd`` turns the three classes into extension types with C attributes (the
``__slots__`` here). Import the classes from :mod:`wsfast.connection`, which picks one.

Threads: every public method and property is decorated ``@cython.critical_section``. Compiled
for a free-threaded CPython, that makes each call hold the connection's lock, so two threads
never race on its C attributes (memory stays safe; the protocol still wants its calls in a
sensible order, which is the caller's business). Run as Python on a free-threaded build, it
holds a lock of the object's own (:mod:`wsfast._nocython`); on GIL builds it costs nothing.
"""

from __future__ import annotations

import enum
import operator
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._speedups import kernels
from .codes import Opcode
from .events import (
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
from .exceptions import ProtocolError
from .handshake import (
    MAX_HEAD_SIZE,
    MAX_HEADER_LINES,
    MAX_REJECT_BODY,
    ClientExtensionFactory,
    Extension,
    HandshakeError,
    HeadReader,
    ResponseHead,
    ServerExtensionFactory,
    UpgradeRequest,
    accept_response,
    build_request,
    check_http_request,
    check_request,
    check_response,
    generate_key,
    http_response,
    is_websocket_upgrade,
    negotiate_extensions,
    parse_request_head,
    parse_response_head,
    parse_uri,
    reject_response,
    select_subprotocol,
    serialize_extensions,
)

if TYPE_CHECKING or __name__ == "wsfast._connection_py":
    # Run as Python: the decorators below are no-ops.
    from . import _nocython as cython
else:  # compiled as wsfast._connection_c: Cython's own directives
    import cython

__all__ = [
    "State",
    "InvalidState",
    "Connection",
    "ServerConnection",
    "ClientConnection",
    "DEFAULT_MAX_MESSAGE_SIZE",
]

build_header = kernels.build_header
build_frame = kernels.build_frame
validate_utf8 = kernels.validate_utf8
FrameParser = kernels.FrameParser
Frame = kernels.Frame
Utf8Validator = kernels.Utf8Validator

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""1 MiB."""

_CONT = Opcode.CONTINUATION
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CLOSE = Opcode.CLOSE
_PING = Opcode.PING
_PONG = Opcode.PONG

_INVALID_UTF8 = "invalid UTF-8 in a text message (RFC 6455 §8.1)"
_RSV_SET = "reserved bits set without an extension that uses them (RFC 6455 §5.2)"
_NEW_IN_FRAGMENTED = "a new data frame arrived inside a fragmented message (RFC 6455 §5.4)"
_NOTHING_TO_CONTINUE = "a continuation frame with no message to continue (RFC 6455 §5.4)"
_TEXT_CUT = "a text message ends inside a UTF-8 sequence (RFC 6455 §8.1)"

# Events are frozen dataclasses; on the hot path they are built through their slots, which
# skips the frozen __setattr__ detour of the generated __init__ (half the cost of an event).
_new = object.__new__
_set_text: Callable[[Any, str], None] = TextMessage.__dict__["data"].__set__
_set_text_bytes: Callable[[Any, bytes], None] = TextBytes.__dict__["data"].__set__
_set_binary: Callable[[Any, bytes], None] = BinaryMessage.__dict__["data"].__set__

_RANDOM_BATCH = 4096  # bytes of os.urandom per refill: 1024 masking keys per system call
_INFLATE_BUDGET = 1 << 20  # bytes extensions may produce per receive_data call (see backlogged)
_COALESCE = 4096  # payloads up to this size are joined to their header at once
_SMALL_FRAGMENT = 4096  # fragments below this size are gathered in one bytearray


class State(enum.IntEnum):
    """Connection states (RFC 6455 §4, §7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED

# (state, trigger) -> next state. Every state change goes through Connection._transition.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (_CONNECTING, "open"): _OPEN,
    (_CONNECTING, "refuse"): _CLOSED,
    (_CONNECTING, "respond"): _CLOSED,
    (_CONNECTING, "eof"): _CLOSED,
    (_OPEN, "send_close"): _CLOSING,
    (_OPEN, "recv_close"): _CLOSED,
    (_OPEN, "fail"): _CLOSED,
    (_OPEN, "eof"): _CLOSED,
    (_CLOSING, "recv_close"): _CLOSED,
    (_CLOSING, "fail"): _CLOSED,
    (_CLOSING, "eof"): _CLOSED,
}


class InvalidState(Exception):
    """The call is not allowed in the connection's current state (e.g. sending after close)."""


def _valid_close_code(code: int) -> bool:
    """May this code appear in a close frame (RFC 6455 §7.4.1, §7.4.2, IANA registry)?"""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_payload(code: int, reason: str) -> bytes:
    if code == 1005:
        return b""
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _index_of(frames: list[Any], frame: Any) -> int:
    """The position of ``frame`` itself (not an equal frame) in ``frames``."""
    for i, item in enumerate(frames):
        if item is frame:
            return i
    raise ValueError("frame not in frames")  # pragma: no cover


def _check_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0 or None, not {value}")
    return value


class Connection:
    """The part shared by both sides: framing, messages, control frames, closing.

    Limits (RFC 6455 §10.4): a frame whose header declares more than ``max_frame_size`` bytes,
    or a message whose size so far exceeds ``max_message_size``, fails the connection with
    1009. None disables a limit.

    ``defer_failure=True``: when the peer breaks the protocol, the messages that arrived before
    the bad frame are delivered, then a ProtocolViolation event, and nothing more is read; the
    application may still answer those messages, and the close frame goes out when it calls
    :meth:`fail` (or :meth:`close`). For I/O layers whose application runs later than
    ``events()`` (a task reading a queue). The default fails at once.
    """

    __slots__ = (
        "_client",
        "_state",
        "_events",
        "_out",
        "_should_close",
        "_eof",
        "_auto_pong",
        "_decode_text",
        "_max_message_size",
        "_max_frame_size",
        "_max_head_size",
        "_max_header_lines",
        "_parser",
        "_feed",
        "_extensions",
        "_subprotocol",
        "_msg_op",
        "_msg_ext",
        "_msg_parts",
        "_msg_size",
        "_validator",
        "_tracked",
        "_validated",
        "_send_op",
        "_plain_send",
        "_shortcuts",
        "_keys",
        "_close_code",
        "_close_reason",
        "_defer_failure",
        "_failing",
        "_inflated",
        "_backlog",
        "_bare",
        "_lock",  # run as Python on a free-threaded build (see wsfast._nocython)
    )

    _client: bool
    _state: State
    _events: list[Event]
    _out: list[bytes]
    _should_close: bool
    _eof: bool
    _auto_pong: bool
    _decode_text: bool
    _max_message_size: int | None
    _max_frame_size: int | None
    _max_head_size: int
    _max_header_lines: int
    _parser: Any
    _feed: Callable[[Any], list[Any]]
    _extensions: list[Extension]
    _subprotocol: str | None
    _msg_op: int
    _msg_ext: bool
    _msg_parts: list[bytes | bytearray]
    _msg_size: int
    _validator: Any
    _tracked: Any
    _validated: int
    _send_op: int
    _plain_send: bool
    _shortcuts: bool
    _keys: list[bytes]
    _close_code: int | None
    _close_reason: str
    _defer_failure: bool
    _failing: tuple[int, str] | None
    _inflated: int
    _backlog: tuple[list[Any], ProtocolError | None] | None
    _bare: bool
    _lock: Any

    @cython.critical_section
    def __init__(
        self,
        *,
        client: bool,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        auto_pong: bool = True,
        decode_text: bool = True,
        max_head_size: int = MAX_HEAD_SIZE,
        max_header_lines: int = MAX_HEADER_LINES,
        defer_failure: bool = False,
    ) -> None:
        self._client = client
        self._state = _CONNECTING
        self._events = []
        self._out = []
        self._should_close = False
        self._eof = False
        self._auto_pong = auto_pong
        self._decode_text = decode_text
        self._max_message_size = _check_limit("max_message_size", max_message_size)
        self._max_frame_size = _check_limit("max_frame_size", max_frame_size)
        # Ints in both builds (the compiled one stores C integers: a float would be refused).
        self._max_head_size = operator.index(max_head_size)
        self._max_header_lines = operator.index(max_header_lines)
        self._defer_failure = defer_failure
        self._failing = None
        # Frames read but not processed yet, because extensions (permessage-deflate) produced
        # _INFLATE_BUDGET bytes in this receive_data call already, and the parser error that
        # came after them; receive_data(b"") goes on with them (see backlogged).
        self._inflated = 0
        self._backlog = None
        self._bare = False  # see _give_bare_messages
        self._new_parser(self._max_message_size)
        self._extensions = []
        self._subprotocol = None
        self._msg_op = 0
        self._msg_ext = False  # the message in progress began with RSV bits: extensions decode it
        self._msg_parts = []
        self._msg_size = 0
        self._validator = Utf8Validator()
        # The parser's pending frame once its header is checked (see _check_pending), and how
        # many of its payload bytes went through the validator (-1: not text, or not ours to
        # validate because an extension transforms payloads).
        self._tracked = None
        self._validated = -1
        self._send_op = 0
        self._plain_send = False  # OPEN, no fragmented message being sent, no extensions
        self._shortcuts = True  # see _set_shortcuts
        self._keys = []
        self._close_code = None
        self._close_reason = ""

    # --- public API ------------------------------------------------------------------------

    @property
    @cython.critical_section
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING (our close frame sent, theirs awaited) or CLOSED."""
        return self._state

    @property
    @cython.critical_section
    def should_close_transport(self) -> bool:
        """True once the I/O layer should close the transport after writing data_to_send().

        Set on the server side whenever the connection reaches CLOSED (the server closes TCP
        first, RFC 6455 §7.1.1), and on both sides after a refused handshake or an EOF.
        """
        return self._closes_transport()

    @property
    @cython.critical_section
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, None when none was."""
        return self._subprotocol

    @property
    @cython.critical_section
    def extensions(self) -> tuple[Extension, ...]:
        """The negotiated extensions, in the order they apply to frames we send."""
        return tuple(self._extensions)

    @property
    @cython.critical_section
    def close_code(self) -> int | None:
        """The code of the peer's close frame (1005 if it had none); None if none arrived."""
        return self._close_code

    @property
    @cython.critical_section
    def close_reason(self) -> str:
        """The reason of the peer's close frame ("" if none arrived)."""
        return self._close_reason

    @cython.critical_section
    def events(self) -> list[Event]:
        """The events since the last call, oldest first (each message as its data alone
        once an asyncio ``WebSocket`` owns the connection: see _give_bare_messages)."""
        events = self._events
        self._events = []
        return events

    @cython.critical_section
    def data_to_send(self) -> bytes:
        """The bytes to write to the transport since the last call (b"" when none)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    @cython.critical_section
    def chunks_to_send(self) -> list[bytes]:
        """What :meth:`data_to_send` would return, as the list of its pieces: a large
        payload a server sends is a piece of its own, never joined to its header, so an I/O
        layer can write the pieces one by one without copying it (a client's frames are
        masked into one new object, header included, in one pass)."""
        out = self._out
        if out:
            self._out = []
        return out

    @property
    @cython.critical_section
    def backlogged(self) -> bool:
        """Frames already read wait to be processed: an extension (permessage-deflate)
        produced 1 MiB in one :meth:`receive_data` call, which stops there so that a burst
        of compressed messages cannot inflate into unbounded memory at once. Call
        ``receive_data(b"")`` when ready for more events, before reading more from the
        transport (the peer may be waiting for answers to what is held back); what is still
        held back at :meth:`receive_eof` is dropped."""
        return self._is_backlogged()

    def _give_bare_messages(self) -> None:
        """From now on events() gives each message as its data alone (``str`` for text,
        ``bytes`` for binary and for text with ``decode_text=False``), not as an event: for
        the asyncio shell, which needs nothing else of a message, so that a message is no
        object but its data. The other events stay events."""
        self._bare = True

    # What the asyncio shell asks on every read and send: methods, cpdef in
    # _connection_c.pxd, so that its compiled build calls them in C instead of looking a
    # property up by name; failing, backlogged and should_close_transport call them. They
    # take no critical section (the properties do): each compares one attribute, and the
    # shell asks from its loop's thread, the one that makes every other call on its
    # connection.

    def _is_open(self) -> bool:
        return self._state is _OPEN

    def _is_failing(self) -> bool:
        return self._failing is not None

    def _is_backlogged(self) -> bool:
        return self._backlog is not None

    def _closes_transport(self) -> bool:
        return self._should_close

    @cython.critical_section
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the transport; then read events() and data_to_send(), and
        while :attr:`backlogged`, call ``receive_data(b"")`` for the rest."""
        if self._failing is not None:
            return  # a deferred failure: nothing more is read (RFC 6455 §7.1.7)
        state = self._state
        if state is not _OPEN and state is not _CLOSING:
            if self._eof:
                raise InvalidState("receive_data() after receive_eof()")
            if state is _CONNECTING:
                self._receive_handshake(data)
            return  # CLOSED: nothing more is processed (RFC 6455 §7.1.7).
        if type(data) is not bytes and not (
            # A flat view of bytes (the asyncio shell's reads) is one already: no new view.
            type(data) is memoryview and data.ndim == 1 and data.format == "B" and data.c_contiguous
        ):
            data = memoryview(data).cast("B")
        error: ProtocolError | None = None
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
            frames, error = backlog
            if error is None and len(data):
                try:
                    frames = frames + self._feed(data)
                except ProtocolError as exc:
                    frames = frames + exc.frames
                    error = exc
        else:
            try:
                frames = self._feed(data)
            except ProtocolError as exc:
                # Deliver what arrived before the bad frame, then fail (unless that already did).
                frames = exc.frames
                error = exc
        self._inflated = 0
        if frames:
            skip = -1
            if self._tracked is not None:
                # The parser completes the frame it held before any other: frames[0] is the
                # one _check_pending saw, and ``skip`` payload bytes of it are validated.
                skip = self._validated
                self._tracked = None
                self._validated = -1
            # The shortcut, derived from _handle_frame: a whole message in one frame (FIN, no
            # message in progress, no RSV bits, no extensions, so the parser's bound already
            # held it to max_message_size) passes every rule but UTF-8, which _deliver applies.
            # tests/test_connection_rules.py proves both routes give the same events and bytes.
            shortcut = self._shortcuts and not self._extensions
            msg_op = self._msg_op
            for frame in frames:
                op = frame.opcode
                if (
                    shortcut
                    and skip < 0
                    and not msg_op
                    and frame.fin
                    and (op is _TEXT or op is _BINARY)
                    and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
                ):
                    if not self._deliver(op, frame.payload, False):
                        return
                    continue
                if not self._handle_frame(frame, skip):
                    return
                skip = -1
                msg_op = self._msg_op
                if self._inflated > _INFLATE_BUDGET:
                    rest = frames[_index_of(frames, frame) + 1 :]
                    if rest or error is not None:
                        self._backlog = (rest, error)
                        return
        if error is not None:
            self._fail(error.code, str(error))
        elif self._parser.pending is not None:
            self._check_pending()

    @cython.critical_section
    def receive_eof(self) -> None:
        """The peer closed its side of the transport (idempotent). Frames still held back
        (see :attr:`backlogged`) are dropped, not inflated."""
        if self._eof:
            return
        self._eof = True
        self._should_close = True
        if self._failing is not None:
            # A deferred failure ends as an immediate one would have: with its code.
            code, message = self._failing
            self._failing = None
            self._transition("fail", code, message)
            return
        if self._state is _CONNECTING:
            self._handshake_eof()
        if self._state is not _CLOSED:
            self._transition("eof")

    @cython.critical_section
    def send_text(self, data: str, *, fin: bool = True) -> None:
        """Send a text message, or a fragment of one with ``fin=False`` (RFC 6455 §5.4)."""
        if fin:
            self._send_text(data)
        else:
            self._send_data(_TEXT, data.encode("utf-8"), False)

    @cython.critical_section
    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None:
        """Send a binary message, or a fragment of one with ``fin=False`` (RFC 6455 §5.4)."""
        if fin:
            self._send_binary(data)
        else:
            self._send_data(_BINARY, data, False)

    # send_text(data) and send_binary(data): a whole message. cpdef in _connection_c.pxd,
    # where the keyword-only fin of the public methods cannot be (a Python subclass's
    # override of a cpdef method is called with every argument by position), so that the
    # compiled asyncio shell sends each message with a C call; the override of a Python
    # subclass still runs.

    @cython.critical_section
    def _send_text(self, data: str) -> None:
        if self._plain_send:
            # The shortcut, derived from _send_data: with _plain_send its checks pass and
            # _send_frame adds nothing (tests/test_connection_rules.py proves them equal).
            self._write_frame(_TEXT, data.encode("utf-8"), True, False, False, False)
        else:
            self._send_data(_TEXT, data.encode("utf-8"), True)

    @cython.critical_section
    def _send_binary(self, data: bytes | bytearray | memoryview) -> None:
        if self._plain_send:
            self._write_frame(_BINARY, data, True, False, False, False)  # as in _send_text
        else:
            self._send_data(_BINARY, data, True)

    @cython.critical_section
    def send_ping(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send a ping (RFC 6455 §5.5.2); at most 125 bytes of payload."""
        self._send_control(_PING, payload)

    @cython.critical_section
    def send_pong(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send a pong (RFC 6455 §5.5.3), e.g. to answer a ping when ``auto_pong=False``."""
        self._send_control(_PONG, payload)

    # One frame for many connections (wsfast.asyncio.broadcast).

    @property
    @cython.critical_section
    def broadcast_key(self) -> tuple[Any, ...] | None:
        """Connections with equal keys turn a message into the same bytes, so one
        :meth:`frame_message` result may be written to all of them.

        ``()`` for an open server connection without extensions; with extensions, the tuple of
        their ``broadcast_key`` attributes (an extension whose encoding of a whole message
        depends only on the message and that key, e.g. permessage-deflate without context
        takeover on our side). None when frames cannot be shared or no message can be sent
        now: not OPEN, a fragmented message in progress, a client (every frame has its own
        mask), or an extension without such a key.
        """
        return self._broadcast_key()

    def _broadcast_key(self) -> tuple[Any, ...] | None:
        if self._client or self._state is not _OPEN or self._send_op:
            return None
        if not self._extensions:
            return ()
        keys = []
        for extension in self._extensions:
            key = getattr(extension, "broadcast_key", None)
            if key is None:
                return None
            keys.append(key)
        return tuple(keys)

    @cython.critical_section
    def frame_message(self, data: str | bytes | bytearray | memoryview) -> bytes:
        """``data`` as one whole message frame (text for ``str``, binary otherwise), framed
        as :meth:`send_text` / :meth:`send_binary` would, but returned instead of sent.

        For writing the same bytes to every connection with this one's
        :attr:`broadcast_key`; raises InvalidState when that key is None.
        """
        if self._broadcast_key() is None:
            raise InvalidState("this connection's frames cannot be shared now")
        payload: Any
        if isinstance(data, str):
            op, payload = _TEXT, data.encode("utf-8")
        else:
            op, payload = _BINARY, data
        out = self._out
        self._out = []
        try:
            self._send_frame(op, payload, True)
            frame = b"".join(self._out)
        finally:
            self._out = out
        return frame

    @cython.critical_section
    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 §7.1.2); a no-op once closing or closed.

        ``code`` must be one a close frame may carry (1000-1003, 1007-1014, 3000-4999), or
        1005 to send a close frame without a code. Nothing is sent after it.
        """
        if self._failing is not None:
            self.fail()
            return
        state = self._state
        if state is _CLOSING or state is _CLOSED:
            return
        if state is not _OPEN:
            raise InvalidState("the handshake is not complete: reject() or drop the transport")
        if code != 1005 and not _valid_close_code(code):
            raise ValueError(f"close code {code} cannot be sent")
        if code == 1005 and reason:
            raise ValueError("a close frame without a code cannot have a reason")
        payload = _close_payload(code, reason)
        if len(payload) > 125:
            raise ValueError("the close reason is longer than 123 bytes in UTF-8")
        self._send_frame(_CLOSE, payload, True)
        self._transition("send_close")

    # --- the state machine -----------------------------------------------------------------

    def _transition(self, trigger: str, code: int = 1006, reason: str = "") -> None:
        """Move along _TRANSITIONS; reaching CLOSED emits the one ConnectionTerminated."""
        new = _TRANSITIONS.get((self._state, trigger))
        if new is None:
            raise InvalidState(f"cannot {trigger} in state {self._state.name}")
        self._state = new
        self._plain_send = self._can_send_plain()
        if new is _CLOSED:
            # RFC 6455 §7.1.1: the server closes the TCP connection first (and after a plain
            # HTTP response); a client closes it at once only when the handshake failed or the
            # peer is gone already.
            if not self._client or trigger == "refuse" or trigger == "eof":
                self._should_close = True
            self._msg_parts = []
            self._backlog = None  # nothing more is processed
            self._events.append(ConnectionTerminated(code, reason))

    def _can_send_plain(self) -> bool:
        """May send_text / send_binary take their shortcut: OPEN, no fragmented message in
        progress, no extensions? Then _send_data's checks pass and _send_frame adds nothing."""
        return (
            self._shortcuts and self._state is _OPEN and not self._send_op and not self._extensions
        )

    def _set_shortcuts(self, on: bool) -> None:
        """Turn the receive and send shortcuts on or off (for the tests that prove each equal
        to the general route it is derived from; the outcome never depends on it)."""
        self._shortcuts = bool(on)
        self._plain_send = self._can_send_plain()

    @cython.critical_section
    def fail(self) -> None:
        """Complete a deferred failure (``defer_failure=True``): send the close frame with the
        violation's code and go to CLOSED. A no-op when no failure is pending."""
        failing = self._failing
        if failing is None:
            return
        self._failing = None
        code, message = failing
        if self._state is _OPEN:
            self._send_frame(_CLOSE, _close_payload(code, _truncate_utf8(message, 123)), True)
        if self._state is not _CLOSED:
            self._transition("fail", code, message)

    @property
    @cython.critical_section
    def failing(self) -> bool:
        """A protocol violation was found and the failure is deferred until :meth:`fail`."""
        return self._is_failing()

    def _fail(self, code: int, message: str) -> None:
        """Fail the WebSocket connection (RFC 6455 §7.1.7): our close frame, then CLOSED.

        With ``defer_failure=True`` and the connection OPEN, only the ProtocolViolation event
        comes now: nothing more is read, the application may still answer the messages that
        arrived before the bad frame, and :meth:`fail` (or :meth:`close`) sends the close frame.
        """
        self._events.append(ProtocolViolation(code, message))
        self._failing = (code, message)
        if not (self._defer_failure and self._state is _OPEN):
            self.fail()

    # --- receiving frames ------------------------------------------------------------------

    def _handle_frame(self, frame: Any, skip: int) -> bool:
        """RFC 6455 §5.2-§5.6 for one complete frame; False once the connection is closed.

        ``skip`` >= 0: that many payload bytes of this text frame were validated already.
        """
        op = frame.opcode
        rsv = frame.rsv1 or frame.rsv2 or frame.rsv3
        payload = frame.payload
        plain = self._plain(op, rsv)
        if not self._check_start(op, rsv, len(payload) if plain else -1):
            return False
        if not plain:  # extensions were negotiated, or _check_start would have failed
            try:
                frame = self._decode_frame(frame)
            except ProtocolError as exc:
                self._fail(exc.code, str(exc))
                return False
            payload = frame.payload
            self._inflated += len(payload)
            # The extensions cleared the bits they own; any left are nobody's.
            if not self._check_rsv(frame.rsv1 or frame.rsv2 or frame.rsv3):
                return False
            if op is _TEXT or op is _BINARY or op is _CONT:
                if not self._check_size(op, len(payload)):
                    return False
        if op is _TEXT or op is _BINARY:
            self._msg_op = op
            self._msg_ext = rsv
            self._msg_parts = []
            self._msg_size = 0
            if op is _TEXT and skip < 0:
                self._validator.reset()
        elif op is _PING:
            self._events.append(Ping(payload))
            if self._auto_pong and self._state is _OPEN:
                self._send_frame(_PONG, payload, True)
            return True
        elif op is _PONG:
            self._events.append(Pong(payload))  # solicited or not: never an error (§5.5.3)
            return True
        elif op is not _CONT:
            return self._receive_close(payload)
        # A data frame of the message in progress (its first frame included).
        msg_op = self._msg_op
        self._msg_size += len(payload)
        if msg_op is _TEXT:
            # Skip what _check_pending validated while the frame was arriving.
            if not self._check_text(memoryview(payload)[skip:] if skip > 0 else payload):
                return False
        parts = self._msg_parts
        if not frame.fin:
            if len(payload) >= _SMALL_FRAGMENT:
                parts.append(payload)
            elif parts and type(parts[-1]) is bytearray:
                parts[-1] += payload  # small fragments share a buffer: no object each
            else:
                parts.append(bytearray(payload))
            return True
        if parts:
            parts.append(payload)
            payload = b"".join(parts)
        self._msg_parts = []
        self._msg_op = 0
        if msg_op is _TEXT and not self._end_text():
            return False
        return self._deliver(msg_op, payload, True)

    def _plain(self, op: Opcode, rsv: bool) -> bool:
        """Is a frame's payload the message's own bytes? Extensions transform the frames that
        carry RSV bits and the rest of a message whose first frame did."""
        return not rsv and not (op is _CONT and self._msg_ext)

    # The rules, one function each. Each returns False after failing the connection.

    def _check_start(self, op: Opcode, rsv: bool, length: int) -> bool:
        """What a frame's header decides, for a frame complete or still arriving: fragments
        in order (RFC 6455 §5.4), RSV bits only for an extension (§5.2), and the message size
        (§10.4) when ``length`` is the message's own bytes (-1: an extension transforms them).
        Opcodes, control frame sizes and FIN, and masking are the parser's (see _new_parser).
        """
        data = op is _TEXT or op is _BINARY
        if data and self._msg_op:
            self._fail(1002, _NEW_IN_FRAGMENTED)
            return False
        if op is _CONT and not self._msg_op:
            self._fail(1002, _NOTHING_TO_CONTINUE)
            return False
        if not self._check_rsv(rsv and not self._extensions):
            return False
        if length < 0 or not (data or op is _CONT):  # a control frame: nothing more here
            return True
        return self._check_size(op, length)

    def _check_rsv(self, unclaimed: bool) -> bool:
        """RFC 6455 §5.2: RSV bits that no negotiated extension claims fail with 1002."""
        if unclaimed:
            self._fail(1002, _RSV_SET)
            return False
        return True

    def _check_size(self, op: Opcode, length: int) -> bool:
        """RFC 6455 §10.4: ``length`` more message bytes (a data frame of ``op``) must keep
        the message within max_message_size, else 1009. (The parser holds each frame to the
        bound _new_parser gives it, from the header alone.)"""
        limit = self._max_message_size
        if limit is not None and length + (self._msg_size if op is _CONT else 0) > limit:
            self._fail(1009, f"message larger than max_message_size={limit}")
            return False
        return True

    def _check_text(self, chunk: Any) -> bool:
        """RFC 6455 §8.1: the next bytes of a text message, fed to the validator; 1007 at the
        first byte that cannot be UTF-8."""
        if self._validator.feed(chunk):
            return True
        self._fail(1007, _INVALID_UTF8)
        return False

    def _end_text(self) -> bool:
        """RFC 6455 §8.1: a text message must not end inside a UTF-8 sequence (1007)."""
        if self._validator.finish():
            return True
        self._fail(1007, _TEXT_CUT)
        return False

    def _deliver(self, op: int, payload: bytes, checked: bool) -> bool:
        """Queue the event of a complete message.

        Text is UTF-8-checked here unless ``checked`` (the validator saw all of it): whole,
        by ``bytes.decode`` (which must run anyway to build the ``str``) or
        :func:`~wsfast.validate_utf8`, which accept exactly what _check_text and _end_text do;
        a refusal is failed by those two (see _refuse_text), so the code and reason are theirs.
        """
        event: Any  # or the message's data alone (see _give_bare_messages)
        if op is _BINARY:
            if self._bare:
                event = payload
            else:
                event = _new(BinaryMessage)
                _set_binary(event, payload)
        elif self._decode_text:
            try:
                text = payload.decode()  # UTF-8, strict
            except UnicodeDecodeError:
                return self._refuse_text(payload)
            if self._bare:
                event = text
            else:
                event = _new(TextMessage)
                _set_text(event, text)
        elif checked or validate_utf8(payload):
            if self._bare:
                event = payload
            else:
                event = _new(TextBytes)
                _set_text_bytes(event, payload)
        else:
            return self._refuse_text(payload)
        self._events.append(event)
        return True

    def _refuse_text(self, payload: bytes) -> bool:
        """Fail a whole text message that _deliver refused, as the validator rules say."""
        self._validator.reset()
        if self._check_text(payload) and self._end_text():  # pragma: no cover - kernels agree
            self._fail(1007, _INVALID_UTF8)  # never accept what the decoder refused
        return False

    def _decode_frame(self, frame: Any) -> Any:
        op = frame.opcode
        max_size = self._max_message_size
        if max_size is not None and op is _CONT:
            max_size -= self._msg_size
        for extension in reversed(self._extensions):
            frame = extension.decode(frame, max_size=max_size)
        return frame

    def _receive_close(self, payload: bytes) -> bool:
        """A close frame (RFC 6455 §5.5.1, §7.4): validate, answer with the same code, close."""
        n = len(payload)
        if n == 0:
            code, reason = 1005, ""
        elif n == 1:
            self._fail(1002, "a close frame with a 1-byte payload (RFC 6455 §5.5.1)")
            return False
        else:
            code = int.from_bytes(payload[:2], "big")
            if not _valid_close_code(code):
                self._fail(1002, f"invalid close code {code} (RFC 6455 §7.4)")
                return False
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in a close reason (RFC 6455 §5.5.1)")
                return False
        self._close_code = code
        self._close_reason = reason
        self._events.append(CloseReceived(code, reason))
        if self._state is _OPEN:
            self._send_frame(_CLOSE, _close_payload(code, ""), True)
        self._transition("recv_close", code, reason)
        return False

    def _check_pending(self) -> None:
        """Act on the frame the parser holds incomplete, to fail fast (RFC 6455 §5.4, §8.1).

        The parser returns whole frames only; its ``pending`` header is known as soon as the
        header is in. Once per frame, apply the header's rules (_check_start, as _handle_frame
        will when the frame completes); for text, feed the payload received so far to the
        validator on every call, so invalid UTF-8 fails the connection when it arrives rather
        than when the frame ends (Autobahn 6.4.3, 6.4.4).
        """
        parser = self._parser
        header = parser.pending
        if header is not self._tracked:
            op = header.opcode
            rsv = header.rsv1 or header.rsv2 or header.rsv3
            # As in _handle_frame (the parser holds a frame an extension transforms to what
            # that extension allows: see _open).
            plain = self._plain(op, rsv)
            if not self._check_start(op, rsv, header.length if plain else -1):
                return
            self._tracked = header
            if plain and (op is _TEXT or (op is _CONT and self._msg_op is _TEXT)):
                if op is _TEXT:
                    self._validator.reset()
                self._validated = 0
        if self._validated >= 0:
            chunk = parser.pending_payload(self._validated)
            self._validated += len(chunk)
            self._check_text(chunk)

    # --- sending ---------------------------------------------------------------------------

    def _mask_key(self) -> bytes:
        """A fresh masking key (RFC 6455 §5.3). os.urandom is called once per 1024 keys."""
        keys = self._keys
        if not keys:
            batch = os.urandom(_RANDOM_BATCH)
            keys[:] = [batch[i : i + 4] for i in range(0, _RANDOM_BATCH, 4)]
        return keys.pop()

    def _send_frame(self, op: Opcode, payload: Any, fin: bool) -> None:
        """Queue one frame, through the extensions first when negotiated."""
        if not self._extensions:
            self._write_frame(op, payload, fin, False, False, False)
            return
        frame = Frame(op, payload if type(payload) is bytes else bytes(payload), fin)
        for extension in self._extensions:
            frame = extension.encode(frame)
        self._write_frame(op, frame.payload, fin, frame.rsv1, frame.rsv2, frame.rsv3)

    def _write_frame(
        self, op: Opcode, payload: Any, fin: bool, rsv1: bool, rsv2: bool, rsv3: bool
    ) -> None:
        """Every frame we send goes out here: header, payload masked by a client (RFC 6455
        §5.3) with a fresh key, queued on _out. Up to _COALESCE bytes, or masked, the frame is
        one bytes object built in one pass (the kernels' ``build_frame``: the payload is copied
        once, masked on the way, into the output itself); a larger unmasked payload is a piece
        of its own after its header, not copied when it is bytes (the caller may reuse
        anything else, so that is copied)."""
        if type(payload) is not bytes:
            payload = memoryview(payload).cast("B")
        if self._client:
            keys = self._keys
            # _mask_key's common case written out: a method call less per frame as Python.
            key = keys.pop() if keys else self._mask_key()
            self._out.append(build_frame(op, payload, fin, rsv1, rsv2, rsv3, key))
            return
        n = len(payload)
        if n <= _COALESCE:
            self._out.append(build_frame(op, payload, fin, rsv1, rsv2, rsv3, None))
        else:
            header = build_header(op, n, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3)
            self._out += (header, payload if type(payload) is bytes else bytes(payload))

    def _send_data(self, op: Opcode, payload: Any, fin: bool) -> None:
        if self._state is not _OPEN:
            raise InvalidState(f"cannot send a message in state {self._state.name}")
        send_op = self._send_op
        if send_op:
            if send_op is not op:
                kind = "text" if send_op is _TEXT else "binary"
                raise InvalidState(f"a fragmented {kind} message is in progress: finish it first")
            wire_op = _CONT
        else:
            wire_op = op
        self._send_op = 0 if fin else op
        self._plain_send = self._can_send_plain()
        self._send_frame(wire_op, payload, fin)

    def _send_control(self, op: Opcode, payload: Any) -> None:
        if self._state is not _OPEN:
            raise InvalidState(f"cannot send a {op.name.lower()} in state {self._state.name}")
        if memoryview(payload).nbytes > 125:
            raise ValueError("control frame payloads are at most 125 bytes (RFC 6455 §5.5)")
        self._send_frame(op, payload, True)

    # --- handshake hooks (per side) ----------------------------------------------------------

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def _handshake_eof(self) -> None:
        pass

    def _new_parser(self, message_bound: int | None) -> None:
        """The frame parser: it enforces a size from the frame header alone, the smaller of
        max_frame_size and ``message_bound``, what a frame of a message may carry. The running
        total of a fragmented message is checked per fragment (from the header too when a
        frame spans several receive_data calls: see _check_pending)."""
        limits = [x for x in (self._max_frame_size, message_bound) if x is not None]
        # A server receives masked frames (RFC 6455 §5.1), a client unmasked ones.
        self._parser = FrameParser(
            require_mask=not self._client, max_frame_size=min(limits, default=None)
        )
        self._feed = self._parser.feed

    def _open(self, rest: bytes) -> None:
        self._transition("open")
        bound = self._max_message_size
        if self._extensions and bound is not None:
            # A compressed frame may be larger than the message bytes it carries.
            for extension in self._extensions:
                max_payload = getattr(extension, "max_payload", None)
                if max_payload is not None:
                    bound = max_payload(bound)
            self._new_parser(bound)
        if rest:
            self.receive_data(rest)

    def _refuse(self, response: bytes | None, event: Event | None) -> None:
        if response:
            self._out.append(response)
        if event is not None:
            self._events.append(event)
        self._transition("refuse")


class ServerConnection(Connection):
    """The server side: parses the opening handshake, then speaks RFC 6455.

    A valid request produces a :class:`~wsfast.events.Request`; answer it with
    :meth:`accept` or :meth:`reject`. An invalid one is refused by the connection itself
    (see :mod:`wsfast.handshake` for the statuses) with a
    :class:`~wsfast.events.HandshakeFailed` event.

    ``subprotocols`` are the server's, in order of preference; ``select_subprotocol`` (given
    the client's offer) overrides the default choice, the first of ``subprotocols`` offered.
    ``extensions`` are factories tried for each offer, in the client's order; offers no
    factory accepts are declined. ``origins`` (if not None) lists the allowed Origin values,
    None in it meaning "no Origin header"; others get 403.

    ``plain_http=True`` serves plain HTTP on the same port, e.g. the page that opens the
    WebSocket: a GET without ``Upgrade: websocket`` produces a
    :class:`~wsfast.events.HttpRequest` instead of a 426 refusal; answer it with
    :meth:`respond`.
    """

    __slots__ = (
        "_reader",
        "_request",
        "_plain_http",
        "_http_request",
        "_early",
        "_early_size",
        "_subprotocols",
        "_select",
        "_extension_factories",
        "_origins",
    )

    _reader: HeadReader
    _request: UpgradeRequest | None
    _plain_http: bool
    _http_request: HttpRequest | None
    _early: list[bytes]
    _early_size: int
    _subprotocols: tuple[str, ...]
    _select: Callable[[Sequence[str]], str | None] | None
    _extension_factories: tuple[ServerExtensionFactory, ...]
    _origins: Collection[str | None] | None

    @cython.critical_section
    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        origins: Collection[str | None] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        auto_pong: bool = True,
        decode_text: bool = True,
        max_head_size: int = MAX_HEAD_SIZE,
        max_header_lines: int = MAX_HEADER_LINES,
        plain_http: bool = False,
        defer_failure: bool = False,
    ) -> None:
        super().__init__(
            client=False,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            auto_pong=auto_pong,
            decode_text=decode_text,
            max_head_size=max_head_size,
            max_header_lines=max_header_lines,
            defer_failure=defer_failure,
        )
        self._reader = HeadReader(max_head_size)
        self._request = None
        self._plain_http = plain_http
        self._http_request = None
        self._early = []
        self._early_size = 0
        self._subprotocols = tuple(subprotocols)
        self._select = select_subprotocol
        self._extension_factories = tuple(extensions)
        self._origins = origins

    @property
    @cython.critical_section
    def request(self) -> UpgradeRequest | None:
        """The checked opening handshake, once it has arrived."""
        return self._request

    @cython.critical_section
    def accept(
        self,
        *,
        subprotocol: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer the request with 101 (RFC 6455 §4.2.2): the connection is OPEN.

        ``subprotocol`` must be one the client offered; when None, the ``select_subprotocol``
        hook (or the default choice) decides.
        """
        request = self._request
        if request is None or self._state is not _CONNECTING:
            raise InvalidState("accept() needs a pending request")
        offered = request.subprotocols
        if subprotocol is None:
            if self._select is not None:
                subprotocol = self._select(offered)
            else:
                subprotocol = select_subprotocol(offered, self._subprotocols)
        if subprotocol is not None and subprotocol not in offered:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        header, extensions = negotiate_extensions(request.extensions, self._extension_factories)
        self._out.append(
            accept_response(
                request.key,
                subprotocol=subprotocol,
                extensions=header,
                extra_headers=extra_headers,
            )
        )
        self._subprotocol = subprotocol
        self._extensions = extensions
        early = b"".join(self._early)
        self._early = []
        self._open(early)

    @cython.critical_section
    def reject(
        self,
        status: int = 403,
        body: bytes | str = b"",
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse the request with an HTTP response; the connection is CLOSED."""
        if self._request is None or self._state is not _CONNECTING:
            raise InvalidState("reject() needs a pending request")
        self._refuse(reject_response(status, body, headers), None)

    @cython.critical_section
    def respond(
        self,
        status: int = 200,
        body: bytes | str = b"",
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer an :class:`~wsfast.events.HttpRequest` (``plain_http=True``); then CLOSED.

        Sends an HTTP/1.1 response: ``status`` (200-599), ``headers``, ``Content-Length``
        (not for 204 and 304, which have no body) and ``Connection: close``, then ``body`` (a
        str goes as ``text/plain`` in UTF-8 unless ``headers`` has a Content-Type); see
        :func:`wsfast.handshake.http_response`. :attr:`should_close_transport` is then set.
        """
        if self._http_request is None or self._state is not _CONNECTING:
            raise InvalidState("respond() needs a pending HTTP request (see plain_http)")
        self._out.append(http_response(status, body, headers))
        self._transition("respond")

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> None:
        if self._http_request is not None:
            return  # what follows a plain HTTP request is not read: respond() closes
        if self._request is not None:
            # Bytes after the request, before accept(): kept for accept(), within a bound.
            self._early_size += len(data)
            if self._early_size > self._max_head_size:
                error = HandshakeError("data sent before the handshake completed", 400)
                self._refuse_with(error)
                return
            self._early.append(bytes(data))
            return
        try:
            done = self._reader.feed(data)
            if done is None:
                return
            head, rest = done
            parsed = parse_request_head(head, max_lines=self._max_header_lines)
            if self._plain_http and not is_websocket_upgrade(parsed.headers):
                target = check_http_request(parsed)
                self._http_request = HttpRequest(target, parsed.headers)
                self._events.append(self._http_request)
                return
            request = check_request(parsed, origins=self._origins)
        except HandshakeError as exc:
            self._refuse_with(exc)
            return
        self._request = request
        if rest:
            self._early.append(rest)
            self._early_size = len(rest)
        self._events.append(
            Request(
                request.target,
                request.host,
                request.origin,
                request.subprotocols,
                # Lists, not generators, in this file: a compiled generator keeps a reference
                # to Cython's generator type (Cython 3.1-3.3), one per connection.
                tuple([name for name, _ in request.extensions]),
                request.headers,
            )
        )

    def _refuse_with(self, error: HandshakeError) -> None:
        message = str(error)
        self._refuse(
            reject_response(error.status, f"{message}\n", error.headers),
            HandshakeFailed(error.status, message),
        )


class ClientConnection(Connection):
    """The client side: sends the opening handshake at once, then speaks RFC 6455.

    The request is ready in :meth:`data_to_send` as soon as the connection is built. The
    server's answer produces :class:`~wsfast.events.Accepted` (state OPEN),
    :class:`~wsfast.events.Rejected` (a non-101 status) or
    :class:`~wsfast.events.HandshakeFailed` (a 101 that fails RFC 6455 §4.1's checks).
    """

    __slots__ = (
        "_key",
        "_offered",
        "_extension_factories",
        "_reader",
        "_response",
        "_body",
        "_body_need",
    )

    _key: str
    _offered: tuple[str, ...]
    _extension_factories: tuple[ClientExtensionFactory, ...]
    _reader: HeadReader
    _response: ResponseHead | None
    _body: bytearray
    _body_need: int | None

    @cython.critical_section
    def __init__(
        self,
        host: str,
        target: str = "/",
        *,
        port: int | None = None,
        secure: bool = False,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ClientExtensionFactory] = (),
        extra_headers: Iterable[tuple[str, str]] = (),
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_frame_size: int | None = None,
        auto_pong: bool = True,
        decode_text: bool = True,
        max_head_size: int = MAX_HEAD_SIZE,
        max_header_lines: int = MAX_HEADER_LINES,
        defer_failure: bool = False,
    ) -> None:
        super().__init__(
            client=True,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            auto_pong=auto_pong,
            decode_text=decode_text,
            max_head_size=max_head_size,
            max_header_lines=max_header_lines,
            defer_failure=defer_failure,
        )
        self._key = generate_key()
        self._offered = tuple(subprotocols)
        self._extension_factories = tuple(extensions)
        self._reader = HeadReader(max_head_size)
        self._response = None
        self._body = bytearray()
        self._body_need = None
        offers = [(factory.name, factory.offer()) for factory in self._extension_factories]
        self._out.append(
            build_request(
                host,
                target,
                key=self._key,
                port=port,
                secure=secure,
                origin=origin,
                subprotocols=self._offered,
                extensions=serialize_extensions(offers) if offers else None,
                extra_headers=extra_headers,
            )
        )

    @classmethod
    def from_uri(cls, uri: str, **kwargs: Any) -> ClientConnection:
        """A client for a ``ws://`` or ``wss://`` URI (other arguments as for the class)."""
        secure, host, port, target = parse_uri(uri)
        return cls(host, target, port=port, secure=secure, **kwargs)

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> None:
        if self._response is not None:
            self._read_body(data)
            return
        try:
            done = self._reader.feed(data)
            if done is None:
                return
            head, rest = done
            response = parse_response_head(head, max_lines=self._max_header_lines)
        except HandshakeError as exc:
            self._refuse(None, HandshakeFailed(0, str(exc)))
            return
        status = response.status
        if status == 101:
            try:
                subprotocol, extensions = check_response(
                    response,
                    key=self._key,
                    subprotocols=self._offered,
                    extensions=self._extension_factories,
                )
            except HandshakeError as exc:
                self._refuse(None, HandshakeFailed(exc.status, str(exc)))
                return
            self._subprotocol = subprotocol
            self._extensions = extensions
            self._events.append(
                Accepted(subprotocol, tuple([ext.name for ext in extensions]), response.headers)
            )
            self._open(rest)
            return
        if status < 200:
            self._refuse(None, HandshakeFailed(status, f"unexpected interim response {status}"))
            return
        # A refusal: keep (a bounded part of) its body for the Rejected event.
        self._response = response
        headers = response.headers
        need: int | None = None
        if status in (204, 304):
            need = 0
        elif "Transfer-Encoding" not in headers:
            try:
                length = headers.get("Content-Length")
                need = None if length is None else int(length)
            except (HandshakeError, ValueError):
                need = None
            if need is not None and need < 0:
                need = None
        self._body_need = None if need is None else min(need, MAX_REJECT_BODY)
        self._read_body(rest)

    def _read_body(self, data: bytes | bytearray | memoryview) -> None:
        body = self._body
        room = MAX_REJECT_BODY - len(body)
        if room > 0:
            body += memoryview(data)[:room]
        need = self._body_need
        if (need is not None and len(body) >= need) or len(body) >= MAX_REJECT_BODY:
            self._finish_rejection()

    def _finish_rejection(self) -> None:
        response = self._response
        if response is None:  # pragma: no cover - only called with a response
            return
        need = self._body_need
        body = bytes(self._body if need is None else self._body[:need])
        self._body = bytearray()
        self._refuse(None, Rejected(response.status, response.headers, body))

    def _handshake_eof(self) -> None:
        if self._response is not None:
            self._finish_rejection()
        else:
            self._events.append(
                HandshakeFailed(0, "the server closed the connection during the handshake")
            )
