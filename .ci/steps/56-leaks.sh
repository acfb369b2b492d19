# Reference and memory leaks: fuzz/leaks.py calls every public function of the compiled kernels
# and connection, and their error paths, a million times (sessions ten thousand times) with RSS,
# allocated blocks, reference counts and tracemalloc flat; then again on a debug interpreter
# (Debian's python3-dbg, installed if possible), whose total reference count must stay flat.
. .ci/lib.sh
python fuzz/leaks.py
if command -v python3-dbg >/dev/null || apt_install --no-install-recommends python3-dbg; then
  python -m pip install -q "Cython>=3.1" "setuptools>=68"
  bash fuzz/debug_leaks.sh "$CI_WORK"
else
  echo "(no debug interpreter: the total reference count is not checked)"
fi
