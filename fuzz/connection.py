"""Fuzz harness: a ``ServerConnection`` or ``ClientConnection`` fed a mutated byte stream, the
compiled connection (``wsfast._connection_c``) against its source (``wsfast._connection_py``).

Input: an options byte (bit 0 the role, 1 ``decode_text``, 2 ``auto_pong`` off, 3
``defer_failure``, 4 ``plain_http``, bits 5-6 what the application does, bit 7 bytearray
chunks), a profile byte (an index into :data:`PROFILES`), a limits byte (low nibble
``max_message_size``, high nibble ``max_frame_size``), a chunking plan (see ``_harness.cut``),
then the bytes the peer sends, opening handshake first. The seeds in ``fuzz/corpus/connection``
are real sessions between the two classes (``fuzz/seeds.py``): handshake, fragmented text,
pings, binary, close, and Autobahn-like violations after a valid start.

Rules checked over the session (``receive_data`` must never raise): only the documented
events, each well-formed; a handshake event first; no data event after a
``ProtocolViolation``; exactly one ``ConnectionTerminated``, last, once ``receive_eof`` is
called; close codes from RFC 6455 §7.4 (1005 and 1006 where they stand for "none"); a
server's HTTP answer parses, with the status its event gives (a refusal with a reason); the
frames sent are valid, in the right masking direction, a pong echoes a ping, at most one
close frame and nothing after it. An echoing application first asks ``frame_message`` for
the frame: it gives the very bytes ``send_*`` then sends when ``broadcast_key`` is not None,
and refuses (``InvalidState``) when it is. Both implementations give the same events, state,
HTTP answer and frames.

Extensions: a :class:`Profile` names the options both sides are built with: plain, a toy
extension on RSV1, and permessage-deflate (RFC 7692) with and without context takeover.
Adding a profile is one line in :data:`PROFILES`; then ``python fuzz/seeds.py connection``
writes the negotiated sessions into the seed corpus.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _harness import Finding, Input, as_buffer, cut, encode_plan, expect, instrumented, run

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the client's Sec-WebSocket-Key in every session
LIMITS = (1 << 20, None, 0, 1, 5, 125, 126, 1000, 65535, 65536)
SERVER_REFUSALS = {400, 403, 405, 426, 431}
VIOLATION_CODES = {1002, 1007, 1009}

compiled: Any = None
python: Any = None
ev: Any = None
FrameParser: Any = None
parse_response_head: Any = None


class Toy:
    """A stand-in extension using RSV1 (the payload reversed), so that the extension paths of
    the connection are fuzzed before permessage-deflate exists. Its encoding of a message
    depends on the message only: it has a ``broadcast_key``."""

    name = "x-toy"
    broadcast_key = "x-toy"

    def decode(self, frame: Any, *, max_size: int | None) -> Any:
        if frame.opcode >= 8 or not frame.rsv1:
            return frame
        payload = frame.payload[::-1]
        if max_size is not None and len(payload) > max_size:
            from wsfast import ProtocolError

            raise ProtocolError("decoded message too big", 1009)
        return type(frame)(frame.opcode, payload, frame.fin, False, frame.rsv2, frame.rsv3)

    def encode(self, frame: Any) -> Any:
        if frame.opcode >= 8:
            return frame
        return type(frame)(frame.opcode, frame.payload[::-1], frame.fin, True)


class ToyFactory:
    name = "x-toy"

    def accept(self, params: Any, accepted: Any) -> Any:
        return (), Toy()

    def offer(self) -> Any:
        return ()

    def complete(self, params: Any, accepted: Any) -> Any:
        return Toy()


@dataclass(frozen=True)
class Profile:
    """Keyword arguments for the server and for the client, made fresh for each session."""

    name: str
    server: Callable[[], dict[str, Any]]
    client: Callable[[], dict[str, Any]]


def _deflate(**options: Any) -> tuple[Callable[[], dict[str, Any]], ...]:
    """Both sides of permessage-deflate (RFC 7692) negotiating ``options``, every message
    compressed. The module is imported when a session starts, after ``load``."""

    def side(factory: str) -> Callable[[], dict[str, Any]]:
        def options_for_a_session() -> dict[str, Any]:
            from wsfast import permessage_deflate

            return {"extensions": [getattr(permessage_deflate, factory)(min_size=0, **options)]}

        return options_for_a_session

    return side("ServerDeflateFactory"), side("ClientDeflateFactory")


PROFILES: tuple[Profile, ...] = (
    Profile("plain", dict, dict),
    Profile("toy-extension", lambda: {"extensions": [ToyFactory()]},
            lambda: {"extensions": [ToyFactory()]}),  # fmt: skip
    Profile("deflate", *_deflate()),
    Profile("deflate-no-takeover-9", *_deflate(server_no_context_takeover=True,
            client_no_context_takeover=True, server_max_window_bits=9)),  # fmt: skip
)


def load() -> None:
    """Import the code under test (see ``_harness.run``)."""
    global compiled, python, ev, FrameParser, parse_response_head
    with instrumented():
        import wsfast._connection_py as python
        import wsfast.events as ev
        import wsfast.permessage_deflate  # noqa: F401 (traced for the deflate profiles)
        from wsfast import FrameParser, implementation
        from wsfast.handshake import parse_response_head

        if implementation != "cython":
            raise SystemExit("the connection harness needs the compiled build")
        import wsfast._connection_c as compiled


def new_client(module: Any, **kwargs: Any) -> Any:
    """A client whose Sec-WebSocket-Key is :data:`KEY`, so that recorded answers fit it."""
    saved = module.generate_key
    module.generate_key = lambda: KEY
    try:
        return module.ClientConnection("example.com", "/chat", **kwargs)
    finally:
        module.generate_key = saved


def encode(stream: bytes, *, client: bool, profile: int = 0, plan: bytes = b"",
           options: int = 0, limits: int = 0) -> bytes:
    """A fuzz input for this session (what the seed corpus is made of); ``options`` are the
    bits above bit 0."""
    return bytes([options & ~1 | client, profile, limits]) + encode_plan(plan) + stream


@dataclass
class Session:
    """What one implementation did with the input."""

    events: list[Any]
    frames: list[Any]  # what it sent, as (opcode, fin, rsv1, payload), handshake excluded
    http: bytes  # what it sent before the frames (101, a refusal, a plain HTTP response)
    state: int


def _new(module: Any, options: int, profile: Profile, limits: int) -> Any:
    kwargs = {
        "decode_text": not options & 2,
        "auto_pong": not options & 4,
        "defer_failure": bool(options & 8),
        "max_message_size": LIMITS[(limits & 15) % len(LIMITS)],
        "max_frame_size": LIMITS[(limits >> 4) % len(LIMITS)],
    }
    if options & 1:
        return new_client(module, **kwargs, **profile.client())
    return module.ServerConnection(plain_http=bool(options & 16), **kwargs, **profile.server())


def _echo(module: Any, conn: Any, data: Any, sent: list[bytes]) -> None:
    """Send ``data`` back; first, when the connection says its frames can be shared
    (``broadcast_key``), check that ``frame_message`` gives the very bytes sent, and when it
    says they cannot, that ``frame_message`` refuses."""
    key = conn.broadcast_key
    framed = None
    try:
        framed = conn.frame_message(data)
    except module.InvalidState:
        expect(key is None, "frame_message refused with a broadcast_key", key)
    else:
        expect(key is not None, "frame_message framed without a broadcast_key")
    expect(conn.broadcast_key == key, "frame_message changed the broadcast_key")
    sent.append(conn.data_to_send())
    if isinstance(data, str):
        conn.send_text(data)
    else:
        conn.send_binary(data)
    if framed is not None:
        out = conn.data_to_send()
        sent.append(out)
        expect(out == framed, "frame_message differs from what send_* sent", out, framed)


def _react(module: Any, conn: Any, events: list[Any], behaviour: int,
           sent: list[bytes]) -> None:  # fmt: skip
    """The application: accept (or refuse), answer plain HTTP, echo, close, complete a
    deferred failure; ``behaviour`` 0 passive, 1 echo, 2 refuse, 3 close after a message."""
    for event in events:
        open_ = conn.state == module.State.OPEN
        if isinstance(event, ev.Request):
            if behaviour == 2:
                conn.reject(403, "no")
            else:
                conn.accept(subprotocol=None)
        elif isinstance(event, ev.HttpRequest):
            conn.respond(200, "page")
        elif isinstance(event, ev.TextMessage | ev.TextBytes | ev.BinaryMessage) and open_:
            if behaviour == 1:
                _echo(module, conn, event.data, sent)
            elif behaviour == 3:
                conn.close(1000, "bye")
    if conn.failing:
        conn.fail()


def _drive(
    module: Any, options: int, profile: Profile, limits: int, chunks: list[bytes]
) -> Session:
    client = bool(options & 1)
    conn = _new(module, options, profile, limits)
    behaviour = (options >> 5) & 3
    sent = [conn.data_to_send()] if client else []  # the client's request goes first
    events: list[Any] = []
    for i, chunk in enumerate(chunks):
        try:
            conn.receive_data(as_buffer(chunk, 1 + i % 2 if options & 0x80 else 0))
        except Exception as exc:
            raise Finding(f"receive_data raised {exc!r}") from exc
        batch = conn.events()
        while batch:
            events += batch
            _react(module, conn, batch, behaviour, sent)
            batch = conn.events()
        sent.append(conn.data_to_send())  # once CLOSED: nothing more, whatever arrives
    conn.receive_eof()
    events += conn.events()
    sent.append(conn.data_to_send())
    out = b"".join(sent[1:] if client else sent)
    http, frames = _split_output(out, client)
    return Session(events, frames, http, int(conn.state))


def _split_output(out: bytes, client: bool) -> tuple[bytes, list[Any]]:
    """A server's HTTP answer and the frames after it (only a 101 has frames after it)."""
    http = b""
    if not client:
        end = out.find(b"\r\n\r\n")
        if end >= 0 and out.startswith(b"HTTP/1.1 101 "):
            http, out = out[: end + 4], out[end + 4 :]
        else:
            http, out = out, b""
    try:
        frames = FrameParser(require_mask=client).feed(out)
    except Exception as exc:
        raise Finding(f"the connection sent invalid frames: {exc!r}", out[:64]) from exc
    return http, [(int(f.opcode), f.fin, f.rsv1, f.payload) for f in frames]


