# The release, proven locally: clean clone -> sdist -> wheel, twine/check-wheel-contents,
# validate-pyproject, zizmor, auditwheel repair --strip, the repaired wheel's suite in a
# fresh venv with no source tree, the pure wheel, tags and sizes (scripts/release-check.sh).
bash scripts/release-check.sh "$CI_WORK/release"
