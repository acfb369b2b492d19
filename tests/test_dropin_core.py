"""The patch machinery (wsfast.dropin._core) on a small fake library made for each test.

The fake library ``fakews`` has a hot function ``fakews.core.mask`` (used by name in
``fakews.user``) and a class ``fakews.core.Validator``; its host entry replaces both.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import threading
import time
import types
import warnings
from pathlib import Path

import pytest

import wsfast
from wsfast.dropin import _core

CORE = '''
def mask(key, data):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))

class Validator:
    def validate(self, data):
        return ("slow", data)
'''
USER = "from fakews.core import mask\n\ndef send(data):\n    return mask(b'abcd', data)\n"
CALLS: list[str] = []


def fast_mask(module: types.ModuleType, original: object) -> object:
    def mask(key: bytes, data: bytes) -> bytes:
        CALLS.append("mask")
        return wsfast.apply_mask(data, key)

    return mask


def fast_validator(module: types.ModuleType, original: type) -> type:
    class Validator(original):  # type: ignore[misc, valid-type]
        def validate(self, data: bytes) -> tuple[str, bytes]:
            return ("fast", data)

    return Validator


def check_mask(module: types.ModuleType, original: object) -> str | None:
    return None if callable(original) else "mask is not callable"


def make_host(version_range: tuple[tuple[int, ...], tuple[int, ...]] = ((1,), (2,))) -> _core.Host:
    return _core.Host(
        name="fakews",
        package="fakews",
        distribution="fakews",
        versions=version_range,
        bindings=[
            _core.Binding("fakews.core", "mask", fast_mask, check=check_mask),
            _core.Binding("fakews.core", "Validator", fast_validator, counted=("validate",)),
        ],
    )


@pytest.fixture
def fakews(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Installs ``fakews`` 1.4.0 on sys.path, registers its host; cleans up afterwards."""
    pkg = tmp_path / "fakews"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text(CORE)
    (pkg / "user.py").write_text(USER)
    dist = tmp_path / "fakews-1.4.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakews\nVersion: 1.4.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    host = make_host()
    _core.register(host)
    CALLS.clear()
    yield tmp_path
    _core.unpatch("fakews")
    _core._HOSTS.pop("fakews", None)
    _core._REFUSED.pop("fakews", None)
    for name in [m for m in sys.modules if m == "fakews" or m.startswith("fakews.")]:
        del sys.modules[name]


def test_patch_modules_already_imported(fakews) -> None:
    import fakews.core
    import fakews.user

    original_mask = fakews.core.mask
    original_validator = fakews.core.Validator
    assert wsfast.patch("fakews") == ["fakews"]
    assert wsfast.patched() == ["fakews"] or "fakews" in wsfast.patched()
    assert fakews.core.mask is not original_mask
    assert fakews.user.mask is fakews.core.mask  # the by-name copy is rebound
    assert fakews.user.send(b"hello") == wsfast.apply_mask(b"hello", b"abcd")
    assert CALLS == ["mask"]
    assert fakews.core.Validator().validate(b"x") == ("fast", b"x")
    assert _core.verify() == []
    assert wsfast.unpatch("fakews") == ["fakews"]
    assert fakews.core.mask is original_mask
    assert fakews.user.mask is original_mask
    assert fakews.core.Validator is original_validator
    assert "fakews" not in wsfast.patched()


def test_idempotent(fakews) -> None:
    import fakews.core

    assert wsfast.patch("fakews") == ["fakews"]
    patched_mask = fakews.core.mask
    assert wsfast.patch("fakews") == ["fakews"]
    assert fakews.core.mask is patched_mask
    wsfast.unpatch("fakews")
    original = fakews.core.mask
    assert wsfast.unpatch("fakews") == []
    assert fakews.core.mask is original


def test_modules_imported_later_are_patched(fakews) -> None:
    assert wsfast.patch("fakews") == ["fakews"]
    assert "fakews.core" not in sys.modules
    import fakews.user

    assert fakews.user.send(b"abc") == wsfast.apply_mask(b"abc", b"abcd")
    assert CALLS == ["mask"]
    assert _core.verify() == []
    # the loader wrapper keeps the real loader's other methods
    assert "def mask" in sys.modules["fakews.core"].__loader__.get_source("fakews.core")


def test_reload_is_patched_again(fakews) -> None:
    import fakews.core

    wsfast.patch("fakews")
    reloaded = importlib.reload(fakews.core)
    assert reloaded.Validator().validate(b"") == ("fast", b"")
    assert reloaded.mask(b"abcd", b"xy") == wsfast.apply_mask(b"xy", b"abcd")
    assert _core.verify() == []
    wsfast.unpatch("fakews")
    assert reloaded.Validator().validate(b"") == ("slow", b"")


