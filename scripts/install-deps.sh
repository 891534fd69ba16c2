#!/bin/sh
# Install the Debian packages rlaif needs, only those missing. Silent and quick
# when everything is present; uses sudo when not root. On a system without
# dpkg/apt it only prints what to install.
set -eu

PACKAGES="build-essential pkg-config liblua5.4-dev lua5.4 libcurl4-openssl-dev libcjson-dev
libblis-openmp-dev libedit-dev libpcre2-dev libutf8proc-dev libsqlite3-dev zlib1g-dev
lua-busted lua-check python3 tmux nodejs chromium clang libclang-rt-14-dev libomp-14-dev libmicrohttpd-dev luarocks
openmpi-bin libopenmpi-dev"

command -v dpkg-query >/dev/null 2>&1 || {
    echo "install-deps: no dpkg here; install the equivalents of: $PACKAGES" >&2
    exit 0
}

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done
# npm comes with NodeSource's nodejs; Debian's nodejs needs the npm package (the
# specs install their pinned npm references with it: scripts/test-npm.sh)
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing
