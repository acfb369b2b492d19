# wsfast.uvicorn.WSFastProtocol: uvicorn at the version the `uvicorn` extra pins, with the
# test dependencies of its WebSocket tests; then uvicorn's own tests/protocols/test_websocket.py
# from its sdist with wsfast added to the backends (integrations/uvicorn_suite.py: whatever
# passes on websockets-sansio must pass on wsfast), on the compiled build and the pure one;
# then wsfast's end-to-end tests under uvicorn (a Starlette app, wsfast's and websockets'
# clients, headless Chromium), which the README's test run skips without uvicorn.
pin=$(python - <<'PY'
from importlib.metadata import requires
print(next(r.split(";")[0].strip() for r in requires("wsfast") if 'extra == "uvicorn"' in r))
PY
)
python -m pip install -q "$pin" starlette "websockets==17.4" "wsproto==1.3.2" httpx2 httptools \
  zttp trustme pytest-xdist anyio
python integrations/uvicorn_suite.py --work "$CI_WORK"
python integrations/uvicorn_suite.py --work "$CI_WORK" --pure -k "not wsproto"  # (wsproto: once is enough)
WSFAST_REQUIRE_BROWSER=1 python -m pytest -q -p no:cacheprovider tests/test_uvicorn.py \
  tests/browser/test_uvicorn_browser.py
WSFAST_NO_EXTENSIONS=1 python -m pytest -q -p no:cacheprovider tests/test_uvicorn.py
