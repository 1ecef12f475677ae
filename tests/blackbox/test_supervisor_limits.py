"""The supervisor under a big herd and a hostile control client (issue 11
points 4 and 5)."""

import os
import signal
import socket
import threading
import time

from herdlib import free_port, wait_for
from supervisorlib import line_topology, pid_alive


def test_status_file_over_64k(make_herd):
    """A node with 1,900 links writes a status file of more than 64 KiB;
    the supervisor still reads it and sees the node running."""
    h = make_herd(line_topology(["A"]))
    peers = ["node-with-a-rather-long-name-%04d" % i for i in range(1900)]
    lines = ["[herd]", "log_dir = logs", "run_dir = run", "stop_grace_s = 2",
             "", "[places]", "provider = google-legacy",
             "url = http://127.0.0.1:%d" % free_port(), "",
             "[node A]", "port = %d" % free_port()]
    for i, name in enumerate(peers):
        # 127.0.0.2 is this machine too, but only --host 127.0.0.1's
        # nodes start; nothing listens at the others' ports.
        lines += ["", "[node %s]" % name, "host = 127.0.0.2",
                  "port = %d" % (20000 + i), "neighbors = A"]
    with open(h.ini, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = h.ctl("start", "--host", "127.0.0.1", timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert os.path.getsize(h.run_path("A.status")) > 65536
    a = h.node("A")
    assert a["state"] == "running", a
    assert a["links_total"] == 1900
    assert len(a["links"]) == 1900


def _slow_client(path, stop, state):
    """Connect to the control socket and send "status\\n" a byte every
    0.8 s, never finishing until told to stop (or closed on)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    state["sock"] = s
    state["connected"] = True
    msg = b"stat"
    i = 0
    try:
        while not stop.is_set():
            s.send(msg[i % len(msg):i % len(msg) + 1])
            state["sent"] = state.get("sent", 0) + 1
            i += 1
            if stop.wait(0.8):
                break
    except OSError:
        pass
    state["connected"] = False


def _still_connected(s):
    """True while the peer has not closed the connection."""
    s.setblocking(False)
    try:
        data = s.recv(1, socket.MSG_PEEK)
        return data != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def test_slow_control_client_does_not_delay_restarts(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    before = h.node("A")
    stop = threading.Event()
    state = {}
    t = threading.Thread(target=_slow_client,
                         args=(h.run_path("supervisor.sock"), stop, state))
    t.start()
    try:
        wait_for(lambda: state.get("sent", 0) >= 2, timeout=10,
                 what="the slow client to be sending")
        os.kill(before["pid"], signal.SIGKILL)
        # The restart happens while the slow client is still connected
        # and dribbling: its line is not finished yet.
        wait_for(lambda: "(restart 1)" in h.log("A"), timeout=20,
                 what="A to be restarted")
        assert _still_connected(state["sock"])
        # Control requests are served alongside it, too.
        after = h.wait_state("A", "running")
        assert after["pid"] != before["pid"] and after["restarts"] == 1
        assert _still_connected(state["sock"])
        # The slow client itself is dropped once its deadline passes.
        wait_for(lambda: not _still_connected(state["sock"]), timeout=30,
                 interval=0.2, what="the slow client to be dropped")
    finally:
        stop.set()
        t.join()
        if state.get("sock"):
            state["sock"].close()
    assert pid_alive(h.supervisor_pid())
