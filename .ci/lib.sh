# Helpers shared by .ci/run and its steps (sourced, not run).

# apt_install PACKAGE...: install Debian packages when running as root with apt-get; returns
# non-zero when they could not be installed (the caller decides whether that is fatal).
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  if [ -z "${_CI_APT_UPDATED:-}" ]; then
    apt-get update -qq || return 1
    _CI_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# install_extra NAME...: pip-install the requirements of these extras of pyproject.toml, not
# the package itself (`pip install ".[NAME]"` would build and reinstall wsfast: minutes of
# compiling, and without WSFAST_BUILD_EXTENSIONS=1 a failed compile would fall back to the
# pure build in the venv that the later steps test).
install_extra() {
  python - "$@" >"$CI_WORK/extra-requirements.txt" <<'PY'
import sys
import tomllib
with open("pyproject.toml", "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]
print("\n".join(req for name in sys.argv[1:] for req in extras[name]))
PY
  python -m pip install -q -r "$CI_WORK/extra-requirements.txt"
}
