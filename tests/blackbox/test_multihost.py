"""A herd across hosts.

On loopback (any user): herd-supervisor/herdctl start only this machine's
nodes (--host ADDR picks one address), show the others as `remote` with
the state of our links to them, and start the places emulator only where
a node runs.

In network namespaces (root and a working `ip netns`; skipped otherwise):
five hosts, each its own network stack and address in 198.18.0.0/24 (the
RFC 2544 benchmarking range), joined by veth pairs to a bridge that lives
in a namespace of its own, so nothing is added to the machine's own
network.  One herd-node per host from one herd.ini; the client protocol
across hosts; a host cut off (its switch port down) while clients write
on both sides, then healed, and every node converging on the newest
record of every client.  Every process is killed by pid and every
namespace (with the veths and bridge inside) deleted, pass or fail.
"""

import ctypes
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from herdlib import (DEFAULT_TOPOLOGY, Client, ProcessRegistry, binary,
                     free_port, port_open, wait_for, write_ini)
from supervisorlib import SupHerd, pid_alive, sanitizer_reports

NOWHERE = "198.18.0.250"        # in the test range, never configured here


# --------------------------------------------------------------------------
# loopback: which nodes a machine runs

def status_json(h, *args):
    p = h.ctl("status", "--json", *args)
    return p.returncode, json.loads(p.stdout)


def by_name(st):
    return {n["name"]: n for n in st["nodes"]}


def write_hosts(h, hosts, places=None):
    write_ini(h.dir, h.topology, ports=h.ports, herd=h.herd,
              places=places or h.places, hosts=hosts)


def test_local_nodes_start_and_others_show_remote(procs, tmp_path):
    topo = {"A": ["B"], "B": ["C"], "C": []}
    h = SupHerd(procs, tmp_path, topo)
    # A and B are this machine's (127/8 is always local); C is elsewhere.
    write_hosts(h, {"A": "127.0.0.1", "B": "127.0.0.2", "C": NOWHERE})
    h.start()
    h.wait_links("A", 1)
    rc, st = status_json(h)
    nodes = by_name(st)
    assert rc == 0, "only local nodes count for the exit code"
    assert nodes["A"]["state"] == nodes["B"]["state"] == "running"
    assert nodes["C"]["state"] == "remote"
    assert nodes["C"]["pid"] is None and nodes["C"]["host"] == NOWHERE
    assert nodes["C"]["links_here"] == [{"from": "B", "state":
                                         nodes["C"]["links_here"][0]["state"]}]
    assert nodes["C"]["links_here"][0]["state"] != "up"
    assert (nodes["C"]["links_up"], nodes["C"]["links_total"]) == (0, 1)
    assert st["herd"]["host"] is None

    p = h.ctl("status")
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert "remote" in out and "on host %s" % NOWHERE in out, out
    assert "links from here: B " in out, out
    # A remote node asked for by name: 3 while our link to it is down.
    assert h.ctl("status", "C").returncode == 3
    p = h.ctl("start", "C")
    assert p.returncode == 4 and b"runs on host " + NOWHERE.encode() \
        in p.stderr, p.stderr
    p = h.ctl("graph")
    assert p.returncode == 0 and b'"B" -- "C" [label="down"' in p.stdout, \
        p.stdout

    # A reload that moves B away stops it; B becomes remote.
    write_hosts(h, {"A": "127.0.0.1", "B": NOWHERE, "C": NOWHERE})
    p = h.ctl("reload")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"moved to host " + NOWHERE.encode() in p.stdout, p.stdout
    wait_for(lambda: by_name(status_json(h)[1])["B"]["state"] == "remote",
             timeout=15, what="B to become remote")
    nodes = by_name(status_json(h)[1])
    assert nodes["A"]["state"] == "running"
    assert nodes["B"]["links_here"][0]["from"] == "A"
    h.stop()
    assert sanitizer_reports(h) == []


