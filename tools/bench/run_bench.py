#!/usr/bin/python3
"""make bench: measure Herd beside Redis with bin/herd-bench and rewrite
the marked section of BENCHMARKS.md.

Every server is started here, on free loopback ports, in a temporary
directory, and killed by pid when the script ends, fails or is
interrupted.  Each figure is the median of RUNS runs; each run of a herd
figure is paired with a run of its Redis reference taken right next to
it, so a busy machine slows both.  Nothing here is a test: no figure can
fail the build, only a server that does not start can.

Environment: BENCH_RUNS (3), BENCH_TIME (3 s window), BENCH_WARMUP (1 s),
BENCH_OUT (BENCHMARKS.md), BENCH_SKIP (comma list of figure keys:
single16, single1, callgrind, herd5, converge_log, converge).
"""

import calendar
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "bin")
BENCH = os.path.join(BIN, "herd-bench")
NODE = os.path.join(BIN, "herd-node")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
VALGRIND = shutil.which("valgrind")

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WINDOW = float(os.environ.get("BENCH_TIME", "3"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "BENCHMARKS.md"))
SKIP = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

# SPEC.md's five nodes.
TOPOLOGY = {
    "Hill": ["Jaquez", "Smith"],
    "Jaquez": ["Hill", "Singleton"],
    "Smith": ["Hill", "Singleton", "Campbell"],
    "Singleton": ["Jaquez", "Smith", "Campbell"],
    "Campbell": ["Smith", "Singleton"],
}

# Every process this script started, so each can be killed by its pid.
PROCS = []


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# Ports handed out, so commands can be shown with PORT in their place.
PORTS_SEEN = set()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    PORTS_SEEN.add(str(port))
    return port


def start(args, cwd, name):
    errf = open(os.path.join(cwd, name + ".stderr"), "wb")
    p = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=errf, stderr=errf, start_new_session=True)
    errf.close()
    PROCS.append(p)
    return p


def stop(p, grace=10.0):
    """SIGTERM, wait, then SIGKILL: by pid, only our own child."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def kill_all():
    for p in list(PROCS):
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    PROCS.clear()


def wait_port(port, p, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError("%s exited with %s before listening"
                               % (p.args[0], p.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d after %gs" % (port, timeout))


def redis_start(tmp, port, wrap=()):
    d = os.path.join(tmp, "redis-%d" % port)
    os.makedirs(d, exist_ok=True)
    p = start(list(wrap) + [REDIS, "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", d,
                            "--daemonize", "no", "--loglevel", "warning"],
              d, "redis")
    wait_port(port, p, 60 if wrap else 30)
    return p


def write_ini(d, topology):
    """A herd.ini in d; places are google-legacy at a port where nothing
    listens, so a WHATSAT fails fast with the promised shape."""
    ports = {name: free_port() for name in topology}
    lines = ["[herd]", "log_dir = logs", "run_dir = run", "",
             "[places]", "provider = google-legacy",
             "url = http://127.0.0.1:%d" % free_port(),
             "key_env = HERD_BENCH_NO_KEY", "timeout_ms = 2000"]
    for name, nbrs in topology.items():
        lines += ["", "[node %s]" % name, "port = %d" % ports[name]]
        if nbrs:
            lines.append("neighbors = " + " ".join(nbrs))
    path = os.path.join(d, "herd.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, ports


def herd_start(tmp, topology, tag, wrap=()):
    d = os.path.join(tmp, tag)
    os.makedirs(d, exist_ok=True)
    ini, ports = write_ini(d, topology)
    procs = {}
    for name in topology:
        procs[name] = start(list(wrap) + [NODE, "-c", ini, name], d,
                            "node-" + name)
    for name in topology:
        wait_port(ports[name], procs[name], 60 if wrap else 30)
    return procs, ports, d


def request(port, line, timeout=2.0):
    """One request on a fresh connection; returns the reply's first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\n", 1)[0].decode(errors="replace")


