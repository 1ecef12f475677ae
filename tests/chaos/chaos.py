#!/usr/bin/env python3
"""Chaos run of a supervised five-node herd.

Client threads send IAMATs to every node, for many client ids, and keep
every acknowledged reply.  Meanwhile a fault thread kills nodes with
SIGKILL (the supervisor restarts them), stops and starts nodes through
herdctl, cuts the herd in two by rewriting herd.ini without the links
between two groups (herdctl reload), then heals, and flaps links: every
TCP connection into one node's port is aborted (`ss -K`, as root), so its
links drop and come back at once and catch up incrementally, between
the restarts.  When the load stops and
the herd is whole again, every node must hold, for every client id, the
newest acknowledged record or a later one that was sent but whose reply
never came back -- the same AT line at every node -- within a deadline.

An IAMAT whose connection died before its reply came is not acknowledged;
the node may still have applied (and flooded) it, so a record newer than
the newest acknowledged one is accepted when it is one that was sent.

    tests/chaos/chaos.py [--duration S] [--ids N] [--workers N] ...

Prints updates acknowledged, updates lost, faults injected and the time
to converge; exits 0 when nothing was lost and the herd converged, 1
otherwise, 100 on usage errors.  Uses HERD_BIN (default bin/) for the
programs.  Every process it starts is stopped, and then killed by pid
(checked against its command line), whatever happens.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "blackbox"))

from herdlib import DEFAULT_TOPOLOGY, binary, free_port, write_ini  # noqa: E402

# The supervisor gives up on a node that dies 5 times within 60 s; stay
# well under that so every kill is followed by a restart.
KILLS_PER_MINUTE = 3


def log(msg):
    sys.stdout.write("chaos: %s\n" % msg)
    sys.stdout.flush()


def edges_of(topology):
    out = set()
    for a, ns in topology.items():
        for b in ns:
            out.add(tuple(sorted((a, b))))
    return out


def topology_of(names, edges):
    topo = {n: [] for n in names}
    for a, b in sorted(edges):
        topo[a].append(b)
    return topo


def fmt_time(ns):
    return "%d.%09d" % divmod(ns, 10**9)


def parse_time(text):
    sec, _, frac = text.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


# -- the herd ---------------------------------------------------------------

class ChaosHerd:
    """A supervised herd in a directory, driven by herdctl."""

    def __init__(self, directory, topology, fsync="always"):
        self.dir = directory
        self.names = list(topology)
        self.topology = topology
        self.edges = edges_of(topology)
        self.herd = {"stop_grace_s": "2", "data_dir": "data", "fsync": fsync}
        # Places fail fast (nothing listens there); the url stays the same
        # across rewrites so a reload touches nothing but links.
        self.places = {"url": "http://127.0.0.1:%d" % free_port()}
        self.ini, self.ports = write_ini(directory, topology, herd=self.herd,
                                         places=self.places)
        self.env = dict(os.environ)
        self.env.pop("HERD_CONFIG", None)
        self.pids_seen = set()

    def ctl(self, *args, timeout=60):
        p = subprocess.run([binary("herdctl"), "-c", self.ini] + list(args),
                           cwd=self.dir, env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        return p

    def status(self):
        p = self.ctl("status", "--json")
        if p.returncode not in (0, 3):
            return None
        try:
            st = json.loads(p.stdout)
        except ValueError:
            return None
        nodes = {n["name"]: n for n in st.get("nodes", [])}
        for n in nodes.values():
            if n.get("pid"):
                self.pids_seen.add(n["pid"])
        return nodes

    def write_edges(self, edges):
        write_ini(self.dir, topology_of(self.names, edges), ports=self.ports,
                  herd=self.herd, places=self.places)

    def supervisor_pid(self):
        try:
            with open(os.path.join(self.dir, "run", "supervisor.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def ours(self, pid):
        """True when pid runs one of this herd's programs (its command
        line names our herd.ini), so a recycled pid is never killed."""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return self.ini.encode() in f.read()
        except OSError:
            return False

    def kill(self, pid, sig=signal.SIGKILL):
        if pid and self.ours(pid):
            try:
                os.kill(pid, sig)
                return True
            except (ProcessLookupError, PermissionError):
                pass
        return False

    def wait_whole(self, timeout):
        """Until every node runs with every link up; returns the time it
        took, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            st = self.status()
            if st and len(st) == len(self.names) and all(
                    n["state"] == "running" and n["links_total"] > 0 and
                    n["links_up"] == n["links_total"] for n in st.values()):
                return time.monotonic() - t0
            time.sleep(0.2)
        return None

    def cleanup(self):
        """Stop the herd, then kill by pid whatever of ours still runs."""
        try:
            self.ctl("stop", timeout=30)
        except Exception:
            pass
        pids = set(self.pids_seen)
        sp = self.supervisor_pid()
        if sp:
            pids.add(sp)
        try:
            with open(os.path.join(self.dir, "run", "supervisor.state")) as f:
                for line in f:
                    parts = line.split()
                    if parts and parts[0].isdigit():
                        pids.add(int(parts[0]))
        except OSError:
            pass
        for pid in pids:
            self.kill(pid)

    def sanitizer_reports(self):
        found = []
        logs = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, name), errors="replace") as f:
                for line in f:
                    if ("AddressSanitizer" in line or "runtime error:" in line
                            or "LeakSanitizer" in line):
                        found.append("%s: %s" % (name, line.strip()))
        return found


