"""A pytest plugin for uvicorn's own test suite: adds wsfast's protocol to its WebSocket backends.

uvicorn's ``tests/conftest.py`` parametrizes the ``ws_protocol_cls`` fixture over import
strings (wsproto, websockets-sansio). Loaded with ``-p uvicorn_plugin``, this adds
``wsfast.uvicorn:WSFastProtocol`` (id ``wsfast``) to that list before the tests are
parametrized, so every test that takes the fixture also runs on wsfast; the copy of the
suite is not edited. Used by ``integrations/uvicorn_suite.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

FIXTURE = "ws_protocol_cls"
WSFAST = pytest.param("wsfast.uvicorn:WSFastProtocol", id="wsfast")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: Any) -> None:
    # Runs before pytest's own hook that turns fixture params into test parameters.
    for fixturedef in metafunc._arg2fixturedefs.get(FIXTURE, ()):
        params = list(fixturedef.params or ())
        if fixturedef.params is None or WSFAST in params:
            continue
        fixturedef.params = [*params, WSFAST]
        ids = fixturedef.ids
        if isinstance(ids, (list, tuple)):
            fixturedef.ids = [*ids, "wsfast"]
