#!/usr/bin/env bash
# The Autobahn testsuite's permessage-deflate groups (12.x, 13.x) against wsfast, both roles.
#
#   bash compliance/run_deflate.sh          # every case: 216 per role (about 30 min a role)
#   bash compliance/run_deflate.sh subset   # what CI runs: 36 cases per role (a few minutes)
#
# The subset takes, from each of the 12 parameter sets (12.1-12.5: five payload kinds with the
# default offer; 13.1-13.7: context takeover and windows 9/15 in every combination), case 1
# (16-byte messages), case 4 (1 KiB) and case 11 (8 KiB in 256-byte fragments). The cases
# left out send bigger messages with the same negotiation and are bound by the fuzzer's own
# speed (Python 2). Extra arguments go to run.py (e.g. --role server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-full}
[ $# -gt 0 ] && shift
case "$mode" in
  full)
    cases='12.*,13.*'
    ;;
  subset)
    cases=''
    for group in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
      for n in 1 4 11; do cases="${cases:+$cases,}$group.$n"; done
    done
    ;;
  *)
    echo "usage: $0 [full|subset] [run.py options]" >&2
    exit 2
    ;;
esac
# Each case sends 1,000 messages and waits for the echoes: raise wstest's per-role limit and
# the client driver's per-case limit well past the slowest case (12.2.10, ~50 s as a client).
exec python "$here/run.py" --role both --cases "$cases" --exclude-cases '' --timeout 5400 \
  --client-cmd "{python} {here}/client_wsfast.py {url} --agent {agent} --case-timeout 600" \
  "$@"
