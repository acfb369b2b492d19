# The documentation site, warnings as errors (Sphinx; pages in docs/, packages in the docs extra).
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
install_extra docs
python -m sphinx -W --keep-going -q -b html docs "$CI_WORK/docs-html"
