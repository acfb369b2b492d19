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
