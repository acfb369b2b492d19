# The suite on a free-threaded CPython built here from Debian's python3.13 source package,
# when it is cached (scripts/build-freethreaded-python.sh builds it once, a few minutes of
# compiling): the GIL must stay disabled and the thread tests run their races 5x over.
bash scripts/test-freethreaded.sh --if-cached
