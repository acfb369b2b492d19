# Reference counts on Debian's debug CPython (python3.11-dbg): the compiled kernels and the
# connection, success and error paths, leak nothing (scripts/refcount-check.py).
bash scripts/refcount-check.sh
