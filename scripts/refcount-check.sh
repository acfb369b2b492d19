#!/usr/bin/env bash
# Build wsfast for Debian's debug CPython (python3.11-dbg) in a scratch venv and run
# scripts/refcount-check.py: the compiled kernels and connection must leak no references.
#
#   scripts/refcount-check.sh          # installs python3.11-dbg with apt-get when root
set -euo pipefail
cd "$(dirname "$0")/.."
DBG=${WSFAST_DEBUG_PYTHON:-python3.11-dbg}

if ! command -v "$DBG" >/dev/null || ! "$DBG" -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-dbg python3.11-dev \
      python3.11-venv >/dev/null
  fi
fi
command -v "$DBG" >/dev/null || { echo "$DBG is not installed"; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$DBG" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q "setuptools>=68" "Cython>=3.1"
# The checkout's files without generated C or build directories (see test-freethreaded.sh).
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src"
echo "== build wsfast for $("$VPY" -c 'import sys; print(sys.version.split()[0] + sys.abiflags)')"
WSFAST_BUILD_EXTENSIONS=1 "$VPY" -m pip install -q --no-build-isolation "$WORK/src"
cd "$WORK"
"$VPY" "$OLDPWD/scripts/refcount-check.py"
