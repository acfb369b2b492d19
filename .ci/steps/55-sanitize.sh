# AddressSanitizer and UndefinedBehaviorSanitizer: fuzz/sanitize.sh builds the extensions with
# both (gcc), then runs the C self-test, the kernel, frame, connection and handshake tests and
# every fuzz corpus (the seeds and what step 50 found) under them. Any report fails the step.
python -m pip install -q "Cython>=3.1" "setuptools>=68"
bash fuzz/sanitize.sh "$CI_WORK" "$CI_WORK/fuzz/corpus"
