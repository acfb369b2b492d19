# The Redis broker and worker processes: Debian's redis-server (installed when missing) and
# redis-py (the `redis` extra); each test starts its own redis-server on 127.0.0.1. Then a
# small run of the two fan-out benchmarks, so that they keep working.
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (for the Redis tests)"
  apt_install redis-server || true
fi
command -v redis-server >/dev/null || { echo "redis-server is required for the Redis tests"; exit 1; }
install_extra redis
WSFAST_REQUIRE_REDIS=1 WSFAST_REQUIRE_BROWSER=1 python -m pytest -q \
  tests/test_redis_broker.py tests/test_redis_demo.py tests/browser/test_redis_browser.py
python bench/broadcast_race.py --connections 500 --calls 5 --rounds 1
python bench/broadcast_race.py --deflate --message json1k --connections 500 --calls 5 --rounds 1
python bench/fanout_demo.py --pages 50 --seconds 1 --rounds 1
