"""herdctl export systemd: the unit files it writes, checked by
`systemd-analyze verify` (no running systemd needed) and by content:
--host filtering, --dir, --output, the places unit only for the local
provider, restart keys for the installed systemd version."""

import os
import re
import shutil
import subprocess

import pytest

from herdlib import binary, write_ini

pytestmark = pytest.mark.skipif(
    not shutil.which("systemd-analyze"),
    reason="needs systemd-analyze (Debian package systemd)")

TOPO = {"A": ["B"], "B": ["C"], "node-3.x": ["A"], "C": []}
HOSTS = {"A": "198.18.0.1", "B": "198.18.0.2", "node-3.x": "198.18.0.1",
         "C": "198.18.0.2"}


def make(tmp_path, places=None, herd=None, hosts=HOSTS):
    herd_conf = {"stop_grace_s": "7", "max_clients": "500"}
    herd_conf.update(herd or {})
    ini, _ = write_ini(str(tmp_path), TOPO, herd=herd_conf, hosts=hosts,
                       places=places or {"provider": "local", "url": None,
                                         "port": "12999"})
    return ini


def export(tmp_path, *args, env=None):
    e = dict(os.environ)
    e.pop("HERD_CONFIG", None)
    e.update(env or {})
    return subprocess.run([binary("herdctl"), "-c",
                           os.path.join(str(tmp_path), "herd.ini"),
                           "export", "systemd"] + list(args),
                          capture_output=True, timeout=30, cwd=str(tmp_path),
                          env=e)


def read(d, name):
    with open(os.path.join(str(d), name)) as f:
        return f.read()


