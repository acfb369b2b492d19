"""``python -m wsfast run`` and ``WSFAST_PATCH``, in real subprocesses.

The child-process cases need ``wsfast_patch.pth`` in site-packages (installed by ``pip install``
of wsfast, regular or editable); everything here needs ws4py as the library to patch (patched
with the compiled kernels and with the pure ones alike).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ws4py")

PROOF = textwrap.dedent(
    """
    import json, os, sys
    import ws4py.framing as framing
    mods = sys.modules
    wsfast = mods.get("wsfast")
    mask = framing.Frame.mask.__code__.co_filename
    print(json.dumps({
        "patched": wsfast.patched() if wsfast else None,
        "adapter": os.path.basename(os.path.dirname(mask)) + "/" + os.path.basename(mask),
        "env": os.environ.get("WSFAST_PATCH"),
        "argv": sys.argv[1:],
        "main": __name__,
    }))
    """
)
CHILD = PROOF + textwrap.dedent(
    """
    import subprocess
    out = subprocess.run([sys.executable, "-c", PROOF_SOURCE], capture_output=True, text=True,
                         check=True).stdout
    print(out.strip())
    """
)


ADAPTER = "dropin/_adapters.py"  # where the patched Frame.mask comes from
ORIGINAL = "ws4py/framing.py"


def pth_installed() -> bool:
    from wsfast.cli.info import _pth_installed

    return _pth_installed()


needs_pth = pytest.mark.skipif(not pth_installed(), reason="wsfast_patch.pth is not installed")


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> list[dict]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WSFAST_PATCH")}
    environ.update(env or {})
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environ, cwd=cwd,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_run_script(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(PROOF)
    [proof] = run(["-m", "wsfast", "run", str(script), "--flag", "x"])
    assert "ws4py" in proof["patched"]
    assert proof["adapter"] == ADAPTER
    assert proof["argv"] == ["--flag", "x"]
    assert proof["main"] == "__main__"
    assert proof["env"] == "all"


def test_run_module_with_names(tmp_path: Path) -> None:
    (tmp_path / "appmod.py").write_text(PROOF)
    [proof] = run(
        ["-m", "wsfast", "run", "--patch", "ws4py", "-m", "appmod", "a"],
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert proof["patched"] == ["ws4py"]
    assert proof["adapter"] == ADAPTER
    assert proof["argv"] == ["a"]
    assert proof["env"] == "ws4py"


def test_run_console_script(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "wsfast-test-tool"
    tool.write_text(f"#!{sys.executable}\n" + PROOF)
    tool.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    [proof] = run(["-m", "wsfast", "run", "wsfast-test-tool", "serve"], env={"PATH": path})
    assert proof["adapter"] == ADAPTER
    assert proof["argv"] == ["serve"]


@pytest.mark.parametrize(
    "args, status, message",
    [
        ([], 2, "nothing to run"),
        (["--patch"], 2, "--patch needs a value"),
        (["--patch=nope", "x.py"], 2, "unknown library 'nope'"),
        (["--patch", "wsproto,nope", "x.py"], 2, "unknown library 'nope'"),
        (["--bogus", "x.py"], 2, "unknown option '--bogus'"),
        (["-m"], 2, "-m needs a module name"),
        (["-m", "no_such_module_here"], 1, "No module named 'no_such_module_here'"),
        (["-m", "os.no_such_module"], 1, "No module named 'os.no_such_module'"),
    ],
)
def test_run_bad_arguments(args: list[str], status: int, message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsfast", "run", *args], capture_output=True, text=True,
        timeout=60,
    )
    assert out.returncode == status, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_run_sets_sys_path_as_python_does(tmp_path: Path) -> None:
    code = "import json, os, sys; print(json.dumps([os.path.realpath(p) for p in sys.path]))"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "app.py"
    script.write_text(code)
    (elsewhere / "mod.py").write_text(code)

    def paths(args: list[str]) -> list[str]:
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                             cwd=elsewhere, timeout=60, check=True)
        return json.loads(out.stdout)

    # The script's directory first, and the working directory not at all (it would shadow
    # modules, even the standard library's, for the script).
    assert paths(["-m", "wsfast", "run", str(script)]) == paths([str(script)])
    assert paths(["-m", "wsfast", "run", "-m", "mod"]) == paths(["-m", "mod"])


def test_run_unknown_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wsfast", "run", "no-such-program-here"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "no-such-program-here" in out.stderr


@needs_pth
def test_run_child_processes_are_patched(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(f"PROOF_SOURCE = {PROOF!r}\n" + CHILD)
    parent, child = run(["-m", "wsfast", "run", str(script)])
    assert parent["adapter"] == child["adapter"] == ADAPTER
    assert child["env"] == "all"


@needs_pth
@pytest.mark.parametrize("value", ["all", "ws4py", "ws4py, tornado", "1"])
def test_environment_variable(value: str) -> None:
    [proof] = run(["-c", PROOF], env={"WSFAST_PATCH": value})
    assert proof["adapter"] == ADAPTER


@needs_pth
@pytest.mark.parametrize("value", ["", "0", "none", "off"])
def test_environment_variable_off(value: str) -> None:
    [proof] = run(["-c", PROOF], env={"WSFAST_PATCH": value})
    assert proof["adapter"] == ORIGINAL
    assert proof["patched"] is None  # wsfast was not even imported


@needs_pth
def test_environment_variable_bad_value_is_reported_not_fatal() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import ws4py; print('started')"], capture_output=True,
        text=True, env={**os.environ, "WSFAST_PATCH": "nosuchlib"}, timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "started"
    assert "nosuchlib" in out.stderr


@needs_pth
@pytest.mark.parametrize(
    "env, flags",
    [
        ({"PYTHONPATH": "{shadow}"}, []),  # another "wsfast" first on the path: cannot import
        ({"WSFAST_ISA": "bogus"}, ["-W", "error"]),  # wsfast warns at import; -W error raises
    ],
    ids=["wsfast-not-importable", "warning-as-error"],
)
def test_environment_variable_never_breaks_the_library_import(
    tmp_path: Path, env: dict[str, str], flags: list[str]
) -> None:
    import wsfast

    if "WSFAST_ISA" in env and wsfast.implementation != "cython":
        pytest.skip("only the compiled kernels read WSFAST_ISA")
    shadow = tmp_path / "wsfast"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('a broken wsfast')\n")
    environ = {k: v.format(shadow=tmp_path) for k, v in env.items()}
    out = subprocess.run(
        [sys.executable, *flags, "-c", "import ws4py.framing as f; print(f.__name__)"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "WSFAST_PATCH": "all", **environ},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ws4py.framing"
    assert "WSFAST_PATCH='all' not applied" in out.stderr


@needs_pth
def test_report_at_exit(tmp_path: Path) -> None:
    report = tmp_path / "report"
    run(
        ["-c", "import ws4py.framing as f; f.Frame(masking_key=b'abcd').mask(b'x')"],
        env={"WSFAST_PATCH": "ws4py", "WSFAST_PATCH_STATS": "1",
             "WSFAST_PATCH_REPORT": str(report)},
    )
    [path] = tmp_path.glob("report.*.json")
    data = json.loads(path.read_text())
    assert data["patched"] == ["ws4py"]
    assert data["problems"] == []
    assert data["calls"]["ws4py.framing.Frame.mask"] == 1


@needs_pth
def test_environment_variable_imports_wsfast_only_when_a_library_is_used() -> None:
    code = "import sys, json; print(json.dumps({'wsfast': 'wsfast' in sys.modules}))"
    [proof] = run(["-c", code], env={"WSFAST_PATCH": "all"})
    assert proof == {"wsfast": False}


def test_startup_packages_match_the_hosts() -> None:
    import _wsfast_patch
    from wsfast.dropin import _core

    assert _wsfast_patch.PACKAGES == {h.package for h in _core.registry().values()}
