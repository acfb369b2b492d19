# The Autobahn testsuite, cases 1-10, both roles: no FAILED, no NON-STRICT.
python compliance/run.py --role both
