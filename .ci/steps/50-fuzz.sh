# Coverage-guided fuzzing with atheris: every harness in fuzz/ for a bounded time (fuzz/run.py:
# three minutes of fuzzing in all), the compiled build checked against its twin on every input.
# With clang (installed if possible) the extensions are rebuilt with coverage instrumentation,
# so that libFuzzer follows the branches of the C code as well as those of the Python code.
# What it found stays in $CI_WORK/fuzz/corpus for the sanitizer step, and is replayed here on
# the installed build (as shipped).
. .ci/lib.sh
python -m pip install -q atheris "Cython>=3.1" "setuptools>=68"
native=()
if command -v clang >/dev/null || apt_install clang; then
  native=(--native)
else
  echo "(no clang: libFuzzer sees the Python code under test only)"
fi
python fuzz/run.py --work "$CI_WORK/fuzz" "${native[@]}"
for name in frames utf8 mask handshake connection; do
  WSFAST_FUZZ_REPLAY=1 python "fuzz/$name.py" "$CI_WORK/fuzz/corpus/$name" "fuzz/corpus/$name"
done