# -- load -------------------------------------------------------------------

class Ledger:
    """What the clients know: every IAMAT sent, and per client id the
    newest acknowledged one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}       # id -> {client time ns: location}
        self.acked = {}      # id -> (client time ns, AT line)
        self.n_acked = 0
        self.n_sent = 0
        self.n_unacked = 0   # sent, connection lost before the reply
        self.n_refused = 0   # connect failed: never sent
        self.bad_replies = []

    def note_sent(self, cid, t, loc):
        with self.lock:
            self.sent.setdefault(cid, {})[t] = loc
            self.n_sent += 1

    def note_acked(self, cid, t, line):
        with self.lock:
            self.n_acked += 1
            old = self.acked.get(cid)
            if old is None or t > old[0]:
                self.acked[cid] = (t, line)


class Worker(threading.Thread):
    """One client program: owns its ids, talks to every node in turn."""

    def __init__(self, index, herd, ledger, ids, stop, seed):
        super().__init__(daemon=True)
        self.herd = herd
        self.ledger = ledger
        self.ids = ids
        self.stop = stop
        self.rng = random.Random(seed)
        self.conns = {}
        self.cool = {}
        self.last_t = 0
        self.index = index

    def conn(self, name):
        s = self.conns.get(name)
        if s is None:
            s = socket.create_connection(("127.0.0.1", self.herd.ports[name]),
                                         timeout=3)
            s.settimeout(10)
            self.conns[name] = [s, b""]
        return self.conns[name]

    def drop(self, name, cool=0.2):
        c = self.conns.pop(name, None)
        if c:
            c[0].close()
        self.cool[name] = time.monotonic() + cool

    def read_line(self, c):
        while b"\n" not in c[1]:
            chunk = c[0].recv(65536)
            if not chunk:
                raise EOFError
            c[1] += chunk
        line, _, c[1] = c[1].partition(b"\n")
        return line.decode(errors="replace")

    def run(self):
        while not self.stop.is_set():
            now = time.monotonic()
            names = [n for n in self.herd.names if self.cool.get(n, 0) <= now]
            if not names:
                time.sleep(0.05)
                continue
            name = self.rng.choice(names)
            cid = self.rng.choice(self.ids)
            try:
                c = self.conn(name)
            except OSError:
                with self.ledger.lock:
                    self.ledger.n_refused += 1
                self.drop(name)
                continue
            t = max(time.time_ns(), self.last_t + 1)
            self.last_t = t
            loc = "%+.6f%+.6f" % (self.rng.uniform(-90, 90),
                                  self.rng.uniform(-180, 180))
            req = "IAMAT %s %s %s" % (cid, loc, fmt_time(t))
            self.ledger.note_sent(cid, t, loc)
            try:
                c[0].sendall(req.encode() + b"\n")
                reply = self.read_line(c)
            except (OSError, EOFError):
                with self.ledger.lock:
                    self.ledger.n_unacked += 1
                self.drop(name)
                continue
            f = reply.split(" ")
            if (len(f) == 6 and f[0] == "AT" and f[1] == name and
                    " ".join(f[3:]) == req[len("IAMAT "):]):
                self.ledger.note_acked(cid, t, reply)
            else:
                with self.ledger.lock:
                    self.ledger.n_unacked += 1
                    if len(self.ledger.bad_replies) < 10:
                        self.ledger.bad_replies.append((name, req, reply))
                self.drop(name)
        for name in list(self.conns):
            self.drop(name)


# -- faults -----------------------------------------------------------------

class Faults(threading.Thread):
    """Kills, stops and link partitions at random, each healed in time."""

    def __init__(self, herd, stop, interval, seed, kinds):
        super().__init__(daemon=True)
        self.herd = herd
        self.stop = stop
        self.interval = interval
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.first = list(kinds)
        self.rng.shuffle(self.first)
        self.kills = {n: [] for n in herd.names}
        self.stopped = {}           # name -> time to start it again
        self.cut = None             # (edges removed, time to heal)
        self.counts = {"kill -9": 0, "node stop": 0, "link partition": 0,
                       "link flap": 0}
        self.events = []
        self.errors = []

    def note(self, what):
        self.events.append("%.1f %s" % (time.monotonic(), what))

    def heal_due(self, force=False):
        now = time.monotonic()
        for name, when in list(self.stopped.items()):
            if force or now >= when:
                p = self.herd.ctl("start", name)
                if p.returncode != 0:
                    self.errors.append("start %s: %s" % (name, p.stderr))
                del self.stopped[name]
                self.note("start %s" % name)
        if self.cut and (force or now >= self.cut[1]):
            self.herd.write_edges(self.herd.edges)
            p = self.herd.ctl("reload")
            if p.returncode not in (0, 3):
                self.errors.append("reload (heal): %s" % p.stderr)
            self.cut = None
            self.note("heal links")

    def kill_one(self, st):
        now = time.monotonic()
        choices = [n for n, v in st.items() if v["state"] == "running" and
                   v.get("pid") and n not in self.stopped and
                   len([t for t in self.kills[n] if now - t < 60]) <
                   KILLS_PER_MINUTE]
        if not choices:
            return False
        name = self.rng.choice(choices)
        if self.herd.kill(st[name]["pid"]):
            self.kills[name].append(now)
            self.counts["kill -9"] += 1
            self.note("kill -9 %s (pid %d)" % (name, st[name]["pid"]))
            return True
        return False

    def stop_some(self, st):
        running = [n for n, v in st.items() if v["state"] == "running" and
                   n not in self.stopped]
        if len(self.stopped) >= 2 or len(running) < 4:
            return False
        k = self.rng.choice((1, 2)) if len(self.stopped) == 0 else 1
        for name in self.rng.sample(running, k):
            p = self.herd.ctl("stop", name)
            if p.returncode != 0:
                self.errors.append("stop %s: %s" % (name, p.stderr))
                continue
            self.stopped[name] = time.monotonic() + self.rng.uniform(1.0, 4.0)
            self.counts["node stop"] += 1
            self.note("stop %s" % name)
        return True

    def partition(self):
        if self.cut:
            return False
        names = list(self.herd.names)
        self.rng.shuffle(names)
        k = self.rng.randint(1, len(names) - 1)
        side = set(names[:k])
        cross = {e for e in self.herd.edges if (e[0] in side) != (e[1] in side)}
        self.herd.write_edges(self.herd.edges - cross)
        p = self.herd.ctl("reload")
        if p.returncode not in (0, 3):
            self.errors.append("reload (cut): %s" % p.stderr)
        self.cut = (cross, time.monotonic() + self.rng.uniform(1.5, 4.0))
        self.counts["link partition"] += 1
        self.note("cut %s | %s" % (" ".join(sorted(side)),
                                   " ".join(sorted(set(names) - side))))
        return True

    def flap(self, st):
        """Abort every connection into one running node's port: its links
        (and clients) drop; the dialers are back within their backoff."""
        running = [n for n, v in st.items() if v["state"] == "running"]
        if not running:
            return False
        name = self.rng.choice(running)
        p = subprocess.run(["ss", "-K", "state", "established", "dport", "=",
                            ":%d" % self.herd.ports[name]],
                           capture_output=True, timeout=10)
        if p.returncode != 0:
            self.errors.append("ss -K: %s" % p.stderr)
            return False
        self.counts["link flap"] += 1
        self.note("flap links into %s" % name)
        return True

    def run(self):
        while not self.stop.wait(self.interval * self.rng.uniform(0.5, 1.5)):
            try:
                self.heal_due()
                st = self.herd.status()
                if not st:
                    continue
                # Every kind once (in a random order) first, then at random.
                kind = self.first.pop() if self.first else \
                    self.rng.choice(self.kinds)
                if kind == "kill":
                    self.kill_one(st)
                elif kind == "stop":
                    self.stop_some(st)
                elif kind == "cut":
                    self.partition()
                elif kind == "flap":
                    self.flap(st)
            except Exception as e:   # keep injecting; report at the end
                self.errors.append("fault thread: %r" % (e,))

    def total(self):
        return sum(self.counts.values())


# -- reading every node's records -------------------------------------------

def read_records(port, ids, timeout=60):
    """{id: stored AT line or None} from one node, by pipelined
    `WHATSAT id 1 1` (places fail fast; the first line is the record)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(timeout)
    err = []

    def writer():
        try:
            s.sendall("".join("WHATSAT %s 1 1\n" % i for i in ids).encode())
        except OSError as e:
            err.append(e)
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    buf = b""
    out = {}
    try:
        for cid in ids:
            while b"\n" not in buf:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise EOFError("node closed the connection")
                buf += chunk
            first, _, buf = buf.partition(b"\n")
            if first.startswith(b"? "):
                out[cid] = None
                continue
            while b"\n\n" not in buf:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise EOFError("node closed the connection")
                buf += chunk
            buf = buf[buf.index(b"\n\n") + 2:]
            out[cid] = first.decode(errors="replace")
    finally:
        s.close()
        w.join(5)
    return out


