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
single16, single1, callgrind, herd5, converge_log, converge, halfload,
memory, relearn, mesh, whatsat, whatsat_cg, emulator, catchup, tls), BENCH_ONLY (the
same, to run only those), BENCH_BIN (the bin/ to measure).  The WHATSAT
figures (whatsat, whatsat_cg, emulator) have their own section of
BENCHMARKS.md; a section is rewritten only when one of its figures ran.  The
catchup and tls figures have their own sections too (bench:catchup and
bench:tls markers).
"""

import calendar
import json
import os
import platform
import random
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
# BENCH_BIN: another build's bin/ (the "before" figures of issue 13 ran
# the binaries of 208f14b this way).
BIN = os.environ.get("BENCH_BIN", os.path.join(REPO, "bin"))
BENCH = os.path.join(BIN, "herd-bench")
NODE = os.path.join(BIN, "herd-node")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
VALGRIND = shutil.which("valgrind")

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WINDOW = float(os.environ.get("BENCH_TIME", "3"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "BENCHMARKS.md"))
SKIP = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
W_BEGIN = "<!-- bench:whatsat:begin -->"
W_END = "<!-- bench:whatsat:end -->"
CU_BEGIN = "<!-- bench:catchup:begin -->"
CU_END = "<!-- bench:catchup:end -->"
TLS_BEGIN = "<!-- bench:tls:begin -->"
TLS_END = "<!-- bench:tls:end -->"
CU_N = int(os.environ.get("BENCH_CATCHUP_N", "1000000"))

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


def write_ini(d, topology, herd=(), places=None, http_off=True):
    """A herd.ini in d; places are google-legacy at a port where nothing
    listens, so a WHATSAT fails fast with the promised shape, unless
    places (the [places] lines) says otherwise.  herd: more [herd] lines."""
    ports = {name: free_port() for name in topology}
    if places is None:
        places = ["provider = google-legacy",
                  "url = http://127.0.0.1:%d" % free_port(),
                  "key_env = HERD_BENCH_NO_KEY", "timeout_ms = 2000"]
    # http = off: the default port 12900 belongs to a herd a person runs.
    lines = ["[herd]", "log_dir = logs", "run_dir = run"] + \
        (["http = off"] if http_off else []) + \
        list(herd) + \
        ["", "[places]"] + list(places)
    for name, nbrs in topology.items():
        lines += ["", "[node %s]" % name, "port = %d" % ports[name]]
        if nbrs:
            lines.append("neighbors = " + " ".join(nbrs))
    path = os.path.join(d, "herd.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, ports


def herd_start(tmp, topology, tag, wrap=(), herd=(), places=None,
               only=None, node=None):
    """Write a herd.ini for topology and start its nodes (or those named
    in only), of the binary node (default bin/herd-node).  Returns
    ({name: Popen}, {name: port}, directory)."""
    d = os.path.join(tmp, tag)
    os.makedirs(d, exist_ok=True)
    # An older node (node=) may not know http = off; only the supervisor
    # reads it, and none runs here.
    ini, ports = write_ini(d, topology, herd, places, http_off=node is None)
    procs = {}
    for name in topology if only is None else only:
        procs[name] = start(list(wrap) + [node or NODE, "-c", ini, name], d,
                            "node-" + name)
    for name in procs:
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


def log_times(d, prefix, origin="Hill"):
    """From the nodes' logs: when the origin wrote its reply to each
    sample's IAMAT, and when each other node applied that update (its
    "update from" line is written right after the update is stored and
    forwarded)."""
    reply, applied = {}, {}
    re_reply = re.compile(LOG_TS + " " + re.escape(origin)
                          + r": client \d+ > AT \S+ \S+ ("
                          + re.escape(prefix) + r"\d+) ")
    re_update = re.compile(LOG_TS + r" (\S+): update from \S+: ("
                           + re.escape(prefix) + r"\d+)$")
    for fn in os.listdir(os.path.join(d, "logs")):
        with open(os.path.join(d, "logs", fn), errors="replace") as f:
            for line in f:
                if prefix not in line:
                    continue        # most lines, under load
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


def conv_summary(reply, applied, names):
    """Per sample: the slowest of names to log the update after the
    origin's reply (microseconds); percentiles over the samples."""
    conv, per, missing = [], {n: [] for n in names}, 0
    for cid, t0 in reply.items():
        got = applied.get(cid, {})
        if any(n not in got for n in names):
            missing += 1
            continue
        for n in names:
            per[n].append(got[n] - t0)
        conv.append(max(got[n] - t0 for n in names))
    return {"n": len(conv), "missing": missing,
            "p50": pct(conv, 50), "p90": pct(conv, 90),
            "p99": pct(conv, 99),
            "max": max(conv) if conv else float("nan"),
            "per": {n: (pct(per[n], 50), pct(per[n], 99)) for n in names}}


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
        run = conv_summary(reply, applied, names)
        runs.append(run)
        log("converge (logs) run %d: %d samples, p99 %.0f us, %d missing"
            % (i + 1, run["n"], run["p99"], run["missing"]))
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