def test_host_option_picks_one_address(procs, tmp_path):
    topo = {"A": ["B"], "B": []}
    h = SupHerd(procs, tmp_path, topo)
    write_hosts(h, {"A": "127.0.0.1", "B": "127.0.0.2"})
    p = h.ctl("start", "--host", "127.0.0.2")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"1 of 1 nodes running (1 more on other hosts)" in p.stdout, \
        p.stdout
    rc, st = status_json(h)
    nodes = by_name(st)
    assert rc == 0
    assert st["herd"]["host"] == "127.0.0.2"
    assert nodes["B"]["state"] == "running"
    assert nodes["A"]["state"] == "remote"
    assert nodes["A"]["links_here"][0]["from"] == "B"
    assert b"not started here" in open(
        os.path.join(h.dir, "logs", "supervisor.log"), "rb").read()
    # Asking again with another address says what runs.
    p = h.ctl("start", "--host", "127.0.0.1")
    assert p.returncode == 0 and b"not --host 127.0.0.1" in p.stderr, \
        p.stderr
    h.stop()

    # An address no node has is a usage error, before anything starts.
    p = subprocess.run([binary("herd-supervisor"), "-c", h.ini, "--host",
                        "198.18.0.77"], capture_output=True, timeout=30)
    assert p.returncode == 100
    assert b"no node has host 198.18.0.77 (its hosts: 127.0.0.1, 127.0.0.2)" \
        in p.stderr, p.stderr


def test_no_node_here_starts_nothing_not_even_places(procs, tmp_path):
    topo = {"A": ["B"], "B": []}
    h = SupHerd(procs, tmp_path, topo)
    places_port = free_port()
    write_hosts(h, {"A": NOWHERE, "B": "198.18.0.251"},
                places={"provider": "local", "port": str(places_port),
                        "url": None})
    p = h.ctl("start")
    assert p.returncode == 100, (p.stdout, p.stderr)
    assert b"no node is on this machine" in p.stderr, p.stderr
    assert h.supervisor_pid() is None or not pid_alive(h.supervisor_pid())
    assert not port_open(places_port)
    assert not os.path.exists(h.log_path("places"))
    # Not running: status still tells ours (none) from the others'.
    rc, st = status_json(h)
    assert rc == 4
    assert {n["state"] for n in st["nodes"]} == {"stopped"}, \
        "with no node here, herdctl shows them all as its own"


# --------------------------------------------------------------------------
# network namespaces

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_unavailable():
    if os.geteuid() != 0:
        return "needs root for ip netns (CI runs the suite as root)"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    name = "herd-%d-probe" % os.getpid()
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if p.returncode != 0:
        return "ip netns does not work here: " + p.stderr.decode().strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    if not os.path.exists("/run/netns"):
        return "no /run/netns"
    return None


