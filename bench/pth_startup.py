"""What ``wsfast_patch.pth`` costs an interpreter start when ``WSFAST_PATCH`` is unset.

Two throwaway venvs of this interpreter, without pip, one with the ``wsfast_patch.pth`` that
is installed beside the running wsfast; ``python -c pass`` started in each, interleaved,
best of ``--starts``. (The .pth reads one environment variable; it imports wsfast's patcher
only when ``WSFAST_PATCH`` is set, so the venv needs nothing else.)

    python bench/pth_startup.py [--starts 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

PTH = "wsfast_patch.pth"


def installed_pth() -> Path:
    for key in ("purelib", "platlib"):
        path = Path(sysconfig.get_paths()[key]) / PTH
        if path.exists():
            return path
    raise SystemExit(f"{PTH} is not installed in this environment (pip install wsfast first)")


def start_seconds(python: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=30)
    args = parser.parse_args()
    pth = installed_pth()
    env = {k: v for k, v in os.environ.items() if k not in ("WSFAST_PATCH", "PYTHONPATH")}
    with tempfile.TemporaryDirectory() as tmp:
        pythons = {}
        for name in ("with", "without"):
            venv.create(Path(tmp) / name, with_pip=False)
            pythons[name] = Path(tmp) / name / "bin" / "python"
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        purelib = subprocess.run(
            [str(pythons["with"]), "-c", where], capture_output=True, text=True, check=True
        ).stdout.strip()
        shutil.copy(pth, Path(purelib) / PTH)
        best = {name: float("inf") for name in pythons}
        order = list(pythons.items())
        for _ in range(args.starts):
            for name, python in order:
                best[name] = min(best[name], start_seconds(python, env))
            order.reverse()  # neither goes first every time
    print(f"python -c pass, {sys.version.split()[0]}, best of {args.starts} interleaved starts:")
    for name, seconds in best.items():
        print(f"  {name + ' ' + PTH:<24} {seconds * 1e3:6.1f} ms")
    print(f"  ratio with / without: {best['with'] / best['without']:.3f}")


if __name__ == "__main__":
    main()
