"""Each host's adapters against the host's own code: same results, same errors.

Skipped for a library that is not installed (``pip install ".[dropin]"`` installs them all).
Each library's own test suite runs patched in ``integrations/`` (CI step 40-dropin).
"""

from __future__ import annotations

import array
import importlib
import json
import os
import struct
import subprocess
import sys
import warnings
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsfast
from wsfast.dropin import _core

KEY = b"\x37\xfa\x21\x3d"
# With pure-Python kernels wsfast leaves wsproto and websockets alone (their own code is as fast).
needs_compiled = pytest.mark.skipif(
    wsfast.implementation != "cython", reason="left alone when wsfast's kernels are pure Python"
)
sizes = st.integers(0, 300) | st.sampled_from([1023, 1024, 4099])
keys = st.binary(min_size=4, max_size=4)


@pytest.fixture
def patched():
    """Call ``patched(name)`` to patch a library for the rest of the test."""
    names: list[str] = []

    def do(name: str) -> None:
        assert wsfast.patch(name) == [name]
        names.append(name)

    yield do
    if names:
        wsfast.unpatch(*names)


def outcome(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return ("ok", func(*args, **kwargs))
    except Exception as exc:
        return ("error", type(exc))


# --- a pure-Python wsfast replaces only what its pure code beats -----------------------------

PURE_PROBE = """
import importlib, json, warnings
import wsfast
warnings.simplefilter("ignore")  # (importing the hosts)
for m in ["wsproto.frame_protocol", "websocket._abnf", "websocket._utils", "ws4py.framing",
          "ws4py.streaming", "autobahn.websocket.protocol", "tornado.websocket",
          "websockets.frames", "aiohttp._websocket.reader_py", "aiohttp._websocket.writer"]:
    importlib.import_module(m)
patched = wsfast.patch()
print(json.dumps({"implementation": wsfast.implementation, "patched": patched,
                  "replaced": {k: v["replaced"] for k, v in wsfast.dropin.status().items()}}))
"""


@pytest.mark.parametrize("hosts_compiled", [True, False], ids=["hosts-C", "hosts-Python"])
def test_pure_kernels_replace_only_what_they_beat(hosts_compiled: bool) -> None:
    for name in ("wsproto", "websocket", "ws4py", "autobahn", "tornado", "websockets", "aiohttp"):
        pytest.importorskip(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSFAST_PATCH")}
    env["WSFAST_NO_EXTENSIONS"] = "1"
    if not hosts_compiled:
        env.update(TORNADO_NO_EXTENSION="1", AUTOBAHN_USE_NVX="0", AIOHTTP_NO_EXTENSIONS="1")
    out = subprocess.run([sys.executable, "-c", PURE_PROBE], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["implementation"] == "python"
    assert len(result["patched"]) == 7
    replaced = result["replaced"]
    assert replaced["wsproto"] == []
    assert replaced["websocket-client"] == ["websocket._utils._validate_utf8"]
    assert len(replaced["ws4py"]) == 3
    assert replaced["websockets"] == []
    assert replaced["aiohttp"] == []
    protocol = "autobahn.websocket.protocol."
    if hosts_compiled:  # over C (tornado.speedups, autobahn's NVX masker): left alone
        assert replaced["autobahn"] == [protocol + "Utf8Validator"]
        assert replaced["tornado"] == []
    else:
        assert replaced["autobahn"] == [protocol + "Utf8Validator", protocol + "create_xor_masker"]
        assert replaced["tornado"] == ["tornado.websocket._websocket_mask"]


# --- reload, then unpatch: the originals come back everywhere ------------------------------


@pytest.mark.parametrize(
    "library, modules",
    [
        ("tornado", ["tornado.websocket", "tornado.util"]),
        ("autobahn", ["autobahn.websocket.protocol", "autobahn.websocket.xormasker",
                      "autobahn.websocket.utf8validator"]),
        ("websockets", ["websockets.frames", "websockets.speedups", "websockets.utils"]),
        ("websocket-client", ["websocket._abnf", "websocket._utils"]),
        ("ws4py", ["ws4py.framing", "ws4py.streaming", "ws4py.utf8validator"]),
        ("wsproto", ["wsproto.frame_protocol", "wsproto.connection"]),
    ],
)
def test_reload_then_unpatch_restores_the_originals(library: str, modules: list[str]) -> None:
    """A patched module reloaded (as some suites do) imports its names again from modules
    that may hold wsfast's replacements: it stays patched, silently, and unpatch() restores
    the library's own objects in every module that had them."""
    for name in modules:
        pytest.importorskip(name)
    loaded = [sys.modules[name] for name in modules]
    before = [dict(vars(m)) for m in loaded]
    if wsfast.patch(library) != [library]:
        pytest.skip(f"{library} is not patched here")

    def replacements() -> list[Any]:
        return [r.replacement for records in _core._ACTIVE[library].records.values()
                for r in records]

    if not replacements():  # e.g. pure-Python kernels: only what they beat is replaced
        wsfast.unpatch(library)
        pytest.skip(f"nothing of {library} is replaced with these kernels")
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                importlib.reload(loaded[0])
            assert library in wsfast.patched()
            assert _core.verify() == []
            ours = replacements()
            assert ours
        finally:
            wsfast.unpatch(library)
        for module, namespace in zip(loaded, before, strict=True):
            left = [k for k, v in vars(module).items() if any(v is r for r in ours)]
            assert left == [], module.__name__
            if module is not loaded[0]:  # (the reloaded one has new objects of its own)
                assert [k for k, v in namespace.items() if vars(module)[k] is not v] == []
    finally:  # the classes of the reloaded module are new: put the old ones back for the
        vars(loaded[0]).update(before[0])  # other tests (wsproto.extensions has the old ones)


# --- wsproto: the frame decoder, differential over random frame streams and chunkings ------


def _frame(
    opcode: int, payload: bytes, *, fin: bool, rsv: int, mask: bytes | None, wide: int
) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    m = 0x80 if mask is not None else 0
    if wide == 2 or (wide == 0 and n > 0xFFFF):
        head += bytes([m | 127]) + struct.pack("!Q", n)
    elif wide == 1 or n > 125:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | n])
    if mask is not None:
        head += mask + wsfast.apply_mask(payload, mask)
    else:
        head += payload
    return head


@st.composite
def frame_streams(draw: Any, client: bool, deflate: bool) -> bytes:
    """Mostly valid frames for the role, with now and then something wsproto refuses."""
    out = b""
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["text", "text", "binary", "cont", "ping", "close", "odd"]))
        fin = draw(st.booleans()) if kind in ("text", "binary", "cont") else True
        if kind == "text":
            opcode, payload = 1, draw(st.text(max_size=60)).encode()
            if draw(st.integers(0, 9)) == 0:
                payload += draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3"]))
        elif kind == "binary":
            opcode, payload = 2, draw(st.binary(max_size=300))
        elif kind == "cont":
            opcode, payload = 0, draw(st.binary(max_size=40))
        elif kind == "ping":
            opcode, payload = draw(st.sampled_from([9, 10])), draw(st.binary(max_size=125))
        elif kind == "close":
            opcode = 8
            payload = draw(
                st.sampled_from([b"", b"\x03", b"\x03\xe8", b"\x03\xe8bye", b"\x03\xed",
                                 b"\x0b\xb8\xff", b"\x0f\xa0ok", b"\x03\xe8\xc3"])
            )  # fmt: skip
        else:
            opcode = draw(st.integers(0, 15))
            payload = draw(st.binary(max_size=130))
            fin = draw(st.booleans())
        rsv = 0
        if draw(st.integers(0, 9)) == 0:
            rsv = draw(st.integers(1, 7))
        elif deflate and opcode in (1, 2) and draw(st.booleans()):
            rsv = 4
            payload = _deflate(payload)
        masked = not client
        if draw(st.integers(0, 19)) == 0:
            masked = not masked
        mask = draw(keys) if masked else None
        wide = draw(st.sampled_from([0, 0, 0, 0, 1, 2]))
        out += _frame(opcode, payload, fin=fin, rsv=rsv, mask=mask, wide=wide)
    if draw(st.integers(0, 9)) == 0:
        out += draw(st.binary(min_size=1, max_size=12))
    return out