def bench_bg(args):
    """herd-bench in the background, its JSON on a pipe; in PROCS, so it
    is killed by pid if anything fails."""
    p = subprocess.Popen([BENCH] + args + ["--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         text=True, start_new_session=True)
    PROCS.append(p)
    return p


def bench_bg_result(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        if p in PROCS:
            PROCS.remove(p)
    if p.returncode not in (0, 1) or not out.strip():
        raise RuntimeError("%s failed (%s): %s" % (" ".join(p.args),
                                                   p.returncode, err.strip()))
    return json.loads(out)


def stop_all(procs, grace=10.0):
    """SIGTERM to each (by pid), then wait for each, SIGKILL if needed."""
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        stop(p, grace)


def settle(d, names, want_clients, timeout=30.0):
    """Wait until every node's status file shows want_clients records and
    the summed counters did not move between two status rewrites (the
    files are rewritten every second).  Returns {name: status}."""
    deadline = time.monotonic() + timeout
    prev = None
    while True:
        sts = {n: status(d, n) for n in names}
        if all(sts.values()) and all(x["clients"] == want_clients
                                     for x in sts.values()):
            key = tuple(sum(x[k] for x in sts.values()) for k in
                        ("applied", "flood_sent", "flood_received",
                         "catchup_sent"))
            if key == prev:
                return sts
            prev = key
            time.sleep(1.2)
            continue
        prev = None
        if time.monotonic() > deadline:
            held = sorted(set(x["clients"] if x else None
                              for x in sts.values()), key=str)
            raise RuntimeError("not settled after %gs: want %d clients on "
                               "every node, seen %s" % (timeout, want_clients,
                                                        held))
        time.sleep(0.1)


def cpu_times():
    """(idle + iowait, total) jiffies of the whole machine, /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v[:8])


HALF_LEVELS = (0.5, 0.25)      # shares of the maximum IAMAT rate


def fig_halfload(tmp, figs):
    """Two-hop convergence while the herd carries a share of its maximum
    IAMAT rate (the five-node herd figure of this run is the maximum): a
    paced herd-bench load runs in the background from before the samples
    start until they are done (then SIGTERM ends its window)."""
    names = [n for n in TOPOLOGY if n != "Hill"]
    full, src = None, None
    if figs.get("herd5"):
        full = med([r[0]["rps"] for r in figs["herd5"]["rows"]])
        src = "herd5"
    levels = []
    for share in HALF_LEVELS:
        probe_runs, log_runs, loads = [], [], []
        for i in range(RUNS):
            tag = "load%02d-%d" % (share * 100, i)
            procs, ports, d = herd_start(tmp, TOPOLOGY, tag)
            prefix = "%s-%d-" % (tag, os.getpid())
            pnames = {str(ports[n]): n.upper() for n in TOPOLOGY}
            try:
                wait_links(d, TOPOLOGY, procs)
                plist = [str(ports[n]) for n in TOPOLOGY]
                if full is None:
                    full = bench(load_args(50, 16, plist,
                                           extra=["-k", "10000"]),
                                 WARMUP + WINDOW + 30)["rps"]
                    src = "measured in this figure"
                rate = "%.0f" % (full * share)
                load_a = ["-c", "50", "-d", "16", "-w", "1", "-t", "120",
                          "-k", "10000", "--rate", rate] + plist
                conv_a = ["converge", "-n", "200", "-g", "5",
                          str(ports["Hill"])] + [str(ports[n]) for n in names]
                log_a = ["converge", "--no-probe", "-n", "200", "-g", "5",
                         "--prefix", prefix, str(ports["Hill"])]
                for kind, args in (("probe", conv_a), ("log", log_a)):
                    lp = bench_bg(load_a)
                    time.sleep(1.3)         # past the load's 1 s warm-up
                    cpu0 = cpu_times()
                    try:
                        cr = bench(args, 120)
                    finally:
                        lp.send_signal(signal.SIGTERM)  # ends its window
                    cpu1 = cpu_times()
                    lr = bench_bg_result(lp, 30)
                    lr["kind"] = kind
                    lr["busy"] = 1 - (cpu1[0] - cpu0[0]) / max(
                        1, cpu1[1] - cpu0[1])
                    loads.append(lr)
                    if kind == "probe":
                        probe_runs.append(cr)
                    log("load %g run %d %s: load %.0f/s (skipped %d), "
                        "%.1f s, CPUs %.0f%% busy" % (
                            share, i + 1, kind, lr["rps"], lr["skipped"],
                            lr["elapsed_s"], 100 * lr["busy"]))
                dead = crashed(procs)
                if dead:
                    raise RuntimeError("node(s) died under load: %s"
                                       % ", ".join(dead))
                time.sleep(1.0)     # the last samples' floods land
            finally:
                stop_all(procs.values())     # SIGTERM: the logs are flushed
            reply, applied = log_times(d, prefix)
            run = conv_summary(reply, applied, names)
            log_runs.append(run)
            log("load %g run %d: probe upper p99 %.0f us, logs p99 %.0f us"
                % (share, i + 1, probe_runs[-1]["upper_us"]["p99"],
                   run["p99"]))
        levels.append({
            "share": share, "rate": float(rate),
            "load_cmd": shown(load_a), "conv_cmd": shown(conv_a, pnames),
            "log_cmd": shown(log_a, pnames).replace(prefix, "PREFIX"),
            "probe": probe_runs, "logs": log_runs, "loads": loads})
    return {"full": full, "src": src, "levels": levels, "names": names}


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


MEM_N = 1000000


def fig_memory(tmp):
    """VmRSS of one node before and after MEM_N distinct client ids."""
    warm = 20000
    idlen = sum(len("m%d" % k) for k in range(MEM_N)) / MEM_N
    runs = []
    for i in range(RUNS):
        procs, ports, d = herd_start(tmp, {"Mem": []}, "mem-%d" % i,
                                     herd=["data_dir = data", "fsync = no"])
        p, port = procs["Mem"], str(ports["Mem"])
        try:
            # The same connections first, so their buffers and malloc's
            # arenas are in "before" as well.
            bench(["-c", "50", "-d", "16", "-n", str(warm), "-k", str(warm),
                   "--seq", "--prefix", "w", port], 120)
            time.sleep(1.5)
            before = proc_kb(p.pid, "VmRSS")
            args = ["-c", "50", "-d", "16", "-n", str(MEM_N), "-k",
                    str(MEM_N), "--seq", "--prefix", "m", port]
            r = bench(args, 600)
            settle(d, ["Mem"], warm + MEM_N, 30)
            after = proc_kb(p.pid, "VmRSS")
            hwm = proc_kb(p.pid, "VmHWM")
        finally:
            stop(p)
        per = (after - before) * 1024.0 / MEM_N
        runs.append({"before": before, "after": after, "hwm": hwm,
                     "per": per, "beyond": per - idlen, "rps": r["rps"]})
        log("memory run %d: %d kB -> %d kB, %.1f bytes per record, %.1f "
            "beyond the id" % (i + 1, before, after, per, per - idlen))
    return {"runs": runs, "idlen": idlen, "warm": warm,
            "cmd": shown(args)}


def proc_cpu_s(pid):
    """User + system CPU seconds of one process (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def log_line_us(line):
    m = re.match(LOG_TS, line)
    return log_us(m.group(1), m.group(2)) if m else None


def fig_relearn(tmp):
    """A node with an empty data_dir re-learns MEM_N clients from its one
    neighbour.  "Empty" sorts before "Full", so the restarted node dials
    at once (no reconnect backoff of the other side is timed)."""
    topo = {"Empty": ["Full"], "Full": []}
    procs, ports, d = herd_start(tmp, topo, "relearn",
                                 herd=["data_dir = data"], only=["Full"])
    ini = os.path.join(d, "herd.ini")
    runs = []
    try:
        fill = ["-c", "50", "-d", "16", "-n", str(MEM_N), "-k", str(MEM_N),
                "--seq", "--prefix", "r", str(ports["Full"])]
        bench(fill, 600)
        settle(d, ["Full"], MEM_N, 30)
        logpath = os.path.join(d, "logs", "Empty.log")
        for i in range(RUNS):
            for fn in os.listdir(os.path.join(d, "data")):
                if fn.startswith("Empty."):
                    os.remove(os.path.join(d, "data", fn))
            offset = os.path.getsize(logpath) if os.path.exists(logpath) \
                else 0
            t0 = time.time()
            e = start([NODE, "-c", ini, "Empty"], d, "node-Empty-%d" % i)
            t_status, found = None, {}
            deadline = time.monotonic() + 60
            try:
                while "catchup" not in found or t_status is None:
                    if e.poll() is not None:
                        raise RuntimeError("Empty exited (%s)" % e.returncode)
                    if time.monotonic() > deadline:
                        raise RuntimeError("Empty did not hold %d clients "
                                           "within 60 s" % MEM_N)
                    st = status(d, "Empty")
                    if t_status is None and st and st.get("pid") == e.pid \
                            and st.get("clients", 0) >= MEM_N:
                        t_status = time.time()
                    if os.path.exists(logpath):
                        with open(logpath, errors="replace") as f:
                            f.seek(offset)
                            for line in f:
                                if "Empty: journal: loaded" in line:
                                    found.setdefault("loaded", line)
                                elif "Empty: link up: Full" in line:
                                    found.setdefault("up", line)
                                elif "Empty: catch-up from Full:" in line:
                                    found.setdefault("catchup", line)
                    time.sleep(0.02)
            finally:
                e.kill()                # kill -9: the next run restarts it
                e.wait(timeout=10)
                PROCS.remove(e)
            m = re.search(r"received (\d+) records, (\d+) newer",
                          found["catchup"])
            t_cu = log_line_us(found["catchup"]) / 1e6
            run = {"log_s": t_cu - t0, "status_s": t_status - t0,
                   "received": int(m.group(1)), "newer": int(m.group(2)),
                   "up_s": (log_line_us(found["up"]) / 1e6 - t0)
                   if "up" in found else float("nan"),
                   "catchup_s": t_cu - log_line_us(found["up"]) / 1e6
                   if "up" in found else float("nan")}
            runs.append(run)
            log("relearn run %d: %.3f s (log), %.3f s (status); %d received"
                % (i + 1, run["log_s"], run["status_s"], run["received"]))
    finally:
        stop_all(procs.values())
    return {"runs": runs, "fill_cmd": shown(fill)}


def fig_catchup(tmp):
    """Two nodes holding CU_N clients each (written straight into their
    snapshots), A reaching B through a proxy that can cut the link.  In
    one run: the first link-up (a new peer: the full walk, which is what
    every link-up did before the incremental catch-up), then three times
    a cut while 1,000 updates are written on each side, then a heal (the
    incremental catch-up), then the same with B killed -9 and restarted
    while cut.  Time: from the receiver's "link up" log line to its
    "catch-up from" line; records and bytes from the status files."""
    sys.path.insert(0, os.path.join(REPO, "tests", "blackbox"))
    from linklab import Proxy, write_snapshot
    d = os.path.join(tmp, "catchup")
    os.makedirs(os.path.join(d, "data"))
    pa, pb = free_port(), free_port()
    proxy = Proxy(pb)
    topo = {"A": ["B"], "B": []}
    herd = ["data_dir = data", "fsync = everysec"]

    def ini(name, bport):
        lines = ["[herd]", "log_dir = logs", "run_dir = run"] + herd + \
            ["", "[places]", "provider = google-legacy",
             "url = http://127.0.0.1:%d" % free_port(),
             "key_env = HERD_BENCH_NO_KEY"]
        for n, p in (("A", pa), ("B", bport)):
            lines += ["", "[node %s]" % n, "port = %d" % p]
            if topo[n]:
                lines.append("neighbors = " + " ".join(topo[n]))
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path
    inis = {"A": ini("herd-a.ini", proxy.port), "B": ini("herd.ini", pb)}
    ports = {"A": pa, "B": pb}
    t0 = time.monotonic()
    lines = ["AT A +0.000000000 c%07d +10.000000+020.000000 "
             "1700000000.000000000" % i for i in range(CU_N)]
    for n in ("A", "B"):
        write_snapshot(os.path.join(d, "data", n + ".snapshot"), lines)
    del lines
    log("catchup: %d-client snapshots written in %.1f s"
        % (CU_N, time.monotonic() - t0))
    procs = {}

    def start_node(n):
        procs[n] = start([NODE, "-c", inis[n], n], d, "node-" + n)
        wait_port(ports[n], procs[n], 120)

    def link(n):
        st = status(d, n)
        return st["links"][0] if st and st.get("links") else None

    def log_offsets():
        out = {}
        for n in ("A", "B"):
            path = os.path.join(d, "logs", n + ".log")
            out[n] = os.path.getsize(path) if os.path.exists(path) else 0
        return out

    def sent_count(n):
        lk = link(n)
        return lk["catchup"]["incremental"] + lk["catchup"]["full"] \
            if lk else 0

    def done(before, counts, timeout=300):
        """Wait for both catch-ups after the log offsets in before, and
        for each sender's status to count one more than counts; the
        figures of what each side received (res[n]: sent by the peer)."""
        deadline = time.monotonic() + timeout
        res = {}
        while len(res) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("catch-up not done in %d s" % timeout)
            for n, peer in (("A", "B"), ("B", "A")):
                if n in res:
                    continue
                with open(os.path.join(d, "logs", n + ".log"),
                          errors="replace") as f:
                    f.seek(before[n])
                    text = f.read()
                up = re.search(r"^(\S+) %s: link up: %s" % (n, peer), text,
                               re.M)
                cu = re.search(r"^(\S+) %s: catch-up from %s: received "
                               r"(\d+) records" % (n, peer), text, re.M)
                if not up or not cu:
                    continue
                lk = link(peer)
                if not lk or lk["catchup"]["sending"] or \
                        sent_count(peer) <= counts[peer]:
                    continue
                res[n] = {"s": (log_line_us(cu.group(1)) -
                                log_line_us(up.group(1))) / 1e6,
                          "records": lk["catchup"]["sent_records"],
                          "bytes": lk["catchup"]["sent_bytes"],
                          "mode": lk["catchup"]["mode"]}
            time.sleep(0.05)
        return res

    def write(n, sec):
        ids = ["c%07d" % (i + (0 if n == "A" else 500)) for i in range(1000)]
        with socket.create_connection(("127.0.0.1", ports[n]), 30) as c:
            c.sendall("".join("IAMAT %s +11.0+21.0 %d.%09d\n" % (cid, sec, k)
                              for k, cid in enumerate(ids)).encode())
            got = b""
            while got.count(b"\n") < len(ids):
                chunk = c.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("node %s closed the connection" % n)
                got += chunk

    def cut():
        proxy.cut()
        deadline = time.monotonic() + 30
        while (link("A") or {}).get("state") == "up" or \
                (link("B") or {}).get("state") == "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the link stayed up after the cut")
            time.sleep(0.05)

    runs = {"full": [], "flap": [], "kill9": []}
    try:
        before = log_offsets()
        start_node("B")
        start_node("A")
        runs["full"].append(done(before, {"A": 0, "B": 0}))
        log("catchup: first link-up (full walk) %r" % runs["full"][-1])
        for i in range(RUNS):
            cut()
            write("A", 1750000000 + 10 * i)
            write("B", 1750000001 + 10 * i)
            time.sleep(0.2)
            before = log_offsets()
            counts = {n: sent_count(n) for n in ("A", "B")}
            proxy.heal()
            runs["flap"].append(done(before, counts))
            log("catchup: flap %d %r" % (i + 1, runs["flap"][-1]))
        cut()
        write("A", 1750000500)
        write("B", 1750000501)
        time.sleep(1.2)         # everysec: the writes reach B's disk
        procs["B"].kill()
        procs["B"].wait(timeout=30)
        PROCS.remove(procs["B"])
        before = log_offsets()
        counts = {"A": sent_count("A"), "B": 0}
        start_node("B")
        proxy.heal()
        runs["kill9"].append(done(before, counts))
        log("catchup: kill -9 %r" % runs["kill9"][-1])
        rss = {n: proc_kb(procs[n].pid, "VmRSS") for n in procs}
    finally:
        proxy.close()
        stop_all(procs.values())
    return {"runs": runs, "n": CU_N, "rss_kb": rss}


def report_catchup(m, f):
    def row(label, r):
        a, b = r["A"], r["B"]
        return "| %s | %s | %d / %d | %.1f / %.1f MB | %.3f / %.3f |" % (
            label, a["mode"] if a["mode"] == b["mode"] else
            a["mode"] + " / " + b["mode"], a["records"], b["records"],
            a["bytes"] / 1e6, b["bytes"] / 1e6, a["s"], b["s"])
    full = f["runs"]["full"][0]
    flaps = f["runs"]["flap"]
    med_s = med([r["A"]["s"] for r in flaps] + [r["B"]["s"] for r in flaps])
    full_s = max(full["A"]["s"], full["B"]["s"])
    L = [CU_BEGIN, "",
         "## Catch-up after a flap: incremental against the full walk",
         "",
         "`make bench` (figure `catchup`; `BENCH_ONLY=catchup make bench` runs "
         "it alone), release build at %s, %s, %d cores, %s, load %s.  Two nodes A and B, each holding "
         "%d clients (written straight into their snapshots), A reaching B "
         "through a TCP proxy run by the script.  All in one run: first the "
         "link's first link-up, where each side is a new peer to the other "
         "and gets a **full walk**, the catch-up every link-up did before "
         "the journal became a numbered log (docs/PEERS.md \"Catch-up\"); "
         "then %d flaps, each a cut while 1,000 updates are written on each "
         "side (500 clients on both), then a heal; then the same with B "
         "killed -9 and restarted while cut.  Records and bytes are those "
         "each side sent (status file, `links[].catchup`); the time is from "
         "the receiver's `link up` log line to its `catch-up from` line; every "
         "byte of both kinds passes through the proxy (Python), which slows "
         "the full walk more than the node does."
         % (m.get("git", "?"), m.get("date", "?"), m.get("nproc", 0),
            m.get("cpu", "?"), m.get("load", "?"), f["n"], len(flaps)),
         "",
         "| link-up | mode (B->A / A->B) | records sent B->A / A->B | "
         "bytes B->A / A->B | seconds to catch up at A / at B |",
         "|---|---|---|---|---|",
         row("first (new peer)", full)]
    for i, r in enumerate(flaps):
        L.append(row("flap %d" % (i + 1), r))
    for r in f["runs"]["kill9"]:
        L.append(row("B killed -9, restarted", r))
    L += ["",
          "Median incremental catch-up %.3f s against %.3f s for the full "
          "walk (%.0fx less time), with at most %d records each way against "
          "%d.  Resident memory at the end: A %d MB, B %d MB."
          % (med_s, full_s, full_s / med_s if med_s > 0 else float("nan"),
             max(max(r["A"]["records"], r["B"]["records"])
                 for r in flaps + f["runs"]["kill9"]),
             min(full["A"]["records"], full["B"]["records"]),
             f["rss_kb"].get("A", 0) // 1024, f["rss_kb"].get("B", 0) // 1024),
          "",
          "A flap soon after the one before sends up to 1,500 records a way, "
          "not 1,000: the 500 records that the peer's previous catch-up "
          "brought and that were new here entered this node's log after its "
          "last HERD-MARK to the peer, so they go back once.  Skipping them "
          "by their origin would be wrong: a peer killed -9 may have "
          "flooded a record it never wrote to its journal.",
          "", CU_END, ""]
    return "\n".join(L)


def mesh_topology(n, seed):
    """Random, connected, every degree 3 or 4: a ring through the nodes in
    random order (connected, degree 2), a random perfect matching that
    avoids the ring's edges (degree 3), then n/4 random edges between
    nodes still at degree 3."""
    rng = random.Random(seed)
    names = ["N%03d" % i for i in range(n)]
    order = names[:]
    rng.shuffle(order)
    edges = set()
    for i in range(n):
        edges.add(tuple(sorted((order[i], order[(i + 1) % n]))))
    while True:
        m = names[:]
        rng.shuffle(m)
        pairs = [tuple(sorted((m[2 * i], m[2 * i + 1])))
                 for i in range(n // 2)]
        if not any(p in edges for p in pairs):
            break
    edges.update(pairs)
    deg = {x: 3 for x in names}
    extra, tries = n // 4, 0
    while extra > 0 and tries < 100000:
        tries += 1
        a, b = rng.sample(names, 2)
        e = tuple(sorted((a, b)))
        if e in edges or deg[a] >= 4 or deg[b] >= 4:
            continue
        edges.add(e)
        deg[a] += 1
        deg[b] += 1
        extra -= 1
    topo = {x: [] for x in names}
    for a, b in sorted(edges):
        topo[a].append(b)           # one side names the link
    return topo, edges, deg


def eccentricity(edges, src):
    adj = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    dist, todo = {src: 0}, [src]
    while todo:
        nxt = []
        for x in todo:
            for y in adj[x]:
                if y not in dist:
                    dist[y] = dist[x] + 1
                    nxt.append(y)
        todo = nxt
    return dist


MESH_N = 100
MESH_BATCH = 200


def fig_mesh(tmp):
    topo, edges, deg = mesh_topology(MESH_N, 5)
    names = sorted(topo)
    n_edges = len(edges)
    minimum = 2 * n_edges - (MESH_N - 1)
    dist = eccentricity(edges, "N000")
    diameter = max(max(eccentricity(edges, x).values()) for x in names)
    procs, ports, d = herd_start(tmp, topo, "mesh",
                                 herd=["data_dir = data", "fsync = no"])
    out = {"n": MESH_N, "edges": n_edges, "minimum": minimum,
           "deg": {k: sum(1 for v in deg.values() if v == k) for k in (3, 4)},
           "connected": len(dist) == MESH_N, "ecc": max(dist.values()),
           "diameter": diameter, "batch": MESH_BATCH}
    try:
        t = time.monotonic()
        wait_links(d, topo, procs, timeout=120)
        out["links_s"] = time.monotonic() - t
        base = settle(d, names, 0, 60)
        plist = [str(ports[n]) for n in names]
        batch = ["-c", str(MESH_N), "-d", "1", "-n", str(MESH_BATCH),
                 "-k", str(MESH_BATCH), "--seq", "--prefix", "mesh-"] + plist
        r = bench(batch, 120)
        after = settle(d, names, MESH_BATCH, 60)
        sent = sum(after[n]["flood_sent"] - base[n]["flood_sent"]
                   for n in names)
        recv = sum(after[n]["flood_received"] - base[n]["flood_received"]
                   for n in names)
        applied = sum(after[n]["applied"] - base[n]["applied"]
                      for n in names)
        agree = True
        for k in (0, MESH_BATCH // 2, MESH_BATCH - 1):
            lines = {request(ports[n], "WHATSAT mesh-%d 1 1" % k)
                     for n in names}
            agree = agree and len(lines) == 1 and \
                next(iter(lines)).startswith("AT ")
        out.update({"sent": sent, "received": recv, "applied": applied,
                    "per_update": sent / MESH_BATCH, "agree": agree,
                    "bad": r["bad"] + r["conns_lost"],
                    "batch_cmd": "bin/herd-bench " + " ".join(
                        batch[:-MESH_N]) + " PORT... (all 100 nodes)"})
        log("mesh: %d edges, %.2f floods per update (minimum %d), "
            "applied %d" % (n_edges, sent / MESH_BATCH, minimum, applied))
        # Convergence across the mesh, from the logs, origin N000.
        prefixes = []
        for i in range(RUNS):
            prefix = "meshcv-%d-%d-" % (os.getpid(), i)
            prefixes.append(prefix)
            cargs = ["converge", "--no-probe", "-n", "100", "-g", "20",
                     "--prefix", prefix, str(ports["N000"])]
            bench(cargs, 120)
        after2 = settle(d, names, MESH_BATCH + 100 * RUNS, 60)
        sent2 = sum(after2[n]["flood_sent"] - after[n]["flood_sent"]
                    for n in names)
        out["per_update2"] = sent2 / (100.0 * RUNS)
        out["conv_cmd"] = shown(cargs, {str(ports["N000"]): "N000"}) \
            .replace(prefix, "PREFIX")
        out["dead"] = crashed(procs)
    finally:
        stop_all(procs.values())
    others = [n for n in names if n != "N000"]
    out["conv"] = []
    for prefix in prefixes:
        reply, applied = log_times(d, prefix, "N000")
        run = conv_summary(reply, applied, others)
        run.pop("per")
        out["conv"].append(run)
        log("mesh convergence: p50 %.0f p99 %.0f us, %d missing"
            % (run["p50"], run["p99"], run["missing"]))
    return out


PLACES = os.path.join(BIN, "herd-places")
BENCH_PLACES = os.path.join(REPO, "tools", "places", "bench_places.py")
WHATSAT_EMU_CONNS = 256     # tools/places/server.h SERVER_MAX_CONNECTIONS


def emulator_alone(data, radius_m, location):
    """bench_places.py once: the emulator's own queries/s on the query the
    herd sends (one location, one radius), 4 client processes."""
    cmd = [sys.executable, BENCH_PLACES, "--bin", PLACES, "--data", data,
           "--clients", "4", "--seconds", str(WINDOW), "--runs", "1",
           "--radius", str(radius_m), "--location", location]
    bp = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(bp)
    try:
        out, _ = bp.communicate(timeout=WINDOW + 60)
    except subprocess.TimeoutExpired:
        os.killpg(bp.pid, signal.SIGKILL)   # its own session: its children
        bp.wait(timeout=10)
        raise RuntimeError("bench_places.py did not finish")
    finally:
        if bp in PROCS:
            PROCS.remove(bp)
    m = re.search(r"radius\s+\d+ m: ([\d ]+) queries/s; median (\d+)", out)
    if not m:
        raise RuntimeError("bench_places.py said: %s" % out.strip())
    return float(m.group(1).split()[0])


# herd-bench puts every client at this point (tools/bench/load.c).
BENCH_LOCATION = "34.068930,-118.445127"


def places_data():
    data = os.path.join(REPO, "data", "places.tsv")
    if not os.path.exists(data):
        data = os.path.join(REPO, "tests", "data", "places-subset.tsv")
    return data


def emulator_start(d0, data):
    os.makedirs(d0, exist_ok=True)
    pport = free_port()
    places = start([PLACES, "-p", str(pport), "-d", data, "-l",
                    os.path.join(d0, "places.log")], d0, "places")
    wait_port(pport, places)
    return places, pport


def fig_whatsat(tmp):
    """Issue 13's setting: WHATSAT only (radius 10 km, bound 5) over
    10,000 known clients, C=50 D=16, spread over the five nodes, through
    the local emulator; each run paired with the emulator alone on the
    same query (bench_places.py --location) right after it."""
    data = places_data()
    places, pport = emulator_start(os.path.join(tmp, "whatsat-places"), data)
    procs = {}
    rows, alone, upstream = [], [], []
    try:
        procs, ports, d = herd_start(
            tmp, TOPOLOGY, "whatsat",
            places=["provider = local", "port = %d" % pport,
                    "timeout_ms = 5000"])
        wait_links(d, TOPOLOGY, procs)
        plist = [str(ports[n]) for n in TOPOLOGY]
        seed = ["-c", "50", "-d", "16", "-n", "10000", "-k", "10000",
                "--seq", "--prefix", "b"] + plist
        bench(seed, 120)
        settle(d, list(TOPOLOGY), 10000, 30)
        args = load_args(50, 16, plist, extra=["-k", "10000", "-W", "100"])
        for i in range(RUNS):
            c0 = [proc_cpu_s(p.pid) for p in procs.values()] + \
                [proc_cpu_s(places.pid)]
            u0 = sum((status(d, n) or {}).get("places_requests", 0)
                     for n in TOPOLOGY)
            rows.append(bench(args, WARMUP + WINDOW + 60))
            c1 = [proc_cpu_s(p.pid) for p in procs.values()] + \
                [proc_cpu_s(places.pid)]
            # CPU per WHATSAT: warm-up and window both did WHATSATs; the
            # requests of the whole run are about rps x (warm-up + window).
            n = rows[-1]["rps"] * (WARMUP + rows[-1]["elapsed_s"])
            rows[-1]["node_cpu_us"] = sum(c1[:-1]) - sum(c0[:-1])
            rows[-1]["node_cpu_us"] *= 1e6 / max(n, 1)
            rows[-1]["emu_cpu_us"] = (c1[-1] - c0[-1]) * 1e6 / max(n, 1)
            # The status file is rewritten within a second or so.
            time.sleep(1.5)
            u1 = sum((status(d, n) or {}).get("places_requests", 0)
                     for n in TOPOLOGY)
            rows[-1]["upstream_per_whatsat"] = (u1 - u0) / max(n, 1) \
                if u0 or u1 else float("nan")
            alone.append(emulator_alone(data, 10000, BENCH_LOCATION))
            log("whatsat run %d: herd %.0f/s (%d bad), emulator alone "
                "%.0f/s; upstream requests per WHATSAT %.3f; CPU per "
                "WHATSAT: nodes %.0f us, emulator %.0f us" % (
                    i + 1, rows[-1]["rps"], rows[-1]["bad"], alone[-1],
                    rows[-1]["upstream_per_whatsat"],
                    rows[-1]["node_cpu_us"], rows[-1]["emu_cpu_us"]))
        dead = crashed(procs)
    finally:
        stop_all(list(procs.values()) + [places])
    return {"rows": rows, "alone": alone, "dead": dead,
            "data": os.path.relpath(data, REPO) if data.startswith(REPO)
            else data,
            "cmd": shown(args).replace(" ".join(["PORT"] * 5),
                                       "PORT PORT PORT PORT PORT"),
            "seed_cmd": shown(seed).replace(" ".join(["PORT"] * 5),
                                            "PORT PORT PORT PORT PORT"),
            "alone_cmd": "python3 tools/places/bench_places.py --data %s "
            "--clients 4 --seconds %g --runs 1 --radius 10000 --location %s"
            % (os.path.relpath(data, REPO) if data.startswith(REPO)
               else data, WINDOW, BENCH_LOCATION)}


def fig_whatsat_cg(tmp):
    """Node-side instructions per WHATSAT: the node under callgrind, the
    emulator beside it (not under callgrind); 1,000 known clients seeded
    by IAMAT, then N WHATSATs (radius 10 km, bound 5, C=50 D=16); the
    difference of a 12,000- and a 2,000-WHATSAT run over 10,000, as the
    IAMAT figure does, so start-up, seeding and shutdown cancel out."""
    data = places_data()
    places, pport = emulator_start(os.path.join(tmp, "cgw-places"), data)
    out = {"per": [], "upstream": [], "per_1": [], "upstream_1": [],
           "per_new": [], "upstream_new": [], "per_new_1": [],
           "upstream_new_1": []}
    try:
        for rnd in range(RUNS):
            # C=50 D=16 (the target's setting: WHATSATs overlap and share
            # requests), then C=1 D=1, one WHATSAT at a time, so each one
            # makes its own upstream request (what sharing saves).  The
            # Places API (New) path (provider google, the emulator's
            # POST endpoint, answers mapped through cJSON) in the first
            # round only, to keep make bench short.
            plan = [(50, 16, 2000, 12000, "", "local"),
                    (1, 1, 500, 2500, "_1", "local")]
            if rnd == 0:
                plan += [(50, 16, 2000, 12000, "_new", "google"),
                         (1, 1, 500, 2500, "_new_1", "google")]
            for c, dp, n_small, n_big, sfx, prov in plan:
                run_cg_whatsat(tmp, pport, rnd, c, dp, n_small, n_big, sfx,
                               out, prov)
    finally:
        stop(places)
    return out


def run_cg_whatsat(tmp, pport, rnd, c, dp, n_small, n_big, sfx, out,
                   provider="local"):
    """One round of fig_whatsat_cg at C=c D=dp: runs of n_small and n_big
    WHATSATs; appends to out's lists named with suffix sfx."""
    totals, ups = {}, {}
    for n in (n_small, n_big):
        d = os.path.join(tmp, "cgw-%d-%d-%d%s" % (rnd, c, n, sfx))
        os.makedirs(d, exist_ok=True)
        cg_out = os.path.join(d, "callgrind.out")
        wrap = [VALGRIND, "--tool=callgrind", "--callgrind-out-file="
                + cg_out]
        if provider == "local":
            pl = ["provider = local", "port = %d" % pport]
        else:
            pl = ["provider = google", "url = http://127.0.0.1:%d" % pport,
                  "key_env = HERD_BENCH_NO_KEY"]
        pm, ports, hd = herd_start(d, {"Hill": []}, "h", wrap,
                                   places=pl + ["timeout_ms = 30000"])
        port = str(ports["Hill"])
        seed = ["-c", "50", "-d", "16", "-n", "1000", "-k", "1000",
                "--seq", "--prefix", "w", port]
        args = ["-c", str(c), "-d", str(dp), "-n", str(n), "-k",
                "1000", "-W", "100", "--prefix", "w", port]
        try:
            bench(seed, 300)
            res = bench(args, 600)
            if res["replies"] != n:
                raise RuntimeError("callgrind WHATSAT run: %d "
                                   "replies of %d" % (res["replies"], n))
            # A reply without places (UNKNOWN_ERROR) still costs the
            # node its work; counted and shown, not hidden.
            out["bad"] = out.get("bad", 0) + res["bad"]
            time.sleep(1.5)     # the status file catches up
            ups[n] = (status(hd, "Hill") or {}).get(
                "places_requests", float("nan"))
        finally:
            for p in pm.values():
                stop(p, grace=60)
        totals[n] = callgrind_total(cg_out)
        out["seed_cmd"] = shown(seed[:-1] + ["PORT"])
        out["cmd" + sfx] = shown(args[:-1] + ["PORT"])
        out["n" + sfx] = (n_small, n_big)
    per = (totals[n_big] - totals[n_small]) / (n_big - n_small)
    out["per" + sfx].append(per)
    out["upstream" + sfx].append((ups[n_big] - ups[n_small]) /
                                 (n_big - n_small))
    log("callgrind WHATSAT run %d, %s, C=%d D=%d: %.0f instructions per "
        "WHATSAT, %.3f upstream requests per WHATSAT" % (
            rnd + 1, provider, c, dp, per, out["upstream" + sfx][-1]))


def fig_emulator(tmp):
    """The emulator per answer, in process (bin/herd-places --bench N):
    the index and the legacy JSON at 5 km and 50 km around random places,
    RUNS runs."""
    data = places_data()
    n = 2000
    runs, before = [], []
    old = os.environ.get("BENCH_BEFORE_BIN")
    for i in range(RUNS):
        runs.append(emulator_bench_once(PLACES, data, n))
        if old:
            # The before build right beside it, so a busy machine slows
            # both alike.
            before.append(emulator_bench_once(os.path.join(old, "herd-places"),
                                              data, n))
        log("emulator run %d: %.1f us at 5 km, %.1f us at 50 km%s" % (
            i + 1, runs[-1][5000][1], runs[-1][50000][1],
            "; before %.1f and %.1f us" % (before[-1][5000][1],
                                           before[-1][50000][1])
            if old else ""))
    return {"runs": runs, "before": before,
            "cmd": "bin/herd-places -d %s --bench %d" % (
                os.path.relpath(data, REPO) if data.startswith(REPO)
                else data, n)}


def emulator_bench_once(binary, data, n):
    """{radius: (index us, answer us)} from one herd-places --bench."""
    r = subprocess.run([binary, "-d", data, "--bench", str(n)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    got = {}
    for m in re.finditer(r"bench radius\s+(\d+) m:.*?\n\s+index only:\s+"
                         r"([\d.]+) us/query.*?\n\s+index \+ legacy JSON:"
                         r"\s+([\d.]+) us/query", r.stdout):
        got[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    if 5000 not in got or 50000 not in got:
        raise RuntimeError("herd-places --bench said: %s" % r.stdout)
    return got


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


FIGURE_KEYS = ("single16", "single1", "callgrind", "herd5", "converge_log",
               "converge", "halfload", "memory", "relearn", "mesh")
# Issue 13's figures: their own section of BENCHMARKS.md.
WHATSAT_KEYS = ("whatsat_cg", "whatsat", "emulator")

# The figures committed in BENCHMARKS.md by 912cd87 (make bench at node
# commit 9fa0beb, before the optimisation commits 0333a9d "Faster hot
# path" and 0acc434 "Node hot path: replies written once per loop
# iteration...", and before the journal, d54cebb, existed).
BEFORE = {
    "single16": (102124, 185962), "single1": (53009, 78383),
    "callgrind": (34238, 16786), "herd5": (71269, 160624),
    "converge_log": 7306, "converge": 8389,
}


def pair_meds(f):
    return (med([r[0]["rps"] for r in f["rows"]]),
            med([r[1]["rps"] for r in f["rows"]]))


def yes(ok):
    return "**met**" if ok else "**not met**"


def targets_table(figs):
    """One row per target of issue 5: the figure of this run, met or not."""
    rows = []

    def pair(key, label, target, lo):
        f = figs.get(key)
        if not f:
            rows.append("| %s | %s | not measured | |" % (label, target))
            return
        h, r = pair_meds(f)
        rows.append("| %s | %s | %.2fx (%s vs %s /s) | %s |" % (
            label, target, h / r, fmt_rps(h), fmt_rps(r), yes(h / r >= lo)))
    pair("single16", "one node IAMAT vs Redis SET, C=50 D=16", ">= 1.0x", 1.0)
    pair("single1", "the same at C=50 D=1", ">= 0.95x", 0.95)
    f = figs.get("callgrind")
    if f:
        ratio = med(f["node"]) / med(f["redis"])
        rows.append("| instructions per IAMAT vs per Redis SET (callgrind) "
                    "| <= 1.0x | %.2fx (%s vs %s) | %s |" % (
                        ratio, fmt_rps(med(f["node"])),
                        fmt_rps(med(f["redis"])), yes(ratio <= 1.0)))
    pair("herd5", "five-node herd vs one Redis SET, D=16", ">= 0.25x", 0.25)
    for key, label, getter in (
            ("converge_log", "two-hop convergence p99, idle (logs)",
             lambda f: med([r["p99"] for r in f["runs"]])),
            ("converge", "two-hop convergence p99, idle (probes, upper "
             "bound)", lambda f: med([r["upper_us"]["p99"]
                                      for r in f["runs"]]))):
        f = figs.get(key)
        if f:
            v = getter(f)
            rows.append("| %s | <= 1 ms | %.2f ms | %s |" % (
                label, v / 1e3, yes(v <= 1000)))
    f = figs.get("halfload")
    if f:
        lv = f["levels"][0]
        lg = med([r["p99"] for r in lv["logs"]])
        pr = med([r["upper_us"]["p99"] for r in lv["probe"]])
        rows.append("| convergence p99 at half the herd's maximum load "
                    "(%s IAMAT/s) | <= 10 ms | %.1f ms (logs), %.1f ms "
                    "(probes, upper bound) | %s |" % (
                        fmt_rps(lv["rate"]), lg / 1e3, pr / 1e3,
                        yes(min(lg, pr) <= 10000)))
    f = figs.get("memory")
    if f:
        v = med([r["beyond"] for r in f["runs"]])
        rows.append("| memory per client record beyond its id | <= 100 "
                    "bytes | %.0f bytes | %s |" % (v, yes(v <= 100)))
    f = figs.get("relearn")
    if f:
        v = med([r["log_s"] for r in f["runs"]])
        rows.append("| a restarted node re-learning 1,000,000 clients | "
                    "<= 2 s | %.2f s | %s |" % (v, yes(v <= 2.0)))
    f = figs.get("mesh")
    if f:
        ok = f["agree"] and f["per_update"] == f["minimum"] and \
            f.get("per_update2") == f["minimum"] and not f.get("dead")
        rows.append("| 100-node random topology, degree 3-4 | converges; "
                    "messages per update = 2E-(N-1) | every node holds "
                    "every update: %s; %.2f floods per update, minimum %d "
                    "| %s |" % ("yes" if f["agree"] else "NO",
                                f["per_update"], f["minimum"], yes(ok)))
    return ["### Targets of issue 5, this run", "",
            "| figure | target | this run | |", "|---|---|---|---|"] + \
        rows + [""]


def before_after(figs):
    """Before (912cd87) and after (this run) the optimisation commits."""
    L = ["### Before and after the optimisation commits", "",
         "Before: the figures committed in BENCHMARKS.md by 912cd87 "
         "(`make bench` at node commit 9fa0beb, on the same VM while other "
         "sessions were building and testing, load average 3.3 at its "
         "start).  After: this run, with 0333a9d (\"Faster hot path\": no "
         "float formatting per parsed location, log timestamps formatted "
         "once a second, ...) and 0acc434 (\"Node hot path: replies "
         "written once per loop iteration...\").  The node now also "
         "journals every update (d54cebb, `fsync = everysec`), which the "
         "before figures did not pay for.  Same commands both times; each "
         "figure's own section below has its runs.", "",
         "| figure | before | after | command |", "|---|---|---|---|"]
    for key, label in (("single16", "one node, C=50 D=16"),
                       ("single1", "one node, C=50 D=1"),
                       ("herd5", "five-node herd, C=50 D=16")):
        f = figs.get(key)
        if not f:
            continue
        h, r = pair_meds(f)
        bh, br = BEFORE[key]
        L.append("| %s: IAMAT/s (ratio to Redis SET) | %s (%.2fx) | %s "
                 "(%.2fx) | `%s` |" % (label, fmt_rps(bh), bh / br,
                                       fmt_rps(h), h / r, f["node_cmd"]))
    f = figs.get("callgrind")
    if f:
        bh, br = BEFORE["callgrind"]
        L.append("| instructions per IAMAT (ratio to per SET) | %s (%.2fx) "
                 "| %s (%.2fx) | `%s` under callgrind |" % (
                     fmt_rps(bh), bh / br, fmt_rps(med(f["node"])),
                     med(f["node"]) / med(f["redis"]), f["node_cmd"]))
    f = figs.get("converge_log")
    if f:
        L.append("| two-hop convergence p99, idle, logs | %.2f ms | %.2f ms "
                 "| `%s` |" % (BEFORE["converge_log"] / 1e3,
                               med([r["p99"] for r in f["runs"]]) / 1e3,
                               f["cmd"]))
    f = figs.get("converge")
    if f:
        L.append("| two-hop convergence p99, idle, probes (upper bound) | "
                 "%.2f ms | %.2f ms | `%s` |" % (
                     BEFORE["converge"] / 1e3,
                     med([r["upper_us"]["p99"] for r in f["runs"]]) / 1e3,
                     f["cmd"]))
    return L + [""]


# ---- encrypted links against the plaintext links they replaced ----------

TLS_SUBJECT = "Links: TLS 1.3 with an external PSK"


def tls_base_build(tmp):
    """bin/herd-node of the commit before the TLS links (the parent of the
    commit whose subject starts with TLS_SUBJECT), built in a temporary
    worktree; returns (path, short hash)."""
    git = ["git", "-C", REPO]
    h = subprocess.run(git + ["log", "--format=%H", "-1", "--fixed-strings",
                              "--grep", TLS_SUBJECT], capture_output=True,
                       text=True, check=True).stdout.strip()
    if not h:
        raise RuntimeError("no commit '%s...' in this history" % TLS_SUBJECT)
    base = subprocess.run(git + ["rev-parse", "--short", h + "^"],
                          capture_output=True, text=True,
                          check=True).stdout.strip()
    wt = os.path.join(tmp, "tls-base")
    subprocess.run(git + ["worktree", "add", "--detach", wt, base],
                   capture_output=True, check=True)
    try:
        # Only the node: the places data and the rest are not needed.
        r = subprocess.run(["make", "-C", wt, "-j2", "BUILD=release",
                            "bin/herd-node"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("building %s failed: %s" % (base, r.stderr[-500:]))
        out = os.path.join(tmp, "herd-node-" + base)
        shutil.copy(os.path.join(wt, "bin", "herd-node"), out)
    finally:
        subprocess.run(git + ["worktree", "remove", "--force", wt],
                       capture_output=True)
    return out, base


def tls_herd5_run(tmp, tag, node):
    procs, ports, d = herd_start(tmp, TOPOLOGY, tag, node=node)
    try:
        wait_links(d, TOPOLOGY, procs)
        args = load_args(50, 16, [ports[n] for n in TOPOLOGY],
                         extra=["-k", "10000"])
        cpu0 = sum(proc_cpu_s(p.pid) for p in procs.values())
        r = bench(args, WARMUP + WINDOW + 30)
        # The floods finish and every status file is rewritten (at most
        # twice a second): then CPU per update applied anywhere, a cost
        # a busy machine inflates far less than it does the rate.
        time.sleep(1.5)
        cpu = sum(proc_cpu_s(p.pid) for p in procs.values()) - cpu0
        applied = sum((status(d, n) or {}).get("applied", 0) for n in TOPOLOGY)
        dead = crashed(procs)
        if dead:
            raise RuntimeError("%s died under load" % ", ".join(dead))
    finally:
        for p in procs.values():
            stop(p)
    return (r["rps"], 1e6 * cpu / applied if applied else float("nan")), args


def tls_converge_run(tmp, tag, node, i):
    names = [n for n in TOPOLOGY if n != "Hill"]
    procs, ports, d = herd_start(tmp, TOPOLOGY, tag, node=node)
    prefix = "cvtls-%d-%s-" % (os.getpid(), tag)
    try:
        wait_links(d, TOPOLOGY, procs)
        args = ["converge", "--no-probe", "-n", "200", "-g", "5",
                "--prefix", prefix, str(ports["Hill"])]
        bench(args, 120)
    finally:
        for p in procs.values():
            stop(p)
    return conv_summary(*log_times(d, prefix), names), args


def fig_tls(tmp):
    """The five-node herd with TLS links against the same herd built from
    the commit before them, in this run, alternating run by run; and the
    idle two-hop convergence of each (from the logs)."""
    base_node, base = tls_base_build(tmp)
    load0 = os.getloadavg()[0]
    rows, conv, cpu = [], [], []
    for i in range(RUNS):
        # Alternate which goes first, so a drift of the machine's load
        # falls on both.
        order = [("plain", base_node), ("tls", NODE)]
        if i % 2:
            order.reverse()
        got = {}
        for tag, node in order:
            got[tag], args = tls_herd5_run(tmp, "tls5-%s-%d" % (tag, i), node)
        rows.append((got["tls"][0], got["plain"][0]))
        cpu.append((got["tls"][1], got["plain"][1]))
        log("tls run %d: TLS %.0f/s %.2f us CPU/update, plaintext (%s) "
            "%.0f/s %.2f us" % (i + 1, got["tls"][0], got["tls"][1], base,
                                got["plain"][0], got["plain"][1]))
        c_tls, cargs = tls_converge_run(tmp, "tlsc-tls-%d" % i, NODE, i)
        c_plain, _ = tls_converge_run(tmp, "tlsc-plain-%d" % i, base_node, i)
        conv.append((c_tls, c_plain))
        log("tls run %d: two-hop p99 TLS %.0f us, plaintext %.0f us"
            % (i + 1, c_tls["p99"], c_plain["p99"]))
    return {"base": base, "rows": rows, "conv": conv, "cpu": cpu,
            "load": (load0, os.getloadavg()[0]),
            "cmd": shown(args), "conv_cmd": shown(cargs)}


def report_tls(m, f):
    tls = med([r[0] for r in f["rows"]])
    plain = med([r[1] for r in f["rows"]])
    ctls = med([c[0]["p99"] for c in f["conv"]])
    cplain = med([c[1]["p99"] for c in f["conv"]])
    L = [TLS_BEGIN, "",
         "## Encrypted links (TLS 1.3) against the plaintext links before "
         "them (issue 15)", "",
         "The same five-node herd (SPEC.md's topology, C=50 D=16, 10,000 "
         "ids, the load spread over all nodes) run with bin/herd-node and "
         "with the node built from %s, the commit before the TLS links "
         "(built by this script in a temporary git worktree, release "
         "build), in this run, alternating which goes first; a fresh herd "
         "per run.  Then the idle two-hop convergence from the logs (as "
         "above: origin Hill, 200 samples 5 ms apart) for each." % f["base"],
         "",
         "| | TLS links | plaintext links (%s) | ratio |" % f["base"],
         "|---|---|---|---|",
         "| IAMAT/s, five-node herd (median) | %s | %s | **%.2fx** "
         "(target >= 0.9x) |" % (fmt_rps(tls), fmt_rps(plain),
                                 tls / plain if plain else float("nan")),
         "| runs | %s | %s | |" % (
             ", ".join(fmt_rps(r[0]) for r in f["rows"]),
             ", ".join(fmt_rps(r[1]) for r in f["rows"])),
         "| CPU (user + system, all five nodes) per update applied, "
         "median | %.2f us | %.2f us | **%.2fx** |" % (
             med([c[0] for c in f["cpu"]]), med([c[1] for c in f["cpu"]]),
             med([c[0] for c in f["cpu"]]) / med([c[1] for c in f["cpu"]])),
         "| two-hop convergence p99, idle (median of runs) | %.0f us | "
         "%.0f us | target < 1 ms with TLS |" % (ctls, cplain),
         "| two-hop p50 | %.0f us | %.0f us | |" % (
             med([c[0]["p50"] for c in f["conv"]]),
             med([c[1]["p50"] for c in f["conv"]])),
         "",
         "The machine's load average was %.1f when the figure started and "
         "%.1f when it ended (%d CPUs); run-to-run spread above is the "
         "measure of its noise.  The CPU row counts only the nodes' own "
         "time, which a busy machine inflates far less than the rate."
         % (f["load"][0], f["load"][1], os.cpu_count() or 0), "",
         "Written by `make bench` (figure `tls`; `BENCH_ONLY=tls make bench` "
         "runs only it), %s, %d runs of %.0f s after %.0f s warm-up:" % (
             time.strftime("%Y-%m-%d", time.gmtime()), RUNS, WINDOW, WARMUP),
         "",
         "    BENCH_ONLY=tls make bench",
         "    " + f["cmd"],
         "    " + f["conv_cmd"], "", TLS_END, ""]
    return "\n".join(L)


def report_new(figs):
    L = []
    f = figs.get("halfload")
    if f:
        L += ["### Convergence under load", "",
              "The herd's maximum IAMAT rate is the median of the five-node "
              "herd figure above (%s requests/s, C=50 D=16, %s).  For each "
              "share of it, a paced `herd-bench --rate` load (50 connections "
              "over the five nodes, ids b0..b9999) runs in the background; "
              "1.3 s after it starts, the convergence samples run as in the "
              "idle figures (origin Hill), and when they are done SIGTERM "
              "ends the load's window, so the load covers exactly the "
              "samples.  Each run starts a fresh herd; one load run with "
              "the probes, then one with the log method.  The CPU column is "
              "the machine's busy share (/proc/stat) while the samples ran."
              % (fmt_rps(f["full"]), f["src"]), "",
              "| share of max | paced rate /s | achieved /s | skipped | "
              "load p50 / p99 us | CPUs busy | convergence p50 / p99 us "
              "(logs) | p50 / p99 us (probes, upper bound) |",
              "|---|---|---|---|---|---|---|---|"]
        for lv in f["levels"]:
            lo = lv["loads"]
            L.append("| %g | %s | %s | %s | %.0f / %.0f | %.0f%% | "
                     "%.0f / %.0f | %.0f / %.0f |" % (
                         lv["share"], fmt_rps(lv["rate"]),
                         fmt_rps(med([x["rps"] for x in lo])),
                         fmt_rps(med([x["skipped"] for x in lo])),
                         med([x["latency_us"]["p50"] for x in lo]),
                         med([x["latency_us"]["p99"] for x in lo]),
                         100 * med([x["busy"] for x in lo]),
                         med([r["p50"] for r in lv["logs"]]),
                         med([r["p99"] for r in lv["logs"]]),
                         med([r["upper_us"]["p50"] for r in lv["probe"]]),
                         med([r["upper_us"]["p99"] for r in lv["probe"]])))
        L += ["", "p99 of each run (logs; probes):"]
        for lv in f["levels"]:
            L.append("share %g: %s; %s.  Samples some node never logged: "
                     "%s." % (lv["share"],
                              ", ".join("%.0f" % r["p99"] for r in lv["logs"]),
                              ", ".join("%.0f" % r["upper_us"]["p99"]
                                        for r in lv["probe"]),
                              ", ".join(str(r["missing"])
                                        for r in lv["logs"])))
            L.append("")
        lv = f["levels"][0]
        L += ["    " + lv["load_cmd"], "    " + lv["conv_cmd"],
              "    " + lv["log_cmd"], ""]
    f = figs.get("memory")
    if f:
        runs = f["runs"]
        L += ["### Memory per client record", "",
              "One node (`data_dir` in the temporary directory, `fsync = "
              "no`).  First %s IAMATs for ids w0.. over the same 50 "
              "connections, so connection buffers and malloc's arenas are "
              "in the baseline; 1.5 s later VmRSS (/proc/PID/status) is "
              "read; then 1,000,000 IAMATs for the distinct ids m0 .. "
              "m999999; when the status file shows every record held and "
              "the counters stopped, VmRSS again.  Per record: (after - "
              "before) / 1,000,000 - the mean id length (%.2f bytes).  "
              "Fresh node per run." % (fmt_rps(f["warm"]), f["idlen"]), "",
              "| | before kB | after kB | VmHWM kB | bytes per record | "
              "beyond the id |", "|---|---|---|---|---|---|"]
        for i, r in enumerate(runs):
            L.append("| run %d | %s | %s | %s | %.1f | %.1f |" % (
                i + 1, fmt_rps(r["before"]), fmt_rps(r["after"]),
                fmt_rps(r["hwm"]), r["per"], r["beyond"]))
        L += ["",
              "Median: **%.0f bytes per record beyond its id** (target <= "
              "100 bytes)." % med([r["beyond"] for r in runs]), "",
              "    " + f["cmd"], ""]
    f = figs.get("relearn")
    if f:
        runs = f["runs"]
        L += ["### A restarted node re-learning 1,000,000 clients", "",
              "Two nodes, Empty and Full, linked (Empty sorts first, so it "
              "dials as soon as it starts; `fsync = everysec`, the "
              "default).  Full alone gets 1,000,000 IAMATs for distinct "
              "ids; then, per run, Empty's journal and snapshot are "
              "deleted and Empty is started.  The time runs from just "
              "before the script starts the process until the stamp of "
              "Empty's log line `catch-up from Full: received N records, "
              "M newer than held` (the same machine's realtime clock), "
              "written when the last record has been applied.  As a "
              "cross-check, the first moment Empty's status file (rewritten "
              "every second) shows 1,000,000 clients, an upper bound.  "
              "After each run Empty is killed with SIGKILL.", "",
              "| run | to catch-up done (log) s | status file shows "
              "1,000,000 s | start to link up s | link up to done s | "
              "received / newer |", "|---|---|---|---|---|---|"]
        for i, r in enumerate(runs):
            L.append("| %d | %.3f | %.3f | %.3f | %.3f | %s / %s |" % (
                i + 1, r["log_s"], r["status_s"], r["up_s"],
                r["catchup_s"], fmt_rps(r["received"]),
                fmt_rps(r["newer"])))
        L += ["",
              "Median: **%.2f s** (target <= 2 s)." % med(
                  [r["log_s"] for r in runs]), "",
              "    " + f["fill_cmd"],
              "    rm data/Empty.*; bin/herd-node -c herd.ini Empty", ""]
    f = figs.get("mesh")
    if f:
        conv = f["conv"]
        L += ["### A generated 100-node topology", "",
              "%d herd-node processes on this machine, free loopback "
              "ports, `fsync = no`, places at an unused port.  The graph "
              "(tools/bench/run_bench.py mesh_topology, seed 5): a ring "
              "through the nodes in random order, a random perfect "
              "matching, then random extra edges between nodes of degree "
              "3: connected, %d edges, %d nodes of degree 3 and %d of "
              "degree 4, diameter %d.  All links were up %.1f s after the "
              "last port opened.  Once the counters were still, %d IAMATs "
              "for fresh ids went to the nodes (one connection per node); "
              "when every status file showed %d records and the counters "
              "had stopped, the sums over the nodes were compared with "
              "the start." % (f["n"], f["edges"], f["deg"][3], f["deg"][4],
                              f["diameter"], f["links_s"], f["batch"],
                              f["batch"]), "",
              "- Every node holds every update: **%s** (every status file "
              "shows %d records; the updates applied, summed, rose by %s = "
              "%d x %d; three ids asked of all 100 nodes got one and the "
              "same AT line: %s)." % (
                  "yes" if f["agree"] else "NO", f["batch"],
                  fmt_rps(f["applied"]), f["batch"], f["n"],
                  "yes" if f["agree"] else "no"),
              "- HERD-AT floods sent: %s, received: %s; **%.2f per update**; "
              "the minimum, each node forwarding a new update once to each "
              "neighbour but its sender, is 2E - (N-1) = 2 x %d - %d = "
              "**%d**.  In the %d convergence samples below: %.2f per "
              "update." % (fmt_rps(f["sent"]), fmt_rps(f["received"]),
                           f["per_update"], f["edges"], f["n"] - 1,
                           f["minimum"], 100 * len(conv),
                           f.get("per_update2", float("nan"))),
              "- Convergence from N000 (%d hops to the farthest node), "
              "from the logs as in the idle figure, 100 samples 20 ms apart "
              "per run, all 99 other nodes: p50 %.1f ms, p99 %.1f ms, max "
              "%.1f ms (medians of %d runs; p99 of each run: %s)." % (
                  f["ecc"], med([r["p50"] for r in conv]) / 1e3,
                  med([r["p99"] for r in conv]) / 1e3,
                  med([r["max"] for r in conv]) / 1e3, len(conv),
                  ", ".join("%.1f" % (r["p99"] / 1e3) for r in conv)), "",
              "    " + f["batch_cmd"], "    " + f["conv_cmd"], ""]
    return L



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
         "**The machine:** %s CPUs for every process of a figure (servers, "
         "herd-bench, and in the herd figures five or a hundred nodes), a "
         "VM that other sessions may have used for builds and tests at the "
         "same time (no other benchmark ran).  Each Herd run is paired with "
         "a Redis run taken right beside it, and the ratios compare medians "
         "of the same session.  The whole suite took %.1f minutes."
         % (m["nproc"], m.get("minutes", 0)),
         "",
         "Method: every server is started by the script on a free loopback "
         "port (Redis with `--save '' --appendonly no`; nodes with a "
         "temporary herd.ini whose places provider is `google-legacy` at "
         "an url where nothing listens, and the node's default durability: "
         "a journal in a temporary data_dir with `fsync = everysec`, unless "
         "a figure says otherwise).  `herd-bench` is one process on "
         "one libev loop; latency is from the write of a request to the "
         "arrival of its whole reply, in a log-bucket histogram (1.6%% "
         "resolution).  Each figure is the median of %d runs of %g s after "
         "%g s of warm-up unless it says otherwise; PORT stands for the "
         "port the script picked.  "
         "Requests: `IAMAT bN +34.068930-118.445127 SECS.NANOS` over "
         "100,000 ids (10,000 for the herd), each with a client time later "
         "than the last, so every one is stored and flooded; the Redis "
         "reference is `SET bN +34.068930-118.445127@SECS.NANOS`, the same "
         "key and payload.  Every process the script starts is killed by "
         "its pid when its figure ends, pass or fail." % (RUNS, WINDOW,
                                                         WARMUP),
         ""]
    L += targets_table(figs) + before_after(figs)
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
    L += report_new(figs)
    missing = [k for k in FIGURE_KEYS if k not in figs]
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


# Issue 13's "before": the same figures, measured by this script with
# BENCH_BIN set to a build of 208f14b (the commit before the WHATSAT
# work), on this machine, the same day (2026-12-01, load average 4-7 from
# other sessions): BENCH_BIN=/tmp/base/bin BENCH_ONLY=whatsat,whatsat_cg.
# The emulator's own figure is paired with the before build in the run
# itself when BENCH_BEFORE_BIN is set; without it, issue 13's figures.
WHATSAT_BEFORE = {
    "whatsat_cg": 1206680,      # C=50 D=16 (480 of 14,000 had no places)
    "whatsat_cg_1": 1107355,    # C=1 D=1
    "whatsat_ratio": 0.14,      # herd 1,366 /s, emulator alone 9,436 /s
    "emu5": 61.0, "emu50": 244.0,
    "note": "herd 1,366 WHATSAT/s beside the emulator alone at 9,436 /s; "
            "1,206,680 instructions per WHATSAT at C=50 D=16 and "
            "1,107,355 at C=1 D=1 (one run: callgrind counts barely vary)",
}


def whatsat_report(m, figs, failures):
    B = WHATSAT_BEFORE or {}

    def before(key, fmt):
        v = B.get(key)
        if v is None:
            return "not measured"
        return "{:,.0f}".format(v) if fmt == "," else fmt % v

    L = [W_BEGIN, "",
         "## WHATSAT at the speed of IAMAT (issue 13; written by `make bench`)",
         "",
         "Produced by `make bench` (tools/bench/run_bench.py, figures "
         "whatsat_cg, whatsat, emulator) on %s at commit %s.  Machine: %s "
         "CPUs, %s, Linux %s, shared with other sessions' builds and tests; "
         "load average when the run began: %s.  Each figure is the median "
         "of %d runs.  Before: the same script with BENCH_BIN pointing at "
         "a build of 208f14b (before the issue-13 commits), same machine, "
         "same day%s." % (m["date"], m["git"], m["nproc"], m["cpu"],
                          m["kernel"], m["load"], RUNS,
                          (" (" + B["note"] + ")") if B.get("note") else ""),
         ""]
    rows = []
    f = figs.get("whatsat_cg")
    if f:
        per = med(f["per"])
        rows.append("| node-side instructions per WHATSAT (callgrind, 10 km, "
                    "bound 5, local emulator, 1,000 known clients) | "
                    "<= 100,000 | %s | %s | %s |" % (
                        before("whatsat_cg", ","),
                        "{:,.0f}".format(per), yes(per <= 100000)))
    f = figs.get("whatsat")
    if f:
        herd, alone = med([r["rps"] for r in f["rows"]]), med(f["alone"])
        ratio = herd / alone if alone else float("nan")
        rows.append("| five-node herd, C=50 D=16, 100%% WHATSAT through the "
                    "local emulator / emulator alone on the same query | "
                    ">= 0.8x | %s | %.2fx (%s /s vs %s /s) | %s |" % (
                        before("whatsat_ratio", "%.2fx"), ratio,
                        fmt_rps(herd), fmt_rps(alone), yes(ratio >= 0.8)))
    f = figs.get("emulator")
    if f:
        u5 = med([r[5000][1] for r in f["runs"]])
        u50 = med([r[50000][1] for r in f["runs"]])
        if f.get("before"):
            b5 = med([r[5000][1] for r in f["before"]])
            b50 = med([r[50000][1] for r in f["before"]])
            B = dict(B, emu5=b5, emu50=b50)
        b5, b50 = B.get("emu5"), B.get("emu50")
        sp5 = b5 / u5 if b5 else float("nan")
        sp50 = b50 / u50 if b50 else float("nan")
        rows.append("| emulator per answer, in process (`--bench`), 5 km / "
                    "50 km | >= 2x faster | %s / %s us | %.1f / %.1f us "
                    "(%.1fx / %.1fx) | %s |" % (
                        before("emu5", "%.1f"), before("emu50", "%.1f"),
                        u5, u50, sp5, sp50,
                        yes(sp5 >= 2 and sp50 >= 2) if b5 and b50 else
                        "no before figure"))
    L += ["### Targets, this run", "",
          "| figure | target | before | after | met |",
          "|---|---|---|---|---|"] + rows + [""]
    f = figs.get("whatsat_cg")
    if f:
        L += ["### Node-side instructions per WHATSAT (callgrind)", "",
              "One node (no neighbours) under `valgrind --tool=callgrind`, "
              "`provider = local` with `bin/herd-places` beside it (not "
              "under callgrind).  1,000 IAMATs seed ids w0..w999 (all at "
              "herd-bench's one point in Los Angeles), then %d or %d "
              "WHATSATs (radius 10 km, bound 5, C=50 D=16, 800 in flight); "
              "the difference of the two instruction totals over %d is one "
              "WHATSAT, the method of the IAMAT figure.  Every WHATSAT "
              "needs the same places request, so most of them share one in "
              "flight: upstream requests per WHATSAT, from the status "
              "file's places_requests: %s.  Per run: %s instructions.  "
              "Replies without places in these runs: %d." % (
                  f["n"][0], f["n"][1], f["n"][1] - f["n"][0],
                  ", ".join("%.3f" % x for x in f["upstream"]),
                  ", ".join("{:,.0f}".format(x) for x in f["per"]),
                  f.get("bad", 0)), "",
              "Without sharing: the same at C=1 D=1 (one WHATSAT at a "
              "time, %d and %d of them), so that every WHATSAT makes its "
              "own upstream request (upstream requests per WHATSAT: %s): "
              "**%s** instructions per WHATSAT (median; runs: %s), the "
              "whole cost of a request through libcurl and of cutting its "
              "answer.%s" % (
                  f["n_1"][0], f["n_1"][1],
                  ", ".join("%.3f" % x for x in f["upstream_1"]),
                  "{:,.0f}".format(med(f["per_1"])),
                  ", ".join("{:,.0f}".format(x) for x in f["per_1"]),
                  ("  Before, the same: %s." % before("whatsat_cg_1", ","))
                  if B.get("whatsat_cg_1") else ""), "",
              "Places API (New) (`provider = google` with `url` at the "
              "emulator, whose POST /v1/places:searchNearby answers; the "
              "node maps each answer to the legacy shape with cJSON, once "
              "per upstream request), one round: %s instructions per WHATSAT at "
              "C=50 D=16 (upstream requests per WHATSAT %s), %s at C=1 D=1 "
              "(%s)." % (
                  "{:,.0f}".format(med(f["per_new"])),
                  ", ".join("%.3f" % x for x in f["upstream_new"]),
                  "{:,.0f}".format(med(f["per_new_1"])),
                  ", ".join("%.3f" % x for x in f["upstream_new_1"]))
              if f.get("per_new") else "", "",
              "    " + f["seed_cmd"], "    " + f["cmd"], "    " + f["cmd_1"],
              "    valgrind --tool=callgrind bin/herd-node -c herd.ini Hill",
              ""]
    f = figs.get("whatsat")
    if f:
        rows = f["rows"]
        L += ["### Five-node herd, WHATSAT only, through the local emulator",
              "",
              "The five nodes of SPEC.md with `provider = local` and "
              "`bin/herd-places` (%s) at a free port.  10,000 IAMATs seed "
              "ids b0..b9999 (every node holds them all before WHATSATs "
              "start), then only WHATSATs (radius 10 km, bound 5) over the "
              "five nodes, C=50 D=16.  A WHATSAT counts as good only if its "
              "places status is OK or ZERO_RESULTS.  Right after each herd "
              "run, the emulator alone (a fresh `bin/herd-places` started "
              "by bench_places.py, 4 client processes with one keep-alive "
              "connection each) answers the same query: the one point "
              "herd-bench gives every client, radius 10 km." % f["data"], "",
              "| run | herd WHATSAT/s | bad | emulator alone /s | ratio | "
              "upstream requests per WHATSAT | CPU per WHATSAT, nodes / "
              "emulator (us) |", "|---|---|---|---|---|---|---|"]
        for i, r in enumerate(rows):
            a = f["alone"][i] if i < len(f["alone"]) else float("nan")
            L.append("| %d | %s | %d | %s | %.2fx | %.3f | %.0f / %.0f |" % (
                i + 1, fmt_rps(r["rps"]), r["bad"], fmt_rps(a),
                r["rps"] / a if a else float("nan"),
                r.get("upstream_per_whatsat", float("nan")),
                r["node_cpu_us"], r["emu_cpu_us"]))
        herd, alone = med([r["rps"] for r in rows]), med(f["alone"])
        L += ["",
              "Medians: herd %s /s (p50 %.0f us, p99 %.0f us), emulator "
              "alone %s /s, ratio %.2fx.%s" % (
                  fmt_rps(herd), med([r["latency_us"]["p50"] for r in rows]),
                  med([r["latency_us"]["p99"] for r in rows]),
                  fmt_rps(alone), herd / alone if alone else float("nan"),
                  ("  Nodes that died: %s." % ", ".join(f["dead"]))
                  if f["dead"] else ""), "",
              "    " + f["seed_cmd"], "    " + f["cmd"],
              "    " + f["alone_cmd"], ""]
    f = figs.get("emulator")
    if f:
        L += ["### The emulator per answer, in process", "",
              "`herd-places --bench`: 2,000 queries around random places "
              "(moved up to ~5 km), at 5 km and at 50 km; the index alone, "
              "then the whole legacy answer (index, JSON text).  %s" % (
                  "Before: the before build's herd-places (BENCH_BEFORE_BIN) "
                  "run right after each run of this one, runs interleaved."
                  if f.get("before") else
                  "Before: the figure measured beside the before build "
                  "(see the note above)."), "",
              "| radius | index only, us (median) | index + legacy JSON, us "
              "(median) | before, us | runs (us per answer) |",
              "|---|---|---|---|---|"]
        for rad, key in ((5000, "emu5"), (50000, "emu50")):
            L.append("| %d km | %.2f | %.2f | %s | %s%s |" % (
                rad // 1000, med([r[rad][0] for r in f["runs"]]),
                med([r[rad][1] for r in f["runs"]]),
                "%.1f" % med([r[rad][1] for r in f["before"]])
                if f.get("before") else before(key, "%.1f"),
                ", ".join("%.1f" % r[rad][1] for r in f["runs"]),
                ("; before: " + ", ".join("%.1f" % r[rad][1]
                                          for r in f["before"]))
                if f.get("before") else ""))
        L += ["", "    " + f["cmd"], ""]
    for key, why in sorted(failures.items()):
        L += ["Figure %s failed in this run: %s" % (key, why), ""]
    L += [W_END, ""]
    return "\n".join(L)


def write_section(text, begin=BEGIN, end=END):
    old = ""
    if os.path.exists(OUT):
        with open(OUT) as f:
            old = f.read()
    if begin in old and end in old:
        head = old[:old.index(begin)]
        tail = old[old.index(end) + len(end):]
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
            ("converge", lambda: fig_converge(tmp)),
            ("halfload", lambda: fig_halfload(tmp, figs)),
            ("memory", lambda: fig_memory(tmp)),
            ("relearn", lambda: fig_relearn(tmp)),
            ("mesh", lambda: fig_mesh(tmp)),
            ("whatsat_cg", lambda: fig_whatsat_cg(tmp)),
            ("whatsat", lambda: fig_whatsat(tmp)),
            ("emulator", lambda: fig_emulator(tmp)),
            ("catchup", lambda: fig_catchup(tmp)),
            ("tls", lambda: fig_tls(tmp))]
    rc = 0
    t_begin = time.monotonic()
    try:
        for key, fn in plan:
            if key in SKIP or (ONLY and key not in ONLY) or not have_node:
                continue
            if key in ("callgrind", "whatsat_cg") and not VALGRIND:
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
        m["minutes"] = (time.monotonic() - t_begin) / 60
        if os.environ.get("BENCH_JSON"):
            with open(os.environ["BENCH_JSON"], "w") as f:
                json.dump(figs, f, default=str)
        cu, cu_fail = figs.pop("catchup", None), failures.pop("catchup", None)
        tl, tl_fail = figs.pop("tls", None), failures.pop("tls", None)
        main_figs = {k: v for k, v in figs.items() if k not in WHATSAT_KEYS}
        main_fail = {k: v for k, v in failures.items() if k not in WHATSAT_KEYS}
        if main_figs or main_fail:
            write_section(report(m, main_figs, main_fail))
            log("wrote %s" % OUT)
        w_figs = {k: v for k, v in figs.items() if k in WHATSAT_KEYS}
        w_fail = {k: v for k, v in failures.items() if k in WHATSAT_KEYS}
        if w_figs or w_fail:
            write_section(whatsat_report(m, w_figs, w_fail), W_BEGIN, W_END)
            log("wrote the WHATSAT section of %s" % OUT)
        if cu:
            write_section(report_catchup(m, cu), CU_BEGIN, CU_END)
            log("wrote the catch-up section of %s" % OUT)
        elif cu_fail:
            log("catch-up figure failed; its section is left as it was")
        if tl:
            write_section(report_tls(m, tl), TLS_BEGIN, TLS_END)
            log("wrote the TLS section of %s" % OUT)
        elif tl_fail:
            log("tls figure failed; its section is left as it was")
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
