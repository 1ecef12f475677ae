"""rm -rf run/ under a running herd (issue 11 point 3): the supervisor
puts its socket, lock, pid and state files back; herdctl keeps managing
the herd, never starts a second supervisor for the same herd.ini, and
never says a stop succeeded while processes it knows of still run."""

import os
import shutil
import signal
import stat

from herdlib import binary, wait_for
from supervisorlib import line_topology, pid_alive, wait_gone


def remove_run_dir(h):
    """rm -rf run/ as a person or a /tmp cleaner does it.  The nodes keep
    writing their status files into it meanwhile, so one pass can find
    the directory refilled; like rm -rf run again, try until it is gone."""
    path = os.path.join(h.dir, "run")
    for _ in range(100):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
    raise AssertionError("run/ could not be removed: " + repr(os.listdir(path)))


def supervisors_of(ini):
    """Live herd-supervisor processes whose -c is ini, from /proc."""
    want = os.stat(ini)
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
        except (OSError, IndexError):
            continue
        if not args or not args[0].endswith(b"herd-supervisor"):
            continue
        for i, a in enumerate(args[:-1]):
            if a == b"-c":
                try:
                    st = os.stat(args[i + 1].decode())
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                    found.append(int(d))
    return found


def _herd(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    h.wait_links("A", 1)
    st = h.status()
    return h, st["herd"]["supervisor_pid"], \
        [n["pid"] for n in st["nodes"]]


def _files_back(h, sup):
    def back():
        try:
            mode = os.stat(h.run_path("supervisor.sock")).st_mode
            return stat.S_ISSOCK(mode) and h.supervisor_pid() == sup and \
                os.path.exists(h.run_path("supervisor.lock")) and \
                os.path.exists(h.run_path("supervisor.state"))
        except OSError:
            return False
    wait_for(back, timeout=20, what="run/ to be re-created")


def test_run_dir_removed_is_recreated(make_herd):
    h, sup, pids = _herd(make_herd)
    remove_run_dir(h)
    # status waits for the supervisor to put its socket back.
    p = h.ctl("status", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    _files_back(h, sup)
    st = h.status()
    assert st["herd"]["supervisor_pid"] == sup
    assert [n["pid"] for n in st["nodes"]] == pids
    assert stat.S_IMODE(os.stat(h.run_path("supervisor.sock")).st_mode) \
        == 0o600
    assert "run_dir %s was removed; re-created it" % \
        os.path.join(h.dir, "run") in h.log("supervisor")
    # The socket alone, as a /tmp cleaner would take it.
    os.unlink(h.run_path("supervisor.sock"))
    p = h.ctl("status")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"supervisor pid %d" % sup in p.stdout
    # The supervisor still restarts what dies.
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: h.node("A")["pid"] not in (None, pids[0]) and
             h.node("A")["state"] == "running", timeout=20,
             what="A to be restarted")


def test_secret_survives_rm_run(make_herd):
    """The herd secret goes with run/; the supervisor puts it back, so a
    node restarted afterwards still links with the others."""
    h, sup, pids = _herd(make_herd)
    with open(h.run_path("herd.secret"), "rb") as f:
        secret = f.read()
    shutil.rmtree(os.path.join(h.dir, "run"))
    _files_back(h, sup)
    wait_for(lambda: os.path.exists(h.run_path("herd.secret")), timeout=20,
             what="herd.secret to be restored")
    with open(h.run_path("herd.secret"), "rb") as f:
        assert f.read() == secret
    assert stat.S_IMODE(os.stat(h.run_path("herd.secret")).st_mode) == 0o600
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: (lambda a: a["pid"] not in (None, pids[0]) and
                      a["state"] == "running" and a["links_up"] == 1)(
                          h.node("A")), timeout=30,
             what="A to restart and link again")
    h.wait_links("B", 1)


def test_no_second_supervisor_after_rm_run(make_herd):
    h, sup, pids = _herd(make_herd)
    remove_run_dir(h)
    p = h.ctl("start")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"already running (supervisor pid %d)" % sup in p.stdout, p.stdout
    assert supervisors_of(h.ini) == [sup]
    assert [n["pid"] for n in h.status()["nodes"]] == pids
    # Nor by hand, even before the first has put its files back.
    remove_run_dir(h)
    env = dict(h.env)
    import subprocess
    q = subprocess.run([binary("herd-supervisor"), "-c", h.ini], cwd=h.dir,
                       env=env, capture_output=True, timeout=60)
    h.track()
    assert q.returncode == 111, q.stderr
    assert b"a supervisor already runs for" in q.stderr, q.stderr
    assert b"(pid %d)" % sup in q.stderr, q.stderr
    assert supervisors_of(h.ini) == [sup]
    assert all(pid_alive(p) for p in pids)


def test_stop_after_rm_run_stops_everything(make_herd):
    h, sup, pids = _herd(make_herd)
    remove_run_dir(h)
    p = h.ctl("stop")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"herd stopped" in p.stdout, p.stdout
    assert not pid_alive(sup)
    assert not any(pid_alive(x) for x in pids)


def test_stop_of_a_supervisor_that_cannot_answer(make_herd):
    """A supervisor stopped (SIGSTOP) with its run/ gone cannot put its
    socket back; stop must still not claim success while it runs."""
    h, sup, pids = _herd(make_herd)
    os.kill(sup, signal.SIGSTOP)
    try:
        remove_run_dir(h)
        p = h.ctl("stop")
        if p.returncode == 0:
            assert not pid_alive(sup)
            assert not any(pid_alive(x) for x in pids)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert b"does not answer" in p.stderr, p.stderr
    finally:
        try:
            os.kill(sup, signal.SIGCONT)
        except ProcessLookupError:
            pass
    wait_gone([sup] + pids)


def test_stop_without_supervisor_stops_what_it_left(make_herd):
    """The supervisor killed while its nodes ignore their death signal:
    stop finds them in supervisor.state and stops them (SIGTERM, then
    SIGKILL) before it says anything succeeded."""
    from test_supervisor import STUBBORN_NODE
    h = make_herd(line_topology(["A", "B"]))
    stub = os.path.join(h.dir, "stubborn-node")
    with open(stub, "w") as f:
        f.write(STUBBORN_NODE)
    os.chmod(stub, 0o755)
    h.env["HERD_NODE_BIN"] = stub
    h.start()
    pids = list(h.pids().values())
    sup = h.supervisor_pid()
    os.kill(sup, signal.SIGKILL)
    wait_gone([sup])
    assert all(pid_alive(p) for p in pids)      # left behind
    p = h.ctl("stop")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert b"stopped 2 processes a killed supervisor left" in p.stdout, \
        p.stdout
    assert not any(pid_alive(p) for p in pids)
    assert b"ignored SIGTERM; SIGKILL" in p.stderr, p.stderr
