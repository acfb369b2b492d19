"""Writes the seed corpora of the harnesses into ``fuzz/corpus/NAME/`` (deterministic).

``python fuzz/seeds.py [NAME...]`` rewrites the named corpora (all by default). The seeds are
RFC 6455 examples, real sessions between wsfast's own client and server (for every profile
of ``connection.PROFILES``), and Autobahn-like violations after a valid start. Each file is a
harness input (see the harness's ``encode``); names say what is in them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import connection
import frames
import handshake
import mask
import utf8
from _harness import CORPUS_DIR

KEY = b"\x37\xfa\x21\x3d"  # RFC 6455 §5.7
Seeds = Iterator[tuple[str, bytes]]


def _frame(op: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
           mask_key: bytes | None = KEY, width: int = 0) -> bytes:
    """One frame, valid or not, written out from RFC 6455 §5.2 (not with the kernels)."""
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    mbit = 0x80 if mask_key is not None else 0
    n = len(payload)
    if width == 64 or n > 0xFFFF:
        head = bytes([b0, mbit | 127]) + n.to_bytes(8, "big")
    elif width == 16 or n > 125:
        head = bytes([b0, mbit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, mbit | n])
    if mask_key is None:
        return head + payload
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + mask_key + masked


def _close(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def frames_seeds() -> Seeds:
    for masked in (True, False):
        key = KEY if masked else None
        side = "masked" if masked else "unmasked"

        def f(op: int, payload: bytes = b"", key: bytes | None = key, **kw: Any) -> bytes:
            return _frame(op, payload, mask_key=key, **kw)

        streams = {
            "hello": f(1, b"Hello"),
            "fragments-ping": f(1, b"Hel", fin=False) + f(9, b"Hello") + f(0, b"lo"),
            "binary-256": f(2, bytes(range(256))),
            "binary-16bit-300": f(2, bytes(300)),
            "non-minimal-64bit": f(2, b"abc", width=64) + f(1, b"x", width=16),
            "close-1000": f(8, _close(1000, b"bye")) + f(10, b"late"),
            "empty-frames": f(1) + f(2) + f(9) + f(10) + f(8),
            "rsv-bits": f(1, b"r", rsv=4) + f(2, b"s", rsv=7),
            "reserved-opcode": f(1, b"ok") + f(3, b"x"),
            "fragmented-ping": f(9, b"p", fin=False),
            "long-ping": f(9, bytes(126)),
            "msb-length": bytes([0x82, (0x80 if masked else 0) | 127, 0x80]) + bytes(7),
            "pending-64k": f(2, bytes(65536))[:64],
            "wrong-mask-bit": f(1, b"x", key=None if masked else KEY),
        }  # fmt: skip
        for name, stream in streams.items():
            yield f"{side}-{name}", frames.encode(stream, require_mask=masked)
        both = streams["hello"] + streams["fragments-ping"] + streams["binary-16bit-300"]
        yield f"{side}-bytewise", frames.encode(both, require_mask=masked, plan=b"\x00")
        yield f"{side}-chunks", frames.encode(both, require_mask=masked, plan=b"\x02\x09\x40",
                                              buffer=2)  # fmt: skip
        yield f"{side}-chunks-exact", frames.encode(both, require_mask=masked, plan=b"\x11\x30",
                                                    buffer=3)  # fmt: skip
        yield f"{side}-limit-125", frames.encode(f(2, bytes(126)) + f(1, b"x"),
                                                 require_mask=masked, limit=125)  # fmt: skip
        yield f"{side}-limit-0", frames.encode(f(1) + f(1, b"x"), require_mask=masked, limit=0)
        # A 270,000-byte frame: the bytes after the stream complete it.
        head = f(2, bytes(65536))[:14].replace(b"\x00\x01\x00\x00", b"\x00\x04\x1e\xb0", 1)
        big = frames.encode(head, require_mask=masked)
        yield f"{side}-big-frame", bytes([big[0] | 0x38]) + big[1:]


UTF8_CASES = {
    "ascii": b"Hello, world",
    "greek": "κόσμε".encode(),
    "cjk": "漢字かな交じり文".encode(),
    "emoji": "🎉 party 🎈".encode(),
    "mixed": "aé漢🎉".encode() * 3,
    "overlong-2": b"\xc0\xaf",
    "overlong-3": b"\xe0\x80\xaf",
    "overlong-4": b"\xf0\x80\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "too-large": b"\xf4\x90\x80\x80",
    "f5": b"\xf5\x80\x80\x80",
    "stray-continuation": b"a\x80b",
    "truncated-2": b"\xc3",
    "truncated-3": b"\xe2\x82",
    "truncated-4": b"\xf0\x9f\x8e",
    "last-valid": b"\xf4\x8f\xbf\xbf",
    "bom-nul": b"\xef\xbb\xbf\x00",
}


def utf8_seeds() -> Seeds:
    for name, data in UTF8_CASES.items():
        yield name, utf8.encode(data)
        # At the end and across the 32-byte blocks of the AVX2 path, in pieces.
        yield f"{name}-at-30", utf8.encode(data, before=30, after=40, plan=b"\x1f\x00\x03")
        yield f"{name}-at-63", utf8.encode(data, before=63, after=64, buffer=2)
        yield f"{name}-exact", utf8.encode(data, before=17, after=1, plan=b"\x13", buffer=3)
    yield "mixed-big", utf8.encode(UTF8_CASES["mixed"], after=255, plan=b"\xff")
    yield "surrogate-big", utf8.encode(UTF8_CASES["cjk"] + UTF8_CASES["surrogate"], after=255)


def mask_seeds() -> Seeds:
    for n in (0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129):
        data = bytes(range(n))
        yield f"len-{n}", mask.encode(data, KEY, offset=n % 4, buffer=n % 3)
    yield "hello-rfc", mask.encode(b"Hello", KEY)
    yield "long-repeated", mask.encode(bytes(range(200)), KEY, repeat=7, plan=b"\x02\x40\x99")
    yield "big-offset", mask.encode(b"offset" * 11, b"\xff\x00\xaa\x55", offset=2**40 + 3)
    yield "past-256k", mask.encode(bytes(range(251)), KEY, offset=1, repeat=0xFF, buffer=2)
    yield "key-buffers", mask.encode(b"x" * 40, KEY, buffer=1, key_buffer=2)
    for n in (17, 71, 200):
        yield f"exact-{n}", mask.encode(bytes(range(n)), KEY, offset=3, buffer=3, key_buffer=3)
    yield "bad-key", bytes([0x20, 0, 3]) + b"abc" + b"\0\0" + b"\0" + b"payload"
    yield "negative-offset", bytes([0x40, 0]) + KEY + b"\0\x05" + b"\0" + b"payload"


REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)


def handshake_seeds() -> Seeds:
    requests = {
        "rfc": REQUEST + b"\r\n",
        "full": REQUEST + b"Origin: https://example.com\r\nSec-WebSocket-Protocol: chat, superchat"
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, "
        b'x-foo; a="b"\r\n\r\n',
        "no-key": REQUEST.replace(b"Sec-WebSocket-Key", b"X-Key") + b"\r\n",
        "version-8": REQUEST.replace(b"Version: 13", b"Version: 8") + b"\r\n",
        "post": REQUEST.replace(b"GET", b"POST") + b"\r\n",
        "http-1.0": REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n",
        "bare-lf": REQUEST.replace(b"\r\nHost", b"\nHost") + b"\r\n",
        "folding": REQUEST + b"X-A: 1\r\n b\r\n\r\n",
        "body": REQUEST + b"Content-Length: 5\r\n\r\nhello",
        "plain-get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "absolute-form": REQUEST.replace(b"/chat", b"http://Server.example.com/chat") + b"\r\n",
        "absolute-no-path": REQUEST.replace(b"/chat", b"https://server.example.com") + b"\r\n",
        "absolute-other-host": REQUEST.replace(b"/chat", b"http://evil.example/chat") + b"\r\n",
        "absolute-userinfo": REQUEST.replace(b"/chat", b"http://u@server.example.com/") + b"\r\n",
        "asterisk": REQUEST.replace(b"/chat?room=1", b"*") + b"\r\n",
        "fragment": REQUEST.replace(b"room=1", b"room=1#top") + b"\r\n",
        "plain-absolute": b"GET http://a/page?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    }
    for name, data in requests.items():
        yield f"request-{name}", handshake.encode(data, mode=0)
    yield "request-origin", handshake.encode(requests["full"], mode=0, origins=True)
    yield "request-small-limit", handshake.encode(requests["rfc"], mode=0, size=64)
    yield "request-few-lines", handshake.encode(requests["rfc"], mode=0, lines=3)
    yield "request-chunks", handshake.encode(requests["full"], mode=0, plan=b"\x00\x02\x0f")
    responses = {
        "rfc": RESPONSE + b"\r\n",
        "subprotocol": RESPONSE + b"Sec-WebSocket-Protocol: chat\r\n\r\n",
        "extension": RESPONSE + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "wrong-accept": RESPONSE.replace(b"s3pP", b"AAAA") + b"\r\n",
        "not-found": b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
        "continue": b"HTTP/1.1 100 Continue\r\n\r\n",
    }
    for name, data in responses.items():
        yield f"response-{name}", handshake.encode(data, mode=1)
    yield "extension-values", handshake.encode(
        b'permessage-deflate; client_max_window_bits; server_max_window_bits=10\n'
        b'x-a, x-b; q="1"\nbad;;\n"unterminated', mode=2)  # fmt: skip
    yield "our-header", handshake.encode(b"X-Custom: value \xe9", mode=3)
    yield "our-header-split", handshake.encode(b"X-Custom: a\r\nSet-Cookie: b", mode=3)


# --- connection sessions ---------------------------------------------------------------------


def _pair(profile: connection.Profile) -> tuple[Any, Any]:
    """A client and a server (the Python connection), with fixed keys: sessions reproduce."""
    import wsfast._connection_py as python

    client = connection.new_client(python, **profile.client())
    client._keys = [bytes((i * 4 + j) * 37 % 256 for j in range(4)) for i in range(1024)]
    server = python.ServerConnection(**profile.server())
    return client, server


def _session(profile: connection.Profile,
             script: Callable[[Any, Any], None]) -> tuple[bytes, bytes]:
    """What the client sent and what the server sent, once ``script`` has run on the pair."""
    client, server = _pair(profile)
    to_server = [client.data_to_send()]
    server.receive_data(to_server[0])
    server.events()
    server.accept()
    to_client = [server.data_to_send()]
    client.receive_data(to_client[0])
    client.events()
    script(client, server)
    for _ in range(3):  # let the closing handshake (and echoes) play out
        out = client.data_to_send()
        to_server.append(out)
        server.receive_data(out)
        server.events()
        back = server.data_to_send()
        to_client.append(back)
        client.receive_data(back)
        client.events()
    return b"".join(to_server), b"".join(to_client)


def _chat(client: Any, server: Any) -> None:
    client.send_text("Hello")
    client.send_text("Hel", fin=False)
    client.send_ping(b"ping")
    client.send_text("lo ☃", fin=False)
    client.send_text(" world")
    client.send_binary(bytes(range(256)) + bytes(44))
    client.send_pong(b"unsolicited")
    server.send_text("Welcome")
    server.send_binary(b"b" * 130, fin=False)
    server.send_ping(b"are you there")
    server.send_binary(b"end")
    client.close(1000, "bye")


def _server_closes(client: Any, server: Any) -> None:
    client.send_text("é" * 70)
    server.send_text("κόσμε" * 20)
    server.close(1001, "going away")


def _big_fragments(client: Any, server: Any) -> None:
    """Fragments on both sides of the size below which a connection gathers them in one
    buffer (4096 bytes), in both directions."""
    client.send_binary(b"a" * 10, fin=False)
    client.send_binary(bytes(5000), fin=False)
    client.send_binary(b"b" * 10, fin=False)
    client.send_binary(b"c" * 4095, fin=False)
    client.send_binary(bytes(4096))
    client.send_text("x" * 3000, fin=False)
    client.send_text("é" * 2600)
    server.send_binary(bytes(5000), fin=False)
    server.send_binary(b"z" * 100, fin=False)
    server.send_binary(b"end")
    client.close(1000, "bye")


VIOLATIONS = {
    "invalid-utf8": (1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
    "reserved-opcode": (3, b"x"),
    "bad-close-code": (8, _close(999)),
    "close-1-byte": (8, b"\x03"),
    "close-bad-reason": (8, _close(1000, b"\xff")),
    "continuation-alone": (0, b"x"),
    "rsv2": (0x21, b"x"),
}


def connection_seeds() -> Seeds:
    for index, profile in enumerate(connection.PROFILES):
        chat_in, chat_out = _session(profile, _chat)
        close_in, close_out = _session(profile, _server_closes)
        big_in, big_out = _session(profile, _big_fragments)
        tag = profile.name

        def seed(stream: bytes, client: bool, **kw: Any) -> bytes:
            return connection.encode(stream, client=client, profile=index, **kw)  # noqa: B023

        yield f"{tag}-server-chat", seed(chat_in, False)
        yield f"{tag}-server-chat-echo-chunks", seed(chat_in, False, options=0x20,
                                                      plan=b"\x07\x1e\x00\xa0")  # fmt: skip
        yield f"{tag}-server-closes", seed(close_in, False, options=0x62, limits=0x07)
        yield f"{tag}-client-chat", seed(chat_out, True)
        yield f"{tag}-client-chat-bytes", seed(chat_out, True, options=0x8A, plan=b"\x00\x05")
        yield f"{tag}-client-closes", seed(close_out, True, options=0x20)
        yield f"{tag}-client-chat-echo-chunks", seed(chat_out, True, options=0x20,
                                                      plan=b"\x07\x1e\x00\xa0")  # fmt: skip
        yield f"{tag}-server-big-fragments", seed(big_in, False, options=0x20, plan=b"\xff\x30")
        yield f"{tag}-client-big-fragments", seed(big_out, True, options=0x22)
        request_end = chat_in.index(b"\r\n\r\n") + 4
        response_end = chat_out.index(b"\r\n\r\n") + 4
        for name, (op, payload) in VIOLATIONS.items():
            bad = _frame(op & 15, payload, rsv=op >> 4)
            yield f"{tag}-server-{name}", seed(chat_in[:request_end] + bad, False)
            bad = _frame(op & 15, payload, rsv=op >> 4, mask_key=None)
            yield f"{tag}-client-{name}", seed(chat_out[:response_end] + bad, True, options=8)
        yield f"{tag}-server-unmasked", seed(chat_in[:request_end] + _frame(1, b"x", mask_key=None),
                                             False)  # fmt: skip
        yield f"{tag}-server-too-big", seed(chat_in, False, limits=0x55)
    yield "server-plain-http", connection.encode(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                                 client=False, options=0x10)  # fmt: skip
    yield "server-version-8", connection.encode(
        REQUEST.replace(b"Version: 13", b"Version: 8") + b"\r\n", client=False)  # fmt: skip
    yield "client-rejected", connection.encode(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", client=True)  # fmt: skip
    yield "client-wrong-accept", connection.encode(
        RESPONSE.replace(b"s3pP", b"AAAA") + b"\r\n", client=True)  # fmt: skip


CORPORA: dict[str, Callable[[], Seeds]] = {
    "frames": frames_seeds,
    "utf8": utf8_seeds,
    "mask": mask_seeds,
    "handshake": handshake_seeds,
    "connection": connection_seeds,
}


def main(names: list[str]) -> None:
    for name in names or list(CORPORA):
        target = CORPUS_DIR / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        count = size = 0
        for seed_name, data in CORPORA[name]():
            (target / seed_name).write_bytes(data)
            count += 1
            size += len(data)
        print(f"{name}: {count} seeds, {size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