class Lab:
    """Five (or n) hosts on one bridge.  Names carry this process's pid;
    every interface is created inside a namespace of ours, so deleting the
    namespaces removes everything."""

    def __init__(self, n):
        pid = os.getpid()
        self.prefix = "herd-%d-" % pid
        self.tag = "hd%d" % (pid % 10000000)     # interface names <= 15
        self.sw = self.prefix + "sw"
        self.bridge = self.tag + "br"
        self.hosts = [self.prefix + "h%d" % i for i in range(n)]
        self.addrs = ["198.18.0.%d" % (i + 1) for i in range(n)]
        self.ports = [self.tag + "s%d" % i for i in range(n)]   # switch side
        self.eths = [self.tag + "e%d" % i for i in range(n)]    # host side
        self.made = []

    def ip(self, *args):
        p = subprocess.run(["ip"] + list(args), capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args),
                                              p.stderr.decode().strip()))
        return p.stdout.decode()

    def add_ns(self, name):
        self.ip("netns", "add", name)
        self.made.append(name)
        self.ip("-n", name, "link", "set", "lo", "up")

    def build(self):
        self.add_ns(self.sw)
        self.ip("-n", self.sw, "link", "add", self.bridge, "type", "bridge")
        self.ip("-n", self.sw, "link", "set", self.bridge, "up")
        for ns, addr, port, eth in zip(self.hosts, self.addrs, self.ports,
                                       self.eths):
            self.add_ns(ns)
            self.ip("-n", self.sw, "link", "add", port, "type", "veth",
                    "peer", "name", eth, "netns", ns)
            self.ip("-n", self.sw, "link", "set", port, "master", self.bridge)
            self.ip("-n", self.sw, "link", "set", port, "up")
            self.ip("-n", ns, "addr", "add", addr + "/24", "dev", eth)
            self.ip("-n", ns, "link", "set", eth, "up")

    def cut(self, i):
        self.ip("-n", self.sw, "link", "set", self.ports[i], "down")

    def heal(self, i):
        self.ip("-n", self.sw, "link", "set", self.ports[i], "up")

    def destroy(self):
        errors = []
        for ns in reversed(self.made):
            try:
                # The veths and the bridge live and die with these.
                self.ip("netns", "del", ns)
            except RuntimeError as e:
                errors.append(str(e))
        self.made = []
        left = [line.split()[0] for line in
                self.ip("netns", "list").splitlines()
                if line.startswith(self.prefix)]
        if errors or left:
            raise AssertionError("cleanup: %s; left: %s" % (errors, left))

    def connect(self, i, addr, port, timeout=10.0):
        """A TCP socket made inside host i's network stack."""
        out = {}

        def run():
            try:
                fd = os.open("/run/netns/" + self.hosts[i], os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, "setns: " + os.strerror(e))
                finally:
                    os.close(fd)
                out["sock"] = socket.create_connection((addr, port),
                                                       timeout=timeout)
            except BaseException as e:     # handed to the caller
                out["err"] = e

        # setns() moves only the calling thread: a throwaway one.
        t = threading.Thread(target=run)
        t.start()
        t.join()
        if "err" in out:
            raise out["err"]
        return out["sock"]


class NsClient(Client):
    """herdlib's raw client, on a socket made inside a namespace."""

    def __init__(self, lab, i, addr, port):
        self.sock = lab.connect(i, addr, port)
        self.buf = b""


@pytest.fixture
def lab():
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    lab = Lab(5)
    registry = ProcessRegistry()
    lab.registry = registry
    lab.pidfiles = []       # supervisors started by herdctl, found by file
    try:
        lab.build()
        yield lab
    finally:
        # Processes first (by pid), then the namespaces they lived in.
        for path in lab.pidfiles:
            for name in ("supervisor.pid", "supervisor.state"):
                try:
                    with open(os.path.join(path, name)) as f:
                        for line in f:
                            if line.split():
                                registry.add_pid(int(line.split()[0]))
                except (OSError, ValueError):
                    pass
        registry.cleanup()
        lab.destroy()


