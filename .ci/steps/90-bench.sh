# Peers installed, one smoke round of the pytest-benchmark suite, then the quick table.
python -m pip install -q ".[bench]"
python -m pytest bench -q --benchmark-disable -p no:cacheprovider
python -m wsfast bench --quick