def test_reload_of_a_module_that_imports_the_name_then_unpatch(fakews) -> None:
    """As tornado.websocket imports _websocket_mask from tornado.util, which took it from
    tornado.speedups: the binding is fakews.ws.mask, defined in fakews.fast and re-exported
    by fakews.util. A reload of fakews.ws imports the name again from fakews.util: the patch
    must hold, without a warning, and unpatch() must give back the library's own function."""
    pkg = fakews / "fakews"
    (pkg / "fast.py").write_text(CORE)
    (pkg / "util.py").write_text("from fakews.fast import mask\n")
    (pkg / "ws.py").write_text(USER.replace("fakews.core", "fakews.util"))

    def from_fast(module: types.ModuleType, original: object) -> str | None:
        return None if getattr(original, "__module__", None) == "fakews.fast" else "not fast's"

    _core.register(_core.Host("fakews", "fakews", "fakews", ((1,), (2,)),
                              [_core.Binding("fakews.ws", "mask", fast_mask, check=from_fast)]))
    import fakews.fast
    import fakews.ws

    original = fakews.fast.mask
    assert wsfast.patch("fakews") == ["fakews"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(fakews.ws)
    assert "fakews" in wsfast.patched()
    assert fakews.ws.send(b"ab") == wsfast.apply_mask(b"ab", b"abcd") and CALLS == ["mask"]
    assert _core.verify() == []
    wsfast.unpatch("fakews")
    assert fakews.ws.mask is original
    assert sys.modules["fakews.util"].mask is original


def test_other_names_for_the_original_are_left_alone(fakews) -> None:
    """Only ``from x import y`` copies (the same name) are rebound: a module that keeps the
    original under another name (to compare with it, say) keeps it."""
    (fakews / "fakews" / "keeper.py").write_text("from fakews.core import mask as theirs\n")
    import fakews.core
    import fakews.keeper

    original = fakews.core.mask
    wsfast.patch("fakews")
    assert fakews.core.mask is not original
    assert fakews.keeper.theirs is original


def test_deleted_from_sys_modules_and_imported_again(fakews) -> None:
    import fakews.core

    old = fakews.core
    wsfast.patch("fakews")
    del sys.modules["fakews.core"]
    fresh = importlib.import_module("fakews.core")
    assert fresh is not old
    assert fresh.Validator().validate(b"") == ("fast", b"")
    assert _core.verify() == []


def test_verify_reports_a_lost_patch(fakews) -> None:
    import fakews.core

    wsfast.patch("fakews")
    fakews.core.mask = lambda key, data: data
    assert _core.verify() == ["fakews: fakews.core.mask is not wsfast's"]


def test_readers_wait_for_a_patch_in_progress(fakews) -> None:
    """verify(), status(), patched() from another thread see a library patched or not, never
    half-way (nor a dict changing size under them)."""
    entered, release = threading.Event(), threading.Event()

    def slow_check(module: types.ModuleType, original: object) -> str | None:
        entered.set()
        release.wait(10)
        return None

    host = make_host()
    host.bindings = [dataclasses.replace(host.bindings[0], check=slow_check), host.bindings[1]]
    _core.register(host)
    import fakews.core  # noqa: F401

    patcher = threading.Thread(target=wsfast.patch, args=("fakews",))
    patcher.start()
    assert entered.wait(10)
    seen: list[object] = []
    readers = [threading.Thread(target=lambda f=f: seen.append(f()))
               for f in (_core.verify, _core.status, wsfast.patched)]
    for reader in readers:
        reader.start()
    time.sleep(0.2)
    assert seen == []  # all three wait for the patch to finish
    release.set()
    patcher.join(10)
    for reader in readers:
        reader.join(10)
    assert [] in seen  # verify(): nothing half-applied
    assert any(isinstance(x, list) and "fakews" in x for x in seen)  # patched()
    [status] = [x for x in seen if isinstance(x, dict)]
    assert status["fakews"]["replaced"] == ["fakews.core.Validator", "fakews.core.mask"]


def test_patch_while_another_thread_imports_the_module(fakews) -> None:
    """patch() while fakews.core is half-way through its import in another thread: it waits
    for that import and patches the module, instead of refusing it as 'missing' a name."""
    gate = types.ModuleType("fakews_gate")
    gate.entered, gate.release = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    sys.modules["fakews_gate"] = gate
    (fakews / "fakews" / "core.py").write_text(
        CORE.replace("class Validator", "import fakews_gate\nfakews_gate.entered.set()\n"
                     "fakews_gate.release.wait(10)\n\nclass Validator")
    )
    importlib.invalidate_caches()
    try:
        importer = threading.Thread(target=importlib.import_module, args=("fakews.core",))
        importer.start()
        assert gate.entered.wait(10)  # fakews.core is in sys.modules, without Validator yet
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result: list[list[str]] = []
            patcher = threading.Thread(target=lambda: result.append(wsfast.patch("fakews")))
            patcher.start()
            time.sleep(0.2)
            gate.release.set()
            importer.join(10)
            patcher.join(10)
        assert [str(w.message) for w in caught] == []
        assert result == [["fakews"]]
        assert sys.modules["fakews.core"].Validator().validate(b"") == ("fast", b"")
        assert _core.verify() == []
    finally:
        gate.release.set()
        del sys.modules["fakews_gate"]


def test_patch_from_inside_the_module_import(fakews) -> None:
    """patch() called while this thread executes fakews.core (a circular import): the
    half-made module is left alone, without a warning that would blame the library."""
    (fakews / "fakews" / "core.py").write_text(
        CORE.replace("class Validator", "import wsfast\nPATCHED = wsfast.patch('fakews')\n\n"
                     "class Validator")
    )
    importlib.invalidate_caches()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import fakews.core
    assert fakews.core.PATCHED == ["fakews"]
    assert fakews.core.Validator().validate(b"") == ("slow", b"")
    assert _core.verify() == ["fakews: fakews.core.mask is not wsfast's",
                              "fakews: fakews.core.Validator is not wsfast's"]


def test_wrong_version_left_untouched_with_one_warning(fakews) -> None:
    _core.register(make_host(((2,), (3,))))
    import fakews.core

    original = fakews.core.mask
    with pytest.warns(RuntimeWarning) as caught:
        assert wsfast.patch("fakews") == []
        assert wsfast.patch("fakews") == []  # the second time: no second warning
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "fakews" in message and "1.4.0" in message and ">=2,<3" in message
    assert fakews.core.mask is original
    assert "fakews" not in wsfast.patched()


def test_shape_mismatch_leaves_everything_untouched(fakews) -> None:
    import fakews.core
    import fakews.user

    fakews.core.mask = 42  # not what the adapter was written for
    original_validator = fakews.core.Validator
    with pytest.warns(RuntimeWarning, match=r"fakews 1\.4\.0 left unpatched: .*not callable"):
        assert wsfast.patch("fakews") == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wsfast.patch("fakews") == []  # one warning, not one per call
    assert fakews.core.Validator is original_validator  # nothing half-applied
    assert "fakews" not in wsfast.patched()


def test_shape_mismatch_at_import_restores_and_never_breaks_the_import(fakews) -> None:
    wsfast.patch("fakews")
    (fakews / "fakews" / "core.py").write_text(CORE.replace("def mask", "mask = 1\ndef _m"))
    importlib.invalidate_caches()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as the hosts' suites run
        import fakews.core  # must not raise
    assert fakews.core.mask == 1
    assert fakews.core.Validator().validate(b"") == ("slow", b"")
    assert "fakews" not in wsfast.patched()


def test_not_installed_is_skipped_silently() -> None:
    host = _core.Host("nothere", "nothere_pkg", "nothere-dist", ((0,), (9,)), [])
    _core.register(host)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert wsfast.patch("nothere") == []
    finally:
        _core._HOSTS.pop("nothere")


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown library 'nope'"):
        wsfast.patch("nope")


def test_call_counting(fakews, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSFAST_PATCH_STATS", "1")
    import fakews.core

    wsfast.patch("fakews")
    fakews.core.mask(b"abcd", b"x")
    fakews.core.Validator().validate(b"x")
    counts = _core.calls()
    assert counts["fakews.core.mask"] >= 1
    assert counts["fakews.core.Validator.validate"] >= 1


@pytest.mark.parametrize(
    "text, expected",
    [("1.3.2", (1, 3, 2)), ("26.11.1", (26, 11, 1)), ("1.0rc1", (1, 0)), ("2", (2,)), ("", ())],
)
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert _core.parse_version(text) == expected


def test_status_lists_every_host() -> None:
    status = wsfast.dropin.status()
    for name in ("wsproto", "websocket-client", "ws4py", "autobahn", "tornado", "websockets",
                 "aiohttp"):
        assert name in status
        assert set(status[name]) >= {"version", "patched", "replaced", "left alone"}


STARTUP_FINDER_PROBE = '''
import importlib.abc, importlib.machinery, sys

class Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.found_by = "the finder after the start-up one"

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "aiohttp":
            return importlib.machinery.ModuleSpec(name, Loader())
        return None

import _wsfast_patch
sys.meta_path.insert(sys.meta_path.index(_wsfast_patch._FINDER) + 1, Finder())
import aiohttp
print(aiohttp.found_by)
'''


def test_the_startup_finder_skips_no_other_finder() -> None:
    """The start-up finder (``_wsfast_patch``, for ``WSFAST_PATCH``) acts during the import of
    a library it watches; the finders after it in ``sys.meta_path`` are still all asked for
    that import (taking itself out of the list there made the import machinery skip the
    next one, when the patch put no finder of its own in front)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("WSFAST_PATCH")}
    env["WSFAST_PATCH"] = "off"  # nothing patched: no finder of the patch's own is added
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_FINDER_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.stdout.strip() == "the finder after the start-up one", done.stderr[-2000:]
