"""herdctl's commands and exit codes (0 ok, 3 not all running, 4 no
supervisor / no such node, 100 usage or herd.ini error, 111 system)."""

import json
import os
import signal
import time

import pytest

from herdlib import binary, free_port, wait_for
from supervisorlib import line_topology, pid_alive, wait_gone


def test_help_documents_exit_codes(make_herd):
    h = make_herd(line_topology(["A"]))
    p = h.ctl("--help", config=False)
    assert p.returncode == 0
    out = p.stdout.decode()
    for word in ("start", "stop", "restart", "status", "reload", "logs",
                 "check", "graph", "send", "--json", "--dry-run",
                 "--foreground", "-n N"):
        assert word in out, word
    for code in ("0 ", "3 ", "4 ", "100", "111"):
        assert "\n  " + code in out, code


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["restart"],
                                  ["send", "A"], ["status", "--bogus"],
                                  ["status", "A", "B"], ["logs", "-n", "x"],
                                  ["stop", "--json"]])
def test_usage_errors_exit_100(make_herd, args):
    h = make_herd(line_topology(["A"]))
    p = h.ctl(*args)
    assert p.returncode == 100, (args, p.stderr)


def test_check(make_herd):
    h = make_herd(line_topology(["A", "B", "C"]))
    p = h.ctl("check")
    assert p.returncode == 0, p.stderr
    assert b"3 nodes, 2 links" in p.stdout and b"successful" in p.stdout
    with open(h.ini, "a") as f:
        f.write("\n[node D]\nport = %d\nbogus = 1\n" % free_port())
    p = h.ctl("check")
    assert p.returncode == 100
    n = len(open(h.ini).read().splitlines())
    assert ("herd.ini:%d: unknown key 'bogus'" % n).encode() in p.stderr
    assert b"test failed" in p.stderr
    p = h.ctl("-c", os.path.join(h.dir, "missing.ini"), "check", config=False)
    assert p.returncode == 100


def test_config_from_env_and_cwd(make_herd):
    h = make_herd(line_topology(["A"]))
    p = h.ctl("check", config=False)          # ./herd.ini in cwd
    assert p.returncode == 0, p.stderr
    other = os.path.join(h.dir, "sub")
    os.mkdir(other)
    os.rename(h.ini, os.path.join(other, "custom.ini"))
    h.env["HERD_CONFIG"] = os.path.join(other, "custom.ini")
    p = h.ctl("check", config=False)
    assert p.returncode == 0 and b"custom.ini" in p.stdout