def check(herd, ledger, ids):
    """Compare every node with the ledger.  Returns (lost, diverged,
    phantom, examples)."""
    views = {}
    for name in herd.names:
        try:
            views[name] = read_records(herd.ports[name], ids)
        except (OSError, EOFError) as e:
            views[name] = None
            return None, None, None, ["%s unreadable: %r" % (name, e)]
    lost = diverged = phantom = 0
    examples = []
    for cid in ids:
        recs = {name: views[name].get(cid) for name in herd.names}
        acked = ledger.acked.get(cid)
        sent = ledger.sent.get(cid, {})
        distinct = set(recs.values())
        if len(distinct) > 1:
            diverged += 1
            if len(examples) < 5:
                examples.append("diverged %s: %r" % (cid, recs))
        id_lost = False
        for name, r in recs.items():
            if r is None:
                if acked:
                    id_lost = True
                continue
            f = r.split(" ")
            t = parse_time(f[5])
            if acked and (t < acked[0] or (t == acked[0] and r != acked[1])):
                id_lost = True
            if t not in sent or sent[t] != f[4] or f[3] != cid:
                phantom += 1
                if len(examples) < 5:
                    examples.append("phantom at %s: %s" % (name, r))
        if id_lost:
            lost += 1
            if len(examples) < 5:
                examples.append("lost %s: acked %r, nodes %r" % (
                    cid, acked, recs))
    return lost, diverged, phantom, examples


