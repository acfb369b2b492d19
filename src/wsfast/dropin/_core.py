"""The patch machinery: which names a host library's patch replaces, and replacing them.

A :class:`Host` names the library (its import name and distribution), the versions its
adapters were written for, and its :class:`Binding` s: one name in one module (``"Frame.mask"``
for a class attribute) with a factory that builds the replacement from the module and the
original. Patching is lazy and per module: :func:`patch` activates a host (installed, version
accepted) and replaces the names of its modules already in ``sys.modules``; a meta-path finder
replaces them in modules imported later, and again after ``importlib.reload`` (which consults
the finders). Everything replaced is recorded and :func:`unpatch` puts the originals back.

A binding whose module holds something else than its adapter was written for (a shape check
fails) leaves the whole library untouched: the library's modules already patched are restored
and one ``RuntimeWarning`` names the library, its version and the reason. Apart from that,
patching is silent. A binding may also decline without a warning (``Binding.skip``), e.g. where
the host already runs compiled code that is faster.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Binding",
    "Host",
    "Record",
    "calls",
    "check_names",
    "registry",
    "patch",
    "patched",
    "register",
    "status",
    "unpatch",
    "verify",
]

Factory = Callable[[types.ModuleType, Any], Any]
Check = Callable[[types.ModuleType, Any], "str | None"]


@dataclass(frozen=True)
class Binding:
    """One name that a patch replaces: ``module.path`` (``path`` may be ``Class.attr``).

    ``check(module, original)`` returns why the original is not what the adapter was written
    for (the library is then left untouched, with a warning), or None. ``skip(module,
    original)`` returns why this name is better left alone (no warning: e.g. the host already
    runs faster compiled code), or None. ``counted`` lists the methods of a class replacement
    that the call counter wraps (functions are counted as a whole).
    """

    module: str
    path: str
    factory: Factory
    check: Check | None = None
    skip: Check | None = None
    counted: tuple[str, ...] = ()


@dataclass
class Host:
    """A library that wsfast can speed up."""

    name: str  # as given to patch(): "wsproto", "websocket-client", ...
    package: str  # the top-level import name
    distribution: str
    versions: tuple[tuple[int, ...], tuple[int, ...]]  # [lowest, first not supported)
    bindings: Sequence[Binding]
    replaces: str = ""  # one line for `info` and the docs

    @property
    def modules(self) -> list[str]:
        return list(dict.fromkeys(b.module for b in self.bindings))


@dataclass
class Record:
    """One replaced name: ``owner.attr`` was ``original`` and is now ``replacement``."""

    owner: Any
    attr: str
    original: Any
    replacement: Any
    by_name: bool = False  # a `from x import y` copy in another module


@dataclass
class _State:
    version: str
    records: dict[str, list[Record]] = field(default_factory=dict)  # by module name
    skipped: dict[str, str] = field(default_factory=dict)  # binding -> reason


_HOSTS: dict[str, Host] = {}
_ACTIVE: dict[str, _State] = {}
_WATCHED: dict[str, str] = {}  # module name -> host name
_REFUSED: dict[str, str] = {}  # host name -> the warning given
_LOCK = threading.RLock()
_CALLS: dict[str, int] = {}
_COUNTING = False


def register(host: Host) -> None:
    """Add (or replace) a host in the registry."""
    with _LOCK:
        _HOSTS[host.name] = host


def registry() -> dict[str, Host]:
    """The registered hosts, by name."""
    _load_builtin_hosts()
    return dict(_HOSTS)


def _load_builtin_hosts() -> None:
    from . import hosts as _builtin  # noqa: F401  (registers the hosts on first import)


def parse_version(text: str) -> tuple[int, ...]:
    """The leading numeric components of a version string: "1.3.2rc1" -> (1, 3, 2)."""
    parts = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def _normalise(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def installed_version(host: Host) -> str | None:
    """The installed version of ``host``'s distribution, or None when it is not installed.

    Read from the first ``NAME-VERSION.dist-info`` (or ``.egg-info``) on ``sys.path``, as
    importing would find it, without importing ``importlib.metadata`` (start-up cost)."""
    wanted = _normalise(host.distribution)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                project, _, version = name.rsplit(".", 1)[0].partition("-")
                if _normalise(project) == wanted and version:
                    return version.split("-")[0]
    return None


def _version_problem(host: Host, version: str) -> str | None:
    low, high = host.versions
    v = parse_version(version)
    if not (low <= v < high):
        span = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        return f"the patch was written for versions {span}"
    return None


def _warn(host: Host, version: str, reason: str, *, during_import: bool = False) -> None:
    message = f"wsfast: {host.name} {version} left unpatched: {reason}"
    _REFUSED[host.name] = message
    if not during_import:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return
    try:  # never let our warning (as an error, under -W error) break the host's import
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    except Warning:
        print(message, file=sys.stderr)


def check_names(names: Iterable[str]) -> None:
    """Raise ValueError, as :func:`patch` would, when ``names`` has an unknown library."""
    _names(names)


def _names(names: Iterable[str]) -> list[str]:
    _load_builtin_hosts()
    out: list[str] = []
    for name in names:
        key = name.strip().lower()
        if not key:
            continue
        if key == "all":
            out.extend(_HOSTS)
        elif key not in _HOSTS:
            raise ValueError(f"unknown library {name!r}; known: {', '.join(sorted(_HOSTS))}")
        else:
            out.append(key)
    return list(dict.fromkeys(out))


def patch(*names: str) -> list[str]:
    """Patch the named libraries (every known one when none is named); return the names of
    those patched now (installed, of a version the patch was written for). Idempotent."""
    global _COUNTING
    _COUNTING = os.environ.get("WSFAST_PATCH_STATS", "") not in ("", "0")
    selected = _names(names or ["all"])
    _wait_for_imports(m for name in selected for m in _HOSTS[name].modules)
    done = []
    with _LOCK:
        for name in selected:
            if name in _ACTIVE:
                done.append(name)
                continue
            if name in _REFUSED:  # warned once already; it stays untouched
                continue
            host = _HOSTS[name]
            version = installed_version(host)
            if version is None:
                continue
            problem = _version_problem(host, version)
            if problem is not None:
                _warn(host, version, problem)
                continue
            _ACTIVE[name] = _State(version)
            for module in host.modules:
                _WATCHED[module] = name
            _install_finder()
            for module in host.modules:
                loaded = sys.modules.get(module)
                if loaded is not None and not _initializing(loaded):
                    _apply(host, loaded)
                if name not in _ACTIVE:  # refused by a shape check
                    break
            if name in _ACTIVE:
                done.append(name)
    return done


def _initializing(module: types.ModuleType) -> bool:
    """Whether ``module`` is still being executed by its import (it is in sys.modules then)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _wait_for_imports(modules: Iterable[str]) -> None:
    """Let imports of ``modules`` that other threads are running finish first: importing a
    module that another thread is executing waits for it (a module that this thread is
    executing, a circular import, is returned at once, and left alone by patch())."""
    for name in modules:
        module = sys.modules.get(name)
        if module is not None and _initializing(module):
            try:
                importlib.import_module(name)
            except Exception:  # that import failed: there is nothing to patch
                pass


