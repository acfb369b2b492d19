# Coverage-guided fuzzing with atheris: every harness in fuzz/ for a bounded time (fuzz/run.py:
# two minutes of fuzzing in all) on the installed build, checked against its twin on every
# input. libFuzzer follows the branches of the Python code under test (the pure twins, the
# handshake, the Python connection); `fuzz/run.py --native` (clang-instrumented kernels) is
# for long runs: its build would take CI three minutes. What this step found stays in
# $CI_WORK/fuzz/corpus for the sanitizer step, and is replayed here.
python -m pip install -q atheris
python fuzz/run.py --work "$CI_WORK/fuzz"
for name in frames utf8 mask handshake connection; do
  WSFAST_FUZZ_REPLAY=1 python "fuzz/$name.py" "$CI_WORK/fuzz/corpus/$name" "fuzz/corpus/$name"
done
