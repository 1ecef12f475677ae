"""run/NAME.status, the node's status file: valid JSON whatever the host
is called, never written through a planted symlink, and written at most a
few times a second however busy the links are (issues 11 and 12)."""

import json
import os
import time

from herdlib import Herd, binary, free_port, wait_for, write_ini


def metric(st, name, labels=None):
    """The value of one series in a status file's "metrics" (None if it
    is not there)."""
    for fam in st.get("metrics", []):
        if fam["name"] != name:
            continue
        for s in fam["series"]:
            if labels is None or s["labels"] == labels:
                return s.get("value", s.get("count"))
    return None


def own_status(path, pid):
    try:
        with open(path) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return None
    return st if st.get("pid") == pid else None


def test_host_with_quote_and_backslash_is_escaped(procs, tmp_path):
    # A host name holding '"' and '\' that really resolves: a private
    # mount namespace whose /etc/hosts names it (nothing outside sees it).
    host = 'we"ird\\host'
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 %s\n" % host)
    ini, ports = write_ini(tmp_path, {"Hill": []}, hosts={"Hill": host})
    p = procs.start(["unshare", "--mount", "--", "sh", "-c",
                     'mount --bind "$0" /etc/hosts && exec "$1" -c "$2" Hill',
                     str(hosts), binary("herd-node"), ini], cwd=str(tmp_path))
    path = os.path.join(str(tmp_path), "run", "Hill.status")
    st = wait_for(lambda: own_status(path, p.pid) or p.poll() is not None,
                  what="Hill's status file")
    assert st is not True and isinstance(st, dict), p.stderr.read()
    assert st["host"] == host
    assert st["name"] == "Hill"
    assert st["port"] == ports["Hill"]


def test_planted_symlink_at_the_temporary_is_not_followed(procs, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    os.symlink(str(victim), str(run / "Hill.status.tmp"))
    h = Herd(procs, tmp_path, topology={"Hill": []})
    p = h.start("Hill")
    path = str(run / "Hill.status")
    wait_for(lambda: own_status(path, p.pid), what="Hill's status file")
    # A second write (the one-second tick) as a barrier: neither the
    # first nor a later one went through the link.
    first = os.stat(path).st_ino
    wait_for(lambda: os.stat(path).st_ino != first, what="a second write")
    assert victim.read_text() == "precious\n"
    assert not os.path.islink(path)
    assert own_status(path, p.pid)["name"] == "Hill"


def test_failing_redials_do_not_rewrite_the_status_at_every_turn(procs, tmp_path):
    # "A" sorts first, so it dials all of its 150 neighbours; none runs,
    # so every dial is refused and redialled (backoff 0.1 s doubling to
    # 2 s): dozens of failures a second, each marking the status dirty.
    peers = ["B%03d" % i for i in range(150)]
    topo = {"A": []}
    topo.update({b: ["A"] for b in peers})     # links are both ways
    ports = {}
    while len(set(ports.values())) < len(topo):
        ports[list(topo)[len(ports)]] = free_port()
        if len(set(ports.values())) < len(ports):
            ports.popitem()
    h = Herd(procs, tmp_path, topology=topo, ports=ports)
    p = h.start("A")
    path = os.path.join(str(tmp_path), "run", "A.status")
    st = wait_for(lambda: own_status(path, p.pid), what="A's status file")
    t0 = time.monotonic()
    st0 = own_status(path, p.pid)
    f0 = metric(st0, "herd_link_dial_failures_total")
    w0 = metric(st0, "herd_status_writes_total")
    # The barrier: many more failed dials than the cap allows writes.
    st1 = wait_for(lambda: (lambda s: s if s and metric(
        s, "herd_link_dial_failures_total") >= f0 + 750 else None)(
            own_status(path, p.pid)), timeout=60, what="750 failed dials")
    t1 = time.monotonic()
    writes = metric(st1, "herd_status_writes_total") - w0
    # At most one write per 0.5 s of the window, plus the one in flight.
    assert writes <= (t1 - t0) / 0.5 + 2, (writes, t1 - t0)
    assert st is not None
