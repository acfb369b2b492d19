"""Regression tests for what fuzzing (``fuzz/``) found, each on both builds.

Each test names the harness that found the input and states the rule that was broken.
"""

from __future__ import annotations

import gc
import sys
from types import ModuleType
from typing import Any

import pytest

from wsfast.events import ConnectionTerminated, HandshakeFailed
from wsfast.handshake import HandshakeError, parse_response_head


def events_after(connection: Any, data: bytes) -> list[Any]:
    connection.receive_data(data)
    return connection.events()


# --- connection harness: a status code outside 100-999 ----------------------------------


@pytest.mark.parametrize("status", [b"000", b"050", b"099"])
def test_status_codes_start_with_1_to_9(status: bytes) -> None:
    """RFC 9110 §15: a status code is 100-599 (600-999 are read as refusals). "050" was read
    as status 50, an "interim response"."""
    with pytest.raises(HandshakeError) as caught:
        parse_response_head(b"HTTP/1.1 " + status + b" Odd")
    assert caught.value.status == 0


def test_client_calls_a_response_with_status_050_unreadable(connection_module: ModuleType) -> None:
    client = connection_module.ClientConnection("example.com")
    client.data_to_send()
    events = events_after(client, b"HTTP/1.1 050 Odd\r\n\r\n")
    assert len(events) == 2
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 0
    assert events[1] == ConnectionTerminated(1006, "")


# --- handshake harness: an absolute-form target lost its empty query ---------------------


@pytest.mark.parametrize("query", ["?", "?x", "?a=1&b", "??"])
def test_absolute_form_keeps_the_query_as_sent(connection_module: ModuleType, query: str) -> None:
    """RFC 9112 §3.2.2: an absolute-form target is reduced to the path and query an
    origin-form target would have carried. "GET http://a/page? " became "/page" while
    "GET /page? " stays "/page?" (the handshake harness checks the two agree)."""
    targets = []
    for target in (f"/page{query}", f"http://a/page{query}"):
        server = connection_module.ServerConnection(plain_http=True)
        events = events_after(server, f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        targets.append(events[0].target)
    assert targets == [f"/page{query}"] * 2


# --- leak check (fuzz/leaks.py on a debug interpreter): references kept per connection ----


def cython_generator_types() -> list[type]:
    """The generator types of the Cython runtime shared by the compiled modules. (``type(obj)``,
    not ``isinstance``: that asks a weak proxy for its ``__class__``, which raises
    ReferenceError once the object behind it is gone.)"""
    return [
        obj
        for obj in gc.get_objects()
        if issubclass(type(obj), type)
        and obj.__name__ == "generator"
        and str(obj.__module__).startswith("_cython")
    ]


def test_opening_connections_keeps_no_references(connection_module: ModuleType) -> None:
    """Every handshake took a reference to Cython's generator type and never gave it back
    (two per client/server pair: a generator expression in each handshake; Cython 3.1-3.3
    leak one per generator). The total reference count of a debug interpreter grew by two."""

    def open_pair() -> None:
        client = connection_module.ClientConnection("example.com")
        server = connection_module.ServerConnection()
        server.receive_data(client.data_to_send())
        server.events()
        server.accept()
        client.receive_data(server.data_to_send())
        assert [type(e).__name__ for e in client.events()] == ["Accepted"]

    open_pair()
    watched = [*cython_generator_types(), *connection_module.State, None, True, False]
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(200):
        open_pair()
    gc.collect()
    after = [sys.getrefcount(obj) for obj in watched]
    grown = {repr(o): b - a for o, a, b in zip(watched, before, after, strict=True) if b - a > 20}
    assert grown == {}


def test_frame_header_repr_keeps_no_references(impl: ModuleType) -> None:
    """repr(FrameHeader) ran a generator expression: one reference to Cython's generator type
    kept per call (fuzz/leaks.py, 'FrameHeader hash/repr/eq')."""
    header = impl.parse_header(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
    assert repr(header).startswith("FrameHeader(fin=True, ")
    watched = cython_generator_types()
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(200):
        repr(header)
    after = [sys.getrefcount(obj) for obj in watched]
    assert [b - a for a, b in zip(before, after, strict=True)] == [0] * len(watched)
