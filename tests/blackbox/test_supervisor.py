"""herd-supervisor through herdctl: restarts, crash loops, graceful stop,
orphans, reload.  Every process is killed by pid at teardown."""

import os
import signal
import socket
import stat
import subprocess
import time

from herdlib import Client, binary, free_port, wait_for
from supervisorlib import line_topology, pid_alive, wait_gone


def later_marker(h, other):
    """A barrier for "the supervisor did nothing to a node": kill other
    and wait until it runs again with a new pid.  That takes other's
    shortest restart delay and a supervisor tick (a tick sees it running)
    after this point, so a restart or a tick due to the node under test
    has had its turn."""
    old = h.node(other)["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (lambda n: n["state"] == "running" and n["pid"] != old)(
                 h.node(other)),
             timeout=30, interval=0.1, what="%s back with a new pid" % other)


def test_start_status_stop_leaves_nothing(make_herd):
    h = make_herd(line_topology(["A", "B", "C"]))
    h.start()
    h.wait_links("B", 2)
    st = h.status()
    sup = st["herd"]["supervisor_pid"]
    assert sup == h.supervisor_pid() and pid_alive(sup)
    assert st["herd"]["config"] == os.path.realpath(h.ini)
    pids = [n["pid"] for n in st["nodes"]]
    assert all(pid_alive(p) for p in pids)
    for n in st["nodes"]:
        for key in ("name", "state", "pid", "port", "uptime_s", "restarts",
                    "last_exit", "links_up", "links_total", "clients"):
            assert key in n
        assert n["state"] == "running" and n["restarts"] == 0
        assert n["port"] == h.ports[n["name"]]
    # Control socket and pid file.
    mode = os.stat(h.run_path("supervisor.sock")).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    p = h.ctl("stop")
    assert p.returncode == 0, p.stderr
    # stop returns only when every process is gone.
    assert not pid_alive(sup)
    assert not any(pid_alive(p) for p in pids)
    assert not os.path.exists(h.run_path("supervisor.sock"))
    assert not os.path.exists(h.run_path("supervisor.pid"))
    assert h.ctl("status").returncode == 4


def test_kill9_node_is_restarted_and_catches_up(make_herd):
    h = make_herd(line_topology(["A", "B", "C"]))
    h.start()
    h.wait_links("B", 2)
    old = h.node("B")["pid"]
    os.kill(old, signal.SIGKILL)
    # While B is away (or just back), a client reports to A.
    c = Client(h.ports["A"])
    at = c.request("IAMAT kiwi +34.068930-118.445127 1621464827.959498503")
    assert at.startswith(b"AT A ")
    c.close()
    n = wait_for(lambda: (lambda n: n if n["state"] == "running" and
                          n["pid"] != old else None)(h.node("B")),
                 timeout=30, what="B back with a new pid")
    assert n["restarts"] == 1
    assert n["last_exit"].startswith("signal 9")
    h.wait_links("B", 2)

    def knows():
        c = Client(h.ports["C"])
        try:
            r = c.whatsat("WHATSAT kiwi 10 1")
        finally:
            c.close()
        return r if r.startswith(b"AT A ") else None
    r = wait_for(knows, timeout=20, interval=0.2, what="C to learn kiwi")
    assert r.split(b"\n")[0] + b"\n" == at
    log = h.log("B")
    assert "exited unexpectedly (signal 9" in log
    assert "(restart 1)" in log


def test_port_taken_goes_fatal_with_reason(make_herd):
    port = free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        h = make_herd(line_topology(["A", "B"]), ports={"B": port})
        p = h.ctl("start")
        assert p.returncode == 3, (p.stdout, p.stderr)
        assert b"B is fatal" in p.stderr
        b = h.wait_state("B", "fatal")
        assert "Address already in use" in b["reason"]
        assert "5 times" in b["reason"]
        assert b["last_exit"] == "exit 111"
        assert b["pid"] is None and b["restarts"] == 4
        assert h.node("A")["state"] == "running"
        assert h.ctl("status").returncode == 3
        assert "output: herd-node: fatal" in h.log("B")
        assert "FATAL" in h.log("B")
        # Fatal stays fatal: no more restarts behind our back.
        later_marker(h, "A")
        assert h.node("B")["restarts"] == 4
    finally:
        blocker.close()
    # Once the port is free, start NODE brings it back.
    p = h.ctl("start", "B")
    assert p.returncode == 0, p.stderr
    assert h.node("B")["state"] == "running"
    assert h.ctl("status").returncode == 0