def status(d, name):
    try:
        with open(os.path.join(d, "run", name + ".status")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_links(d, topology, procs, timeout=20.0):
    """Every node reports all its links up in run/NAME.status."""
    deadline = time.monotonic() + timeout
    while True:
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError("node %s exited (%s)" % (name,
                                                            p.returncode))
        st = [status(d, n) for n in topology]
        if all(x and x.get("links_up") == x.get("links_total") for x in st):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("links not all up after %gs" % timeout)
        time.sleep(0.05)


def crashed(procs):
    return sorted(n for n, p in procs.items() if p.poll() is not None)


def herd_agrees(ports, keys, prefix):
    """After a load run: every node holds the same AT line per client."""
    for k in keys:
        lines = {request(p, "WHATSAT %s%d 1 1" % (prefix, k))
                 for p in ports.values()}
        if len(lines) != 1:
            return False
    return True


def bench(args, timeout):
    cmd = [BENCH] + args + ["--json"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, text=True)
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd),
                                                   r.returncode,
                                                   r.stderr.strip()))
    res = json.loads(r.stdout)
    if r.returncode == 1:
        log("warning: %s: %d bad replies, %d connections lost"
            % (" ".join(cmd), res.get("bad", 0), res.get("conns_lost", 0)))
    return res


def shown(args, names=None):
    """A herd-bench command as a reader would type it: the ports the
    script picked become PORT, or the node's name when names maps them."""
    out = ["bin/herd-bench"]
    names = names or {}
    for a in args:
        if a in names:
            out.append(names[a])
        elif re.fullmatch(r"\d+", a) and a == args[-1] or a in PORTS_SEEN:
            out.append("PORT")
        else:
            out.append(a)
    return " ".join(out)


def load_args(c, d, ports, redis=False, extra=()):
    a = ["-c", str(c), "-d", str(d), "-w", str(WARMUP), "-t", str(WINDOW)]
    if redis:
        a.append("--redis")
    return a + list(extra) + [str(p) for p in ports]


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt_rps(v):
    return "{:,.0f}".format(v)


# ---- figures ---------------------------------------------------------------

def fig_single(tmp, depth):
    """One node without neighbours vs one Redis, same C and D, runs
    interleaved (Redis, node, Redis, node, ...)."""
    rport = free_port()
    redis = redis_start(tmp, rport)
    procs, ports, _ = herd_start(tmp, {"Hill": []}, "single-d%d" % depth)
    node_args = load_args(50, depth, [ports["Hill"]])
    redis_args = load_args(50, depth, [rport], redis=True)
    rows = []
    try:
        for i in range(RUNS):
            rr = bench(redis_args, WARMUP + WINDOW + 30)
            nr = bench(node_args, WARMUP + WINDOW + 30)
            rows.append((nr, rr))
            log("D=%d run %d: node %.0f/s, redis %.0f/s"
                % (depth, i + 1, nr["rps"], rr["rps"]))
    finally:
        for p in procs.values():
            stop(p)
        stop(redis)
    return {"node_cmd": shown(node_args), "redis_cmd": shown(redis_args),
            "rows": rows}


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError("no instruction total in " + path)


def fig_callgrind(tmp):
    """Instructions per request: the difference between a run of N_BIG and
    a run of N_SMALL requests, so start-up and shutdown cancel out."""
    n_small, n_big = 2000, 22000
    out = {"node": [], "redis": [], "n_small": n_small, "n_big": n_big}
    for rnd in range(RUNS):
        for kind in ("redis", "node"):
            totals = {}
            for n in (n_small, n_big):
                tag = "cg-%s-%d-%d" % (kind, rnd, n)
                d = os.path.join(tmp, tag)
                os.makedirs(d, exist_ok=True)
                cg_out = os.path.join(d, "callgrind.out")
                wrap = [VALGRIND, "--tool=callgrind", "--callgrind-out-file="
                        + cg_out]
                if kind == "redis":
                    port = free_port()
                    p = redis_start(d, port, wrap)
                    procs = [p]
                    args = ["-c", "50", "-d", "16", "-n", str(n), "--redis",
                            str(port)]
                else:
                    pm, ports, _ = herd_start(d, {"Hill": []}, "h", wrap)
                    procs = list(pm.values())
                    args = ["-c", "50", "-d", "16", "-n", str(n),
                            str(ports["Hill"])]
                try:
                    res = bench(args, 300)
                    if res["replies"] != n:
                        raise RuntimeError("callgrind run: %d replies of %d"
                                           % (res["replies"], n))
                finally:
                    for p in procs:
                        stop(p, grace=60)
                totals[n] = callgrind_total(cg_out)
                out[kind + "_cmd"] = shown(args[:-1] + ["PORT"])
            per = (totals[n_big] - totals[n_small]) / (n_big - n_small)
            out[kind].append(per)
            log("callgrind run %d %s: %.0f instructions per request"
                % (rnd + 1, kind, per))
    return out