# -- the run ----------------------------------------------------------------

def flaps_possible():
    """ss -K aborts sockets: root, iproute2 and a kernel with
    CONFIG_INET_DIAG_DESTROY."""
    if os.geteuid() != 0 or not shutil.which("ss"):
        return False
    lsock = socket.socket()
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        a, _ = lsock.accept()
        subprocess.run(["ss", "-K", "state", "established", "dport", "=",
                        ":%d" % port], capture_output=True, timeout=10)
        c.settimeout(2)
        try:
            return c.recv(1) == b""
        except OSError:
            return True
        finally:
            c.close()
            a.close()
    except OSError:
        return False
    finally:
        lsock.close()


def catchups(herd):
    """Catch-ups the nodes sent, by kind, from their status files."""
    out = {"incremental": 0, "full": 0}
    for name in herd.names:
        try:
            with open(os.path.join(herd.dir, "run", name + ".status")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        for link in st.get("links", []):
            cu = link.get("catchup") or {}
            for k in out:
                out[k] += int(cu.get(k, 0))
    return out


def run(directory, duration=20.0, n_ids=300, workers=6, interval=1.0,
        converge_timeout=60.0, seed=None, fsync="always",
        kinds=("kill", "kill", "stop", "cut", "flap")):
    """One chaos run in directory; returns a dict of results."""
    if "flap" in kinds and not flaps_possible():
        kinds = tuple(k for k in kinds if k != "flap")
        log("no link flaps here (needs root and ss -K)")
    seed = seed if seed is not None else random.randrange(1 << 30)
    log("seed %d, %d s of load, %d ids, %d client threads, fsync=%s, bin %s"
        % (seed, duration, n_ids, workers, fsync, os.path.dirname(
            binary("herd-node"))))
    herd = ChaosHerd(directory, dict(DEFAULT_TOPOLOGY), fsync=fsync)
    res = {"seed": seed, "dir": directory}
    try:
        p = herd.ctl("start")
        if p.returncode != 0:
            raise RuntimeError("herdctl start: %s %s" % (p.stdout, p.stderr))
        if herd.wait_whole(30) is None:
            raise RuntimeError("herd never came up whole: %r" % herd.status())
        ledger = Ledger()
        ids = ["chaos-%d-%d" % (seed, i) for i in range(n_ids)]
        stop_load = threading.Event()
        stop_faults = threading.Event()
        per = [ids[i::workers] for i in range(workers)]
        ws = [Worker(i, herd, ledger, per[i], stop_load, seed + i)
              for i in range(workers)]
        faults = Faults(herd, stop_faults, interval, seed ^ 0x5eed, kinds)
        t0 = time.monotonic()
        for w in ws:
            w.start()
        faults.start()
        time.sleep(duration)
        stop_faults.set()
        faults.join(60)
        stop_load.set()
        for w in ws:
            w.join(30)
        t_load = time.monotonic()
        log("load stopped after %.1f s; healing" % (t_load - t0))
        faults.heal_due(force=True)
        # A node the supervisor gave up on is started again, and said so.
        st = herd.status() or {}
        for name, n in st.items():
            if n["state"] == "fatal":
                faults.errors.append("%s went fatal: %r" % (name, n))
                herd.ctl("start", name)
        whole = herd.wait_whole(60)
        t_whole = time.monotonic()
        res["whole_after_s"] = None if whole is None else t_whole - t_load
        converged = None
        result = (None, None, None, ["never checked"])
        deadline = t_whole + converge_timeout
        while True:
            result = check(herd, ledger, ids)
            if result[0] == 0 and result[1] == 0 and result[2] == 0:
                converged = time.monotonic() - t_whole
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lost, diverged, phantom, examples = result
        res.update({
            "sent": ledger.n_sent, "acknowledged": ledger.n_acked,
            "unacknowledged": ledger.n_unacked, "refused": ledger.n_refused,
            "ids_acked": len(ledger.acked), "lost": lost,
            "diverged": diverged, "phantom": phantom,
            "examples": examples, "faults": dict(faults.counts),
            "faults_total": faults.total(), "fault_errors": faults.errors,
            "bad_replies": ledger.bad_replies, "converged_s": converged,
            "load_s": t_load - t0, "events": faults.events,
        })
        st = herd.status() or {}
        res["restarts"] = {n: v.get("restarts") for n, v in st.items()}
        res["catchups"] = catchups(herd)
        res["kinds"] = kinds
        res["sanitizer"] = herd.sanitizer_reports()
        return res
    finally:
        herd.cleanup()
        res["sanitizer"] = herd.sanitizer_reports()


def report(res):
    f = res.get("faults", {})
    log("updates sent:          %d (%d acknowledged, %d without a reply, "
        "%d connects refused)" % (res["sent"], res["acknowledged"],
                                  res["unacknowledged"], res["refused"]))
    log("client ids:            %d with an acknowledged update"
        % res["ids_acked"])
    log("updates acknowledged:  %d" % res["acknowledged"])
    log("updates lost:          %s" % res["lost"])
    log("ids diverged:          %s, records never sent: %s"
        % (res["diverged"], res["phantom"]))
    log("faults injected:       %d (%s)" % (res["faults_total"], ", ".join(
        "%s %d" % kv for kv in sorted(f.items()))))
    log("supervisor restarts:   %s" % res.get("restarts"))
    log("catch-ups sent:        %s (since each node's last start)"
        % res.get("catchups"))
    log("herd whole again:      %s s after the load stopped" % (
        "%.1f" % res["whole_after_s"] if res["whole_after_s"] is not None
        else "never"))
    log("time to converge:      %s" % (
        "%.2f s after the herd was whole" % res["converged_s"]
        if res["converged_s"] is not None else "NOT CONVERGED"))
    for e in res["examples"]:
        log("  " + e)
    for e in res["fault_errors"]:
        log("  fault error: " + e)
    for b in res["bad_replies"]:
        log("  bad reply: %r" % (b,))
    for s in res["sanitizer"][:10]:
        log("  sanitizer: " + s)


def ok(res):
    return (res.get("lost") == 0 and res.get("diverged") == 0 and
            res.get("phantom") == 0 and res.get("converged_s") is not None
            and not res.get("sanitizer") and res.get("acknowledged", 0) > 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=180.0,
                    help="seconds of load and faults (default 180)")
    ap.add_argument("--ids", type=int, default=2000,
                    help="client ids (default 2000)")
    ap.add_argument("--workers", type=int, default=8,
                    help="client threads (default 8)")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="mean seconds between faults (default 1)")
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--fsync", default="always",
                    choices=("always", "everysec", "no"))
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true",
                    help="keep the herd's directory (logs, data)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 100 if e.code else 0
    directory = tempfile.mkdtemp(prefix="herd-chaos-")
    res = run(directory, duration=args.duration, n_ids=args.ids,
              workers=args.workers, interval=args.interval,
              converge_timeout=args.converge_timeout, seed=args.seed,
              fsync=args.fsync)
    report(res)
    good = ok(res)
    if args.keep or not good:
        log("kept %s" % directory)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    log("PASS" if good else "FAIL")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