def _deflate(data: bytes) -> bytes:
    import zlib

    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def _run_frame_protocol(
    client: bool, deflate: bool, stream: bytes, cuts: list[int], ours: bool
) -> list[Any]:
    from wsproto import extensions, frame_protocol

    exts = []
    if deflate:
        ext = extensions.PerMessageDeflate()
        ext.finalize("permessage-deflate") if client else ext.accept("permessage-deflate")
        exts.append(ext)
    if ours:
        # The three adapters, as patch() installs them (built once per test, not per example).
        masker, decoder, protocol = _wsproto_adapters()
        with mock.patch.object(frame_protocol, "XorMaskerSimple", masker), mock.patch.object(
            frame_protocol, "FrameDecoder", decoder
        ):
            proto = protocol(client, exts)
    else:
        proto = frame_protocol.FrameProtocol(client, exts)
    seen: list[Any] = []
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        proto.receive_bytes(stream[lo:hi])
        try:
            for frame in proto.received_frames():
                seen.append(tuple(frame))
        except frame_protocol.ParseFailed as exc:
            seen.append(("ParseFailed", int(exc.code), str(exc)))
        seen.append("|")
    return seen


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@given(data=st.data(), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_wsproto_frames_events_and_failures_match(client, deflate, data, cuts) -> None:
    pytest.importorskip("wsproto")
    stream = data.draw(frame_streams(client, deflate))
    expected = _run_frame_protocol(client, deflate, stream, cuts, ours=False)
    from wsproto import frame_protocol

    with mock.patch.object(frame_protocol, "XorMaskerSimple", _wsproto_adapters()[0]):
        got = _run_frame_protocol(client, deflate, stream, cuts, ours=True)
    assert got == expected


def _hostile_streams(client: bool) -> dict[str, bytes]:
    """Streams a peer may send a ``client`` (or server) endpoint, most of them refused."""
    mk = None if client else KEY  # the mask the role expects, and the wrong one
    wrong = KEY if client else None

    def f(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, wide: int = 0) -> bytes:
        return _frame(opcode, payload, fin=fin, rsv=rsv, mask=mk, wide=wide)

    def declared(length: int, data: bytes, opcode: int = 2) -> bytes:  # 8-byte length field
        head = bytes([0x80 | opcode, (0x80 if mk else 0) | 127]) + struct.pack("!Q", length)
        return head + (mk + wsfast.apply_mask(data, mk) if mk else data)

    return {
        "text": f(1, "héllo".encode()),
        "binary-2-byte-length": f(2, b"x" * 200),
        "2-byte-length-for-10": f(2, b"z" * 10, wide=1),
        "8-byte-length-for-300": f(2, b"z" * 300, wide=2),
        "huge-declared-tiny-data": declared(2**40, b"tiny"),
        "huge-declared-text": declared(2**33, b"ab\xc3", opcode=1),
        "length-msb-set": declared(2**63 + 5, b"abc"),
        "control-fragmented": f(9, b"p", fin=False),
        "control-126": f(9, b"p" * 126),
        "control-2-byte-length": f(10, b"p" * 10, wide=1),
        "opcode-3": f(3, b""),
        "opcode-11": f(11, b"ab"),
        "rsv1": f(1, b"ab", rsv=4),
        "rsv2": f(2, b"ab", rsv=2),
        "rsv3": f(2, b"ab", rsv=1),
        "rsv1-control": f(9, b"x", rsv=4),
        "mask-wrong-for-role": _frame(2, b"ab", fin=True, rsv=0, mask=wrong, wide=0),
        "text-invalid": f(1, b"ok\xed\xa0\x80"),
        "text-cut-short": f(1, b"ab\xc3"),
        "text-invalid-across-frames": f(1, b"a\xe2\x82", fin=False) + f(0, b"A"),
        "text-valid-across-frames": f(1, b"a\xe2\x82", fin=False) + f(0, b"\xac"),
        "continuation-first": f(0, b"ab"),
        "text-then-text": f(1, b"ab", fin=False) + f(1, b"cd"),
        "ping-inside-message": f(1, b"ab", fin=False) + f(9, b"pp") + f(0, b"cd"),
        "close-then-more": f(8, b"\x03\xe8bye") + f(1, b"after"),
        "close-1-byte": f(8, b"\x03"),
        "close-bad-reason": f(8, b"\x03\xe8\xff"),
        "close-bad-code": f(8, b"\x03\xed"),
        "empty-frames": f(2, b"") + f(1, b"") + f(1, b"", fin=False) + f(0, b""),
        "garbage-after-frame": f(2, b"ok") + b"\xff\xff\xff",
        "deflated": f(1, _deflate(b"hello hello"), rsv=4) + f(2, _deflate(b"\0" * 99), rsv=4),
        "deflate-bit-on-continuation": f(1, b"ab", fin=False) + f(0, b"cd", rsv=4),
        "deflate-garbage": f(1, b"\xff\xff\xff", rsv=4),
    }


def _decoder_state(proto: Any) -> tuple[Any, ...]:
    d = proto._frame_decoder
    return (d.header, d.effective_opcode, d.payload_required, d.payload_consumed,
            bytes(d.buffer.buffer), d.buffer.bytes_used, proto._message_decoder.opcode)


def _run_with_state(client: bool, deflate: bool, stream: bytes, bounds: list[int],
                    ours: bool) -> list[Any]:
    from wsproto import extensions, frame_protocol

    exts = []
    if deflate:
        ext = extensions.PerMessageDeflate()
        ext.finalize("permessage-deflate") if client else ext.accept("permessage-deflate")
        exts.append(ext)
    masker, decoder, protocol = _wsproto_adapters()
    with mock.patch.object(frame_protocol, "XorMaskerSimple", masker if ours else
                           frame_protocol.XorMaskerSimple), \
            mock.patch.object(frame_protocol, "FrameDecoder", decoder if ours else
                              frame_protocol.FrameDecoder):
        proto = (protocol if ours else frame_protocol.FrameProtocol)(client, exts)
        seen: list[Any] = []
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            proto.receive_bytes(stream[lo:hi])
            try:
                seen.extend(tuple(frame) for frame in proto.received_frames())
            except frame_protocol.ParseFailed as exc:
                seen.append(("ParseFailed", int(exc.code), str(exc)))
            seen.append(_decoder_state(proto))
    return seen


@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_wsproto_hostile_streams_split_everywhere(client: bool, deflate: bool) -> None:
    """Each stream cut once at every position, and fed a byte at a time: the same frames,
    failures and decoder state (buffer, header, message in progress) after every piece."""
    pytest.importorskip("wsproto")
    for name, stream in _hostile_streams(client).items():
        n = len(stream)
        for bounds in [[0, n], *([0, i, n] for i in range(1, n)), list(range(n + 1))]:
            expected = _run_with_state(client, deflate, stream, bounds, ours=False)
            got = _run_with_state(client, deflate, stream, bounds, ours=True)
            assert got == expected, (name, bounds if len(bounds) <= 3 else "bytewise")


_ADAPTERS: list[Any] = []


def _wsproto_adapters() -> list[Any]:
    """wsproto's masker, frame decoder and frame protocol as patch() makes them."""
    if not _ADAPTERS:
        fp = pytest.importorskip("wsproto.frame_protocol")
        wsfast.unpatch("wsproto")
        bindings = _core.registry()["wsproto"].bindings
        _ADAPTERS.extend(b.factory(fp, getattr(fp, b.path)) for b in bindings)
    return _ADAPTERS


@needs_compiled
def test_wsproto_differential_uses_what_patch_installs(patched) -> None:
    fp = pytest.importorskip("wsproto.frame_protocol")
    patched("wsproto")
    names = [b.path for b in _core.registry()["wsproto"].bindings]
    assert names == ["XorMaskerSimple", "FrameDecoder", "FrameProtocol"]
    for name, ours in zip(names, _wsproto_adapters(), strict=False):
        assert getattr(fp, name).__mro__[1:] == ours.__mro__[1:]


@given(key=keys, data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=5))
def test_wsproto_masker_carries_the_offset(key, data, cuts) -> None:
    fp = pytest.importorskip("wsproto.frame_protocol")
    original = fp.XorMaskerSimple
    ours = _core.registry()["wsproto"].bindings[0].factory(fp, original)
    a, b = original(bytearray(key)), ours(bytearray(key))
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        x, y = a.process(data[lo:hi]), b.process(data[lo:hi])
        assert type(x) is type(y) is bytearray and x == y
    assert b.process(b"") == bytearray()