def fig_herd5(tmp):
    rport = free_port()
    redis = redis_start(tmp, rport)
    procs, ports, d = herd_start(tmp, TOPOLOGY, "herd5")
    rows, agree, counts, dead = [], None, {}, []
    try:
        wait_links(d, TOPOLOGY, procs)
        plist = [ports[n] for n in TOPOLOGY]
        node_args = load_args(50, 16, plist, extra=["-k", "10000"])
        redis_args = load_args(50, 16, [rport], redis=True,
                               extra=["-k", "10000"])
        for i in range(RUNS):
            rr = bench(redis_args, WARMUP + WINDOW + 30)
            nr = bench(node_args, WARMUP + WINDOW + 30)
            rows.append((nr, rr))
            log("herd5 run %d: herd %.0f/s, redis %.0f/s"
                % (i + 1, nr["rps"], rr["rps"]))
        # Floods settle; then every node should know the same clients
        # (status files), and hold the same AT line for a sample of them.
        time.sleep(1.5)
        counts = {n: (status(d, n) or {}).get("clients") for n in TOPOLOGY}
        dead = crashed(procs)
        if not dead:
            try:
                agree = herd_agrees(ports, range(0, 10000, 500), "b")
            except OSError:
                agree = None
            dead = crashed(procs)
    finally:
        for p in procs.values():
            stop(p)
        stop(redis)
    return {"node_cmd": shown(node_args), "redis_cmd": shown(redis_args),
            "rows": rows, "agree": agree, "counts": counts, "dead": dead}


LOG_TS = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z"


def log_us(date, frac):
    t = time.strptime(date, "%Y-%m-%dT%H:%M:%S")
    return (calendar.timegm(t) * 1000000) + int(frac)


