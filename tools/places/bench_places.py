#!/usr/bin/env python3
"""Queries per second of bin/herd-places over HTTP (legacy endpoint).

    tools/places/bench_places.py [--bin bin/herd-places] [--data data/places.tsv]
        [--clients 4] [--seconds 5] [--runs 3] [--radius 5000 --radius 50000]
        [--location LAT,LNG]

Starts the emulator on a free loopback port, then for each radius runs
--runs rounds of --clients processes, each with one keep-alive connection
sending GET requests back to back (centres: random places of the data file,
moved up to ~5 km, a fixed seed; or --location, every request at that one
point, as herd-bench's WHATSATs are).  Prints every round and the median."""

import argparse
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def centres(path, n, seed):
    pts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("P\t"):
                fields = line.split("\t")
                pts.append((float(fields[1]), float(fields[2])))
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lat, lng = rng.choice(pts)
        lat = max(-90.0, min(90.0, lat + rng.uniform(-0.05, 0.05)))
        lng = max(-180.0, min(180.0, lng + rng.uniform(-0.05, 0.05)))
        out.append((lat, lng))
    return out


def read_response(sock, buf):
    """One HTTP response off sock; returns (status, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def client(port, requests, seconds, out):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done, bad, buf, i = 0, 0, b"", 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(requests[i % len(requests)])
        status, buf = read_response(sock, buf)
        done += 1
        bad += status != 200
        i += 1
    sock.close()
    out.put((done, bad))


def round_qps(port, requests, clients, seconds):
    q = multiprocessing.Queue()
    chunk = len(requests) // clients
    procs = [multiprocessing.Process(
        target=client, args=(port, requests[i * chunk:(i + 1) * chunk], seconds, q))
        for i in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    done = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    if bad:
        raise SystemExit("bench: %d requests failed" % bad)
    return done / min(elapsed, seconds + 0.05) if elapsed > 0 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "bin", "herd-places"))
    ap.add_argument("--data", default=os.path.join(REPO, "data", "places.tsv"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--radius", type=int, action="append")
    ap.add_argument("--location", help="LAT,LNG: every request there")
    args = ap.parse_args()
    radii = args.radius or [5000, 50000]

    proc = subprocess.Popen([args.bin, "-p", "0", "-d", args.data, "-l", "/dev/null"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode()
        if "listening on 127.0.0.1:" not in line:
            raise SystemExit("bench: emulator did not start")
        port = int(line.rsplit(":", 1)[1])
        if args.location:
            lat, lng = (float(x) for x in args.location.split(","))
            pts = [(lat, lng)] * 64
        else:
            pts = centres(args.data, 20000, 1)
        for radius in radii:
            requests = [("GET /maps/api/place/nearbysearch/json?location=%.6f,%.6f"
                         "&radius=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                         % (lat, lng, radius)).encode() for lat, lng in pts]
            qps = [round_qps(port, requests, args.clients, args.seconds)
                   for _ in range(args.runs)]
            print("radius %5d m: %s queries/s; median %.0f" % (
                radius, " ".join("%.0f" % q for q in qps), statistics.median(qps)))
            sys.stdout.flush()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
