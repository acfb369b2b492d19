"""wsfast.uvicorn imports without uvicorn (it is an optional extra); runs with or without it."""

from __future__ import annotations

import subprocess
import sys


def test_import_needs_no_uvicorn() -> None:
    """Importing wsfast.uvicorn imports no uvicorn; using the class without it says why."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'uvicorn' or name.startswith('uvicorn.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import wsfast.uvicorn\n"
        "assert 'uvicorn' not in sys.modules\n"
        "class Config:\n"
        "    loaded = True\n"
        "try:\n"
        "    wsfast.uvicorn.WSFastProtocol(Config(), None, {})\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["uvicorn.protocols"] or out.stdout.split() == ["uvicorn"]
