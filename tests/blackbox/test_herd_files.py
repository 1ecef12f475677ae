"""The herd's own files (issue 11 points 7 and 8): nothing the herd
writes follows a symlink planted in log_dir or run_dir, and herdctl warns
about directories others can write.  The fsync of new directories'
parents is pinned by tests/unit/test_fsutil.c."""

import os

from supervisorlib import line_topology


def _plant(h, name):
    """A private file outside the herd, and a symlink to it at
    logs/NAME.log; returns the file's path."""
    target = os.path.join(h.dir, "private-%s" % name)
    with open(target, "w") as f:
        f.write("private\n")
    os.chmod(target, 0o600)
    os.makedirs(os.path.join(h.dir, "logs"), exist_ok=True)
    os.symlink(target, h.log_path(name))
    return target


def test_planted_log_symlink_is_not_followed(make_herd):
    h = make_herd(line_topology(["A", "B"]))
    target = _plant(h, "A")
    p = h.ctl("start")
    # A cannot open its log, so it cannot run; B does.
    assert p.returncode == 3, (p.stdout, p.stderr)
    with open(target) as f:
        assert f.read() == "private\n"
    assert os.path.islink(h.log_path("A"))
    st = h.status()
    a = h.node("A", st)
    assert a["state"] == "fatal", a
    assert "symbolic links" in a["reason"], a
    assert h.node("B", st)["state"] == "running"
    # The supervisor says in its own log why A's log stays empty.
    sup = h.log("supervisor")
    assert "A.log: it is a symbolic link, not followed" in sup, sup
    with open(target) as f:
        assert f.read() == "private\n"


def test_planted_supervisor_log_symlink(make_herd):
    h = make_herd(line_topology(["A"]))
    target = _plant(h, "supervisor")
    p = h.ctl("start")
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert b"symbolic links" in p.stderr, p.stderr
    with open(target) as f:
        assert f.read() == "private\n"
    assert h.supervisor_pid() is None


def test_directory_warnings(make_herd):
    h = make_herd(line_topology(["A"]), herd={"data_dir": "data"})
    os.chmod(h.ini, 0o644)
    p = h.ctl("check")
    assert p.returncode == 0
    assert b"readable" not in p.stderr and b"warning" not in p.stderr, p.stderr
    for d in ("logs", "run", "data"):
        os.makedirs(os.path.join(h.dir, d), exist_ok=True)
    os.chmod(os.path.join(h.dir, "logs"), 0o1777)
    os.chmod(os.path.join(h.dir, "data"), 0o777)
    p = h.ctl("check")
    assert p.returncode == 0
    err = p.stderr.decode()
    assert "warning: log_dir %s is writable by others" % \
        os.path.join(h.dir, "logs") in err, err
    assert "warning: data_dir %s is writable by others" % \
        os.path.join(h.dir, "data") in err, err
    assert "run_dir" not in err
    os.chmod(os.path.join(h.dir, "run"), 0o757)
    p = h.ctl("start")
    assert p.returncode == 0, p.stderr
    assert b"warning: run_dir" in p.stderr, p.stderr