def unpatch(*names: str) -> list[str]:
    """Restore the originals of the named libraries (all patched ones when none is named);
    return the names restored."""
    with _LOCK:
        selected = _names(names) if names else list(_ACTIVE)
        out = []
        for name in selected:
            if name in _ACTIVE:
                _deactivate(name)
                out.append(name)
        if not _ACTIVE:
            _remove_finder()
        return out


def patched() -> list[str]:
    """The libraries patched now (their modules imported later are patched on import)."""
    with _LOCK:
        return list(_ACTIVE)


def _deactivate(name: str) -> None:
    state = _ACTIVE.pop(name)
    for module, owner in list(_WATCHED.items()):
        if owner == name:
            del _WATCHED[module]
    for records in reversed(list(state.records.values())):
        _restore(records)


def _restore(records: list[Record]) -> None:
    for rec in reversed(records):
        try:
            current = _get(rec.owner, rec.attr)
        except AttributeError:
            continue
        if current is rec.replacement:
            setattr(rec.owner, rec.attr, rec.original)


def _get(owner: Any, attr: str) -> Any:
    # Class attributes are read from the class dict, so a staticmethod or function is the
    # object that was stored, not a bound or unwrapped view of it.
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if attr in klass.__dict__:
                return klass.__dict__[attr]
        raise AttributeError(attr)
    return getattr(owner, attr)