def test_wsproto_connection_end_to_end(patched) -> None:
    pytest.importorskip("wsproto")
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Request,
        TextMessage,
    )

    patched("wsproto")
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    next(client.events())
    wire = client.send(TextMessage("héllo")) + client.send(BytesMessage(b"\x00" * 70000))
    server.receive_data(wire[:5])
    server.receive_data(wire[5:])
    events = list(server.events())
    assert events[0] == TextMessage("héllo")
    assert b"".join(e.data for e in events[1:]) == b"\x00" * 70000
    server.receive_data(client.send(CloseConnection(code=1000)))
    assert list(server.events()) == [CloseConnection(code=1000, reason="")]


# --- websockets: against its own C and Python apply_mask ----------------------------------


def _websockets_masks() -> list[Any]:
    utils = pytest.importorskip("websockets.utils")
    out = [utils.apply_mask]
    try:
        from websockets.speedups import apply_mask as c_apply_mask
    except ImportError:
        pass
    else:
        out.append(c_apply_mask)
    return out


def _websockets_adapter() -> Any:
    frames = pytest.importorskip("websockets.frames")
    importlib.import_module("websockets.utils")
    binding = _core.registry()["websockets"].bindings[0]
    return binding.factory(frames, sys.modules["websockets.utils"].apply_mask)


