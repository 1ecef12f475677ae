"""Helpers for the supervisor and herdctl black-box tests: a herd run by
herdctl in a temp dir, every process it starts tracked by pid so the test
kills it even when it fails."""

import json
import os
import signal
import subprocess
import time

from herdlib import binary, wait_for, write_ini


def pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


class SupHerd:
    """A herd.ini in a temp dir and the herdctl that drives it."""

    def __init__(self, registry, directory, topology, herd=None, places=None,
                 ports=None, env=None):
        self.registry = registry
        self.dir = str(directory)
        self.topology = dict(topology)
        self.herd = {"stop_grace_s": "2"}
        self.herd.update(herd or {})
        self.places = places
        self.ini, self.ports = write_ini(self.dir, self.topology, ports=ports,
                                         herd=self.herd, places=places)
        self.env = dict(os.environ)
        self.env.pop("HERD_CONFIG", None)
        self.env.update(env or {})
        self.seen = set()

    # -- running herdctl ---------------------------------------------------
    def ctl(self, *args, timeout=60, config=True):
        cmd = [binary("herdctl")]
        if config:
            cmd += ["-c", self.ini]
        cmd += list(args)
        p = subprocess.run(cmd, cwd=self.dir, env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        self.track()
        return p

    def rewrite(self, topology, ports=None, herd=None, places=None):
        """Write a new herd.ini over the old one (same file)."""
        self.topology = dict(topology)
        merged = dict(self.ports)
        merged.update(ports or {})
        h = dict(self.herd)
        h.update(herd or {})
        _, self.ports = write_ini(self.dir, self.topology, ports=merged,
                                  herd=h, places=places or self.places)

    def run_path(self, name):
        return os.path.join(self.dir, "run", name)

    def log_path(self, name):
        return os.path.join(self.dir, "logs", name + ".log")

    def log(self, name):
        try:
            with open(self.log_path(name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- what runs ---------------------------------------------------------
    def supervisor_pid(self):
        try:
            with open(self.run_path("supervisor.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def track(self):
        """Register every pid the herd has, for the teardown kill."""
        pids = set()
        sp = self.supervisor_pid()
        if sp:
            pids.add(sp)
        try:
            with open(self.run_path("supervisor.state")) as f:
                for line in f:
                    parts = line.split()
                    if parts:
                        pids.add(int(parts[0]))
        except (OSError, ValueError):
            pass
        for pid in pids - self.seen:
            self.registry.add_pid(pid)
        self.seen |= pids

    def status(self):
        p = self.ctl("status", "--json")
        assert p.returncode in (0, 3, 4), p.stderr
        st = json.loads(p.stdout)
        for n in st["nodes"]:
            if n.get("pid"):
                if n["pid"] not in self.seen:
                    self.registry.add_pid(n["pid"])
                    self.seen.add(n["pid"])
        return st

    def node(self, name, st=None):
        st = st or self.status()
        for n in st["nodes"]:
            if n["name"] == name:
                return n
        return None

    def pids(self):
        return {n["name"]: n["pid"] for n in self.status()["nodes"]}

    def wait_state(self, name, state, timeout=30):
        return wait_for(lambda: (lambda n: n if n and n["state"] == state
                                 else None)(self.node(name)),
                        timeout=timeout, interval=0.1,
                        what="%s to be %s" % (name, state))

    def wait_links(self, name, up, timeout=30):
        return wait_for(lambda: (lambda n: n if n and n["state"] == "running"
                                 and n["links_up"] == up
                                 and n["links_total"] == up else None)(
                                     self.node(name)),
                        timeout=timeout, interval=0.1,
                        what="%s to have %d links up" % (name, up))

    def start(self):
        p = self.ctl("start")
        assert p.returncode == 0, (p.stdout, p.stderr)
        return p

    def stop(self):
        """Stop through herdctl; returns every pid that ran."""
        sp = self.supervisor_pid()
        p = self.ctl("stop")
        assert p.returncode == 0, (p.stdout, p.stderr)
        return sp, p


def kill_all(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_gone(pids, timeout=20):
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=timeout,
             interval=0.05, what="pids %s to be gone" % sorted(pids))


def line_topology(names):
    """A - B - C ... as a topology dict."""
    topo = {n: [] for n in names}
    for a, b in zip(names, names[1:]):
        topo[a].append(b)
    return topo


def now():
    return time.monotonic()


def sanitizer_reports(h):
    """ASan/UBSan reports that reached any log of the herd (children's
    stderr and the daemon's stderr both land in logs/)."""
    found = []
    logs = os.path.join(h.dir, "logs")
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name), errors="replace") as f:
            for line in f:
                if "AddressSanitizer" in line or "runtime error:" in line \
                        or "LeakSanitizer" in line:
                    found.append("%s: %s" % (name, line.strip()))
    return found
