# The Autobahn testsuite's permessage-deflate groups (12.x, 13.x), a fixed subset of 36 cases
# per role (see compliance/run_deflate.sh), both roles: no FAILED, NON-STRICT or UNIMPLEMENTED.
# The whole groups take about 30 minutes a role: `bash compliance/run_deflate.sh` runs them.
bash compliance/run_deflate.sh subset
