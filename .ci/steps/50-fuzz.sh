# Coverage-guided fuzzing with atheris: every harness in fuzz/ for a bounded time (fuzz/run.py:
# two minutes of fuzzing in all) on the installed build, checked against its twin on every
# input. libFuzzer follows the branches of the Python code under test (the pure twins, the
# handshake, the Python connection); `fuzz/run.py --native` (clang-instrumented kernels) is
# for long runs: its build would take CI three minutes. What this step found stays in
# $CI_WORK/fuzz/corpus for the sanitizer step. No replay here: every input found was checked
# when libFuzzer ran it, and the checked-in seeds are run at each harness's start and in full
# by tests/test_fuzz.py.
python -m pip install -q atheris
python fuzz/run.py --work "$CI_WORK/fuzz"