BUFFER_TYPES = [bytes, bytearray, memoryview, lambda b: memoryview(b"." + b + b".")[1:-1]]


@settings(max_examples=60)
@given(
    data_type=st.sampled_from(BUFFER_TYPES),
    mask_type=st.sampled_from(BUFFER_TYPES),
    data=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    key=keys,
)
def test_websockets_apply_mask_types_and_sizes(data_type, mask_type, data, key) -> None:
    ours = _websockets_adapter()
    got = ours(data_type(data), mask_type(key))
    assert type(got) is bytes and got == wsfast.apply_mask(data, key)
    for theirs in _websockets_masks():
        expected = outcome(theirs, data_type(data), mask_type(key))
        if expected[0] == "ok":  # (the Python one takes no memoryview mask; the C one does)
            assert got == expected[1]
    assert ours(data=data, mask=key) == got


def test_websockets_apply_mask_non_contiguous() -> None:
    ours = _websockets_adapter()
    data = memoryview(bytes(range(40)))[::2]
    key = memoryview(b"a.b.c.d.")[::2]
    for theirs in _websockets_masks():
        expected = outcome(theirs, data, key)
        if expected[0] == "ok":  # (the Python one takes no memoryview mask; the C one does)
            assert ours(data, key) == expected[1]
        assert ours(data, bytes(key)) == theirs(data, bytes(key))


