# Reference and memory leaks: fuzz/leaks.py calls every public function of the compiled kernels
# and connection, and their error paths, 100,000 times (sessions a thousand times) with RSS,
# allocated blocks, reference counts and tracemalloc flat: a leak of one block, reference or
# object per call shows 100,000 times over. (`python fuzz/leaks.py` makes a million calls of
# each; the total reference count of a debug interpreter is step 75-refcount's, and
# `fuzz/debug_leaks.sh` runs this check there too.)
python fuzz/leaks.py --calls 100000
