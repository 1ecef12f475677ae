"""Helpers for Herd's black-box tests: free loopback ports, temporary
herd.ini files, real processes stopped by pid, raw client connections."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HERD_BIN") or os.path.join(REPO, "bin")
# The committed places data the tests use: a fresh clone has no
# data/places.tsv (make test never fetches it), so every herd-places a
# test starts is given this one.
SUBSET = os.path.join(REPO, "tests", "data", "places-subset.tsv")

# The five nodes of SPEC.md.
DEFAULT_TOPOLOGY = {
    "Hill": ["Jaquez", "Smith"],
    "Jaquez": ["Hill", "Singleton"],
    "Smith": ["Hill", "Singleton", "Campbell"],
    "Singleton": ["Jaquez", "Smith", "Campbell"],
    "Campbell": ["Smith", "Singleton"],
}


def binary(name):
    return os.path.join(BIN, name)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing holds right now, below the
    kernel's ephemeral range: a port the kernel hands out itself (bind to
    port 0) can be taken by any process's outgoing connection between this
    choice and the program's bind, which then fails. Never the same port
    twice in one run, so two choices made before either binds differ."""
    import random
    low = 10000
    high = max(low + 1000, _EPHEMERAL_LOW)
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free port below %d" % high)


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def write_ini(directory, topology, ports=None, herd=None, places=None,
              hosts=None, name="herd.ini"):
    """Write a herd.ini; returns (path, ports).  places defaults to
    google-legacy at a port nothing listens on."""
    ports = dict(ports or {})
    for node in topology:
        ports.setdefault(node, free_port())
    lines = ["[herd]", "log_dir = logs", "run_dir = run"]
    # The HTTP face is off unless a test asks for it: its default port
    # (12900) belongs to the herd a person may be running.
    hk = {"http": "off"}
    hk.update(herd or {})
    for k, v in hk.items():
        if v is not None:
            lines.append("%s = %s" % (k, v))
    lines.append("")
    lines.append("[places]")
    pl = {"provider": "google-legacy",
          "url": "http://127.0.0.1:%d" % free_port(),
          "timeout_ms": "2000"}
    pl.update(places or {})
    for k, v in pl.items():
        if v is not None:
            lines.append("%s = %s" % (k, v))
    for node, neighbors in topology.items():
        lines.append("")
        lines.append("[node %s]" % node)
        lines.append("port = %d" % ports[node])
        if neighbors:
            lines.append("neighbors = " + " ".join(neighbors))
        if hosts and node in hosts:
            lines.append("host = " + hosts[node])
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, ports


class ProcessRegistry:
    """Every process a test starts, so teardown can kill each by pid."""

    def __init__(self):
        self.procs = []

    def start(self, args, cwd=None, env=None, **kw):
        p = subprocess.Popen(args, cwd=cwd, env=env,
                             stdin=subprocess.DEVNULL,
                             stdout=kw.pop("stdout", subprocess.DEVNULL),
                             stderr=kw.pop("stderr", subprocess.PIPE), **kw)
        self.procs.append(p)
        return p

    def add_pid(self, pid):
        """Track a process this test did not spawn directly (a daemon)."""
        self.procs.append(pid)

    def cleanup(self):
        for p in self.procs:
            pid = p if isinstance(p, int) else p.pid
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if not isinstance(p, int):
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                for stream in (p.stdout, p.stderr):
                    if stream:
                        stream.close()
        self.procs = []


def port_open(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def held_line(h, node, client_id):
    """The AT line node holds for client_id (None when unknown), read with
    a WHATSAT whose places fail fast: its first line is the stored line."""
    c = h.client(node)
    try:
        reply = c.whatsat("WHATSAT %s 1 1" % client_id)
    finally:
        c.close()
    if reply.startswith(b"? "):
        return None
    return reply.split(b"\n", 1)[0]


def wait_held(h, node, client_id, line, timeout=10):
    wait_for(lambda: held_line(h, node, client_id) == line, timeout=timeout,
             what="%s to hold %r" % (node, line))


def iamat(h, node, client_id, loc, t):
    """Send one IAMAT to node on a fresh connection; its AT reply, no \\n."""
    c = h.client(node)
    try:
        return c.request("IAMAT %s %s %s" % (client_id, loc, t)).rstrip(b"\n")
    finally:
        c.close()


class Herd:
    """Nodes of one herd.ini, started by hand (no supervisor)."""

    def __init__(self, registry, directory, topology=None, herd=None,
                 places=None, ports=None):
        self.registry = registry
        self.dir = str(directory)
        self.topology = topology or DEFAULT_TOPOLOGY
        self.ini, self.ports = write_ini(self.dir, self.topology, ports=ports,
                                         herd=herd, places=places)
        self.procs = {}

    def start(self, name, wait=True):
        p = self.registry.start([binary("herd-node"), "-c", self.ini, name],
                                cwd=self.dir)
        self.procs[name] = p
        if wait:
            wait_for(lambda: port_open(self.ports[name]) or p.poll() is not None,
                     what="node %s to listen" % name)
            assert p.poll() is None, "node %s exited: %s" % (
                name, p.stderr.read().decode(errors="replace"))
        return p

    def start_all(self, links=True):
        for name in self.topology:
            self.start(name, wait=False)
        for name in self.topology:
            wait_for(lambda: port_open(self.ports[name]),
                     what="node %s to listen" % name)
        if links:
            self.wait_links()

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        p = self.procs.pop(name)
        p.send_signal(sig)
        return p.wait(timeout=timeout)

    def status(self, name):
        path = os.path.join(self.dir, "run", name + ".status")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def links_up(self, name):
        st = self.status(name)
        p = self.procs.get(name)
        if not st or not p or st.get("pid") != p.pid:
            return None
        return st.get("links_up")

    def wait_links(self, names=None, timeout=15):
        """Wait until each running node has every link to a running
        neighbour up."""
        names = names or list(self.procs)
        for name in names:
            want = len([n for n in self.neighbors(name) if n in self.procs])
            wait_for(lambda: (self.links_up(name) or 0) >= want,
                     timeout=timeout, what="links of %s" % name)

    def neighbors(self, name):
        out = set(self.topology[name])
        for other, ns in self.topology.items():
            if name in ns:
                out.add(other)
        return out

    def log(self, name):
        try:
            with open(os.path.join(self.dir, "logs", name + ".log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def client(self, name):
        return Client(self.ports[name])


class Client:
    """A raw TCP client of a node's port."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; got %r" % self.buf)
        self.buf += chunk

    def read_line(self):
        """One line including its b"\\n"."""
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def request(self, line):
        """Send one line, read one reply line."""
        self.send(line if line.endswith("\n") else line + "\n")
        return self.read_line()

    def whatsat(self, line):
        """Send a WHATSAT; return the whole reply (ends in a blank line),
        or a single "? " line."""
        self.send(line + "\n")
        first = self.read_line()
        if first.startswith(b"? "):
            return first
        return first + self.read_until(b"\n\n")

    def closed(self, timeout=5.0):
        """True when the server closes the connection (reads to EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Drain:
    """Reads all a client's connection receives, in a thread, until EOF
    (or an error): received counts the bytes, join() says whether it
    finished in time."""

    def __init__(self, client):
        self.received = 0
        self._sock = client.sock
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                chunk = self._sock.recv(1 << 20)
                if not chunk:
                    return
                self.received += len(chunk)
        except OSError:
            return

    def join(self, timeout):
        self.thread.join(timeout=timeout)
        return not self.thread.is_alive()