def _valid_close_code(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


DATA = ("TextMessage", "TextBytes", "BinaryMessage")
DOCUMENTED = {
    "Request", "HttpRequest", "Accepted", "Rejected", "HandshakeFailed", "TextMessage",
    "TextBytes", "BinaryMessage", "Ping", "Pong", "CloseReceived", "ProtocolViolation",
    "ConnectionTerminated",
}  # fmt: skip
FIRST = {"Request", "HttpRequest", "HandshakeFailed", "Accepted", "Rejected"}


def _check_events(session: Session, client: bool, limits: int) -> None:
    events = session.events
    names = [type(e).__name__ for e in events]
    expect(set(names) <= DOCUMENTED, "an undocumented event", names)
    expect(all(type(e).__module__ == "wsfast.events" for e in events), "a foreign event class")
    expect(names.count("ConnectionTerminated") == 1 and names[-1] == "ConnectionTerminated",
           "not exactly one ConnectionTerminated, last", names)  # fmt: skip
    expect(session.state == 3, "not CLOSED after receive_eof", session.state)
    if len(names) > 1:
        expect(names[0] in FIRST, "the first event is not a handshake event", names)
    expect(sum(n in FIRST for n in names) <= 1, "more than one handshake event", names)
    limit = LIMITS[(limits & 15) % len(LIMITS)]
    violated = False
    for event, name in zip(events, names, strict=True):
        if name in DATA:
            expect(not violated, "a message after a ProtocolViolation", names)
            expect(names[0] in ("Request", "Accepted"), "a message without a handshake", names)
            kind = str if name == "TextMessage" else bytes
            expect(type(event.data) is kind, "message data of another type", type(event.data))
            size = len(event.data.encode() if name == "TextMessage" else event.data)
            expect(limit is None or size <= limit, "a message over max_message_size", size)
            if name == "TextBytes":
                event.data.decode("utf-8")  # validated, so it cannot raise
        elif name in ("Ping", "Pong"):
            expect(len(event.payload) <= 125, "a control payload over 125 bytes")
        elif name == "ProtocolViolation":
            expect(event.code in VIOLATION_CODES and event.message, "bad violation", event)
            violated = True
        elif name == "CloseReceived":
            expect(event.code == 1005 or _valid_close_code(event.code), "bad close code", event)
        elif name == "ConnectionTerminated":
            code = event.code
            expect(code in (1005, 1006) or _valid_close_code(code), "bad final code", event)
        elif name == "HandshakeFailed":
            if client:
                expect(event.status == 0 or 100 <= event.status < 200,
                       "bad client HandshakeFailed status", event)  # fmt: skip
            else:
                expect(event.status in SERVER_REFUSALS, "bad server refusal status", event)
            expect(event.message, "a HandshakeFailed without a message")


def _check_http(session: Session) -> None:
    """A server's HTTP answer: a response that parses, with the status of its event, and a
    reason in the body of a refusal."""
    if not session.http:
        return
    head, sep, body = session.http.partition(b"\r\n\r\n")
    expect(sep, "the server's HTTP answer has no end of head", session.http[:80])
    status = parse_response_head(head).status
    refused = [e.status for e in session.events if type(e).__name__ == "HandshakeFailed"]
    expect(status in (refused[:1] or [101, 200, 403]), "wrong HTTP status", status, refused)
    expect(status < 400 or body.strip(), "a refusal without a reason", session.http[:200])


def _check_frames(session: Session, client: bool) -> None:
    pings = [e.payload for e in session.events if type(e).__name__ == "Ping"]
    closes = 0
    for op, _fin, _rsv1, payload in session.frames:
        expect(closes == 0, "a frame sent after our close frame", session.frames)
        if op == 8:
            closes += 1
            if payload:
                code = int.from_bytes(payload[:2], "big")
                valid = len(payload) >= 2 and _valid_close_code(code)
                expect(valid, "we sent a bad close frame", payload)
                payload[2:].decode("utf-8")
        elif op == 10:
            expect(payload in pings, "a pong that echoes no ping", payload)


def check(data: bytes) -> None:
    inp = Input(data)
    options = inp.byte()
    profile = PROFILES[inp.byte() % len(PROFILES)]
    limits = inp.byte()
    plan = inp.plan()
    chunks = cut(inp.rest(), plan)
    client = bool(options & 1)
    ours = _drive(compiled, options, profile, limits, chunks)
    theirs = _drive(python, options, profile, limits, chunks)
    expect(ours.events == theirs.events, "events differ", ours.events, theirs.events)
    expect(ours.frames == theirs.frames, "frames sent differ", ours.frames, theirs.frames)
    expect(ours.http == theirs.http, "HTTP sent differs", ours.http, theirs.http)
    expect(ours.state == theirs.state, "states differ")
    _check_events(ours, client, limits)
    _check_http(ours)
    _check_frames(ours, client)


def main() -> None:
    run(check, load, "connection")


if __name__ == "__main__":
    sys.exit(main())
