# Peers installed, one smoke round of the pytest-benchmark suite, then the quick table.
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
install_extra bench
python -m pytest bench -q --benchmark-disable -p no:cacheprovider
python -m wsfast bench --quick