def keys(text):
    """key -> [values] of a unit file (comments and sections dropped)."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k, []).append(v)
    return out


def verify(d, *units):
    """systemd-analyze verify, with d on the unit path; returns the
    complaints about our files (anything naming d or a herd unit)."""
    env = dict(os.environ)
    env["SYSTEMD_UNIT_PATH"] = str(d) + ":"
    p = subprocess.run(["systemd-analyze", "verify"] +
                       [os.path.join(str(d), u) for u in units],
                       capture_output=True, timeout=60, env=env)
    text = (p.stdout + p.stderr).decode(errors="replace")
    ours = [line for line in text.splitlines()
            if str(d) in line or "herd" in line]
    assert p.returncode == 0, text
    return ours


def installed_systemd():
    p = subprocess.run(["systemctl", "--version"], capture_output=True)
    m = re.match(rb"systemd (\d+)", p.stdout)
    return int(m.group(1)) if m else 0


def test_units_for_one_host_verify_and_say_what_they_should(tmp_path):
    ini = make(tmp_path)
    units = tmp_path / "units"
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", str(units))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(units)) == ["herd-node@.service",
                                         "herd-places.service", "herd.target"]
    assert b"2 node(s) of 198.18.0.1: A node-3.x" in p.stdout, p.stdout

    node = keys(read(units, "herd-node@.service"))
    assert node["ExecStart"] == ["%s -c %s %%i" % (
        os.path.realpath(binary("herd-node")), os.path.realpath(ini))]
    assert node["WorkingDirectory"] == [os.path.realpath(str(tmp_path))]
    assert node["Restart"] == ["on-failure"]
    assert node["RestartSec"] == ["100ms"]
    assert node["RestartPreventExitStatus"] == ["100"]
    assert node["StartLimitIntervalSec"] == ["60"]
    assert node["StartLimitBurst"] == ["5"]
    assert node["KillSignal"] == ["SIGTERM"]
    assert node["TimeoutStopSec"] == ["7s"]
    assert node["LimitNOFILE"] == [str(500 + 2048)]
    assert node["StandardOutput"] == node["StandardError"] == ["journal"]
    assert node["PartOf"] == ["herd.target"]
    assert "network-online.target" in node["After"][0]
    assert "herd-places.service" in node["After"][0]
    assert node["WantedBy"] == ["herd.target"]
    assert "EnvironmentFile" not in node      # local places needs no key

    places = keys(read(units, "herd-places.service"))
    assert places["ExecStart"] == ["%s -c %s" % (
        os.path.realpath(binary("herd-places")), os.path.realpath(ini))]
    assert places["Restart"] == ["on-failure"]

    target = keys(read(units, "herd.target"))
    assert target["Wants"][0].split() == [
        "herd-places.service", "herd-node@A.service",
        "herd-node@node-3.x.service"]
    assert target["WantedBy"] == ["multi-user.target"]

    assert verify(units, "herd-node@A.service", "herd-node@node-3.x.service",
                  "herd-places.service", "herd.target") == []


def test_other_host_dir_default_and_no_places_unit_for_google(tmp_path):
    make(tmp_path, places={"provider": "google", "url": None,
                           "key_env": "MY_KEY"})
    # No --dir: the current directory.
    p = export(tmp_path, "--host", "198.18.0.2")
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(tmp_path / "herd-places.service")
    target = keys(read(tmp_path, "herd.target"))
    assert target["Wants"][0].split() == ["herd-node@B.service",
                                          "herd-node@C.service"]
    node = keys(read(tmp_path, "herd-node@.service"))
    assert node["EnvironmentFile"] == ["-%s/herd.env" %
                                       os.path.realpath(str(tmp_path))]
    assert "herd-places" not in node["After"][0]
    assert verify(tmp_path, "herd-node@B.service", "herd.target") == []


def test_output_to_log_files_and_user(tmp_path):
    make(tmp_path)
    units = tmp_path / "u"
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", str(units),
               "--output", "file", "--user", "daemon")
    assert p.returncode == 0, p.stderr
    node = keys(read(units, "herd-node@.service"))
    logs = os.path.realpath(str(tmp_path / "logs"))
    assert node["StandardOutput"] == ["append:%s/%%i.log" % logs]
    assert node["StandardError"] == ["append:%s/%%i.log" % logs]
    assert os.path.isdir(logs), "systemd opens the file: the dir must exist"
    assert node["User"] == ["daemon"]
    places = keys(read(units, "herd-places.service"))
    assert places["StandardOutput"] == ["append:%s/places.log" % logs]
    assert verify(units, "herd-node@A.service", "herd-places.service") == []


def test_restart_backoff_keys_follow_the_systemd_version(tmp_path):
    make(tmp_path)
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", "new",
               env={"HERD_SYSTEMD_VERSION": "255"})
    assert p.returncode == 0, p.stderr
    node = keys(read(tmp_path / "new", "herd-node@.service"))
    assert node["RestartSteps"] == ["9"]
    assert node["RestartMaxDelaySec"] == ["30s"]
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", "old",
               env={"HERD_SYSTEMD_VERSION": "252"})
    node = keys(read(tmp_path / "old", "herd-node@.service"))
    assert "RestartSteps" not in node and "RestartMaxDelaySec" not in node
    # Without the override, what this machine's systemd supports, which
    # verify accepts without an "Unknown key" warning.
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", "here")
    node = keys(read(tmp_path / "here", "herd-node@.service"))
    assert ("RestartSteps" in node) == (installed_systemd() >= 254)
    assert verify(tmp_path / "here", "herd-node@A.service") == []


def test_host_selection_errors_and_all_nodes_without_hosts(tmp_path):
    make(tmp_path)
    p = export(tmp_path, "--host", "198.18.0.9")
    assert p.returncode == 100
    assert b"no node of" in p.stderr and b"has host 198.18.0.9" in p.stderr
    # None of these hosts is this machine's.
    p = export(tmp_path)
    assert p.returncode == 100 and b"--host ADDR" in p.stderr, p.stderr
    p = export(tmp_path, "kubernetes")
    assert p.returncode == 100
    p = export(tmp_path, "--output", "syslog")
    assert p.returncode == 100
    assert not os.path.exists(tmp_path / "herd.target")

    # No host= anywhere: every node is this machine's.
    make(tmp_path, hosts={})
    p = export(tmp_path, "--dir", "all")
    assert p.returncode == 0, p.stderr
    target = keys(read(tmp_path / "all", "herd.target"))
    assert target["Wants"][0].split() == [
        "herd-places.service", "herd-node@A.service", "herd-node@B.service",
        "herd-node@node-3.x.service", "herd-node@C.service"]


def test_http_face_unit_runs_the_supervisor_http_only(tmp_path):
    ini = make(tmp_path, herd={"http": "127.0.0.1:19999"})
    units = tmp_path / "units"
    p = export(tmp_path, "--host", "198.18.0.1", "--dir", str(units))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(units)) == ["herd-http.service",
                                         "herd-node@.service",
                                         "herd-places.service", "herd.target"]
    http = keys(read(units, "herd-http.service"))
    assert http["ExecStart"] == ["%s -c %s --host 198.18.0.1 --http-only" % (
        os.path.realpath(binary("herd-supervisor")), os.path.realpath(ini))]
    assert http["Restart"] == ["on-failure"]
    assert http["PartOf"] == ["herd.target"]
    assert http["WantedBy"] == ["herd.target"]
    target = keys(read(units, "herd.target"))
    assert target["Wants"][0].split() == [
        "herd-places.service", "herd-http.service", "herd-node@A.service",
        "herd-node@node-3.x.service"]
    assert b"herd-http.service" in p.stdout
    assert verify(units, "herd-http.service", "herd-node@A.service",
                  "herd.target") == []