def test_permission_warnings(make_herd):
    h = make_herd(line_topology(["A"]))
    os.chmod(h.ini, 0o666)
    p = h.ctl("check")
    assert p.returncode == 0 and b"warning" in p.stderr and b"writable" in p.stderr
    os.chmod(h.ini, 0o644)
    p = h.ctl("check")
    # Readable is fine: herd.ini holds no secret (issue 11 point 7).
    assert p.returncode == 0 and b"warning" not in p.stderr
    os.chmod(h.ini, 0o600)
    p = h.ctl("check")
    assert b"warning" not in p.stderr
    os.makedirs(h.run_path(""), exist_ok=True)
    with open(h.run_path("herd.secret"), "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    os.chmod(h.run_path("herd.secret"), 0o644)
    p = h.ctl("check")
    assert b"herd.secret" in p.stderr and b"warning" in p.stderr


def test_commands_without_a_supervisor(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    p = h.ctl("status")
    assert p.returncode == 4 and b"not running" in p.stdout
    p = h.ctl("status", "--json")
    assert p.returncode == 4
    st = json.loads(p.stdout)
    assert st["herd"]["supervisor_pid"] is None
    assert [n["state"] for n in st["nodes"]] == ["stopped", "stopped"]
    for args in (["stop", "A"], ["start", "A"], ["restart", "A"], ["reload"],
                 ["reload", "--dry-run"]):
        assert h.ctl(*args).returncode == 4, args
    p = h.ctl("stop")
    assert p.returncode == 0 and b"not running" in p.stdout
    p = h.ctl("graph")
    assert p.returncode == 0 and b'"A" -- "B"' in p.stdout
    assert b"unknown" in p.stdout
    p = h.ctl("send", "A", "IAMAT x +1+1 1")
    assert p.returncode == 3, p.stderr     # nothing listens
    assert h.ctl("logs", "A").returncode == 0


def test_unknown_node_exit_4(make_herd):
    h = make_herd(line_topology(["A"]))
    h.start()
    for args in (["status", "Nope"], ["status", "Nope", "--json"],
                 ["start", "Nope"], ["stop", "Nope"], ["restart", "Nope"],
                 ["logs", "Nope"], ["send", "Nope", "hello"]):
        p = h.ctl(*args)
        assert p.returncode == 4, (args, p.stderr)
    assert h.ctl("status").returncode == 0


def test_status_plain_and_json(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    p = h.ctl("start")
    assert p.returncode == 0 and b"2 of 2 nodes running" in p.stdout
    h.wait_links("A", 1)
    p = h.ctl("status")
    assert p.returncode == 0
    out = p.stdout.decode()
    for col in ("NAME", "STATE", "PID", "UPTIME", "PORT", "RESTARTS", "LINKS",
                "CLIENTS"):
        assert col in out
    assert "1/1" in out and "running" in out
    p = h.ctl("status", "--json")
    st = json.loads(p.stdout)
    assert set(st) >= {"herd", "nodes"}
    assert set(st["herd"]) >= {"config", "supervisor_pid"}
    a = st["nodes"][0]
    assert a["name"] == "A" and a["links_up"] == 1 and a["links_total"] == 1
    assert isinstance(a["pid"], int) and a["uptime_s"] >= 0
    assert a["clients"] == 0 and a["last_exit"] is None
    p = h.ctl("status", "B", "--json")
    assert [n["name"] for n in json.loads(p.stdout)["nodes"]] == ["B"]
    # start again: already running, still 0.
    p = h.ctl("start")
    assert p.returncode == 0 and b"already running" in p.stdout


def test_send_iamat_whatsat_and_garbage(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    h.wait_links("A", 1)
    p = h.ctl("send", "A", "IAMAT", "kiwi", "+34.068930-118.445127",
              "1621464827.959498503")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"AT A ")
    assert p.stdout.endswith(b" kiwi +34.068930-118.445127 1621464827.959498503\n")
    at = p.stdout

    def whatsat():
        r = h.ctl("send", "B", "WHATSAT kiwi 10 5")
        return r if r.stdout.startswith(b"AT A ") else None
    p = wait_for(whatsat, timeout=20, interval=0.2, what="B to know kiwi")
    assert p.returncode == 0
    assert p.stdout.startswith(at)
    assert p.stdout.endswith(b"}\n\n")
    body = json.loads(p.stdout[len(at):])
    assert body["results"] == []
    p = h.ctl("send", "A", "hello there")
    assert p.returncode == 0 and p.stdout == b"? hello there\n"


def test_graph_live(make_herd):
    h = make_herd(line_topology(["A", "B", "C"]))
    h.start()
    h.wait_links("B", 2)
    p = h.ctl("graph")
    assert p.returncode == 0
    out = p.stdout.decode()
    assert out.count(" -- ") == 2 and "graph herd {" in out
    assert '"A" -- "B" [label="up"' in out
    h.ctl("stop", "C")
    p = h.ctl("graph")
    assert '"B" -- "C" [label="down"' in p.stdout.decode()
    assert '"A" -- "B" [label="up"' in p.stdout.decode()


def test_logs_last_lines_and_all(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    h.start()
    p = h.ctl("logs", "A", "-n", "3")
    assert p.returncode == 0
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 3 and all(" A: " in l for l in lines)
    p = h.ctl("logs", "-n", "50")
    out = p.stdout.decode()
    assert "A          | " in out and "B          | " in out
    assert "supervisor | " in out
    p = h.ctl("logs", "supervisor", "-n", "1")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1


def test_start_foreground_until_ctrl_c(make_herd, procs):
    h = make_herd(line_topology(["A", "B"]))
    out = open(os.path.join(h.dir, "fg.txt"), "w+b")
    fg = procs.start([binary("herdctl"), "-c", h.ini, "start", "--foreground"],
                     stdout=out, env=h.env, cwd=h.dir,
                     start_new_session=True)

    def text():
        out.seek(0)
        return out.read().decode(errors="replace")
    wait_for(lambda: "serving on port" in text() and
             h.ctl("status").returncode == 0, timeout=30, interval=0.2,
             what="the foreground herd to run")
    pids = [n["pid"] for n in h.status()["nodes"]]
    sup = h.supervisor_pid()
    assert "A          | " in text() and "B          | " in text()
    # Ctrl-C: the terminal signals the whole foreground process group.
    os.killpg(fg.pid, signal.SIGINT)
    assert fg.wait(timeout=30) == 0
    wait_gone(pids + [sup])
    assert "stopped" in text()
    out.close()


def test_daemon_start_survives_its_terminal(make_herd):
    """herdctl start returns at once; the supervisor is in a session of its
    own (and not its leader, so it can never get a terminal), so closing
    the starting terminal (SIGHUP to its group) is harmless."""
    h = make_herd(line_topology(["A"]))
    h.start()
    sup = h.supervisor_pid()
    assert os.getsid(sup) != os.getsid(0) and os.getsid(sup) != sup
    assert os.getpgid(sup) != os.getpgid(0)
    time.sleep(0.2)
    assert pid_alive(sup) and h.ctl("status").returncode == 0