@pytest.mark.parametrize(
    "data, mask",
    [(b"", b""), (b"", b"abc"), (b"", b"abcde"), (b"abc", b"ab"), (b"x" * 10, b"abcdefgh"),
     (None, KEY), ("text", KEY), (b"abc", None), (b"abc", "abcd"), (1, KEY)],
    ids=repr,
)  # fmt: skip
def test_websockets_apply_mask_errors(data, mask) -> None:
    ours = _websockets_adapter()
    for theirs in _websockets_masks():
        expected = outcome(theirs, data, mask)
        assert expected[0] == "error"
        assert outcome(ours, data, mask) == expected, theirs
        if expected[1] is ValueError:
            with pytest.raises(ValueError, match="mask must contain 4 bytes"):
                ours(data, mask)


@needs_compiled
def test_websockets_patch_never_imports_legacy(patched) -> None:
    frames = pytest.importorskip("websockets.frames")
    original = frames.apply_mask
    legacy_loaded = "websockets.legacy" in sys.modules
    patched("websockets")
    assert frames.apply_mask is not original
    assert ("websockets.legacy" in sys.modules) is legacy_loaded
    assert frames.apply_mask(bytearray(b"hi"), bytearray(KEY)) == wsfast.apply_mask(b"hi", KEY)


@needs_compiled
def test_websockets_patch_replaces_the_python_version(patched) -> None:
    frames = pytest.importorskip("websockets.frames")
    utils = sys.modules["websockets.utils"]
    with mock.patch.object(frames, "apply_mask", utils.apply_mask):
        patched("websockets")
        assert frames.apply_mask is not utils.apply_mask
        frame = frames.Frame(frames.Opcode.TEXT, b"hi")
        with mock.patch("secrets.token_bytes", return_value=KEY):
            wire = frame.serialize(mask=True)
        assert wire == b"\x81\x82" + KEY + wsfast.apply_mask(b"hi", KEY)
        assert frames.apply_mask(bytearray(b"hi"), bytearray(KEY)) == utils.apply_mask(
            b"hi", KEY
        )
        wsfast.unpatch("websockets")
        assert frames.apply_mask is utils.apply_mask


