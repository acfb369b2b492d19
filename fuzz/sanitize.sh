#!/usr/bin/env bash
# Builds the extensions with AddressSanitizer and UndefinedBehaviorSanitizer into a copy of the
# sources, then runs under them: the C self-test, the kernel, frame, connection, handshake and
# permessage-deflate tests, and every fuzz harness over its corpora (the seeds, plus
# EXTRA_CORPORA/NAME when given, e.g. what fuzz/run.py --work DIR grew in DIR/corpus). Fails
# on any report.
#
#   fuzz/sanitize.sh [WORK_DIR] [EXTRA_CORPORA]
#
# Python itself is not instrumented: the compiler's ASan and UBSan runtimes are preloaded
# (LD_PRELOAD), leak detection is off (the interpreter keeps memory until exit), and
# PYTHONMALLOC=malloc gives every Python object its own allocation, so that ASan knows the
# bounds of every bytes object a kernel reads. allocator_may_return_null=1 lets the tests that
# declare absurd frame lengths get their MemoryError (a 1009) instead of an ASan abort (ASan
# still warns about those). Reports go to WORK_DIR/reports, whichever process wrote them; any
# error there fails the run. The tests run on the compiled build only (their pure-Python
# halves exercise no instrumented code).
# Compiler: gcc (CC=gcc by default); the runtime preloaded is the one it links against.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mkdir -p "${1:-${CI_WORK:-$(mktemp -d)}}/sanitize" && cd "$_" && pwd)
extra=${2:-}
cc=${CC:-gcc}
python=${PYTHON:-python}

echo "== sanitizer build ($cc, address,undefined) in $work"
rm -rf "$work/src" "$work/reports"
mkdir -p "$work/src" "$work/reports"
cp "$root/setup.py" "$root/pyproject.toml" "$root/README.md" "$work/src/"
cp -r "$root/src" "$work/src/src"
find "$work/src/src" \( -name '*.so' -o -name '*.c' -o -name __pycache__ \) -prune -exec rm -rf {} +
(cd "$work/src" && CC=$cc LDSHARED="$cc -shared" WSFAST_SANITIZE=address,undefined \
  WSFAST_BUILD_EXTENSIONS=1 "$python" setup.py -q build_ext --inplace -j 2 >"$work/build.log" 2>&1) \
  || { tail -40 "$work/build.log"; exit 1; }

asan=$($cc -print-file-name=libasan.so)
ubsan=$($cc -print-file-name=libubsan.so)
[ -e "$asan" ] && [ -e "$ubsan" ] || { echo "no ASan/UBSan runtime for $cc"; exit 1; }
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:log_path=$work/reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
export PYTHONMALLOC=malloc
export PYTHONPATH="$work/src/src"
export WSFAST_REQUIRE_EXTENSIONS=1 WSFAST_FUZZ_REPLAY=1
unset WSFAST_ISA WSFAST_NO_EXTENSIONS

reports() {
  if compgen -G "$work/reports/*" >/dev/null \
    && grep -lE "ERROR: |runtime error:" "$work"/reports/* >/dev/null; then
    echo "== sanitizer reports:"
    grep -hv "WARNING: AddressSanitizer failed to allocate" "$work"/reports/*
    exit 1
  fi
}
trap reports EXIT

echo "== the sanitized build is the one imported, and a report fails the run (built in ${SECONDS} s)"
"$python" - "$work/src/src" <<'PY'
import sys
import wsfast, wsfast._frames, wsfast._connection_c
for module in (wsfast._frames, wsfast._connection_c):
    if not module.__file__.startswith(sys.argv[1]):
        raise SystemExit(f"{module.__name__} comes from {module.__file__}")
print("wsfast", wsfast.implementation, "from", sys.argv[1])
PY
canary=$(ASAN_OPTIONS=detect_leaks=0:log_path=stderr "$python" -c '
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
p = libc.malloc(16)
libc.free(p)
libc.free(p)' 2>&1 || true)
grep -q "AddressSanitizer: attempting double-free" <<<"$canary" \
  || { echo "ASan is not active in the interpreter:"; echo "$canary"; exit 1; }

echo "== C self-test (the kernels' headers, on the widest SIMD path)"
"$cc" -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -Wall -Wextra -Werror -I"$root/src/wsfast/_c" "$root/tests/c/selftest.c" -o "$work/selftest"
LD_PRELOAD= ASAN_OPTIONS="detect_leaks=1:log_path=$work/reports/asan" "$work/selftest"

echo "== tests (${SECONDS} s)"
(cd "$root" && WSFAST_HYPOTHESIS_PROFILE=${WSFAST_HYPOTHESIS_PROFILE:-dev} "$python" -m pytest -q \
  -p no:cacheprovider -k "not python or taken_as_the_python" \
  tests/test_mask.py tests/test_utf8.py tests/test_frames.py tests/test_connection.py \
  tests/test_handshake.py tests/test_permessage_deflate.py tests/test_fuzz.py \
  tests/test_fuzz_findings.py)

echo "== fuzz corpora (${SECONDS} s)"
isas=$("$python" "$root/fuzz/run.py" --isas)  # every SIMD path, widest first
for name in frames utf8 mask connection handshake; do
  corpora=("$root/fuzz/corpus/$name")
  [ -n "$extra" ] && [ -d "$extra/$name" ] && corpora+=("$extra/$name")
  for isa in $isas; do
    WSFAST_ISA=$isa "$python" "$root/fuzz/$name.py" "${corpora[@]}" | sed "s/^/[$isa] /"
    case $name in frames|utf8|mask) ;; *) break ;; esac  # the rest: the widest path only
  done
done
echo "== no sanitizer report (${SECONDS} s)"
