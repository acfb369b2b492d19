#!/usr/bin/env bash
# The leak check (fuzz/leaks.py) on a debug interpreter, whose total reference count shows any
# reference a call keeps, even to an object that never dies: builds the extensions for that
# interpreter into a copy of the sources in WORK_DIR/debug and runs the check there.
#
#   fuzz/debug_leaks.sh [WORK_DIR] [fuzz/leaks.py arguments, default --calls 100000]
#
# The debug interpreter is $PYTHON_DEBUG, else the first of python3-dbg, python3.*-dbg on PATH
# (Debian: apt-get install python3-dbg). Building needs setuptools and Cython importable by the
# Python that runs this script (a venv with `pip install "Cython>=3.1" setuptools`); the debug
# interpreter borrows them for the build only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mkdir -p "${1:-${CI_WORK:-$(mktemp -d)}}/debug" && cd "$_" && pwd)
shift || true
[ $# -gt 0 ] || set -- --calls 100000
python=${PYTHON:-python}

dbg=${PYTHON_DEBUG:-}
if [ -z "$dbg" ]; then
  for candidate in python3-dbg $(compgen -c python3. | grep -E '^python3\.[0-9]+-dbg$' | sort -u); do
    if command -v "$candidate" >/dev/null; then dbg=$candidate; break; fi
  done
fi
[ -n "$dbg" ] || { echo "no debug interpreter (python3-dbg) found"; exit 2; }
"$dbg" -c 'import sys; sys.gettotalrefcount' 2>/dev/null \
  || { echo "$dbg is not a debug build"; exit 2; }

echo "== extensions for $dbg ($("$dbg" -c 'import sys; print(sys.version.split()[0])')) in $work"
rm -rf "$work/src"
mkdir -p "$work/src"
cp "$root/setup.py" "$root/pyproject.toml" "$root/README.md" "$work/src/"
cp -r "$root/src" "$work/src/src"
find "$work/src/src" \( -name '*.so' -o -name '*.c' -o -name __pycache__ \) -prune -exec rm -rf {} +
tools=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
(cd "$work/src" && PYTHONPATH=$tools WSFAST_BUILD_EXTENSIONS=1 \
  "$dbg" setup.py -q build_ext --inplace >"$work/build.log" 2>&1) \
  || { tail -40 "$work/build.log"; exit 1; }

echo "== fuzz/leaks.py $*"
PYTHONPATH="$work/src/src" WSFAST_ISA= WSFAST_NO_EXTENSIONS= "$dbg" "$root/fuzz/leaks.py" "$@"
