"""Rotating the link secret on a running herd (docs/PEERS.md "Keys"),
host by host, with `herdctl secret`: every "host" here is a node with its
own run_dir (so its own keyring) and data_dir.  No link goes down, no
acknowledged update is lost, and a removed key is refused at once."""

import json
import os
import shutil
import subprocess
import threading
import time

from herdlib import Client, binary, held_line, port_open, wait_for, write_ini
from linklib import key_id, read_secret

# Apple dials Pear, Pear dials Quince (names sort that way).
TOPO = {"Apple": ["Pear"], "Pear": ["Quince"], "Quince": []}


class Hosts:
    """One directory per node, each with the same herd.ini but its own
    run_dir; the same secret copied into each; one shared log_dir."""

    def __init__(self, procs, root, topology):
        self.procs, self.root, self.topology = procs, str(root), topology
        self.logs = os.path.join(self.root, "logs")
        base, self.ports = write_ini(self.root, topology)
        text = open(base).read().replace("log_dir = logs",
                                         "log_dir = %s" % self.logs)
        self.ini = {}
        first = None
        for name in topology:
            d = os.path.join(self.root, "host_" + name)
            os.makedirs(os.path.join(d, "run"), mode=0o700)
            self.ini[name] = os.path.join(d, "herd.ini")
            with open(self.ini[name], "w") as f:
                f.write(text)
            secret = os.path.join(d, "run", "herd.secret")
            if first is None:
                first = secret
                with open(secret, "w") as f:
                    f.write(os.urandom(32).hex() + "\n")
                os.chmod(secret, 0o600)
            else:
                shutil.copy(first, secret)
        self.p = {}

    def run_dir(self, name):
        return os.path.join(self.root, "host_" + name, "run")

    def start(self, name):
        self.p[name] = self.procs.start([binary("herd-node"), "-c",
                                         self.ini[name], name],
                                        cwd=os.path.dirname(self.ini[name]))
        wait_for(lambda: port_open(self.ports[name]), what=name)

    def status(self, name):
        try:
            with open(os.path.join(self.run_dir(name), name + ".status")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return None
        return st if st.get("pid") == self.p[name].pid else None

    def links_up(self, name):
        return (self.status(name) or {}).get("links_up")

    def wait_all_up(self):
        for name in self.topology:
            want = sum(1 for a, ns in self.topology.items()
                       for b in ns if name in (a, b))
            wait_for(lambda: self.links_up(name) == want, timeout=15,
                     what="links of " + name)

    def log(self, name):
        try:
            with open(os.path.join(self.logs, name + ".log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def herdctl(self, name, *args, ok=True):
        r = subprocess.run([binary("herdctl"), "-c", self.ini[name], "secret"]
                           + list(args), capture_output=True, text=True,
                           timeout=30)
        if ok:
            assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        return r

    def client(self, name):
        return Client(self.ports[name])

    def held(self, name, cid):
        return held_line(self, name, cid)


def new_key(directory):
    """A fresh secret in DIR/new.key (owner-only, as a key file should be)
    and its key id."""
    path = directory / "new.key"
    path.write_text(os.urandom(32).hex() + "\n")
    os.chmod(path, 0o600)
    return path, key_id(path.read_bytes().rstrip(b"\n"))


def changed_keys(hosts, name, count):
    """Wait until name's log says its keys changed count times."""
    wait_for(lambda: hosts.log(name).count("keys changed:") >= count,
             what="%s to apply keyring change %d" % (name, count))


class Writer(threading.Thread):
    """IAMATs round the nodes while the rotation runs; every acknowledged
    line is kept to be checked everywhere afterwards."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.hosts, self.stop, self.acked = hosts, threading.Event(), {}
        self.error = None

    def run(self):
        names, i = list(self.hosts.topology), 0
        try:
            while not self.stop.is_set():
                name = names[i % len(names)]
                cid = "rot%d" % i
                c = Client(self.hosts.ports[name])
                reply = c.request("IAMAT %s +1+1 1621464827.%d" % (cid, i))
                c.close()
                assert reply.startswith(b"AT %s " % name.encode()), reply
                self.acked[cid] = reply.rstrip(b"\n")
                i += 1
                time.sleep(0.01)
        except Exception as e:      # reported by the test
            self.error = e


def test_rotation_host_by_host_keeps_every_link_and_update(procs, tmp_path):
    hosts = Hosts(procs, tmp_path, TOPO)
    for name in TOPO:
        hosts.start(name)
    hosts.wait_all_up()
    old = key_id(read_secret(os.path.dirname(hosts.run_dir("Apple"))))
    new_file, new = new_key(tmp_path)
    writer = Writer(hosts)
    writer.start()
    try:
        # 1. Every host learns the new key (it dials with the old still).
        for name in TOPO:
            out = hosts.herdctl(name, "add", str(new_file)).stdout
            assert "added %s" % new in out
            changed_keys(hosts, name, 1)
            r = hosts.herdctl(name, "list").stdout
            assert r == "%s primary (dials)\n%s accepted\n" % (old, new), r
        # 2. Host by host, the new key becomes the primary; the dialers
        # re-key their links before they let the old connection go.
        for name in TOPO:
            hosts.herdctl(name, "use", new)
            changed_keys(hosts, name, 2)
        wait_for(lambda: "link re-keyed: Pear (key %s)" % new in hosts.log("Apple"),
                 what="Apple to re-key its link to Pear")
        wait_for(lambda: "link re-keyed: Quince (key %s)" % new in hosts.log("Pear"),
                 what="Pear to re-key its link to Quince")
        # 3. The old key goes, host by host.
        for name in TOPO:
            out = hosts.herdctl(name, "remove", old).stdout
            assert "removed %s" % old in out
            changed_keys(hosts, name, 3)
            assert hosts.herdctl(name, "list").stdout == \
                "%s primary (dials)\n" % new
        time.sleep(0.3)         # a few more updates after the last step
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    assert len(writer.acked) > 20
    hosts.wait_all_up()
    # Nothing acknowledged is missing anywhere...
    last = sorted(writer.acked, key=lambda k: int(k[3:]))[-1]
    for name in TOPO:
        wait_for(lambda: hosts.held(name, last) == writer.acked[last],
                 what="%s to hold the last update" % name)
        for cid, line in writer.acked.items():
            assert hosts.held(name, cid) == line, (name, cid)
    # ...no link ever counted down, and the secrets stayed out of the logs.
    for name in TOPO:
        log = hosts.log(name)
        assert "link down" not in log, name
        assert new_file.read_text().strip() not in log
    # The keyring file is private.
    st = os.stat(os.path.join(hosts.run_dir("Pear"), "herd.keyring"))
    assert st.st_mode & 0o777 == 0o600


def test_removed_key_drops_its_links_and_is_refused_at_once(procs, tmp_path):
    topo = {"Apple": ["Pear"], "Pear": []}
    hosts = Hosts(procs, tmp_path, topo)
    for name in topo:
        hosts.start(name)
    hosts.wait_all_up()
    old = key_id(read_secret(os.path.dirname(hosts.run_dir("Apple"))))
    new_file, new = new_key(tmp_path)
    for name in topo:
        hosts.herdctl(name, "add", str(new_file))
        changed_keys(hosts, name, 1)
    # The primary cannot be removed, nor an unknown key.
    r = hosts.herdctl("Pear", "remove", old, ok=False)
    assert r.returncode == 100 and "is the primary key" in r.stderr
    r = hosts.herdctl("Pear", "remove", "0" * 16, ok=False)
    assert r.returncode == 4 and "no key 0000000000000000" in r.stderr
    # Pear moves on and drops the old key while Apple still dials with
    # it: the link keyed by it goes at once, and Apple's redials are
    # refused by name.
    hosts.herdctl("Pear", "use", new)
    hosts.herdctl("Pear", "remove", old)
    wait_for(lambda: "link down: Apple (key %s was removed from the keyring)"
             % old in hosts.log("Pear"), what="Pear to drop the old-key link")
    wait_for(lambda: "refused: key %s is not in the keyring" % old
             in hosts.log("Pear"), what="Pear to refuse the old key")
    wait_for(lambda: "HERD-REFUSED key %s is not in the keyring" % old
             in hosts.log("Apple"), what="Apple to hear the refusal")
    c = Client(hosts.ports["Apple"])
    at = c.request("IAMAT cut.off +1+1 1621464827").rstrip(b"\n")
    c.close()
    # Apple takes the new key as primary: the link comes back and the
    # update written meanwhile crosses.
    hosts.herdctl("Apple", "use", new)
    wait_for(lambda: hosts.held("Pear", "cut.off") == at,
             what="the link to come back on the new key")
    assert "link up: Pear (127.0.0.1:%d, key %s)" % (hosts.ports["Pear"], new) \
        in hosts.log("Apple")


def test_secret_command_edges(procs, tmp_path):
    """herdctl secret without a running herd: add starts the keyring from
    herd.secret, a fresh key by default, mode 0600; ids, never secrets,
    are printed; wrong uses are refused; check warns of an open keyring."""
    ini, _ = write_ini(tmp_path, {"Apple": []})
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "herd.secret").write_text("first-secret-of-the-herd\n")
    os.chmod(run / "herd.secret", 0o600)

    def herdctl(*args):
        return subprocess.run([binary("herdctl"), "-c", ini] + list(args),
                              capture_output=True, text=True, timeout=30)
    old = key_id(b"first-secret-of-the-herd")
    r = herdctl("secret", "list")
    assert r.returncode == 0 and r.stdout.startswith("%s primary (dials)\n" % old)
    r = herdctl("secret", "add")
    assert r.returncode == 0, r.stderr
    new = r.stdout.split()[1]
    ring = run / "herd.keyring"
    assert os.stat(ring).st_mode & 0o777 == 0o600
    text = ring.read_text().splitlines()
    assert text[0] == "first-secret-of-the-herd" and len(text) == 2
    assert key_id(text[1].encode()) == new and text[1] not in r.stdout
    assert herdctl("secret", "list").stdout == \
        "%s primary (dials)\n%s accepted\n" % (old, new)
    # Adding the same secret again changes nothing.
    (tmp_path / "same.key").write_text(text[1] + "\n")
    r = herdctl("secret", "add", str(tmp_path / "same.key"))
    assert r.returncode == 0 and "already" in r.stdout
    assert len(ring.read_text().splitlines()) == 2
    # Refusals: a short secret, an unknown id, no id, an unknown verb.
    (tmp_path / "short.key").write_text("short\n")
    r = herdctl("secret", "add", str(tmp_path / "short.key"))
    assert r.returncode == 111 and "not a secret" in r.stderr
    r = herdctl("secret", "use", "0" * 16)
    assert r.returncode == 4 and "no key" in r.stderr
    assert herdctl("secret", "use").returncode == 100
    assert herdctl("secret", "rotate").returncode == 100
    # An open keyring is warned of, as herd.secret is.
    os.chmod(ring, 0o644)
    r = herdctl("check")
    assert "herd.keyring is open to others" in r.stderr, r.stderr
