"""Shared fixtures: every kernel test runs against the compiled kernels and the pure twins.

``impl`` is parametrized with ids ``cython`` (``wsfast._compiled``) and ``python``
(``wsfast.pure``). The ``cython`` half is skipped, with the import error as the reason, only
when the extension modules were never built. It fails instead when

- ``WSFAST_REQUIRE_EXTENSIONS=1`` is set (or ``--require-extensions`` is given), or
- some extension module is built but ``wsfast._compiled`` still does not import,

so that a CI job that built the extensions can never pass by silently testing pure Python.

Hypothesis profiles: ``ci`` (default, 200 examples), ``dev`` (50) and ``thorough`` (2000);
pick one with ``WSFAST_HYPOTHESIS_PROFILE=...`` or ``--hypothesis-profile=...``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

import wsfast
import wsfast.pure

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=50)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("WSFAST_HYPOTHESIS_PROFILE", "ci"))

EXTENSION_MODULES = ("wsfast._mask", "wsfast._utf8", "wsfast._frames")
_TRUE = {"1", "yes", "true", "on"}


def env_flag(name: str) -> bool:
    """The same reading of boolean environment switches as setup.py and wsfast._speedups."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def built_extensions() -> list[str]:
    """The kernel modules that exist as compiled extension files (importable or not)."""
    built = []
    for name in EXTENSION_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            built.append(name)
    return built


def _import_compiled() -> tuple[ModuleType | None, BaseException | None]:
    try:
        return importlib.import_module("wsfast._compiled"), None
    except ImportError as exc:
        return None, exc


COMPILED, COMPILED_ERROR = _import_compiled()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-extensions",
        action="store_true",
        default=False,
        help="fail (never skip) the compiled-kernel tests when wsfast._compiled does not import "
        "(same as WSFAST_REQUIRE_EXTENSIONS=1)",
    )


def extensions_required(config: pytest.Config) -> bool:
    return bool(config.getoption("--require-extensions")) or env_flag("WSFAST_REQUIRE_EXTENSIONS")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if COMPILED is not None:
        compiled = "importable"
    else:
        compiled = f"NOT importable ({COMPILED_ERROR!r}); built: {built_extensions() or 'none'}"
    return [
        f"wsfast {wsfast.__version__}: top level implementation={wsfast.implementation!r}",
        f"wsfast compiled kernels: {compiled}; "
        f"required={'yes' if extensions_required(config) else 'no'}",
    ]


def compiled_or_skip(config: pytest.Config) -> ModuleType:
    """``wsfast._compiled``; skip only when it was never built and is not required."""
    if COMPILED is not None:
        return COMPILED
    if extensions_required(config):
        pytest.fail(
            "WSFAST_REQUIRE_EXTENSIONS=1 (or --require-extensions) but the compiled kernels "
            f"do not import: {COMPILED_ERROR!r}",
            pytrace=False,
        )
    built = built_extensions()
    if built:
        pytest.fail(
            f"the extension modules {built} are built but wsfast._compiled does not import: "
            f"{COMPILED_ERROR!r}",
            pytrace=False,
        )
    pytest.skip(f"compiled kernels not built, only wsfast.pure is tested ({COMPILED_ERROR})")


@pytest.fixture(scope="session", params=["cython", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The kernels under test: ``wsfast._compiled`` or ``wsfast.pure``."""
    if request.param == "python":
        return wsfast.pure
    return compiled_or_skip(request.config)


@pytest.fixture(scope="session")
def compiled(request: pytest.FixtureRequest) -> ModuleType:
    """The compiled kernels, for differential tests against :mod:`wsfast.pure`."""
    return compiled_or_skip(request.config)


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    return wsfast.pure


@pytest.fixture(scope="session")
def require_extensions(request: pytest.FixtureRequest) -> bool:
    """True when the compiled kernels must be there (WSFAST_REQUIRE_EXTENSIONS=1)."""
    return extensions_required(request.config)


@pytest.fixture(scope="module", params=["cython", "python"])
def connection_module(request: pytest.FixtureRequest, require_extensions: bool) -> ModuleType:
    """The sans-I/O connection under test: ``wsfast._connection_c`` (id ``cython``) or its
    source ``wsfast._connection_py`` (id ``python``). The ``cython`` half is skipped when the
    pure kernels are in use (the compiled connection reads the compiled parser's frames) or
    when it was never built; it fails instead when the extensions are required."""
    if request.param == "python":
        return importlib.import_module("wsfast._connection_py")
    if wsfast.implementation != "cython":
        pytest.skip("the compiled connection runs on the compiled kernels, which are not in use")
    try:
        return importlib.import_module("wsfast._connection_c")
    except ImportError as exc:
        if extensions_required(request.config):
            pytest.fail(f"the compiled connection does not import: {exc!r}", pytrace=False)
        pytest.skip(f"the compiled connection is not built ({exc})")