def test_stop_node_stays_stopped_until_started(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    old = h.node("B")["pid"]
    p = h.ctl("stop", "B")
    assert p.returncode == 0, p.stderr
    assert not pid_alive(old)
    later_marker(h, "A")        # no restart behind our back
    b = h.node("B")
    assert b["state"] == "stopped" and b["pid"] is None
    assert h.ctl("status").returncode == 3
    assert h.ctl("status", "A").returncode == 0
    assert h.ctl("status", "B").returncode == 3
    p = h.ctl("start", "B")
    assert p.returncode == 0, p.stderr
    b = h.node("B")
    assert b["state"] == "running" and b["pid"] != old
    assert h.ctl("status").returncode == 0


def test_restart_node_changes_only_its_pid(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    before = h.pids()
    p = h.ctl("restart", "A")
    assert p.returncode == 0, p.stderr
    after = h.pids()
    assert after["A"] != before["A"] and after["B"] == before["B"]
    assert not pid_alive(before["A"])


def test_supervisor_killed_nodes_exit(make_herd):
    """No orphans: the kernel tells every child of a killed supervisor
    (PR_SET_PDEATHSIG) and they stop; the next start works at once."""
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    pids = list(h.pids().values())
    sup = h.supervisor_pid()
    os.kill(sup, signal.SIGKILL)
    wait_gone(pids + [sup])
    assert h.ctl("status").returncode == 4
    p = h.ctl("start")
    assert p.returncode == 0, p.stderr
    assert all(n["state"] == "running" for n in h.status()["nodes"])


STUBBORN_NODE = r"""#!/usr/bin/python3
# A stand-in node that ignores SIGTERM and SIGHUP, so it outlives its
# supervisor: what a wedged node would do.
import configparser, json, os, signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
ini, name = sys.argv[2], sys.argv[3]
cp = configparser.ConfigParser()
cp.read(ini)
port = int(cp["node " + name]["port"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
run = os.path.join(os.path.dirname(ini), "run")
tmp = os.path.join(run, name + ".status.tmp")
with open(tmp, "w") as f:
    json.dump({"name": name, "pid": os.getpid(), "port": port,
               "links_up": 0, "links_total": 0, "clients": 0, "links": []}, f)
os.rename(tmp, os.path.join(run, name + ".status"))
while True:
    time.sleep(1)
"""


def test_next_start_takes_over_a_leftover_node(make_herd):
    """A child that ignores its death signal outlives a killed supervisor;
    the next supervisor finds it (pid + start time in run/supervisor.state),
    stops it (SIGTERM, then SIGKILL) and starts a real node on its port."""
    h = make_herd(line_topology(["A", "B"]))
    stub = os.path.join(h.dir, "stubborn-node")
    with open(stub, "w") as f:
        f.write(STUBBORN_NODE)
    os.chmod(stub, 0o755)
    real_env = dict(h.env)
    h.env["HERD_NODE_BIN"] = stub
    h.start()
    pids = h.pids()
    sup = h.supervisor_pid()
    os.kill(sup, signal.SIGKILL)
    wait_gone([sup])
    time.sleep(0.5)
    assert all(pid_alive(p) for p in pids.values())     # left behind
    h.env = real_env
    p = h.ctl("start")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert not any(pid_alive(p) for p in pids.values())
    st = h.status()
    for n in st["nodes"]:
        assert n["state"] == "running" and n["pid"] not in pids.values()
    log = h.log("supervisor")
    assert "left running by a previous supervisor" in log
    assert "ignored SIGTERM; SIGKILL" in log


def test_second_supervisor_refused(make_herd, procs):
    h = make_herd(line_topology(["A"]))
    h.start()
    p = subprocess.run([binary("herd-supervisor"), "-c", h.ini],
                       capture_output=True, timeout=30)
    assert p.returncode == 111
    assert b"already runs" in p.stderr
    assert h.node("A")["state"] == "running"


def test_reload_add_remove_port_change_relink(make_herd):
    h = make_herd({"A": ["B"], "B": [], "C": [], "E": ["C"]})
    h.start()
    h.wait_links("A", 1)
    before = h.pids()
    # D added (linked to A), C removed, B's port changed, E only loses C.
    new_b = free_port()
    h.rewrite({"A": ["B"], "B": [], "D": ["A"], "E": []},
              ports={"B": new_b})
    dry = h.ctl("reload", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout.decode()
    assert "+ D" in out and "- C" in out and "~ B" in out and "~ A" in out
    assert "~ E" in out
    assert h.pids() == before           # dry run touched nothing
    p = h.ctl("reload")
    assert p.returncode == 0, (p.stdout, p.stderr)
    after = h.pids()
    assert "C" not in after and not pid_alive(before["C"])
    assert after["B"] != before["B"] and not pid_alive(before["B"])
    assert h.node("B")["port"] == new_b
    assert after["A"] == before["A"]    # re-linked in place
    assert after["E"] == before["E"]
    assert after["D"] and pid_alive(after["D"])
    h.wait_links("A", 2)
    h.wait_links("E", 0)
    assert h.ctl("status").returncode == 0
    # A second reload of the same file changes nothing.
    p = h.ctl("reload")
    assert p.returncode == 0 and b"no changes" in p.stdout
    assert h.pids() == after


def test_clients_survive_relink_reload(make_herd):
    h = make_herd({"A": ["B"], "B": [], "C": []})
    h.start()
    h.wait_links("A", 1)
    before = h.pids()
    c = Client(h.ports["A"])
    assert c.request("IAMAT kiwi +1.0+2.0 1621464827.1").startswith(b"AT A ")
    h.rewrite({"A": ["B", "C"], "B": [], "C": []})
    p = h.ctl("reload")
    assert p.returncode == 0, p.stderr
    assert h.pids() == before
    h.wait_links("A", 2)
    # The same connection still works, and the record is still known.
    assert c.request("IAMAT kiwi +1.0+2.0 1621464828.1").startswith(b"AT A ")
    a = h.node("A")
    assert a["clients"] >= 1
    c.close()
    # C learns kiwi over the new link.
    def knows():
        k = Client(h.ports["C"])
        try:
            return k.whatsat("WHATSAT kiwi 1 1").startswith(b"AT A ")
        finally:
            k.close()
    wait_for(knows, timeout=20, interval=0.2, what="C to learn kiwi")


def test_broken_ini_refused_by_check_start_reload(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    good = open(h.ini).read()
    with open(h.ini, "a") as f:
        f.write("\n[node Z]\nport = 1\nneighbors = Nobody\n")
    lineno = len((good + "\n[node Z]\nport = 1\n").splitlines()) + 1
    for args in (["check"], ["start"]):
        p = h.ctl(*args)
        assert p.returncode == 100, (args, p.stdout, p.stderr)
        assert ("herd.ini:%d:" % lineno).encode() in p.stderr, p.stderr
    assert not os.path.exists(h.run_path("supervisor.sock"))
    assert h.supervisor_pid() is None
    # The supervisor itself refuses it the same way.
    p = subprocess.run([binary("herd-supervisor"), "-c", h.ini],
                       capture_output=True, timeout=30)
    assert p.returncode == 100 and b"herd.ini:" in p.stderr
    with open(h.ini, "w") as f:
        f.write(good)
    h.start()
    before = h.pids()
    with open(h.ini, "a") as f:
        f.write("\n[node Z]\nport = 1\nneighbors = Nobody\n")
    for args in (["reload"], ["reload", "--dry-run"]):
        p = h.ctl(*args)
        assert p.returncode == 100, (p.stdout, p.stderr)
        assert ("herd.ini:%d:" % lineno).encode() in p.stderr
    assert h.pids() == before
    assert h.ctl("status").returncode == 0


def test_logs_follow_shows_a_restart(make_herd, procs):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    out = open(os.path.join(h.dir, "follow.txt"), "w+b")
    f = procs.start([binary("herdctl"), "-c", h.ini, "logs", "B", "-f",
                     "-n", "1"], stdout=out, env=h.env)
    time.sleep(0.5)
    old = h.node("B")["pid"]
    os.kill(old, signal.SIGKILL)

    def seen():
        out.seek(0)
        text = out.read().decode(errors="replace")
        return text if "RESTARTED" in text and "serving" in text.split(
            "RESTARTED", 1)[1] else None
    text = wait_for(seen, timeout=30, interval=0.1, what="restart in logs -f")
    assert "exited unexpectedly (signal 9" in text
    f.kill()
    out.close()


def test_logs_follow_all_prefixed_and_through_rotation(make_herd, procs):
    h = make_herd(line_topology(["A", "B"]), herd={"log_max_mb": "1",
                                                  "log_keep": "2"})
    h.start()
    out = open(os.path.join(h.dir, "follow.txt"), "w+b")
    f = procs.start([binary("herdctl"), "-c", h.ini, "logs", "-f", "-n", "0"],
                    stdout=out, env=h.env)
    time.sleep(0.5)
    # Enough requests to push A's log past 1 MB and rotate it.
    c = Client(h.ports["A"])
    pad = "x" * 900
    for i in range(1500):
        c.send("IAMAT %s%d +1.0+2.0 1621464827.%d\n" % (pad, i, i % 10))
    for i in range(1500):
        c.read_line()
    c.send("IAMAT last-one +1.0+2.0 1621464827.5\n")
    c.read_line()
    c.close()
    wait_for(lambda: os.path.exists(h.log_path("A") + ".1"), timeout=30,
             what="A's log to rotate")

    def seen():
        out.seek(0)
        return b"last-one" in out.read()
    wait_for(seen, timeout=30, interval=0.2, what="lines after rotation")
    out.seek(0)
    text = out.read().decode(errors="replace")
    assert all(line.startswith(("A ", "B ", "supervisor "))
               for line in text.splitlines() if line and
               not line.startswith("--------"))
    f.kill()
    out.close()


def test_places_absent_is_reported_not_fatal(make_herd):
    port = free_port()
    h = make_herd(line_topology(["A"]),
                  places={"provider": "local", "port": str(port), "url": None},
                  env={"HERD_PLACES_BIN": "/nonexistent/herd-places"})
    p = h.ctl("start")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"places emulator is absent" in p.stderr
    st = h.status()
    assert st["places"]["state"] == "absent"
    assert "not installed" in st["places"]["reason"]
    assert st["nodes"][0]["state"] == "running"
    assert b"absent" in h.ctl("status").stdout