def node_status(directory, name):
    try:
        with open(os.path.join(directory, "run", name + ".status")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def t_text(sec, nsec=0):
    return "%d.%09d" % (sec, nsec)


PORT = 12000                    # every host may use the same port


def test_five_hosts_in_namespaces(lab, tmp_path):
    names = list(DEFAULT_TOPOLOGY)
    host_of = dict(zip(names, lab.addrs))
    idx = {n: i for i, n in enumerate(names)}
    d = str(tmp_path)
    ini, _ = write_ini(d, DEFAULT_TOPOLOGY, ports={n: PORT for n in names},
                       hosts=host_of, herd={"stop_grace_s": "2"})
    procs = {}
    for n in names:
        p = lab.registry.start(["ip", "netns", "exec", lab.hosts[idx[n]],
                                binary("herd-node"), "-c", ini, n], cwd=d)
        procs[n] = p

    def links_all_up():
        for n in names:
            st = node_status(d, n)
            if not st or st.get("pid") != procs[n].pid or \
                    st["links_up"] != st["links_total"]:
                return False
        return True
    wait_for(links_all_up, timeout=30, interval=0.2,
             what="every link of the five hosts up")
    for n in names:
        assert procs[n].poll() is None
        # `ip netns exec` execs: the pid we hold is the node's own.
        assert os.readlink("/proc/%d/exe" % procs[n].pid).endswith(
            "herd-node")
        assert node_status(d, n)["host"] == host_of[n]

    def client(at, via):
        """A client of node `at`, from host `via`'s namespace."""
        return NsClient(lab, idx[via], host_of[at], PORT)

    # -- the client protocol across hosts ---------------------------------
    now = int(time.time())
    at_lines = {}
    for k, n in enumerate(names):
        via = names[(k + 1) % 5]            # always across the bridge
        c = client(n, via)
        line = "IAMAT mh-%s +34.068930-118.445127 %s" % (n, t_text(now, k))
        reply = c.request(line).decode()
        assert reply.startswith("AT %s +" % n) and reply.endswith(
            line[len("IAMAT "):] + "\n"), reply
        at_lines["mh-" + n] = reply.rstrip("\n")
        junk = c.request("HELLO from %s" % via)
        assert junk == ("? HELLO from %s\n" % via).encode()
        c.close()
    for k, n in enumerate(names):
        asker = names[(k + 2) % 5]
        c = client(asker, names[(k + 3) % 5])

        def flooded():
            r = c.whatsat("WHATSAT mh-%s 10 5" % n)
            return r if not r.startswith(b"? ") else None
        r = wait_for(flooded, timeout=15, interval=0.1,
                     what="mh-%s to reach %s" % (n, asker)).decode()
        first, rest = r.split("\n", 1)
        assert first == at_lines["mh-" + n], (first, at_lines["mh-" + n])
        assert rest.endswith("}\n\n"), rest
        assert json.loads(rest)["results"] == [], rest
        c.close()

    # -- a host cut off while both sides keep writing ----------------------
    victim, other = "Campbell", "Hill"
    newest = {}                 # client id -> ((sec, nsec), its AT line)
    for k, n in enumerate(names):
        newest["mh-" + n] = ((now, k), at_lines["mh-" + n])

    cv = client(victim, victim)             # its own host reaches it
    co = client(other, names[1])
    lab.cut(idx[victim])
    base = now + 10
    rounds = 0
    deadline = time.monotonic() + 24        # past the 20 s silent-peer drop
    while time.monotonic() < deadline:
        for side, c, tag in ((0, cv, "cut"), (1, co, "main")):
            t = (base + rounds, side)
            distinct = "%s-%d" % (tag, rounds)
            shared = "both-%d" % (rounds % 5)
            for cid in (distinct, shared):
                line = "IAMAT %s +10.%06d-020.000001 %s" % (
                    cid, rounds, t_text(*t))
                reply = c.request(line).decode().rstrip("\n")
                assert reply.startswith("AT "), reply
                if cid not in newest or newest[cid][0] < t:
                    newest[cid] = (t, reply)
        rounds += 1
        time.sleep(0.25)
    # The cut is real: neither side has heard the other's writes.
    assert cv.whatsat("WHATSAT main-0 10 1").startswith(b"? ")
    assert co.whatsat("WHATSAT cut-0 10 1").startswith(b"? ")
    st = node_status(d, other)
    assert st and st["clients"] < len(newest)
    cv.close()
    co.close()
    lab.heal(idx[victim])
    healed = time.monotonic()

    # -- everyone converges on the newest record of every client ----------
    def counts_complete():
        return all((node_status(d, n) or {}).get("clients") == len(newest)
                   for n in names)
    wait_for(counts_complete, timeout=45, interval=0.25,
             what="every node to hold all %d clients" % len(newest))

    wrong = []

    def all_newest():
        del wrong[:]
        for n in names:
            c = client(n, n)
            try:
                for cid, (_, line) in sorted(newest.items()):
                    r = c.whatsat("WHATSAT %s 1 1" % cid).decode()
                    if r.split("\n", 1)[0] != line:
                        wrong.append((n, cid, r.split("\n", 1)[0], line))
            finally:
                c.close()
        return not wrong
    try:
        wait_for(all_newest, timeout=20, interval=0.5,
                 what="every node to hold the newest record of each client")
    except AssertionError:
        raise AssertionError("not converged: %s" % wrong[:5])
    converged = time.monotonic() - healed
    wait_for(links_all_up, timeout=30, interval=0.2,
             what="every link up again after the heal")
    assert rounds >= 20
    for n in names:
        assert procs[n].poll() is None, "%s died" % n
    log = open(os.path.join(d, "logs", victim + ".log"), errors="replace") \
        .read()
    assert "link down" in log
    print("converged %.1f s after the heal; %d clients, %d rounds"
          % (converged, len(newest), rounds))

    for n in names:
        procs[n].terminate()
    for n in names:
        assert procs[n].wait(timeout=15) == 0
    reports = []
    for name in os.listdir(os.path.join(d, "logs")):
        with open(os.path.join(d, "logs", name), errors="replace") as f:
            reports += [line for line in f if "Sanitizer" in line
                        or "runtime error:" in line]
    assert reports == []


def test_supervisors_in_namespaces(lab, tmp_path):
    """One herdctl/supervisor per host, each with its own copy of herd.ini
    and of the secret, as on real machines."""
    topo = {"Hill": ["Jaquez", "Smith"], "Jaquez": [], "Smith": []}
    hosts = {"Hill": lab.addrs[0], "Jaquez": lab.addrs[1],
             "Smith": lab.addrs[2]}
    secret = os.urandom(32).hex() + "\n"
    dirs = []
    for k in range(2):
        d = os.path.join(str(tmp_path), "host%d" % k)
        os.makedirs(os.path.join(d, "run"), mode=0o700)
        write_ini(d, topo, ports={n: PORT + 1 for n in topo}, hosts=hosts,
                  herd={"stop_grace_s": "2"})
        fd = os.open(os.path.join(d, "run", "herd.secret"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, secret.encode())
        os.close(fd)
        dirs.append(d)
        lab.pidfiles.append(os.path.join(d, "run"))

    def ctl(k, *args, ns=None):
        cmd = [binary("herdctl"), "-c", os.path.join(dirs[k], "herd.ini")]
        if ns is not None:
            cmd = ["ip", "netns", "exec", lab.hosts[ns]] + cmd
        env = dict(os.environ)
        env.pop("HERD_CONFIG", None)
        return subprocess.run(cmd + list(args), capture_output=True,
                              timeout=60, env=env, cwd=dirs[k])

    # Host 0 finds its node by its own address; host 1 is told.
    p = ctl(0, "start", ns=0)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"1 of 1 nodes running (2 more on other hosts)" in p.stdout
    p = ctl(1, "start", "--host", lab.addrs[1], ns=1)
    assert p.returncode == 0, (p.stdout, p.stderr)

    def hill_sees_jaquez():
        st = json.loads(ctl(0, "status", "--json").stdout)
        j = by_name(st)["Jaquez"]
        return st if j["links_here"] == [{"from": "Hill", "state": "up"}] \
            else None
    st = wait_for(hill_sees_jaquez, timeout=30, interval=0.2,
                  what="Hill's link to Jaquez up, seen from host 0")
    nodes = by_name(st)
    assert nodes["Hill"]["state"] == "running"
    assert nodes["Smith"]["state"] == "remote"
    assert nodes["Smith"]["links_here"][0]["state"] != "up"
    st1 = by_name(json.loads(ctl(1, "status", "--json").stdout))
    assert st1["Jaquez"]["state"] == "running"
    assert st1["Hill"]["state"] == "remote"
    assert ctl(0, "status").returncode == 0
    # A write at one host's supervised node is read at the other's.
    c = NsClient(lab, 0, lab.addrs[0], PORT + 1)
    reply = c.request("IAMAT sup-x +1.0+2.0 1700000000.5")
    c.close()
    c = NsClient(lab, 1, lab.addrs[1], PORT + 1)
    got = wait_for(lambda: (lambda r: r if not r.startswith(b"? ") else None)(
        c.whatsat("WHATSAT sup-x 1 1")), timeout=10, interval=0.1,
        what="sup-x at Jaquez")
    assert got.split(b"\n", 1)[0] + b"\n" == reply
    c.close()
    for k in range(2):
        p = ctl(k, "stop")
        assert p.returncode == 0, (p.stdout, p.stderr)
