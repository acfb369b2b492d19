# The README's test command again, on the pure-Python kernels and connection.
echo "tests, pure-Python kernels (WSFAST_NO_EXTENSIONS=1)"
WSFAST_NO_EXTENSIONS=1 python -m pytest -q