# --- websocket-client -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def websocket_client_pure() -> Any:
    """websocket-client's own pure-Python _validate_utf8 and _mask (wsaccel blocked)."""
    utils = pytest.importorskip("websocket._utils")
    abnf = importlib.import_module("websocket._abnf")
    wsfast.unpatch("websocket-client")
    blocked = {"wsaccel": None, "wsaccel.utf8validator": None, "wsaccel.xormask": None}
    with mock.patch.dict(sys.modules, blocked):
        validate, mask = importlib.reload(utils)._validate_utf8, importlib.reload(abnf)._mask
    importlib.reload(utils)
    importlib.reload(abnf)
    return validate, mask


utf8ish = st.one_of(
    st.binary(max_size=100),
    st.text(max_size=60).map(str.encode),
    st.lists(st.sampled_from([b"a", b"\xc3", b"\xa9", b"\xed", b"\xa0", b"\x80", b"\xf4",
                              b"\x90", b"\xe2\x82", b"\xac", b"\xff", b"\xf0\x9f\x98"]),
             max_size=12).map(b"".join),
)  # fmt: skip


@given(data=utf8ish)
def test_websocket_client_validate_matches_its_dfa(websocket_client_pure, data) -> None:
    pure_validate, _ = websocket_client_pure
    utils = sys.modules["websocket._utils"]
    ours = _core.registry()["websocket-client"].bindings[1].factory(utils, pure_validate)
    assert ours(data) is pure_validate(data)


def test_websocket_client_validate_contract(patched) -> None:
    utils = pytest.importorskip("websocket._utils")
    patched("websocket-client")
    assert utils.validate_utf8("a\ud800b") is False  # surrogates stay invalid
    assert utils.validate_utf8(b"") is True
    assert utils.validate_utf8("héllo") is True
    assert utils.validate_utf8(b"\xff") is False