def _resolve(module: types.ModuleType, path: str) -> tuple[Any, str]:
    *parents, attr = path.split(".")
    owner: Any = module
    for part in parents:
        owner = getattr(owner, part)
    return owner, attr


def _apply(host: Host, module: types.ModuleType, *, during_import: bool = False) -> None:
    """Replace the bindings of ``host`` in ``module``: all of them or, when a shape check
    fails, none (and the library's other modules are restored)."""
    state = _ACTIVE[host.name]
    bindings = [b for b in host.bindings if b.module == module.__name__]
    planned: list[tuple[Binding, Any, str, Any]] = []
    for b in bindings:
        try:
            owner, attr = _resolve(module, b.path)
            original = _original(state, _get(owner, attr))
        except AttributeError:
            return _refuse(host, state, f"{b.module}.{b.path} is missing", during_import)
        if b.check is not None:
            problem = b.check(module, original)
            if problem is not None:
                return _refuse(host, state, f"{b.module}.{b.path}: {problem}", during_import)
        planned.append((b, owner, attr, original))
    # After a reload the module holds fresh originals: its old records are stale, but those
    # for other owners (by-name copies, classes of the old module) still need restoring.
    records = [
        r for r in state.records.pop(module.__name__, []) if r.by_name or r.owner is not module
    ]
    module_level: dict[int, tuple[str, Any, Any]] = {}
    for b, owner, attr, original in planned:
        key = f"{b.module}.{b.path}"
        reason = b.skip(module, original) if b.skip is not None else None
        if reason is not None:
            state.skipped[key] = reason
            continue
        state.skipped.pop(key, None)
        replacement = b.factory(module, original)
        if _COUNTING:
            replacement = _counting(replacement, key, b.counted)
        setattr(owner, attr, replacement)
        records.append(Record(owner, attr, original, replacement))
        if owner is module:
            module_level[id(original)] = (attr, original, replacement)
    if module_level:
        records.extend(_rebind_by_name(module, module_level))
    state.records[module.__name__] = records


def _original(state: _State, value: Any) -> Any:
    """The library's own object behind ``value``. A module that a reload executes again
    imports the name afresh, from a module that may hold wsfast's replacement by then (a
    by-name copy): that replacement stands for the original it replaced."""
    for records in state.records.values():
        for r in records:
            if r.replacement is value:
                return r.original
    return value


def _refuse(host: Host, state: _State, reason: str, during_import: bool) -> None:
    _deactivate(host.name)
    _warn(host, state.version, reason, during_import=during_import)


def _rebind_by_name(
    source: types.ModuleType, swaps: dict[int, tuple[str, Any, Any]]
) -> list[Record]:
    """Rebind each original (``swaps``: id -> (name, original, replacement)) wherever another
    loaded module holds it under the same name (a ``from x import name`` copy); not in the
    module that defines it, which keeps the library's own function, nor under other names
    (``import name as theirs``: kept on purpose, to compare with it, say)."""
    out = []
    homes = {getattr(original, "__module__", None) for _, original, _ in swaps.values()}
    for module in list(sys.modules.values()):
        if module is source or not isinstance(module, types.ModuleType):
            continue
        if getattr(module, "__name__", None) in homes:
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        for attr, value in list(namespace.items()):
            swap = swaps.get(id(value))
            if swap is not None and value is swap[1] and attr == swap[0]:
                namespace[attr] = swap[2]
                out.append(Record(module, attr, swap[1], swap[2], by_name=True))
    return out


