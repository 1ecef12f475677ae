"""Catch-up in proportion to what was missed (issue 15 point 3).

Two nodes, A (dials) and B, hold many clients, crafted straight into
their snapshot files.  A reaches B through a TCP proxy the test controls,
so the link can be cut while both sides take writes.  On reconnect each
side sends only the records the other missed (HERD-RESUME / HERD-MARK,
docs/PEERS.md), read from the status files; both end with the newest
record of every client.  The same after a kill -9 and restart of one
side; a full walk when the peer is new (a fresh data_dir) or its
position is gone from the backlog (catchup_backlog_mb = 0)."""

import json
import os
import signal
import socket

import pytest

from herdlib import Client, binary, free_port, wait_for, write_ini
from linklab import Proxy, write_snapshot

N = 100000                      # clients each node holds at the start


def at_line(server, cid, sec, nsec=0, loc="+10.000000+020.000000"):
    return "AT %s +0.000000000 %s %s %d.%09d" % (server, cid, loc, sec, nsec)


class Pair:
    def __init__(self, procs, d, n=N, herd=None):
        self.procs, self.d = procs, d
        self.pa, self.pb = free_port(), free_port()
        self.proxy = Proxy(self.pb)
        topo = {"A": ["B"], "B": []}
        herd = dict(herd or {})
        herd.setdefault("fsync", "no")
        # B's file says where B listens; A's sends A to the proxy.
        self.ini_b, _ = write_ini(d, topo, ports={"A": self.pa, "B": self.pb},
                                  herd=herd)
        self.ini_a, _ = write_ini(d, topo, ports={"A": self.pa,
                                                  "B": self.proxy.port},
                                  herd=herd, name="herd-a.ini")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        self.ids = ["c%06d" % i for i in range(n)]
        lines = [at_line("A", c, 1700000000) for c in self.ids]
        for name in ("A", "B"):
            write_snapshot(os.path.join(d, "data", name + ".snapshot"), lines)
        self.p = {}

    def start(self, name):
        ini = self.ini_a if name == "A" else self.ini_b
        p = self.procs.start([binary("herd-node"), "-c", ini, name],
                             cwd=self.d)
        self.p[name] = p
        port = self.pa if name == "A" else self.pb
        wait_for(lambda: (self.status(name) or {}).get("pid") == p.pid,
                 timeout=60, interval=0.05, what=name + " serving")
        wait_for(lambda: _open(port), timeout=30, what=name + " port")
        return p

    def status(self, name):
        try:
            with open(os.path.join(self.d, "run", name + ".status")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def link(self, name):
        st = self.status(name)
        return st["links"][0] if st and st.get("links") else None

    def log(self, name):
        with open(os.path.join(self.d, "logs", name + ".log"),
                  errors="replace") as f:
            return f.read()

    def settled(self, count_before=None):
        """Both links up, both catch-ups done, and each side's position
        in the other's log at the other's end."""
        def ok():
            sa, sb = self.status("A"), self.status("B")
            if not sa or not sb:
                return False
            la, lb = sa["links"][0], sb["links"][0]
            if la["state"] != "up" or lb["state"] != "up":
                return False
            ca, cb = la["catchup"], lb["catchup"]
            if ca["sending"] or ca["receiving"] or cb["sending"] or \
                    cb["receiving"] or ca["mode"] == "none" or \
                    cb["mode"] == "none":
                return False
            if count_before is not None and \
                    ca["incremental"] + ca["full"] <= count_before[0] or \
                    count_before is not None and \
                    cb["incremental"] + cb["full"] <= count_before[1]:
                return False
            return (ca["their_epoch"], ca["their_seq"]) == \
                (sb["log"]["epoch"], sb["log"]["seq"]) and \
                (cb["their_epoch"], cb["their_seq"]) == \
                (sa["log"]["epoch"], sa["log"]["seq"])
        wait_for(ok, timeout=90, interval=0.1, what="catch-ups done, positions "
                 "at the ends of both logs")
        return self.link("A")["catchup"], self.link("B")["catchup"]

    def counts(self):
        a, b = self.link("A")["catchup"], self.link("B")["catchup"]
        return (a["incremental"] + a["full"], b["incremental"] + b["full"])

    def cut(self):
        self.proxy.cut()
        wait_for(lambda: self.link("A")["state"] != "up" and
                 self.link("B")["state"] != "up", timeout=30,
                 what="the link down on both sides")

    def write(self, name, lines):
        """IAMATs pipelined on one connection; every reply must be AT."""
        c = Client(self.pa if name == "A" else self.pb, timeout=60)
        c.send("".join(x + "\n" for x in lines))
        for x in lines:
            r = c.read_line().decode()
            assert r.startswith("AT " + name + " "), r
        c.close()

    def held(self, name, cid):
        c = Client(self.pa if name == "A" else self.pb)
        r = c.whatsat("WHATSAT %s 1 1" % cid).decode().split("\n", 1)[0]
        c.close()
        return r

    def close(self):
        self.proxy.close()


def _open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def pair(procs, tmp_path):
    made = []

    def make(**kw):
        p = Pair(procs, str(tmp_path), **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def updates(prefix_ids, sec):
    return ["IAMAT %s +11.000000+021.000000 %d.%09d" % (c, sec, k)
            for k, c in enumerate(prefix_ids)]


def newest_check(pr, want):
    """Every node holds want[cid] (the client time of its newest line)."""
    for name in ("A", "B"):
        for cid, t in sorted(want.items())[::37]:
            line = pr.held(name, cid)
            assert line.endswith(" " + t), (name, cid, line, t)


def flap_writes(pr, sec):
    """1,000 updates on each side, 500 of the clients on both (B's newer)."""
    a_ids, b_ids = pr.ids[:1000], pr.ids[500:1500]
    pr.write("A", updates(a_ids, sec))
    pr.write("B", updates(b_ids, sec + 1))
    want = {}
    for k, c in enumerate(a_ids):
        want[c] = "%d.%09d" % (sec, k)
    for k, c in enumerate(b_ids):
        want[c] = "%d.%09d" % (sec + 1, k)
    return want


def test_flap_and_restart_send_only_what_was_missed(pair):
    pr = pair()
    pr.start("B")
    pr.start("A")
    ca, cb = pr.settled()
    # New peers: today's full walk, every record each way.
    assert ca["mode"] == cb["mode"] == "full"
    assert ca["sent_records"] >= N and cb["sent_records"] >= N

    # -- a flap: the link cut while both sides write -----------------------
    before = pr.counts()
    pr.cut()
    want = flap_writes(pr, 1750000000)
    pr.proxy.heal()
    ca, cb = pr.settled(before)
    assert ca["mode"] == cb["mode"] == "incremental", (ca, cb)
    assert ca["sent_records"] <= 2000 and cb["sent_records"] <= 2000, (ca, cb)
    assert ca["received_records"] <= 2000 and cb["received_records"] <= 2000
    assert ca["sent_records"] >= 1000 and cb["sent_records"] >= 500, (ca, cb)
    assert ca["sent_bytes"] < 200 * ca["sent_records"] + 1
    assert pr.status("A")["clients"] == pr.status("B")["clients"] == N
    newest_check(pr, want)

    # -- the same with a kill -9 and restart of B while cut ----------------
    before = pr.counts()
    pr.cut()
    want.update(flap_writes(pr, 1750000100))
    pr.p["B"].send_signal(signal.SIGKILL)
    pr.p["B"].wait(timeout=10)
    pr.start("B")
    pr.proxy.heal()
    ca, cb = pr.settled((before[0], 0))
    assert ca["mode"] == cb["mode"] == "incremental", (ca, cb)
    assert ca["sent_records"] <= 2000 and cb["sent_records"] <= 2000, (ca, cb)
    assert "catch-up to A: the records after" in pr.log("B")
    newest_check(pr, want)

    # -- a fresh data_dir at B: the position is gone, a full walk ---------
    before = pr.counts()
    pr.p["B"].terminate()
    assert pr.p["B"].wait(timeout=20) == 0
    for f in os.listdir(os.path.join(pr.d, "data")):
        if f.startswith("B."):
            os.unlink(os.path.join(pr.d, "data", f))
    pr.start("B")
    ca, cb = pr.settled((before[0], 0))
    assert ca["mode"] == "full" and ca["sent_records"] >= N, ca
    assert cb["mode"] == "full", cb       # A's position was in B's old log
    log = pr.log("A")
    assert "catch-up to B: a full walk (the peer holds nothing of this " \
        "log)" in log
    assert "catch-up to A: a full walk (the peer's position is in another " \
        "epoch)" in pr.log("B")
    assert pr.status("B")["clients"] == N
    newest_check(pr, want)
    for name in ("A", "B"):
        pr.p[name].terminate()
        assert pr.p[name].wait(timeout=20) == 0
        assert "Sanitizer" not in pr.log(name)


@pytest.mark.parametrize("backlog_mb,mode", [("0", "full"),
                                             ("64", "incremental")])
def test_backlog_past_compaction(pair, backlog_mb, mode):
    """A's journal compacts while the link is down.  With the backlog
    kept (the default 64 MB) B still resumes from A's log; with none
    (catchup_backlog_mb = 0) its position is gone: a full walk."""
    pr = pair(n=10, herd={"catchup_backlog_mb": backlog_mb})
    pr.start("B")
    pr.start("A")
    pr.settled()
    before = pr.counts()
    pr.cut()
    # Over 4 MB of journal (the least that compacts): long client IDs.
    big = ["k%04d-" % k + "x" * 1900 for k in range(2400)]
    for i in range(0, len(big), 400):
        pr.write("A", updates(big[i:i + 400], 1750000000 + i))
    wait_for(lambda: "journal: compacted" in pr.log("A"), timeout=60,
             what="A's journal compacted")
    backlog = [f for f in os.listdir(os.path.join(pr.d, "data"))
               if f.startswith("A.backlog.")]
    assert len(backlog) == (0 if backlog_mb == "0" else 1), backlog
    pr.write("A", updates(["after-compaction"], 1750000900))
    pr.proxy.heal()
    ca, cb = pr.settled(before)
    assert ca["mode"] == mode, ca
    if mode == "full":
        assert "the peer's position is gone from the backlog" in pr.log("A")
    else:
        assert ca["sent_records"] <= 2401, ca
    assert pr.status("B")["clients"] == 10 + 2401
    assert pr.held("B", "after-compaction").endswith(" 1750000900.000000000")
    assert pr.held("B", big[-1]).startswith("AT A ")


def test_superseded_records_are_skipped(pair):
    """While the link is down one client moves 20,000 times at A: the
    incremental catch-up sends its newest record, not the 19,999 it has
    since replaced (and reads them in more than one turn of the loop,
    FILL_BUDGET at a time, while A keeps answering)."""
    pr = pair(n=10)
    pr.start("B")
    pr.start("A")
    pr.settled()
    before = pr.counts()
    pr.cut()
    moves = ["IAMAT mover +%02d.000000+021.000000 1750000000.%09d"
             % (k % 80, k) for k in range(20000)]
    for i in range(0, len(moves), 5000):
        pr.write("A", moves[i:i + 5000])
    pr.proxy.heal()
    ca, cb = pr.settled(before)
    # ca: what A sent (its link's figures); cb: what B sent.
    assert ca["mode"] == cb["mode"] == "incremental", (ca, cb)
    assert ca["sent_records"] == 1, ca
    assert cb["sent_records"] == 0, cb
    assert pr.held("B", "mover").endswith(" 1750000000.000019999")
    assert pr.held("A", "mover") == pr.held("B", "mover")