@given(key=keys, data=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_websocket_client_mask_matches(websocket_client_pure, key, data) -> None:
    _, pure_mask = websocket_client_pure
    abnf = sys.modules["websocket._abnf"]
    ours = _core.registry()["websocket-client"].bindings[0].factory(abnf, pure_mask)
    args = (array.array("B", key), array.array("B", data))
    assert ours(*args) == pure_mask(*args)


def test_websocket_client_abnf_mask_accepts_str_and_none(patched) -> None:
    abnf = pytest.importorskip("websocket._abnf")
    expected = [abnf.ABNF.mask("abcd", "hello"), abnf.ABNF.mask(b"abcd", None)]
    patched("websocket-client")
    assert abnf.ABNF.mask("abcd", "hello") == expected[0]
    assert abnf.ABNF.mask(b"abcd", None) == expected[1] == b""


# --- ws4py ------------------------------------------------------------------------------------


chunked = st.lists(utf8ish, max_size=6)


@given(chunks=chunked)
def test_ws4py_validator_matches(chunks) -> None:
    utf8validator = pytest.importorskip("ws4py.utf8validator")
    streaming = importlib.import_module("ws4py.streaming")
    ours_type = _core.registry()["ws4py"].bindings[2].factory(
        streaming, utf8validator.Utf8Validator
    )
    theirs, ours = utf8validator.Utf8Validator(), ours_type()
    for chunk in chunks:
        assert ours.validate(chunk) == theirs.validate(chunk), chunk
    theirs.reset()
    ours.reset()
    assert ours.validate(b"ok") == theirs.validate(b"ok")


@given(key=keys, data=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_ws4py_frame_mask_matches(key, data) -> None:
    framing = pytest.importorskip("ws4py.framing")
    original = framing.Frame.__dict__["mask"]
    ours = _core.registry()["ws4py"].bindings[0].factory(framing, original)
    frame = framing.Frame(opcode=1, body=b"", masking_key=key)
    got, expected = ours(frame, data), original(frame, data)
    assert type(got) is type(expected) is bytearray and got == expected


def test_ws4py_patch_covers_the_unmask_alias(patched) -> None:
    framing = pytest.importorskip("ws4py.framing")
    patched("ws4py")
    assert framing.Frame.unmask is framing.Frame.mask or (
        framing.Frame.__dict__["unmask"].__qualname__.endswith("mask")
    )
    frame = framing.Frame(opcode=1, body=b"", masking_key=KEY)
    assert frame.unmask(frame.mask(b"hello")) == bytearray(b"hello")


# --- autobahn ---------------------------------------------------------------------------------


def test_autobahn_validator_contract(patched) -> None:
    protocol = pytest.importorskip("autobahn.websocket.protocol")
    patched("autobahn")
    v = protocol.Utf8Validator()
    assert v.validate(b"edited") == (True, True, 6, 6)
    assert v.validate(b"\xed\xa0\x80") == (False, False, 1, 7)
    assert v.validate(b"abc") == (False, False, 0, 7)  # sticky
    assert v.validate(b"") == (True, False, 0, 7)
    v.reset()
    assert v.validate(b"caf\xc3") == (True, False, 4, 4)
    assert v.validate(b"\xa9") == (True, True, 1, 5)


@given(chunks=chunked)
def test_autobahn_validator_matches_nvx(chunks) -> None:
    pytest.importorskip("autobahn.websocket.protocol")
    nvx = pytest.importorskip("autobahn.nvx._utf8validator")
    try:
        theirs = nvx.Utf8Validator()
    except ImportError:
        pytest.skip("autobahn's NVX extension is not built")
    protocol = sys.modules["autobahn.websocket.protocol"]
    ours = _core.registry()["autobahn"].bindings[1].factory(protocol, None)()
    for chunk in chunks:
        if not chunk:
            continue  # NVX and autobahn's Python validator differ on empty chunks
        got, expected = ours.validate(chunk), theirs.validate(chunk)
        assert got == tuple(expected), chunk
        if not got[0]:
            break


@given(key=keys, data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_autobahn_masker_matches(key, data, cuts) -> None:
    xormasker = pytest.importorskip("autobahn.websocket.xormasker")
    protocol = sys.modules["autobahn.websocket.protocol"]
    factory = _core.registry()["autobahn"].bindings[0].factory(
        protocol, xormasker.create_xor_masker
    )
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for length in (None, 10, 1000):
        theirs, ours = xormasker.create_xor_masker(key, length), factory(key, length)
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            assert ours.process(data[lo:hi]) == theirs.process(data[lo:hi])
            assert ours.pointer() == theirs.pointer()
        ours.reset()
        theirs.reset()
        assert ours.pointer() == theirs.pointer() == 0


# --- tornado ----------------------------------------------------------------------------------


@settings(max_examples=60)
@given(key=keys, data=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_tornado_mask_matches(key, data) -> None:
    util = pytest.importorskip("tornado.util")
    websocket = importlib.import_module("tornado.websocket")
    ours = _core.registry()["tornado"].bindings[0].factory(websocket, util._websocket_mask)
    assert ours(key, data) == util._websocket_mask_python(key, data)


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_tornado_mask_errors(mask) -> None:
    util = pytest.importorskip("tornado.util")
    websocket = importlib.import_module("tornado.websocket")
    ours = _core.registry()["tornado"].bindings[0].factory(websocket, util._websocket_mask)
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        util._websocket_mask_python(mask, b"data")
    with pytest.raises(ValueError, match="mask must be 4 bytes"):
        ours(mask, b"data")


# --- aiohttp ----------------------------------------------------------------------------------


@settings(max_examples=60)
@given(key=keys, data=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_aiohttp_mask_matches(key, data) -> None:
    helpers = pytest.importorskip("aiohttp._websocket.helpers")
    reader_py = importlib.import_module("aiohttp._websocket.reader_py")
    ours = _core.registry()["aiohttp"].bindings[0].factory(
        reader_py, helpers._websocket_mask_python
    )
    a, b = bytearray(data), bytearray(data)
    assert ours(key, a) is None
    helpers._websocket_mask_python(key, b)
    assert a == b


def test_aiohttp_patch_only_where_the_python_mask_runs(patched) -> None:
    helpers = pytest.importorskip("aiohttp._websocket.helpers")
    reader_py = importlib.import_module("aiohttp._websocket.reader_py")
    before = reader_py.websocket_mask
    patched("aiohttp")
    assert helpers.websocket_mask is before or helpers.websocket_mask is helpers.websocket_mask
    if before is helpers._websocket_mask_python:
        assert reader_py.websocket_mask is not before
    else:
        assert reader_py.websocket_mask is before
        assert "aiohttp._websocket.reader_py.websocket_mask" in (
            wsfast.dropin.status()["aiohttp"]["left alone"]
        )