def log_times(d, prefix):
    """From the nodes' logs: when Hill wrote its reply to each sample's
    IAMAT, and when each other node applied that update (its "update from"
    line is written right after the update is stored and forwarded)."""
    reply, applied = {}, {}
    re_reply = re.compile(LOG_TS + r" Hill: client \d+ > AT \S+ \S+ ("
                          + re.escape(prefix) + r"\d+) ")
    re_update = re.compile(LOG_TS + r" (\S+): update from \S+: ("
                           + re.escape(prefix) + r"\d+)$")
    for fn in os.listdir(os.path.join(d, "logs")):
        with open(os.path.join(d, "logs", fn), errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                m = re_reply.match(line)
                if m:
                    reply[m.group(3)] = log_us(m.group(1), m.group(2))
                    continue
                m = re_update.match(line)
                if m:
                    applied.setdefault(m.group(4), {})[m.group(3)] = \
                        log_us(m.group(1), m.group(2))
    return reply, applied


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(1, int(-(-p * len(v) // 100)))
    return v[min(k, len(v)) - 1]


def fig_converge_log(tmp):
    """Convergence from the logs: herd-bench only sends the IAMATs."""
    names = [n for n in TOPOLOGY if n != "Hill"]
    runs = []
    for i in range(RUNS):
        procs, ports, d = herd_start(tmp, TOPOLOGY, "convlog-%d" % i)
        prefix = "cvlog-%d-%d-" % (os.getpid(), i)
        try:
            wait_links(d, TOPOLOGY, procs)
            args = ["converge", "--no-probe", "-n", "200", "-g", "5",
                    "--prefix", prefix, str(ports["Hill"])]
            bench(args, 120)
        finally:
            for p in procs.values():
                stop(p)             # SIGTERM: the logs are flushed at exit
        reply, applied = log_times(d, prefix)
        conv, per, missing = [], {n: [] for n in names}, 0
        for cid, t0 in reply.items():
            got = applied.get(cid, {})
            if any(n not in got for n in names):
                missing += 1
                continue
            for n in names:
                per[n].append(got[n] - t0)
            conv.append(max(got[n] - t0 for n in names))
        run = {"n": len(conv), "missing": missing,
               "p50": pct(conv, 50), "p90": pct(conv, 90),
               "p99": pct(conv, 99), "max": max(conv) if conv else
               float("nan"),
               "per": {n: (pct(per[n], 50), pct(per[n], 99)) for n in names}}
        runs.append(run)
        log("converge (logs) run %d: %d samples, p99 %.0f us, %d missing"
            % (i + 1, run["n"], run["p99"], missing))
    return {"cmd": shown(args, {str(ports["Hill"]): "HILL"}).replace(
                prefix, "PREFIX"), "runs": runs, "names": names}


def fig_converge(tmp):
    """Convergence seen from outside, by probing (see CONVERGENCE_METHOD)."""
    procs, ports, d = herd_start(tmp, TOPOLOGY, "converge")
    runs, dead = [], []
    names = [n for n in TOPOLOGY if n != "Hill"]
    pnames = {str(ports[n]): n.upper() for n in TOPOLOGY}
    try:
        wait_links(d, TOPOLOGY, procs)
        args = ["converge", "-n", "200", "-g", "5",
                str(ports["Hill"])] + [str(ports[n]) for n in names]
        for i in range(RUNS):
            try:
                r = bench(args, 120)
            except RuntimeError:
                dead = crashed(procs)
                if dead:
                    raise RuntimeError("node(s) died under the probes: %s"
                                       % ", ".join(dead))
                raise
            runs.append(r)
            log("converge run %d: upper p99 %.0f us"
                % (i + 1, r["upper_us"]["p99"]))
    finally:
        for p in procs.values():
            stop(p)
    return {"cmd": shown(args, pnames), "runs": runs, "names": names}


# ---- report ----------------------------------------------------------------

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rv = subprocess.run([REDIS, "--version"], stdout=subprocess.PIPE,
                            text=True, timeout=10).stdout.split()
        rv = next((w for w in rv if w.startswith("v=")), "v=?")[2:]
    except (OSError, subprocess.SubprocessError):
        rv = "?"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "redis": rv, "load": load, "git": git,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def pair_table(fig, target):
    rows = fig["rows"]
    nr = med([r[0]["rps"] for r in rows])
    rr = med([r[1]["rps"] for r in rows])
    ratios = [r[0]["rps"] / r[1]["rps"] for r in rows if r[1]["rps"]]
    lines = [
        "| | requests/s (median) | p50 us | p99 us | max us | runs (requests/s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, idx, m in (("Herd", 0, nr), ("Redis SET", 1, rr)):
        lines.append("| %s | %s | %.0f | %.0f | %.0f | %s |" % (
            label, fmt_rps(m),
            med([r[idx]["latency_us"]["p50"] for r in rows]),
            med([r[idx]["latency_us"]["p99"] for r in rows]),
            med([r[idx]["latency_us"]["max"] for r in rows]),
            ", ".join(fmt_rps(r[idx]["rps"]) for r in rows)))
    ratio = nr / rr if rr else float("nan")
    bad = sum(r[0]["bad"] + r[0]["conns_lost"] for r in rows)
    lines += ["",
              "Ratio (median Herd / median Redis): **%.2fx** (target %s); "
              "per pair: %s.  Error replies or lost connections in the "
              "Herd runs: %d." % (ratio, target,
                                  ", ".join("%.2f" % x for x in ratios), bad),
              "",
              "    " + fig["node_cmd"],
              "    " + fig["redis_cmd"]]
    return lines


def report(m, figs, failures):
    L = [BEGIN, "",
         "## Herd beside Redis (written by `make bench`)",
         "",
         "Produced by `make bench` (tools/bench/run_bench.py) on %s at "
         "commit %s.  Machine: %s CPUs, %s, Linux %s; Redis %s.  Load "
         "average when the run began: %s." % (m["date"], m["git"], m["nproc"],
                                              m["cpu"], m["kernel"],
                                              m["redis"], m["load"]),
         "",
         "**A shared machine:** other engineers were building and testing on "
         "the same %s CPUs, so absolute numbers move from run to run.  Each "
         "Herd run is paired with a Redis run taken right beside it, and "
         "the ratios compare medians of the same session; read the ratios, "
         "not the absolute numbers." % m["nproc"],
         "",
         "Method: every server is started by the script on a free loopback "
         "port (Redis with `--save '' --appendonly no`; nodes with a "
         "temporary herd.ini whose places provider is `google-legacy` at "
         "an url where nothing listens).  `herd-bench` is one process on "
         "one libev loop; latency is from the write of a request to the "
         "arrival of its whole reply, in a log-bucket histogram (1.6%% "
         "resolution).  Each figure is the median of %d runs of %g s after "
         "%g s of warm-up; PORT stands for the port the script picked.  "
         "Requests: `IAMAT bN +34.068930-118.445127 SECS.NANOS` over "
         "100,000 ids (10,000 for the herd), each with a client time later "
         "than the last, so every one is stored and flooded; the Redis "
         "reference is `SET bN +34.068930-118.445127@SECS.NANOS`, the same "
         "key and payload." % (RUNS, WINDOW, WARMUP),
         ""]
    f = figs.get("single16")
    if f:
        L += ["### One node, no neighbours: IAMAT vs Redis SET, C=50 D=16",
              ""] + pair_table(f, ">= 1.0x") + [""]
    f = figs.get("single1")
    if f:
        L += ["### One node, no neighbours: IAMAT vs Redis SET, C=50 D=1",
              ""] + pair_table(f, ">= 0.95x") + [""]
    f = figs.get("callgrind")
    if f:
        nm, rm = med(f["node"]), med(f["redis"])
        L += ["### User-space instructions per request (callgrind)", "",
              "Each server runs under `valgrind --tool=callgrind`; one run "
              "sends %d requests and another %d (C=50 D=16), and the "
              "difference of the two instruction totals divided by %d is "
              "the cost of one request, so start-up and shutdown cancel "
              "out.  Callgrind counts user-space instructions only (the "
              "kernel's share of each read and write is not in it); work "
              "done by timers (Redis's serverCron, the node's tick) in the "
              "longer run is counted too.  The node logs every request and "
              "reply, and that is part of its cost."
              % (f["n_small"], f["n_big"], f["n_big"] - f["n_small"]), "",
              "| | instructions per request (median) | runs |",
              "|---|---|---|",
              "| Herd IAMAT | %s | %s |" % (fmt_rps(nm), ", ".join(
                  fmt_rps(x) for x in f["node"])),
              "| Redis SET | %s | %s |" % (fmt_rps(rm), ", ".join(
                  fmt_rps(x) for x in f["redis"])),
              "",
              "Ratio: **%.2fx** (target <= 1.0x)." % (nm / rm if rm else
                                                     float("nan")),
              "",
              "    valgrind --tool=callgrind bin/herd-node -c herd.ini Hill",
              "    " + f.get("node_cmd", ""),
              "    valgrind --tool=callgrind redis-server --port PORT "
              "--save '' --appendonly no",
              "    " + f.get("redis_cmd", ""), ""]
    f = figs.get("herd5")
    if f:
        L += ["### Five-node herd, IAMAT spread over all nodes, vs one Redis "
              "SET, C=50 D=16", "",
              "The 50 connections go round-robin to the five nodes of "
              "SPEC.md's topology; every update is newer than what the herd "
              "holds, so each node floods it on.  After the runs, clients "
              "known per node (run/NAME.status): %s; every node answered "
              "the same AT line for a sample of 20 ids: **%s**.%s"
              % (", ".join("%s %s" % kv for kv in f["counts"].items()),
                 {True: "yes", False: "NO", None: "not checked"}[f["agree"]],
                 (" Nodes that died during the figure, after the load, "
                  "under the WHATSAT check: %s." % ", ".join(f["dead"])) if f["dead"]
                 else ""), ""] + \
            pair_table(f, ">= 0.25x") + [""]
    f = figs.get("converge_log")
    if f:
        runs = f["runs"]
        L += ["### Flood convergence, idle, from the nodes' logs", "",
              "Origin Hill.  herd-bench sends one IAMAT for a fresh id every "
              "5 ms (200 per run) and nothing else; afterwards the script "
              "reads, for each id, the time Hill logged its reply (`client N "
              "> AT ...`) and the time each other node logged `update from "
              "PEER: ID`, which the node writes right after it has stored "
              "and forwarded the update.  Every node stamps its lines with "
              "the same machine's clock (microseconds).  Singleton and "
              "Campbell are two hops from Hill, so a sample's convergence "
              "(its slowest node) is the two-hop figure.", "",
              "| | p50 us | p90 us | p99 us | max us |",
              "|---|---|---|---|---|",
              "| all four nodes applied | %.0f | %.0f | %.0f | %.0f |" % (
                  med([r["p50"] for r in runs]), med([r["p90"] for r in runs]),
                  med([r["p99"] for r in runs]), med([r["max"] for r in runs]))]
        for n in f["names"]:
            L.append("| %s applied | %.0f | | %.0f | |" % (
                n, med([r["per"][n][0] for r in runs]),
                med([r["per"][n][1] for r in runs])))
        L += ["",
              "Two-hop convergence p99 (median of %d runs): **%.0f us** "
              "(target <= 1000 us); p99 of each run: %s; samples per run: "
              "%s; samples some node never logged: %s." % (
                  len(runs), med([r["p99"] for r in runs]),
                  ", ".join("%.0f" % r["p99"] for r in runs),
                  ", ".join(str(r["n"]) for r in runs),
                  ", ".join(str(r["missing"]) for r in runs)),
              "",
              "    " + f["cmd"], ""]
    f = figs.get("converge")
    if f:
        runs = f["runs"]
        L += ["### Flood convergence, idle (two hops at most)", "",
              "Origin Hill; the others are probed.  Singleton and Campbell "
              "are two hops from Hill, so a sample's convergence (the "
              "slowest node) is a two-hop figure.  200 samples per run, 5 ms "
              "apart.  See *How convergence is observed* below for the "
              "bounds.", "",
              "| | p50 us | p90 us | p99 us | max us |",
              "|---|---|---|---|---|"]
        for key, label in (("upper_us", "convergence, upper bound"),
                           ("lower_us", "convergence, lower bound"),
                           ("origin_rtt_us", "IAMAT round trip at Hill")):
            L.append("| %s | %.0f | %.0f | %.0f | %.0f |" % (
                label, med([r[key]["p50"] for r in runs]),
                med([r[key]["p90"] for r in runs]),
                med([r[key]["p99"] for r in runs]),
                med([r[key]["max"] for r in runs])))
        for name in f["names"]:
            vals = []
            for r in runs:
                per = r["per_target_upper_us"]
                key = list(per)[f["names"].index(name)]
                vals.append(per[key])
            L.append("| %s, upper bound | %.0f | | %.0f | %.0f |" % (
                name, med([v["p50"] for v in vals]),
                med([v["p99"] for v in vals]),
                med([v["max"] for v in vals])))
        L += ["",
              "Two-hop convergence p99 (upper bound, median of %d runs): "
              "**%.0f us** (target <= 1000 us); p99 of each run: %s." % (
                  len(runs), med([r["upper_us"]["p99"] for r in runs]),
                  ", ".join("%.0f" % r["upper_us"]["p99"] for r in runs)),
              "",
              "    " + f["cmd"], ""]
    missing = [k for k in ("single16", "single1", "callgrind", "herd5",
                           "converge_log", "converge") if k not in figs]
    for key, why in failures.items():
        L += ["Figure `%s` failed in this run: %s" % (key, why), ""]
    missing = [k for k in missing if k not in failures]
    if missing:
        L += ["Not measured in this run: %s%s." % (
            ", ".join(missing),
            "" if os.path.exists(NODE) else " (bin/herd-node was missing)"),
            ""]
    L += CONVERGENCE_METHOD + [END]
    return "\n".join(L) + "\n"


CONVERGENCE_METHOD = [
    "### How convergence is observed", "",
    "Two independent methods; each has its own table above.", "",
    "**From the nodes' logs** (`herd-bench converge --no-probe`).  "
    "herd-bench only sends the IAMATs, one at a time, each for a client id "
    "never used before, so nothing else loads the herd.  Hill logs `client "
    "N > AT ...` when it queues the reply; every other node logs `update "
    "from PEER: ID` right after node_apply_update() has stored the update "
    "and queued it to its own neighbours (node/link.c), and only when the "
    "update was new to it.  All nodes run on one machine and stamp lines "
    "from the same realtime clock in microseconds; log buffering delays "
    "the write of a line, not its stamp.  So the difference of the two "
    "stamps is the time from the reply to the update being applied, "
    "overstated only by the forwarding work done before the line is "
    "stamped.  This relies on the node's log format, which the script "
    "parses.",
    "",
    "**From outside, by probing** (`herd-bench converge ORIGIN TARGET...`).  "
    "herd-bench sends the IAMAT for a fresh id to ORIGIN and notes when its "
    "reply arrives (t0).  From t0 on, each other node gets `WHATSAT <id> 1 "
    "1`, one probe in flight per node, the next sent the moment a reply "
    "comes back, until the node answers with an AT line instead of `? `.  "
    "Why this is sound:",
    "",
    "- The id is fresh, so a node answers `? ` (unknown client, SPEC.md) "
    "exactly until it has applied the update, and then the stored AT line; "
    "herd-bench also checks that line carries the sample's id and client "
    "time.  There is no other state the answer could come from.",
    "- The node reads its store when it reads the WHATSAT line (node/"
    "client.c copies the stored AT line before it asks for places).  So "
    "a `? ` answer proves the update was not applied when that probe was "
    "sent, and an AT answer proves it was applied before that AT line "
    "arrived.  For each node the apply time is therefore inside "
    "(last `? ` probe sent, first AT line received], and both ends are "
    "reported as lower and upper bounds; the target is read against the "
    "upper bound, which can only overstate.",
    "- The AT line arrives only after the places fetch has failed; places "
    "fail fast (an url on a loopback port where nothing listens: the "
    "connect is refused at once), and whatever that delay is, it inflates "
    "the upper bound only.",
    "- One clock (CLOCK_MONOTONIC of the herd-bench process) times "
    "everything; no clocks of different processes are compared.",
    "- The probes are load: four tight request loops on a machine with "
    "few CPUs take CPU time from the nodes they watch, so this method "
    "overstates more than the log method does.  The 5 ms gap between "
    "samples lets every flood finish before the next sample starts.",
    "",
    "Both methods need no change to the client protocol.  On a machine "
    "with two CPUs shared by five nodes, herd-bench and other people's "
    "work, the tails (p99, max) are dominated by which process the "
    "scheduler runs next, not by the herd's own work; the p50s show the "
    "path itself.",
    "",
]


def write_section(text):
    old = ""
    if os.path.exists(OUT):
        with open(OUT) as f:
            old = f.read()
    if BEGIN in old and END in old:
        head = old[:old.index(BEGIN)]
        tail = old[old.index(END) + len(END):]
        if tail.startswith("\n"):
            tail = tail[1:]
        new = head + text + tail
    elif old:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        new = "# Benchmarks\n\n" + text
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.rename(tmp, OUT)


def main():
    for path in (BENCH, REDIS):
        if not os.access(path, os.X_OK):
            log("fatal: %s is missing (run make first)" % path)
            return 111
    have_node = os.access(NODE, os.X_OK)
    if not have_node:
        log("warning: %s is missing; only the instrument is checked" % NODE)

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    tmp = tempfile.mkdtemp(prefix="herd-bench-")
    m = machine()
    figs, failures = {}, {}
    plan = [("single16", lambda: fig_single(tmp, 16)),
            ("single1", lambda: fig_single(tmp, 1)),
            ("callgrind", lambda: fig_callgrind(tmp)),
            ("herd5", lambda: fig_herd5(tmp)),
            ("converge_log", lambda: fig_converge_log(tmp)),
            ("converge", lambda: fig_converge(tmp))]
    rc = 0
    try:
        for key, fn in plan:
            if key in SKIP or not have_node:
                continue
            if key == "callgrind" and not VALGRIND:
                log("warning: valgrind missing; callgrind figure skipped")
                continue
            log("figure %s" % key)
            try:
                figs[key] = fn()
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                log("figure %s failed: %s" % (key, e))
                failures[key] = str(e).replace(tmp, "TMP")
                rc = 1
            finally:
                kill_all()
        if figs:
            write_section(report(m, figs, failures))
            log("wrote %s" % OUT)
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