# --- call counting (WSFAST_PATCH_STATS=1), to prove that the adapters are reached ----------


def calls() -> dict[str, int]:
    """Calls that reached each adapter, by binding (counted only with WSFAST_PATCH_STATS=1)."""
    with _LOCK:
        return dict(_CALLS)


def _count(key: str) -> None:
    _CALLS[key] = _CALLS.get(key, 0) + 1


def _counting(replacement: Any, key: str, methods: tuple[str, ...]) -> Any:
    if isinstance(replacement, type):
        namespace: dict[str, Any] = {"__module__": replacement.__module__}
        for method in methods:
            namespace[method] = _counted_method(getattr(replacement, method), f"{key}.{method}")
        return type(replacement.__name__, (replacement,), namespace)
    if isinstance(replacement, staticmethod):
        return staticmethod(_counted_function(replacement.__func__, key))
    return _counted_function(replacement, key)


def _counted_function(func: Callable[..., Any], key: str) -> Callable[..., Any]:
    @functools.wraps(func)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _count(key)
        return func(*args, **kwargs)

    return counted


def _counted_method(func: Callable[..., Any], key: str) -> Callable[..., Any]:
    @functools.wraps(func)
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count(key)
        return func(self, *args, **kwargs)

    return counted


# --- status and verification ---------------------------------------------------------------


def status() -> dict[str, dict[str, Any]]:
    """Per known library: installed version, whether it is patched, the names replaced now,
    the names left alone (with the reason) and the warning given if it was refused."""
    _load_builtin_hosts()
    with _LOCK:
        return {name: _status(name, host) for name, host in _HOSTS.items()}


def _status(name: str, host: Host) -> dict[str, Any]:
    state = _ACTIVE.get(name)
    return {
        "version": state.version if state else installed_version(host),
        "patched": state is not None,
        "replaced": sorted(
            f"{r.owner.__name__}.{r.attr}" if isinstance(r.owner, types.ModuleType)
            else f"{r.owner.__module__}.{r.owner.__qualname__}.{r.attr}"
            for records in (state.records.values() if state else ())
            for r in records
            if not r.by_name
        ),
        "left alone": dict(state.skipped) if state else {},
        "refused": _REFUSED.get(name),
    }


def verify() -> list[str]:
    """Problems with the patches applied now: empty when, in every loaded module of every
    patched library, each name the patch covers is wsfast's replacement (or was left alone
    on purpose)."""
    with _LOCK:
        return _verify()


def _verify() -> list[str]:
    problems = []
    for name, state in _ACTIVE.items():
        ours = {id(r.replacement) for records in state.records.values() for r in records}
        for b in _HOSTS[name].bindings:
            module = sys.modules.get(b.module)
            key = f"{b.module}.{b.path}"
            if module is None or key in state.skipped:
                continue
            try:
                owner, attr = _resolve(module, b.path)
                current = _get(owner, attr)
            except AttributeError:
                current = None
            if id(current) not in ours:
                problems.append(f"{name}: {key} is not wsfast's")
    return problems


# --- the import hook -----------------------------------------------------------------------


class _PatchingLoader:
    """Runs the real loader, then applies the patch to the module it made."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> types.ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        with _LOCK:
            name = _WATCHED.get(module.__name__)
            if name is not None and name in _ACTIVE:
                _apply(_HOSTS[name], module, during_import=True)

    def __getattr__(self, attr: str) -> Any:  # get_source, get_filename, is_package, ...
        return getattr(self._loader, attr)


class _Finder:
    """Finds watched modules with the other finders and wraps their loaders."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> Any:
        if fullname not in _WATCHED:
            return None
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, _Finder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PatchingLoader(spec.loader)
            return spec
        return None


_FINDER = _Finder()


def _install_finder() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def _remove_finder() -> None:
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
