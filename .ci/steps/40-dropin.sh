# Drop-in patches: each library's own test suite, unpatched then patched, in its own venv with
# the wsfast wheel .ci/run built and installed ($CI_WHEEL; integrations/run.py); a test that
# passes unpatched must pass patched, and the patches must be proven active to the end. Then
# the adapters' differential tests with every library installed.
python -m pip install -q uv  # the harness makes its venvs with uv when it is there (pip otherwise)
python integrations/run.py --work "$CI_WORK" --jobs 2 --wheel "$CI_WHEEL"
# The libraries of the dropin extra (the wheel is the one installed already).
python -m pip install -q "$CI_WHEEL[dropin]"
python -m pytest -q -p no:cacheprovider tests/test_dropin_core.py tests/test_dropin_hosts.py tests/test_dropin_run.py
python bench/dropin_bench.py --quick
