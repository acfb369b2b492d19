#!/usr/bin/env bash
# Run the test suite on a free-threaded CPython (no GIL), with the compiled kernels.
#
#   scripts/test-freethreaded.sh              # build the interpreter first if it is not cached
#   scripts/test-freethreaded.sh --if-cached  # skip (exit 0) when it is not cached: for CI
#   scripts/test-freethreaded.sh -- -k threads   # arguments after -- go to pytest
#
# The interpreter comes from scripts/build-freethreaded-python.sh (cached under
# ~/.cache/wsfast-freethreaded). wsfast is installed from this checkout into a fresh venv
# (WSFAST_BUILD_EXTENSIONS=1: a failed compile is an error), and the suite runs with
# WSFAST_REQUIRE_EXTENSIONS=1 and PYTHON_GIL unset, so an extension module that is not
# declared free-threading compatible would switch the GIL back on: tests/test_threads.py
# checks that it stays off, and runs its races WSFAST_THREAD_ROUNDS (default 5) times over.
set -euo pipefail
cd "$(dirname "$0")/.."

HOME_DIR=${WSFAST_FT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/wsfast-freethreaded}
PYTHON="$HOME_DIR/prefix/bin/python3.13t"
if [ "${1:-}" = "--if-cached" ]; then
  shift
  if [ ! -x "$PYTHON" ]; then
    echo "no free-threaded CPython cached at $PYTHON: skipped"
    echo "(build it once with scripts/build-freethreaded-python.sh)"
    exit 0
  fi
fi
[ "${1:-}" = "--" ] && shift
PYTHON=$(bash scripts/build-freethreaded-python.sh | tail -n 1)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
echo "== install wsfast into a venv of $("$VPY" -VV | sed -n 1p)"
# Tests' own needs, without the test extra's uvloop (no free-threaded wheels to install).
"$VPY" -m pip install -q --only-binary=:all: "pytest>=8" "hypothesis>=6.100"
# From a copy of the checkout's files (tracked or not, but not ignored): no stale generated
# C file or build directory from another interpreter can leak into the build.
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src"
WSFAST_BUILD_EXTENSIONS=1 "$VPY" -m pip install -q "$WORK/src"
"$VPY" -c 'import sys, wsfast; print("wsfast", wsfast.__version__, wsfast.implementation, "GIL enabled:", sys._is_gil_enabled())'

echo "== tests (free-threaded, compiled kernels)"
unset PYTHON_GIL
# From a copy of tests/ outside the checkout, so that the installed package is the one tested.
mkdir "$WORK/run"
cp -r tests fuzz bench pyproject.toml "$WORK/run/"
cd "$WORK/run"
WSFAST_REQUIRE_EXTENSIONS=1 WSFAST_THREAD_ROUNDS=${WSFAST_THREAD_ROUNDS:-5} \
  "$VPY" -m pytest -q -p no:cacheprovider "$@"
