#!/usr/bin/env bash
# Build a free-threaded CPython (--disable-gil) from Debian's python3.13 source package, once,
# and cache it. Prints the interpreter's path on the last line.
#
#   scripts/build-freethreaded-python.sh            # build unless cached
#   WSFAST_FT_HOME=/some/dir scripts/...            # cache somewhere else
#
# The source comes from Debian's archive through a private deb-src list (the system's apt
# configuration is not touched): apt checks the signed Release file, the Sources index and the
# .dsc hashes. Only the upstream tarball inside the source package is built (Debian's patches
# adapt CPython to Debian's install layout, which a private prefix does not want). No PGO/LTO:
# the interpreter is for running the test suite, not for benchmarks. Runs under `nice`.
set -euo pipefail

HOME_DIR=${WSFAST_FT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/wsfast-freethreaded}
SUITE=${WSFAST_FT_SUITE:-trixie}
PACKAGE=${WSFAST_FT_PACKAGE:-python3.13}
MIRROR=${WSFAST_FT_MIRROR:-http://deb.debian.org/debian}
PREFIX="$HOME_DIR/prefix"
PYTHON="$PREFIX/bin/${PACKAGE}t"

is_free_threaded() {
  "$1" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") and not sys._is_gil_enabled() else 1)' 2>/dev/null
}

if [ -x "$PYTHON" ] && is_free_threaded "$PYTHON"; then
  echo "cached: $("$PYTHON" -VV)"
  echo "$PYTHON"
  exit 0
fi

mkdir -p "$HOME_DIR"
exec 9>"$HOME_DIR/.lock"
flock 9   # one build at a time; a second caller waits and then finds the cache

if [ -x "$PYTHON" ] && is_free_threaded "$PYTHON"; then
  echo "$PYTHON"
  exit 0
fi

# Build dependencies (Debian bookworm names); best effort when not root.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for pkg in build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev \
             libsqlite3-dev libreadline-dev libexpat1-dev uuid-dev; do
    # (Read into a variable: grep -q on a pipe may close it early, and pipefail would then
    # count an installed package as missing.)
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == *"ok installed"* ]] || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

# A private apt configuration holding only a deb-src line for $SUITE.
APT="$HOME_DIR/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc"
cat >"$APT/etc/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main
LIST
apt_private=(
  -o "Dir::Etc::SourceList=$APT/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT"
  -o "Dir::Cache::archives=$APT/archives"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
SRC="$HOME_DIR/src"
if ! ls "$SRC"/"${PACKAGE}"_*.orig.tar.* >/dev/null 2>&1; then
  echo "== fetching Debian's $PACKAGE source package ($SUITE)"
  apt-get "${apt_private[@]}" update -qq
  mkdir -p "$SRC"
  (cd "$SRC" && apt-get "${apt_private[@]}" source --download-only -qq "$PACKAGE")
fi
orig=$(ls "$SRC"/"${PACKAGE}"_*.orig.tar.* | sed -n 1p)
echo "== source: $(basename "$orig") ($(ls "$SRC"/*.dsc | xargs -n1 basename))"

BUILD="$HOME_DIR/build"
rm -rf "$BUILD"
mkdir -p "$BUILD"
tar -xf "$orig" -C "$BUILD" --strip-components=1

cd "$BUILD"
echo "== configure --disable-gil --prefix=$PREFIX"
nice -n 10 ./configure -q --disable-gil --prefix="$PREFIX" --with-ensurepip=no \
  --disable-test-modules >"$HOME_DIR/configure.log" 2>&1 \
  || { tail -n 40 "$HOME_DIR/configure.log"; exit 1; }
echo "== make (niced, $(nproc) jobs)"
nice -n 10 make -j"$(nproc)" >"$HOME_DIR/make.log" 2>&1 || { tail -n 40 "$HOME_DIR/make.log"; exit 1; }
nice -n 10 make altinstall >"$HOME_DIR/install.log" 2>&1 || { tail -n 40 "$HOME_DIR/install.log"; exit 1; }
cd "$HOME_DIR"
rm -rf "$BUILD"

is_free_threaded "$PYTHON" || { echo "built $PYTHON is not free-threaded"; exit 1; }
"$PYTHON" -c 'import ssl, ctypes, zlib, sqlite3, lzma, bz2' \
  || { echo "built $PYTHON lacks a standard module"; exit 1; }
echo "built: $("$PYTHON" -VV)"
echo "$PYTHON"
