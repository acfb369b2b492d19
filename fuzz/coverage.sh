#!/usr/bin/env bash
# Line coverage that the fuzz corpora reach: replays every harness over its corpora (every
# SIMD path for the kernels) on a build of a copy of the sources with Cython line tracing and
# gcc's --coverage, then prints coverage.py's report for the .pyx and .py files and gcov's
# for the kernels' C headers.
#
#   fuzz/coverage.sh [WORK_DIR] [EXTRA_CORPORA]    (pip install coverage "Cython>=3.1")
#
# EXTRA_CORPORA is a directory with one corpus per harness, e.g. DIR/corpus of fuzz/run.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mkdir -p "${1:-$(mktemp -d)}/coverage" && cd "$_" && pwd)
extra=${2:-}
python=${PYTHON:-python}

rm -rf "$work/src" "$work"/.coverage*
mkdir -p "$work/src"
cp "$root/setup.py" "$root/pyproject.toml" "$root/README.md" "$work/src/"
cp -r "$root/src" "$work/src/src"
find "$work/src/src" \( -name '*.so' -o -name '*.c' -o -name __pycache__ \) -prune -exec rm -rf {} +
echo "== build with line tracing and --coverage in $work"
(cd "$work/src" && CFLAGS="--coverage" LDFLAGS="--coverage" WSFAST_CYTHON_TRACE=1 \
  WSFAST_BUILD_EXTENSIONS=1 "$python" setup.py -q build_ext --inplace >"$work/build.log" 2>&1) \
  || { tail -40 "$work/build.log"; exit 1; }
cat >"$work/coveragerc" <<EOF
[run]
plugins = Cython.Coverage
source = $work/src/src/wsfast
omit = */cli/*
parallel = true
data_file = $work/.coverage
[report]
precision = 1
EOF

isas=$("$python" "$root/fuzz/run.py" --isas)  # every SIMD path, widest first
for name in frames utf8 mask handshake connection; do
  corpora=("$root/fuzz/corpus/$name")
  [ -n "$extra" ] && [ -d "$extra/$name" ] && corpora+=("$extra/$name")
  for isa in $isas; do
    (cd "$work/src" && PYTHONPATH="$work/src/src" WSFAST_FUZZ_REPLAY=1 WSFAST_ISA=$isa \
      "$python" -m coverage run --rcfile="$work/coveragerc" "$root/fuzz/$name.py" "${corpora[@]}")
    case $name in frames|utf8|mask) ;; *) break ;; esac
  done
done
echo "== Python and Cython lines"
(cd "$work/src" && "$python" -m coverage combine --rcfile="$work/coveragerc" -q \
  && "$python" -m coverage report --rcfile="$work/coveragerc")
echo "== C headers (gcov, lines)"
objects=$(dirname "$(find "$work/src/build" -name '_utf8*.o' | head -1)")
(cd "$work/src" && gcov -n -o "$objects" src/wsfast/_mask.c src/wsfast/_utf8.c src/wsfast/_frames.c \
  2>/dev/null | grep -A1 "_c/wsf_" | grep -v "^--$" | paste - - | sort -u)
